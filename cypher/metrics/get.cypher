// The metrics stored for a network.
// params: $key
// returns: name, value, normalised, engine
MATCH (m:Metric {network: $key})
RETURN m.name AS name, m.value AS value, m.normalised AS normalised, m.engine AS engine
ORDER BY m.ord, m.name
