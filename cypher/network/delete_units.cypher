// Delete up to $limit W edges of a network (from its units), or when none is left up to $limit of
// its unit nodes (with their membership edges); repeat until it returns 0. Edges first, in their
// own batches: $limit units of a dense network carry millions of edges, and one transaction
// deleting them exceeds Neo4j's transaction memory (dbms.memory.transaction.total.max).
// params: $key, $limit
// returns: deleted
// mode: write
OPTIONAL MATCH (:Unit {network: $key})-[r:W]->()
WITH r LIMIT $limit
DELETE r
WITH count(r) AS edges
OPTIONAL MATCH (u:Unit {network: $key}) WHERE edges = 0
WITH edges, u LIMIT $limit
DETACH DELETE u
WITH edges, count(u) AS units
RETURN edges + units AS deleted
