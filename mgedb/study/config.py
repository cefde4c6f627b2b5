"""The study's configuration and result types: :class:`StudyConfig`, :class:`Run`,
:class:`NetworkResult`, :class:`StudyResult` (no behaviour beyond validation and tables)."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mgedb.errors import MgedbError, PruningError
from mgedb.predict import STUDY_FEATURES
from mgedb.vocab import Dataset, Encoding, Engine, Pruner, flavour_of

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ALL_PRUNERS",
    "DATASET_NAMES",
    "DATA_PRUNERS",
    "ENCODINGS",
    "ENGINES",
    "QUICK",
    "STAGES",
    "NetworkResult",
    "Run",
    "StudyConfig",
    "StudyProgress",
    "StudyResult",
]

ALL_PRUNERS: tuple[str, ...] = Pruner.values()
DATA_PRUNERS: tuple[str, ...] = tuple(p.value for p in Pruner.data_driven())
#: The encodings a study measures: MGEs (the predictor's features), reference first.
ENCODINGS: tuple[str, ...] = tuple(e.value for e in Encoding.mge())
#: The engines a study can use (a study always computes in-process; ``both`` also compares).
ENGINES: tuple[str, ...] = (Engine.ARRAY.value, Engine.BOTH.value)
#: Published dataset names (the predictor's reference accuracies are keyed by them).
DATASET_NAMES: dict[str, str] = {d.value: d.published for d in Dataset}
#: The stages in order; the progress callback and the timings use these names.
STAGES = ("prune", "train", "measure", "score", "report")

#: Stage progress: ``(stage, done, total, detail)``.
StudyProgress = Callable[[str, int, int, str], None]


@dataclass(frozen=True)
class Run:
    """One pruned network of the study."""

    pruner: str
    sparsity: float
    seed: int

    @property
    def label(self) -> str:
        """Short label for progress lines: ``snip 0.98 seed 0``."""
        return f"{self.pruner} {self.sparsity:g} seed {self.seed}"

    def name(self, model: str) -> str:
        return f"{file_stem(model)}-{self.pruner}-s{self.sparsity:g}-seed{self.seed}"


def file_stem(model: str) -> str:
    """A model label (zoo name, factory spec, archive path) made file-safe."""
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", model).strip("_")


@dataclass(frozen=True)
class StudyConfig:
    """What to prune, how to measure it and where to write (see ``mgedb study --help``)."""

    out: Path = Path("mgedb-study")
    model: str = "resnet20"
    pruners: tuple[str, ...] = ALL_PRUNERS
    sparsities: tuple[float, ...] = (0.9, 0.98)
    seeds: tuple[int, ...] = (0,)
    dataset: str = "cifar10"
    data_dir: Path | None = None
    classes: int | None = None
    encoding: str = Encoding.MGE_REFERENCE.value
    engine: str = "array"
    train_epochs: int = 0
    synthetic_samples: int = 2000
    prune_batch: int = 128
    features: str = STUDY_FEATURES
    metric_seed: int = 0
    db: Path | None = None
    device: str = "cpu"
    input_shape: tuple[int, int, int] = (3, 32, 32)

    def __post_init__(self) -> None:
        bad = [p for p in self.pruners if p not in ALL_PRUNERS]
        if bad:
            raise PruningError(f"unknown pruner {str(bad[0])!r}; choose from "
                               f"{', '.join(ALL_PRUNERS)}")
        if not self.pruners or not self.sparsities or not self.seeds:
            raise MgedbError("a study needs at least one pruner, one sparsity and one seed")
        for s in self.sparsities:
            if not 0.0 < s < 1.0:
                raise PruningError(f"sparsity {s} is outside (0, 1); give e.g. --sparsity 0.9")
        if self.encoding not in ENCODINGS:
            raise MgedbError(f"unknown encoding {str(self.encoding)!r}; use "
                             f"{' or '.join(ENCODINGS)}")
        if self.engine not in ENGINES:
            raise MgedbError(f"unknown engine {str(self.engine)!r}; use {' or '.join(ENGINES)}")
        if self.train_epochs < 0:
            raise MgedbError(f"--train-epochs must be ≥ 0, got {self.train_epochs}")
        if self.device != "cpu" and not self.device.startswith("cuda"):
            raise MgedbError(f"--device {self.device!r}: use cpu or cuda (cuda:N)")

    @property
    def runs(self) -> list[Run]:
        return [Run(p, float(s), int(seed)) for s, p, seed in
                itertools.product(self.sparsities, self.pruners, self.seeds)]

    @property
    def synthetic(self) -> bool:
        return self.data_dir is None

    @property
    def flavour(self) -> str:
        return flavour_of(self.encoding).value


#: The ``--quick`` preset: four pruners (two data-free, two data-driven) at sparsity 0.98.
QUICK: dict[str, Any] = {"pruners": ("uniform", "erk", "snip", "synflow"), "sparsities": (0.98,),
                         "synthetic_samples": 512}


@dataclass
class NetworkResult:
    """One network: where it is, its metrics, its predicted (and true) drop."""

    run: Run
    checkpoint: Path
    key: str
    metrics: dict[str, float]
    realised_sparsity: float
    reused: bool = False
    accuracy: float = math.nan
    dense_accuracy: float = math.nan
    predicted_drop: float = math.nan
    predicted_accuracy: float = math.nan
    drop_lo: float = math.nan  # the predictor's 90 % interval
    drop_hi: float = math.nan
    in_domain: bool = True
    in_training: bool = False
    domain_notes: str = ""
    attribution: dict[str, float] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)

    @property
    def true_drop(self) -> float:
        if math.isnan(self.accuracy) or not self.dense_accuracy > 0:
            return math.nan
        return (self.dense_accuracy - self.accuracy) / self.dense_accuracy


@dataclass
class StudyResult:
    """Everything :func:`run_study` produced."""

    config: StudyConfig
    networks: list[NetworkResult]
    ranking: pd.DataFrame
    tau: dict[float, float]
    timings: dict[str, float]
    store: str
    report: Path | None = None
    predictor: dict[str, Any] = field(default_factory=dict)

    @property
    def mismatches(self) -> list[str]:
        return [f"{n.run.name(self.config.model)}: {m}" for n in self.networks
                for m in n.mismatches]

    @property
    def sparsities(self) -> list[float]:
        return sorted({n.run.sparsity for n in self.networks})

    def ranking_at(self, sparsity: float) -> pd.DataFrame:
        """The ranking rows of one sparsity, best first."""
        return self.ranking[self.ranking["sparsity"] == sparsity]

    def table(self) -> pd.DataFrame:
        """One row per network: identity, metrics, predicted and true drop."""
        import pandas as pd

        rows = []
        for n in self.networks:
            row: dict[str, Any] = {"key": n.key, "pruner": n.run.pruner,
                                   "sparsity": n.run.sparsity, "seed": n.run.seed,
                                   "realised_sparsity": n.realised_sparsity,
                                   "predicted_drop": n.predicted_drop,
                                   "predicted_accuracy": n.predicted_accuracy,
                                   "drop_lo": n.drop_lo, "drop_hi": n.drop_hi,
                                   "in_domain": n.in_domain, "in_training": n.in_training,
                                   "domain_notes": n.domain_notes,
                                   "accuracy": n.accuracy, "dense_accuracy": n.dense_accuracy,
                                   "true_drop": n.true_drop}
            row.update(n.metrics)
            rows.append(row)
        return pd.DataFrame(rows)
