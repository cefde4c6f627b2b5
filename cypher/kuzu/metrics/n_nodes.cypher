// Number of unit nodes of a network (isolated ones included).
// Kùzu dialect: no Unit super-label, so the unit tables are named as a label union.
// params: $key
// returns: value
MATCH (u:InputPixel:ConvUnit:Neuron {network: $key})
RETURN count(u) AS value
