// Σ_u |N2(u)|: distinct (u, w) pairs joined by a 2-edge path u -> v -> w, w != u.
// One source partition per call (bounded memory); mgedb sums over the partitions.
// Kùzu dialect: no Unit super-label, so the unit tables are named as a label union — every
// node of the path (Ladybug 0.22 misses paths through an unlabelled middle node: ResNet-20
// partition 4 gave 277,109 pairs instead of 647,337).
// The targets are collected per source and made distinct per list: on ResNet-20 ER-0.9's
// partition 4 (25.0 M walks, 5.66 M pairs) 15 s, against 47 s for one DISTINCT over all
// (id(u), id(w)) pairs, 25–31 s for count(DISTINCT id(w)) per u and 40 s grouping the pairs;
// counting the walks alone takes 0.6 s, so making them distinct is the cost.
// 2-hop = (n + out_pairs + two_step_pairs - two_step_direct_pairs) / n.
// params: $key, $partition
// returns: value
MATCH (u:InputPixel:ConvUnit:Neuron {network: $key, partition: $partition})-[:W]->(:InputPixel:ConvUnit:Neuron)-[:W]->(w:InputPixel:ConvUnit:Neuron)
WHERE id(u) <> id(w)
WITH u, collect(id(w)) AS targets
RETURN sum(size(list_distinct(targets))) AS value
