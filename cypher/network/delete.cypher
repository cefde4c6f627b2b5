// Delete the Network node itself (after its units and parts are gone).
// params: $key
// returns: deleted
// mode: write
MATCH (g:Network {key: $key})
DETACH DELETE g
RETURN count(*) AS deleted
