// One batch of Neuron unit nodes (linear-layer units), linked to their Layer.
// params: $key, $rows
// returns: none
// mode: write
UNWIND $rows AS r
MATCH (l:Layer {key: $key + ':' + toString(r.partition)})
CREATE (u:Unit:Neuron {uid: r.uid, network: $key, partition: r.partition, idx: r.idx,
                       channel: r.channel, row: r.row, col: r.col})-[:IN_LAYER]->(l)
