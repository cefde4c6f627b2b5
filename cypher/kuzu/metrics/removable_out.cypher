// Removable out-going connections: the in-edges of sink nodes with idx < $below.
// Kùzu dialect: no Unit super-label, so the unit tables are named as a label union.
// mge: $below = first id of the output partition; mge-reference: n - 1 - output size.
// params: $key, $below
// returns: value
MATCH ()-[r:W]->(u:InputPixel:ConvUnit:Neuron {network: $key})
WHERE u.idx < $below AND NOT EXISTS { MATCH (u)-[:W]->() }
RETURN count(r) AS value
