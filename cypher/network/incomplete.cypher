// Mark a network incomplete: the first write of a delete (in its own transaction), so a delete
// that is interrupted never leaves a half network marked complete.
// params: $key
// returns: key
// mode: write
MATCH (g:Network {key: $key})
SET g.complete = false
RETURN g.key AS key
