// Σ_u |N1(u) ∩ N2(u)|: distinct (u, w) pairs with both an edge u -> w and a path u -> v -> w.
// One source partition per call (bounded memory); mgedb sums over the partitions.
// Kùzu dialect: no Unit super-label, so the unit tables are named as a label union — every
// node of the path (Ladybug 0.22 misses paths through an unlabelled middle node: ResNet-20
// partition 4 gave 277,109 pairs instead of 647,337);
// DISTINCT over internal ids (id()) hashes faster than over nodes or properties.
// params: $key, $partition
// returns: value
MATCH (u:InputPixel:ConvUnit:Neuron {network: $key, partition: $partition})-[:W]->(v:InputPixel:ConvUnit:Neuron)-[:W]->(w:InputPixel:ConvUnit:Neuron)
MATCH (u)-[:W]->(w)
WITH DISTINCT id(u) AS a, id(w) AS b
WHERE a <> b
RETURN count(*) AS value
