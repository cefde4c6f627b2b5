// Sink nodes: in-edges but no out-edges, counted over idx < $below, minus $offset.
// Kùzu dialect: no Unit super-label, so the unit tables are named as a label union.
// mge: $below = first id of the output partition, $offset = 0 (output neurons are not sinks);
// mge-reference: $below = n, $offset = size of the output partition (the reference's formula).
// params: $key, $below, $offset
// returns: value
MATCH (u:InputPixel:ConvUnit:Neuron {network: $key})
WHERE u.idx < $below
  AND NOT EXISTS { MATCH (u)-[:W]->() }
  AND EXISTS { MATCH ()-[:W]->(u) }
RETURN count(u) - $offset AS value
