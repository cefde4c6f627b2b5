// One batch of metrics-only Network nodes from a record table (kind 'records'), keyed by key.
// params: $rows
// returns: none
// mode: write
UNWIND $rows AS r
MERGE (g:Network {key: r.key})
SET g.kind = 'records', g.complete = true, g.source = r.source, g.model = r.model,
    g.dataset = r.dataset, g.pruner = r.pruner, g.sparsity = r.sparsity, g.seed = r.seed,
    g.accuracy = r.accuracy, g.dense_accuracy = r.dense_accuracy, g.n_nodes = r.nodes,
    g.n_edges = r.edges, g.created = r.created, g.mgedb_version = r.mgedb_version
