// W edges of a network per (source, target) partition pair, found from the source nodes.
// Kùzu dialect: the unit tables are named as a label union.
// params: $key
// returns: src, dst, n
MATCH (a:InputPixel:ConvUnit:Neuron:BgeNode {network: $key})-[r:W]->(b:InputPixel:ConvUnit:Neuron:BgeNode)
RETURN a.partition AS src, b.partition AS dst, count(r) AS n
