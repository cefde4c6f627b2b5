// Σ |w| over the edges; mean node strength (in + out) = 2 · value / n.
// Kùzu dialect: no Unit super-label, so the unit tables are named as a label union.
// The FLOAT weights are summed as DOUBLE.
// params: $key
// returns: value
MATCH (:InputPixel:ConvUnit:Neuron {network: $key})-[r:W]->()
RETURN sum(CAST(r.w AS DOUBLE)) AS value
