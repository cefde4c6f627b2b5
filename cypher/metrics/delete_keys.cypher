// Delete Metric nodes by key (before writing new values for them).
// params: $keys
// returns: none
// mode: write
MATCH (m:Metric)
WHERE m.key IN $keys
DETACH DELETE m
