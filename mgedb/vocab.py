"""The shared vocabulary: every closed set of names mgedb accepts, declared once.

Each set is a ``str`` enum, so a member *is* its name (``Encoding.MGE == "mge"``, it formats and
serialises as ``"mge"``); the library, the store and the CLI (its ``--encoding``/``--pruner``/…
choices) all read them from here. The bottom layer of the package with :mod:`mgedb.errors`:
it imports nothing of mgedb.

* :class:`Encoding` — the graph encodings, with :attr:`Encoding.flavour` (the metric flavour) and
  :attr:`Encoding.bge` (per-layer bipartite graphs);
* :class:`Flavour` — the two metric definitions (``mge``, ``mge-reference``);
* :class:`Pruner` — the pruning-at-initialisation algorithms, with :attr:`Pruner.needs_data`;
* :class:`Dataset` — the datasets, with their published name (class counts and statistics:
  :data:`mgedb.datasets.DATASETS`);
* :class:`Engine` — where metrics are computed (``array``, ``db``, ``both``);
* :class:`StoreKind` — the graph store backends (``embedded``, ``neo4j``);
* :class:`MotifMethod` — how the 4-node motif estimate is computed (``fast``, ``exact``);
* :class:`ExecutorKind` — where a study's networks are made (``local``, ``ray``).
"""

from __future__ import annotations

from enum import Enum
from typing import Any, TypeVar

__all__ = ["Dataset", "Encoding", "Engine", "ExecutorKind", "Flavour", "MotifMethod", "Pruner",
           "StoreKind", "Vocab", "flavour_of", "parse"]

_V = TypeVar("_V", bound="Vocab")


class Vocab(str, Enum):
    """A str enum whose members print, format and compare as their value."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    @classmethod
    def values(cls) -> tuple[str, ...]:
        """The members' values, in declaration order."""
        return tuple(str(m.value) for m in cls)


def parse(kind: type[_V], value: Any, what: str | None = None) -> _V:
    """``value`` as a member of ``kind`` (a member, or its value); a :class:`ValueError` whose
    message names the valid values otherwise (callers turn it into their own error type)."""
    try:
        return kind(value)
    except ValueError:
        label = what or kind.__name__.lower()
        raise ValueError(f"unknown {label} {value!r}; choose one of: "
                         f"{', '.join(kind.values())}") from None


class Flavour(Vocab):
    """The metric definitions: the clean ones, or the published reference's formulas."""

    MGE = "mge"
    MGE_REFERENCE = "mge-reference"


class Encoding(Vocab):
    """The graph encodings (docs/encoding.md)."""

    MGE = "mge"
    MGE_REFERENCE = "mge-reference"
    ROLLED = "rolled"
    ROLLED_CHANNEL = "rolled-channel"

    @property
    def flavour(self) -> Flavour:
        """The metric flavour: the reference's definitions for ``mge-reference`` only."""
        return Flavour.MGE_REFERENCE if self is Encoding.MGE_REFERENCE else Flavour.MGE

    @property
    def reference(self) -> bool:
        """Whether the encoding reproduces the published reference (its graph and formulas)."""
        return self is Encoding.MGE_REFERENCE

    @property
    def bge(self) -> bool:
        """Whether the encoding is a set of per-layer bipartite graphs (rolled, rolled-channel)."""
        return self in (Encoding.ROLLED, Encoding.ROLLED_CHANNEL)

    @classmethod
    def mge(cls) -> tuple[Encoding, ...]:
        """The unit-graph (MGE) encodings, reference first (the study's default)."""
        return (cls.MGE_REFERENCE, cls.MGE)


def flavour_of(encoding: str) -> Flavour:
    """The metric flavour of an encoding name (any name that is not ``mge-reference`` → ``mge``)."""
    return Flavour.MGE_REFERENCE if encoding == Encoding.MGE_REFERENCE else Flavour.MGE


class Pruner(Vocab):
    """The pruning-at-initialisation algorithms the paper compared, in the study's order."""

    UNIFORM = "uniform"
    ER = "er"
    ERK = "erk"
    SNIP = "snip"
    GRASP = "grasp"
    SYNFLOW = "synflow"
    PROSPR = "prospr"

    @property
    def needs_data(self) -> bool:
        """Whether the pruner scores weights on training batches (snip, grasp, prospr)."""
        return self in (Pruner.SNIP, Pruner.GRASP, Pruner.PROSPR)

    @classmethod
    def data_driven(cls) -> tuple[Pruner, ...]:
        """The pruners that need data, in declaration order."""
        return tuple(p for p in cls if p.needs_data)


class Dataset(Vocab):
    """The datasets (torchvision layouts; synthetic images stand in for any of them)."""

    CIFAR10 = "cifar10"
    CIFAR100 = "cifar100"
    TINYIMAGENET = "tinyimagenet"

    @property
    def published(self) -> str:
        """The dataset's name in the published table (``CIFAR-10``, …)."""
        return _PUBLISHED_DATASET[self.value]


_PUBLISHED_DATASET = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100",
                      "tinyimagenet": "tinyimagenet"}


class Engine(Vocab):
    """Where topometrics are computed: in-process, in the database, or both and compared."""

    ARRAY = "array"
    DB = "db"
    BOTH = "both"


class MotifMethod(Vocab):
    """The motif estimate: igraph's sample with the motifs per sampled root counted (``fast``), or
    igraph's own RAND-ESU enumeration (``exact``); the same value (mgedb.metrics.motifs)."""

    FAST = "fast"
    EXACT = "exact"


class StoreKind(Vocab):
    """The graph store backends: embedded (Kùzu, a directory) or a Neo4j server."""

    EMBEDDED = "embedded"
    NEO4J = "neo4j"


class ExecutorKind(Vocab):
    """Where a study runs its per-network work: this process, or a Ray cluster."""

    LOCAL = "local"
    RAY = "ray"

