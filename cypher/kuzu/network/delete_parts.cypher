// Delete up to $limit Layer, Channel, Metric and LayerMetrics nodes of a network; repeat until 0.
// Kùzu dialect: a label union instead of label predicates.
// params: $key, $limit
// returns: deleted
// mode: write
MATCH (n:Layer:Channel:Metric:LayerMetrics {network: $key})
WITH n LIMIT $limit
DETACH DELETE n
RETURN count(*) AS deleted
