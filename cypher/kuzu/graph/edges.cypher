// The edge arrays of a network: node indices (uid - $lo), weight, kind and the edge's position.
// Kùzu dialect: no Unit super-label, so the unit tables are named as a label union.
// params: $key, $lo
// returns: src, dst, w, kind, eid
MATCH (a:InputPixel:ConvUnit:Neuron:BgeNode {network: $key})-[r:W]->(b)
RETURN a.uid - $lo AS src, b.uid - $lo AS dst, r.w AS w, r.kind AS kind, r.eid AS eid
