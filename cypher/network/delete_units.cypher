// Delete up to $limit unit nodes of a network with their edges; repeat until it returns 0.
// params: $key, $limit
// returns: deleted
// mode: write
MATCH (u:Unit {network: $key})
WITH u LIMIT $limit
DETACH DELETE u
RETURN count(*) AS deleted
