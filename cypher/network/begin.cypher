// Create (or reset) a Network node with its metadata, marked incomplete until ingestion ends.
// params: $key, $kind, $uid_base, $source, $model, $dataset, $pruner, $sparsity, $seed, $encoding, $flavour, $classes, $input_shape, $accuracy, $dense_accuracy, $created, $mgedb_version, $digest, $checkpoint, $dimension, $n_nodes, $n_edges, $layout, $extra, $counts
// returns: key
// mode: write
MERGE (g:Network {key: $key})
SET g.kind = $kind, g.complete = false, g.uid_base = $uid_base, g.source = $source,
    g.model = $model, g.dataset = $dataset, g.pruner = $pruner, g.sparsity = $sparsity,
    g.seed = $seed, g.encoding = $encoding, g.flavour = $flavour, g.classes = $classes,
    g.input_shape = $input_shape, g.accuracy = $accuracy, g.dense_accuracy = $dense_accuracy,
    g.created = $created, g.mgedb_version = $mgedb_version, g.digest = $digest,
    g.checkpoint = $checkpoint, g.dimension = $dimension, g.n_nodes = $n_nodes,
    g.n_edges = $n_edges, g.layout = $layout, g.extra = $extra,
    g.counts = $counts
RETURN g.key AS key
