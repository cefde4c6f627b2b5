"""mgedb: a graph-database-backed metric store for sparse neural networks."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mgedb")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+local"

__all__ = ["__version__"]
