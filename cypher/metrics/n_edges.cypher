// Number of W edges of a network.
// params: $key
// returns: value
MATCH (:Unit {network: $key})-[r:W]->()
RETURN count(r) AS value
