// Drop a projected graph from the GDS catalog (no error if it is already gone).
// params: $graph
// returns: graph
CALL gds.graph.drop($graph, false) YIELD graphName
RETURN graphName AS graph
