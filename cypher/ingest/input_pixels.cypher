// One batch of InputPixel unit nodes (an input pixel each), linked to their Channel.
// params: $key, $rows
// returns: none
// mode: write
UNWIND $rows AS r
MATCH (c:Channel {key: $key + ':' + toString(r.partition) + ':' + toString(r.channel)})
CREATE (u:Unit:InputPixel {uid: r.uid, network: $key, partition: r.partition, idx: r.idx,
                     channel: r.channel, row: r.row, col: r.col})-[:IN_CHANNEL]->(c)
