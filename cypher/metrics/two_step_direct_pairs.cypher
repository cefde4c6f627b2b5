// Σ_u |N1(u) ∩ N2(u)|: distinct (u, w) pairs with both an edge u -> w and a path u -> v -> w.
// One source partition per call (bounded memory); mgedb sums over the partitions.
// params: $key, $partition
// returns: value
MATCH (u:Unit {network: $key, partition: $partition})-[:W]->(v)-[:W]->(w)
MATCH (u)-[:W]->(w)
WHERE w.uid <> u.uid
WITH DISTINCT u, w
RETURN count(*) AS value
