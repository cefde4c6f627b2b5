"""The main job: prune → (train) → encode → store → measure → score → rank → report.

:func:`run_study` prunes a zoo model with each pruner at each sparsity and seed, encodes every
pruned network as an MGE, computes its topometrics, stores graph and metrics in the graph store,
scores it with the predictor trained on the published table, and ranks the pruners per sparsity.

The package, in the order a study runs (each module imports only those before it):

* ``config`` — :class:`StudyConfig`, :class:`Run`, :class:`NetworkResult`, :class:`StudyResult`,
  the presets (:data:`QUICK`) and the study's choices (pruners, encodings, engines);
* ``measure`` — :func:`~mgedb.study.measure.measure`: one source (graph, graph file, checkpoint,
  stored key) → its topometrics in the store, by engine (also what ``mgedb metrics`` and
  ``mgedb ingest`` call); :func:`~mgedb.study.measure.checkpoint_record` for the predictor;
* ``score`` — predicted drop and attribution per network, the pruner ranking and Kendall τ;
* ``report`` — ``report.md``, the CSV tables and the figures of a finished study;
* ``links`` — the links of each network's chain (prune → train → encode+measure → store):
  :class:`~mgedb.study.links.StudyWork`;
* ``executors`` — where the links run: :class:`~mgedb.study.executors.LocalExecutor` (this
  process) or :class:`~mgedb.study.executors.RayExecutor` (a Ray cluster; docs/cluster.md);
* ``run`` — :func:`run_study`: the links through an executor, then score, rank and report.

Every stage is resumable: checkpoints (and their sidecars) are written atomically to
``<out>/checkpoints``, training results to ``<out>/training``, and a network is marked complete in
the store only after its graph *and* its metrics are in; a re-run reuses all three. Ctrl-C between
or inside stages leaves nothing half-written marked complete. The names below are imported on
first use (:mod:`mgedb.lazy`); :func:`~mgedb.study.measure.measure` is imported from its module
(the package attribute ``measure`` is that module).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mgedb import lazy

if TYPE_CHECKING:
    from mgedb.study.config import (
        ALL_PRUNERS,
        QUICK,
        NetworkResult,
        Run,
        StudyConfig,
        StudyResult,
    )
    from mgedb.study.measure import Measurement, Source
    from mgedb.study.run import run_study
    from mgedb.study.score import rank

_EXPORTS: dict[str, str] = {  # name -> the submodule that defines it
    "ALL_PRUNERS": "config",
    "QUICK": "config",
    "NetworkResult": "config",
    "Run": "config",
    "StudyConfig": "config",
    "StudyResult": "config",
    "Measurement": "measure",
    "Source": "measure",
    "run_study": "run",
    "rank": "score",
}

__all__ = ["ALL_PRUNERS", "QUICK", "Measurement", "NetworkResult", "Run", "Source", "StudyConfig",
           "StudyResult", "rank", "run_study"]

__getattr__ = lazy.exports(__name__, _EXPORTS)
