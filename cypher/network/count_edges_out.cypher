// W edges of a network per (source, target) partition pair, found from the source nodes.
// params: $key
// returns: src, dst, n
MATCH (a:Unit {network: $key})-[r:W]->(b:Unit)
RETURN a.partition AS src, b.partition AS dst, count(r) AS n
