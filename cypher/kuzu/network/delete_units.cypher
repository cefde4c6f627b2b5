// Delete up to $limit unit nodes of a network with their edges; repeat until it returns 0.
// Kùzu dialect: the unit tables are named as a label union.
// params: $key, $limit
// returns: deleted
// mode: write
MATCH (u:InputPixel:ConvUnit:Neuron:BgeNode {network: $key})
WITH u LIMIT $limit
DETACH DELETE u
RETURN count(*) AS deleted
