// One batch of per-layer metric rows (LayerMetrics nodes), each linked from its Network.
// params: $rows
// returns: none
// mode: write
UNWIND $rows AS r
MATCH (g:Network {key: r.network})
CREATE (g)-[:HAS_LAYER_METRICS]->(:LayerMetrics {key: r.key, network: r.network,
        encoding: r.encoding, layer_id: r.layer_id, layer_name: r.layer_name,
        density: r.density, metrics_json: r.metrics_json, ord: r.ord})
