// Delete up to $limit Layer, Channel, Metric and LayerMetrics nodes of a network; repeat until 0.
// params: $key, $limit
// returns: deleted
// mode: write
MATCH (n)
WHERE (n:Layer OR n:Channel OR n:Metric OR n:LayerMetrics) AND n.network = $key
WITH n LIMIT $limit
DETACH DELETE n
RETURN count(*) AS deleted
