// One batch of Layer nodes (the partitions of a network's graph), each linked to its Network.
// params: $key, $rows
// returns: none
// mode: write
MATCH (g:Network {key: $key})
UNWIND $rows AS r
CREATE (l:Layer {key: r.key, network: $key, position: r.position, name: r.name, kind: r.kind,
                 shape: r.shape, size: r.size})-[:OF]->(g)
