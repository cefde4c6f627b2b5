// One batch of BgeNode unit nodes (per-layer bipartite graphs), linked to their layer's Layer.
// params: $key, $rows
// returns: none
// mode: write
UNWIND $rows AS r
MATCH (l:Layer {key: $key + ':' + toString(r.graph)})
CREATE (u:Unit:BgeNode {uid: r.uid, network: $key, partition: r.partition, idx: r.idx,
                        channel: r.channel, row: r.row, col: r.col, graph: r.graph})-[:IN_LAYER]->(l)
