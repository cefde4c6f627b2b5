// The per-layer metric rows of record networks (all sources, or one).
// params: $source
// returns: key, encoding, layer_id, layer_name, density, metrics_json
MATCH (g:Network)-[:HAS_LAYER_METRICS]->(m:LayerMetrics)
WHERE g.kind = 'records' AND (g.source = $source OR $source IS NULL)
RETURN g.key AS key, m.encoding AS encoding, m.layer_id AS layer_id,
       m.layer_name AS layer_name, m.density AS density, m.metrics_json AS metrics_json
ORDER BY key, m.ord
