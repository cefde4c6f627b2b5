// Number of weakly connected components (isolated nodes count) of a projected network.
// params: $graph
// returns: value
CALL gds.wcc.stats($graph) YIELD componentCount
RETURN componentCount AS value
