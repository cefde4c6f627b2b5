// One batch of MGE edges W {w: |weight|, kind, eid: position in the graph's edge list}
// between unit nodes given by uid (s -> t).
// params: $rows
// returns: none
// mode: write
UNWIND $rows AS r
MATCH (a:Unit {uid: r.s})
MATCH (b:Unit {uid: r.t})
CREATE (a)-[:W {w: r.w, kind: r.k, eid: r.e}]->(b)
