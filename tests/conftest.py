"""Shared pytest configuration: the opt-in ``--runslow`` flag and the reference fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

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


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """../shared/fixtures/reference beside the repository (CI has it); skip if absent."""
    path = REPO.parent / "shared" / "fixtures" / "reference"
    if not (path / "reference-metrics.csv").is_file():
        pytest.skip(f"reference fixtures not found at {path} (they live in ../shared beside the repo)")
    return path
