// Bulk-load MGE edges from a CSV file the server can read (columns s, t, w, k, e), in batches.
// Runs in an auto-commit transaction (CALL (r) { … } IN TRANSACTIONS, Neo4j ≥ 5.23); used for huge
// graphs on request.
// params: $url, $batch
// returns: none
// mode: write
LOAD CSV WITH HEADERS FROM $url AS r
CALL (r) {
  MATCH (a:Unit {uid: toInteger(r.s)})
  MATCH (b:Unit {uid: toInteger(r.t)})
  CREATE (a)-[:W {w: toFloat(r.w), kind: toInteger(r.k), eid: toInteger(r.e)}]->(b)
} IN TRANSACTIONS OF $batch ROWS
