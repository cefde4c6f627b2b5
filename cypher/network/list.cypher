// Every network (all kinds, or one kind), with the completeness flag that interrupted ingests lack.
// params: $kind
// returns: key, kind, complete, model, encoding, flavour, source, n_nodes, n_edges, created
MATCH (g:Network)
WHERE g.kind = $kind OR $kind IS NULL  // this order: Ladybug types $kind by its first use
RETURN g.key AS key, g.kind AS kind, g.complete AS complete, g.model AS model,
       g.encoding AS encoding, g.flavour AS flavour, g.source AS source,
       g.n_nodes AS n_nodes, g.n_edges AS n_edges, g.created AS created
ORDER BY created, key
