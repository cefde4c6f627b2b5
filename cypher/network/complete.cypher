// Mark a network complete: the last write of an ingestion, so an interrupted one never looks done.
// params: $key
// returns: key
// mode: write
MATCH (g:Network {key: $key})
SET g.complete = true
RETURN g.key AS key
