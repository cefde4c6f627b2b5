// Σ_u |N1(u)|: distinct (u, v) pairs with an edge u -> v, v != u. 1-hop = (n + value) / n.
// params: $key
// returns: value
MATCH (u:Unit {network: $key})-[:W]->(v)
WHERE v.uid <> u.uid
WITH DISTINCT u, v
RETURN count(*) AS value
