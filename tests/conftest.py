"""Shared pytest configuration: the opt-in ``--runslow`` flag and the reference fixtures."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# One BLAS/OpenMP thread per process: the suite runs on 2 shared cores, where oversubscribed
# thread pools (torch, OpenBLAS, ARPACK) cost more than they save. Set before torch is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
# Hypothesis keeps its caches outside the tree.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY",
                      os.path.join(tempfile.gettempdir(), "mgedb-hypothesis"))

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# No example database in the tree: every run draws afresh (failures print their seed to reproduce).
settings.register_profile("mgedb", database=None)
settings.load_profile("mgedb")

REPO = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False,
                     help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow test: run with --runslow (make test-all)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def pytest_configure(config: pytest.Config) -> None:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """../shared/fixtures/reference beside the repository (CI has it); skip if absent."""
    path = REPO.parent / "shared" / "fixtures" / "reference"
    if not (path / "reference-metrics.csv").is_file():
        pytest.skip(f"reference fixtures not found at {path} (they live in ../shared beside "
                    "the repo)")
    return path


# -- the quick study, run once per session (tests/test_study.py, tests/test_study_ray.py) --------
@pytest.fixture(scope="session")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`mgedb study --quick` on the local executor: the CLI result, its report folder (``out``),
    its store (``db``) and the folder (``root``) tests may add siblings to."""
    from typer.testing import CliRunner

    from mgedb.cli import app

    root = tmp_path_factory.mktemp("study")
    mp = pytest.MonkeyPatch()
    mp.setenv("MGEDB_CACHE_DIR", str(root / "cache"))
    out, db = root / "report", root / "db"
    res = CliRunner().invoke(app, ["study", "--quick", "--out", str(out), "--db", str(db)])
    yield {"res": res, "out": out, "db": db, "root": root}
    mp.undo()
