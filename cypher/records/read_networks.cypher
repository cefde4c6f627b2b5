// The metadata columns of the record table (all sources, or one).
// params: $source
// returns: key, source, model, dataset, pruner, sparsity, seed, accuracy, dense_accuracy, nodes, edges
MATCH (g:Network)
WHERE g.kind = 'records' AND (g.source = $source OR $source IS NULL)
RETURN g.key AS key, g.source AS source, g.model AS model, g.dataset AS dataset,
       g.pruner AS pruner, g.sparsity AS sparsity, g.seed AS seed, g.accuracy AS accuracy,
       g.dense_accuracy AS dense_accuracy, g.n_nodes AS nodes, g.n_edges AS edges
ORDER BY key
