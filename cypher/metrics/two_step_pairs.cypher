// Σ_u |N2(u)|: distinct (u, w) pairs joined by a 2-edge path u -> v -> w, w != u.
// One source partition per call (bounded memory); mgedb sums over the partitions.
// 2-hop = (n + out_pairs + two_step_pairs - two_step_direct_pairs) / n.
// params: $key, $partition
// returns: value
MATCH (u:Unit {network: $key, partition: $partition})-[:W]->()-[:W]->(w)
WHERE w.uid <> u.uid
WITH DISTINCT u, w
RETURN count(*) AS value
