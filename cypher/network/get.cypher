// One network's metadata.
// params: $key
// returns: key, kind, complete, uid_base, source, model, dataset, pruner, sparsity, seed, encoding, flavour, classes, input_shape, accuracy, dense_accuracy, created, mgedb_version, digest, checkpoint, dimension, n_nodes, n_edges, layout, extra, counts
MATCH (g:Network {key: $key})
RETURN g.key AS key, g.kind AS kind, g.complete AS complete, g.uid_base AS uid_base,
       g.source AS source, g.model AS model, g.dataset AS dataset, g.pruner AS pruner,
       g.sparsity AS sparsity, g.seed AS seed, g.encoding AS encoding, g.flavour AS flavour,
       g.classes AS classes, g.input_shape AS input_shape, g.accuracy AS accuracy,
       g.dense_accuracy AS dense_accuracy, g.created AS created,
       g.mgedb_version AS mgedb_version, g.digest AS digest, g.checkpoint AS checkpoint,
       g.dimension AS dimension, g.n_nodes AS n_nodes, g.n_edges AS n_edges,
       g.layout AS layout, g.extra AS extra, g.counts AS counts
