// One batch of Channel nodes (input and conv channels), each linked to its Layer.
// params: $key, $rows
// returns: none
// mode: write
UNWIND $rows AS r
MATCH (l:Layer {key: $key + ':' + toString(r.layer)})
CREATE (c:Channel {key: r.key, network: $key, layer: r.layer, position: r.position})-[:IN_LAYER]->(l)
