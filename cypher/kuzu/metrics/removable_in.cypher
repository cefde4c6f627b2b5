// Removable incoming connections: the out-edges of source nodes with idx > $above.
// Kùzu dialect: no Unit super-label, so the unit tables are named as a label union.
// mge: $above = input size - 1; mge-reference: $above = input size (the reference's bound).
// params: $key, $above
// returns: value
MATCH (u:InputPixel:ConvUnit:Neuron {network: $key})-[r:W]->()
WHERE u.idx > $above AND NOT EXISTS { MATCH ()-[:W]->(u) }
RETURN count(r) AS value
