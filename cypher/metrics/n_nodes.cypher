// Number of unit nodes of a network (isolated ones included).
// params: $key
// returns: value
MATCH (u:Unit {network: $key})
RETURN count(u) AS value
