"""The one exception hierarchy of mgedb.

Every error a user can cause is a :class:`MgedbError` whose message is one line naming the offending
input and the fix. The CLI turns it into ``Error: …`` and exit code 2; nothing else is caught.
"""

from __future__ import annotations


class MgedbError(Exception):
    """Base class: a clear, user-facing, one-line error."""

    exit_code = 2


class UnsupportedLayer(MgedbError):
    """The tracer met an operation the MGE cannot encode."""

    def __init__(self, module_path: str, op: str, why: str = "") -> None:
        where = module_path or "<top level>"
        extra = f": {why}" if why else ""
        super().__init__(
            f"unsupported operation {op!r} in module {where!r}{extra}; supported: Conv2d, Linear, "
            "pooling, reshapes and moves (cat, permute, slicing, padding), interpolation, "
            "normalisations, residual add and element-wise ops (see docs/encoding.md)"
        )
        self.module_path = module_path
        self.op = op


class ModelRunError(MgedbError):
    """A model raised while running on the example input (wrong input shape, broken forward)."""


class CheckpointError(MgedbError):
    """A checkpoint file cannot be read or does not fit the model."""


class UnknownModel(MgedbError):
    """A model name that is not in the zoo."""


class GraphFileError(MgedbError):
    """A graph file is missing, corrupt or of the wrong kind."""


class ReferenceUnsupported(MgedbError):
    """The ``mge-reference`` flavour cannot reproduce this network."""


class UnknownQuery(MgedbError):
    """A Cypher query name that is not in the registry."""


class QueryParameterError(MgedbError):
    """A Cypher query called with missing or undeclared parameters."""


class QueryFileError(MgedbError):
    """A ``.cypher`` file is malformed (bad header, undeclared parameter, empty body)."""


class OutputPathError(MgedbError):
    """An output path that cannot be written (under a file, a directory, no permission)."""


class BackendUnavailable(MgedbError):
    """The graph database cannot be reached or refused the credentials."""


class StoreNeedsMigration(BackendUnavailable):
    """An embedded store written by an older mgedb (Kùzu 0.11): `mgedb migrate` converts it."""


class GdsNotInstalled(MgedbError):
    """A GDS-only metric was asked for on a Neo4j server without the GDS plugin."""


class StoreIntegrityError(MgedbError):
    """The store holds something inconsistent (e.g. an incomplete network)."""


class ReadOnlyViolation(MgedbError):
    """An ad-hoc query tried to write inside a read-only transaction."""


class DataError(MgedbError):
    """A dataset directory or a CSV table is missing or malformed."""


class PredictorError(MgedbError):
    """A saved predictor does not match the features it is asked to score."""


class PruningError(MgedbError):
    """A pruning request that cannot be met (bad sparsity, unknown pruner, unusable scores)."""


class UnknownNetwork(MgedbError):
    """A network key that is not in the store."""


class QueryError(MgedbError):
    """The database rejected a query (syntax, semantics or a runtime error)."""


class QueryTimeout(QueryError):
    """A query ran longer than its time limit and was stopped."""


class UnknownMetric(MgedbError):
    """A metric name that is not in the registry (``mgedb.metrics.registry``)."""


class MetricError(MgedbError):
    """A metric cannot be computed on this graph (e.g. the eigensolver did not converge)."""


class ClusterError(MgedbError):
    """The distributed executor cannot start or join its cluster, or a task failed for good."""
