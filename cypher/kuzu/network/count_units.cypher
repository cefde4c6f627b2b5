// Unit nodes of a network per partition index (see network/count_units).
// Kùzu dialect: the unit tables are named as a label union.
// params: $key
// returns: partition, n
MATCH (u:InputPixel:ConvUnit:Neuron:BgeNode {network: $key})
RETURN u.partition AS partition, count(u) AS n
