// One batch of MGE edges W {w: |weight|, kind, eid: position in the graph's edge list}
// between unit nodes given by uid (s -> t), as parallel lists (one per column: packed and sent
// far faster than a list of row maps).
// params: $s, $t, $w, $k, $e
// returns: none
// mode: write
UNWIND range(0, size($s) - 1) AS i
MATCH (a:Unit {uid: $s[i]})
MATCH (b:Unit {uid: $t[i]})
CREATE (a)-[:W {w: $w[i], kind: $k[i], eid: $e[i]}]->(b)
