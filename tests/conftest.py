"""Shared pytest configuration: the opt-in ``--runslow`` flag and the reference fixtures."""

from __future__ import annotations

import os
from pathlib import Path

# One BLAS/OpenMP thread per process: the suite runs on 2 shared cores, where oversubscribed
# thread pools (torch, OpenBLAS, ARPACK) cost more than they save. Set before torch is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pytest  # noqa: E402

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
