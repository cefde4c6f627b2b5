// Source nodes: out-edges but no in-edges, counted over idx >= $first, minus $offset.
// Kùzu dialect: no Unit super-label, so the unit tables are named as a label union.
// mge: $first = size of the input partition, $offset = 0 (input pixels are not sources);
// mge-reference: $first = 0, $offset = size of the input partition (the reference's formula).
// params: $key, $first, $offset
// returns: value
MATCH (u:InputPixel:ConvUnit:Neuron {network: $key})
WHERE u.idx >= $first
  AND EXISTS { MATCH (u)-[:W]->() }
  AND NOT EXISTS { MATCH ()-[:W]->(u) }
RETURN count(u) - $offset AS value
