// Σ_u |N1(u)|: distinct (u, v) pairs with an edge u -> v, v != u. 1-hop = (n + value) / n.
// Kùzu dialect: no Unit super-label, so the unit tables are named as a label union;
// DISTINCT over internal ids (id()) hashes faster than over nodes or properties.
// params: $key
// returns: value
MATCH (u:InputPixel:ConvUnit:Neuron {network: $key})-[:W]->(v)
WITH DISTINCT id(u) AS a, id(v) AS b
WHERE a <> b
RETURN count(*) AS value
