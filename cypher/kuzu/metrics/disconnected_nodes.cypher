// Nodes without any edge (neither in nor out).
// Kùzu dialect: no Unit super-label, so the unit tables are named as a label union.
// params: $key
// returns: value
MATCH (u:InputPixel:ConvUnit:Neuron {network: $key})
WHERE NOT EXISTS { MATCH (u)-[:W]-() }
RETURN count(u) AS value
