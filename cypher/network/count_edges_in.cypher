// W edges of a network per (source, target) partition pair, found from the target nodes (an
// engine keeps both directions; a loss can show on one side only).
// params: $key
// returns: src, dst, n
MATCH (a:Unit)-[r:W]->(b:Unit {network: $key})
RETURN a.partition AS src, b.partition AS dst, count(r) AS n
