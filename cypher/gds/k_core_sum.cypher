// Σ coreness (degree = in + out) over the nodes of a projected network; k-core = value / n.
// params: $graph
// returns: value
CALL gds.kcore.stream($graph) YIELD coreValue
RETURN sum(coreValue) AS value
