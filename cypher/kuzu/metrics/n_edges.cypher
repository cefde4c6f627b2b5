// Number of W edges of a network.
// Kùzu dialect: no Unit super-label, so the unit tables are named as a label union.
// params: $key
// returns: value
MATCH (:InputPixel:ConvUnit:Neuron {network: $key})-[r:W]->()
RETURN count(r) AS value
