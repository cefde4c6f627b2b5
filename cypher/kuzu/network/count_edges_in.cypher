// W edges of a network per (source, target) partition pair, found from the target nodes.
// Kùzu dialect: the unit tables are named as a label union.
// params: $key
// returns: src, dst, n
MATCH (a:InputPixel:ConvUnit:Neuron:BgeNode)-[r:W]->(b:InputPixel:ConvUnit:Neuron:BgeNode {network: $key})
RETURN a.partition AS src, b.partition AS dst, count(r) AS n
