// Σ coreness (degree = in + out) over the nodes of the projected network; k-core = value / n.
// Kùzu dialect: the store projects the network as 'mgedb_network' first (algo extension, built in).
// params: none
// returns: value
CALL k_core_decomposition('mgedb_network')
RETURN sum(k_degree) AS value
