// Σ |w| over the edges; mean node strength (in + out) = 2 · value / n.
// params: $key
// returns: value
MATCH (:Unit {network: $key})-[r:W]->()
RETURN sum(r.w) AS value
