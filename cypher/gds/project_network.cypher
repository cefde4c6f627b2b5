// Project one network's unit graph, undirected, into the GDS graph catalog as $graph.
// Isolated units are included (a row with a null target adds a lone node).
// params: $key, $graph
// returns: graph, nodes, relationships
MATCH (u:Unit {network: $key})
OPTIONAL MATCH (u)-[:W]->(v:Unit)
WITH gds.graph.project($graph, u, v, {}, {undirectedRelationshipTypes: ['*']}) AS g
RETURN g.graphName AS graph, g.nodeCount AS nodes, g.relationshipCount AS relationships
