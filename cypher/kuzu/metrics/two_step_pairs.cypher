// Σ_u |N2(u)|: distinct (u, w) pairs joined by a 2-edge path u -> v -> w, w != u.
// One source partition per call (bounded memory); mgedb sums over the partitions.
// Kùzu dialect: no Unit super-label, so the unit tables are named as a label union — every
// node of the path (Ladybug 0.22 misses paths through an unlabelled middle node: ResNet-20
// partition 4 gave 277,109 pairs instead of 647,337);
// DISTINCT over internal ids (id()) hashes faster than over nodes or properties.
// 2-hop = (n + out_pairs + two_step_pairs - two_step_direct_pairs) / n.
// params: $key, $partition
// returns: value
MATCH (u:InputPixel:ConvUnit:Neuron {network: $key, partition: $partition})-[:W]->(:InputPixel:ConvUnit:Neuron)-[:W]->(w:InputPixel:ConvUnit:Neuron)
WITH DISTINCT id(u) AS a, id(w) AS b
WHERE a <> b
RETURN count(*) AS value
