// The metric columns of the record table, one row per (network, metric).
// params: $source
// returns: key, name, value, ord
MATCH (g:Network)-[:HAS_METRIC]->(m:Metric)
WHERE g.kind = 'records' AND (g.source = $source OR $source IS NULL)
RETURN g.key AS key, m.name AS name, m.value AS value, m.ord AS ord
