// Number of bridges (cut-edges) of a projected network.
// params: $graph
// returns: value
CALL gds.bridges.stream($graph) YIELD from
RETURN count(from) AS value
