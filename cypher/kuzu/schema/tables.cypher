// Node and relationship tables of the embedded (Kùzu) store; run statement by statement.
// Kùzu has one table per label; W is one relationship table with one FROM/TO pair per unit-label
// pair (a "rel table group"), so `MATCH ()-[r:W]->()` sees every edge.
// params: none
// returns: none
// mode: schema
CREATE NODE TABLE IF NOT EXISTS Network(
    key STRING, kind STRING, complete BOOLEAN, uid_base INT64, source STRING, model STRING,
    dataset STRING, pruner STRING, sparsity DOUBLE, seed INT64, encoding STRING, flavour STRING,
    classes INT64, input_shape INT64[], accuracy DOUBLE, dense_accuracy DOUBLE, created STRING,
    mgedb_version STRING, digest STRING, checkpoint STRING, dimension INT64[], n_nodes INT64,
    n_edges INT64, layout STRING, extra STRING, counts STRING, PRIMARY KEY(key));
CREATE NODE TABLE IF NOT EXISTS Layer(
    key STRING, network STRING, position INT64, name STRING, kind STRING, shape INT64[], size INT64,
    PRIMARY KEY(key));
CREATE NODE TABLE IF NOT EXISTS Channel(
    key STRING, network STRING, layer INT64, position INT64, PRIMARY KEY(key));
CREATE NODE TABLE IF NOT EXISTS InputPixel(
    uid INT64, network STRING, partition INT64, idx INT64, channel INT64, row INT64, col INT64,
    PRIMARY KEY(uid));
CREATE NODE TABLE IF NOT EXISTS ConvUnit(
    uid INT64, network STRING, partition INT64, idx INT64, channel INT64, row INT64, col INT64,
    PRIMARY KEY(uid));
CREATE NODE TABLE IF NOT EXISTS Neuron(
    uid INT64, network STRING, partition INT64, idx INT64, channel INT64, row INT64, col INT64,
    PRIMARY KEY(uid));
CREATE NODE TABLE IF NOT EXISTS BgeNode(
    uid INT64, network STRING, partition INT64, idx INT64, channel INT64, row INT64, col INT64,
    graph INT64, PRIMARY KEY(uid));
CREATE NODE TABLE IF NOT EXISTS Metric(
    key STRING, network STRING, name STRING, value DOUBLE, normalised DOUBLE, engine STRING,
    ord INT64, PRIMARY KEY(key));
CREATE NODE TABLE IF NOT EXISTS LayerMetrics(
    key STRING, network STRING, encoding STRING, layer_id INT64, layer_name STRING,
    density DOUBLE, metrics_json STRING, ord INT64, PRIMARY KEY(key));
CREATE REL TABLE IF NOT EXISTS W(
    FROM InputPixel TO InputPixel, FROM InputPixel TO ConvUnit, FROM InputPixel TO Neuron,
    FROM ConvUnit TO InputPixel, FROM ConvUnit TO ConvUnit, FROM ConvUnit TO Neuron,
    FROM Neuron TO InputPixel, FROM Neuron TO ConvUnit, FROM Neuron TO Neuron,
    FROM BgeNode TO BgeNode, w FLOAT, kind UINT8, eid INT32);
CREATE REL TABLE IF NOT EXISTS IN_CHANNEL(FROM InputPixel TO Channel, FROM ConvUnit TO Channel);
CREATE REL TABLE IF NOT EXISTS IN_LAYER(
    FROM Channel TO Layer, FROM Neuron TO Layer, FROM BgeNode TO Layer);
CREATE REL TABLE IF NOT EXISTS OF(FROM Layer TO Network);
CREATE REL TABLE IF NOT EXISTS HAS_METRIC(FROM Network TO Metric);
CREATE REL TABLE IF NOT EXISTS HAS_LAYER_METRICS(FROM Network TO LayerMetrics);
