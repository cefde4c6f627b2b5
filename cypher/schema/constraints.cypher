// Uniqueness constraints and indexes of the mgedb graph in Neo4j 5 (run statement by statement).
// Every unit node carries the label Unit besides its own (InputPixel, ConvUnit, Neuron, BgeNode),
// so one constraint covers all their uids and one index serves `(:Unit {network: $key})`.
// params: none
// returns: none
// mode: schema
CREATE CONSTRAINT network_key IF NOT EXISTS FOR (g:Network) REQUIRE g.key IS UNIQUE;
CREATE CONSTRAINT layer_key IF NOT EXISTS FOR (l:Layer) REQUIRE l.key IS UNIQUE;
CREATE CONSTRAINT channel_key IF NOT EXISTS FOR (c:Channel) REQUIRE c.key IS UNIQUE;
CREATE CONSTRAINT unit_uid IF NOT EXISTS FOR (u:Unit) REQUIRE u.uid IS UNIQUE;
CREATE CONSTRAINT metric_key IF NOT EXISTS FOR (m:Metric) REQUIRE m.key IS UNIQUE;
CREATE CONSTRAINT layer_metrics_key IF NOT EXISTS FOR (m:LayerMetrics) REQUIRE m.key IS UNIQUE;
CREATE INDEX unit_network IF NOT EXISTS FOR (u:Unit) ON (u.network);
CREATE INDEX layer_network IF NOT EXISTS FOR (l:Layer) ON (l.network);
CREATE INDEX channel_network IF NOT EXISTS FOR (c:Channel) ON (c.network);
CREATE INDEX metric_network IF NOT EXISTS FOR (m:Metric) ON (m.network);
CREATE INDEX layer_metrics_network IF NOT EXISTS FOR (m:LayerMetrics) ON (m.network);
CREATE INDEX network_kind IF NOT EXISTS FOR (g:Network) ON (g.kind);
