"""The ``mgedb`` command line: thin commands (parse, one library call, render).

Each module below registers its commands on :data:`app`; heavy libraries (torch, kuzu, neo4j,
scikit-learn) are imported inside command bodies so that ``mgedb --help`` stays instant.
"""

from mgedb.cli._app import app
from mgedb.cli import encode as _encode  # noqa: F401  (registers commands)

__all__ = ["app"]
