// Number of articulation points (cut-nodes) of a projected network.
// params: $graph
// returns: value
CALL gds.articulationPoints.stream($graph) YIELD nodeId
RETURN count(nodeId) AS value
