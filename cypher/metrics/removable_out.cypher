// Removable out-going connections: the in-edges of sink nodes with idx < $below.
// mge: $below = first id of the output partition; mge-reference: n - 1 - output size.
// params: $key, $below
// returns: value
MATCH ()-[r:W]->(u:Unit {network: $key})
WHERE u.idx < $below AND NOT EXISTS { MATCH (u)-[:W]->() }
RETURN count(r) AS value
