// Unit nodes of a network per partition index: what `mgedb verify` compares with the counts the
// network recorded at ingest.
// params: $key
// returns: partition, n
MATCH (u:Unit {network: $key})
RETURN u.partition AS partition, count(u) AS n
