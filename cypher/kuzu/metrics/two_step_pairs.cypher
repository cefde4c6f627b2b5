// Σ_u |N2(u)|: distinct (u, w) pairs joined by a 2-edge path u -> v -> w, w != u.
// One source partition per call (bounded memory); mgedb sums over the partitions.
// Kùzu dialect: no Unit super-label, so the unit tables are named as a label union;
// DISTINCT over internal ids (id()) hashes faster than over nodes or properties.
// 2-hop = (n + out_pairs + two_step_pairs - two_step_direct_pairs) / n.
// params: $key, $partition
// returns: value
MATCH (u:InputPixel:ConvUnit:Neuron {network: $key, partition: $partition})-[:W]->()-[:W]->(w)
WITH DISTINCT id(u) AS a, id(w) AS b
WHERE a <> b
RETURN count(*) AS value
