// Source nodes: out-edges but no in-edges, counted over idx >= $first, minus $offset.
// mge: $first = size of the input partition, $offset = 0 (input pixels are not sources);
// mge-reference: $first = 0, $offset = size of the input partition (the reference's formula).
// params: $key, $first, $offset
// returns: value
MATCH (u:Unit {network: $key})
WHERE u.idx >= $first
  AND EXISTS { MATCH (u)-[:W]->() }
  AND NOT EXISTS { MATCH ()-[:W]->(u) }
RETURN count(u) - $offset AS value
