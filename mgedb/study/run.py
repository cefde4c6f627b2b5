"""The study's stages and :func:`run_study` (see :mod:`mgedb.study` for the package layout).

Stages: prune every run (checkpoints + sidecars, reused when they match), train (optional,
records reused), measure (:func:`mgedb.study.measure.measure` per network, in the graph store) —
the links of :mod:`mgedb.study.links`, run by an executor (:mod:`mgedb.study.executors`: in this
process, or on a Ray cluster) — then score and rank (:mod:`mgedb.study.score`) and report
(:mod:`mgedb.study.report`) here.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from mgedb.errors import DataError, OutputPathError, UnknownModel
from mgedb.study.config import DATA_PRUNERS, StudyConfig, StudyProgress, StudyResult
from mgedb.study.executors import Executor, LocalExecutor
from mgedb.study.links import StudyWork
from mgedb.study.measure import timed
from mgedb.study.score import rank, score

if TYPE_CHECKING:
    from mgedb.model_source import ModelSpec

__all__ = ["run_study"]

log = logging.getLogger("mgedb.study")


def _noop(stage: str, done: int, total: int, detail: str) -> None:
    del stage, done, total, detail


def _preflight(cfg: StudyConfig, spec: ModelSpec, classes: int) -> None:
    """Refuse, before any work, a model source the study cannot prune and train, or an input
    shape the data or the model cannot take."""
    from mgedb.datasets import check_input_shape
    from mgedb.model_source import build, check_runs, require_input

    if spec.kind == "torchscript":
        raise UnknownModel(f"--model {spec.label}: a TorchScript archive cannot be pruned or "
                           "encoded (its ops run out of the tracer's sight); give the "
                           "architecture as file.py:factory, module:factory or a .pt2 from "
                           "torch.export")
    if spec.kind == "pickle":
        raise UnknownModel(f"--model {spec.label}: a study does not unpickle models; give the "
                           "architecture as file.py:factory, module:factory or a .pt2 from "
                           "torch.export (or prune it with `mgedb prune --allow-pickle`)")
    check_input_shape(cfg.dataset, cfg.input_shape, synthetic=cfg.synthetic)
    needs = [p for p in cfg.pruners if p in DATA_PRUNERS]
    net = build(spec, classes=classes)
    if spec.kind == "export":
        why = "training" if cfg.train_epochs else f"pruner {needs[0]!r}" if needs else "the study"
        require_input(net, spec, why, cfg.input_shape, batches=bool(needs or cfg.train_epochs))
    check_runs(net, spec, cfg.input_shape)


# -- the job -------------------------------------------------------------------------------------
def run_study(cfg: StudyConfig, *, executor: Executor | None = None,
              progress: StudyProgress | None = None, report: bool = True) -> StudyResult:
    """Run the whole study (see the module docstring) with ``executor`` (default: in this
    process); returns what it found and where."""
    from mgedb.datasets import DATASETS
    from mgedb.model_source import parse_model_spec
    from mgedb.store import open_store

    spec = parse_model_spec(cfg.model)
    cfg = replace(cfg, model=spec.label)
    if cfg.dataset not in DATASETS:
        raise DataError(f"unknown dataset {cfg.dataset!r}; choose from {', '.join(DATASETS)}")
    if cfg.data_dir is not None and not cfg.data_dir.is_dir():
        raise DataError(f"--data-dir {cfg.data_dir}: no such directory")
    classes = cfg.classes or DATASETS[cfg.dataset][0]
    _preflight(cfg, spec, classes)
    progress = progress or _noop
    executor = executor or LocalExecutor()
    timings: dict[str, float] = {}
    try:
        cfg.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputPathError(f"--out {cfg.out}: cannot create the study folder "
                              f"({e.strerror or type(e).__name__}); choose another --out"
                              ) from None
    with open_store(None, cfg.db) as store:
        results = executor.networks(StudyWork(cfg, classes), store, progress, timings)
        location = str(store.location)
    progress("score", 0, 1, "")
    with timed(timings, "score"):
        predictor = score(cfg, results, classes)
        ranking, tau = rank(results)
    progress("score", 1, 1, "")
    result = StudyResult(cfg, results, ranking, tau, timings, location, predictor=predictor)
    if report:
        from mgedb.study.report import write_report

        progress("report", 0, 1, "")
        with timed(timings, "report"):
            result.report = write_report(result)
        progress("report", 1, 1, "")
    return result
