// Delete every Metric and LayerMetrics node of the given networks (before rewriting their records).
// Kùzu dialect: a label union instead of label predicates.
// params: $keys
// returns: none
// mode: write
MATCH (m:Metric:LayerMetrics)
WHERE m.network IN $keys
DETACH DELETE m
