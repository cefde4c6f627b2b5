// Nodes without any edge (neither in nor out).
// params: $key
// returns: value
MATCH (u:Unit {network: $key})
WHERE NOT EXISTS { MATCH (u)-[:W]-() }
RETURN count(u) AS value
