// The edge arrays of a network: node indices (uid - $lo), weight, kind and the edge's position.
// params: $key, $lo
// returns: src, dst, w, kind, eid
MATCH (a:Unit {network: $key})-[r:W]->(b)
RETURN a.uid - $lo AS src, b.uid - $lo AS dst, r.w AS w, r.kind AS kind, r.eid AS eid
