// Delete every Metric and LayerMetrics node of the given networks (before rewriting their records).
// params: $keys
// returns: none
// mode: write
MATCH (m)
WHERE (m:Metric OR m:LayerMetrics) AND m.network IN $keys
DETACH DELETE m
