// Number of weakly connected components (isolated nodes count) of the projected network.
// Kùzu dialect: the store projects the network as 'mgedb_network' first (algo extension, built in).
// params: none
// returns: value
CALL weakly_connected_components('mgedb_network')
RETURN count(DISTINCT group_id) AS value
