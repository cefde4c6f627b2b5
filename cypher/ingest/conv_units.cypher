// One batch of ConvUnit unit nodes (a conv feature-map position each), linked to their Channel.
// params: $key, $rows
// returns: none
// mode: write
UNWIND $rows AS r
MATCH (c:Channel {key: $key + ':' + toString(r.partition) + ':' + toString(r.channel)})
CREATE (u:Unit:ConvUnit {uid: r.uid, network: $key, partition: r.partition, idx: r.idx,
                     channel: r.channel, row: r.row, col: r.col})-[:IN_CHANNEL]->(c)
