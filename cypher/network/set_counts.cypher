// Record a network's integrity counts (JSON: units per partition, edges per partition pair).
// params: $key, $counts
// returns: key
// mode: write
MATCH (g:Network {key: $key})
SET g.counts = $counts
RETURN g.key AS key
