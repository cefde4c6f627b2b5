"""Package namespaces that import their submodules on first use (PEP 562).

``import mgedb.metrics.registry`` (the CLI's help text) should not pay for numba and SciPy, nor
``import mgedb.study.measure`` for pandas and pyarrow; ``from mgedb.metrics import
compute_mge_metrics`` still works. A package lists its names in ``exports`` (name → submodule)
and sets ``__getattr__ = lazy.exports(__name__, exports)``; type checkers read the same names
from an ``if TYPE_CHECKING:`` import block.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["exports"]


def exports(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``name`` from ``package.<names[name]>`` when first
    asked for and keeps it in the package's namespace."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
