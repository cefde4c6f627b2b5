// One batch of Metric nodes, each linked from its Network.
// params: $rows
// returns: none
// mode: write
UNWIND $rows AS r
MATCH (g:Network {key: r.network})
CREATE (g)-[:HAS_METRIC]->(:Metric {key: r.key, network: r.network, name: r.name,
                                    value: r.value, normalised: r.normalised,
                                    engine: r.engine, ord: r.ord})
