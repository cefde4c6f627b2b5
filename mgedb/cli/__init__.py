# ruff: noqa: I001  (registration order is the order of `mgedb --help`)
"""The ``mgedb`` command line: thin commands (parse, one library call, render).

Each module below registers its commands on :data:`app` (in the order ``mgedb --help`` lists
them); heavy libraries (torch, kuzu, neo4j, scikit-learn) are imported inside command bodies so
that ``mgedb --help`` stays instant. ``_app`` holds the application and the one place an error
becomes an exit code, ``_options`` the options the commands share (one ``--model`` type, the
``--encoding``/``--store``/``--db``/… options, choices from :mod:`mgedb.vocab`), ``_render``
tables/JSON/CSV and progress bars. A command's work is one library call: pipelines live in the
library (:func:`mgedb.study.measure.measure`, :func:`mgedb.train.training_record`, …).
"""

from mgedb.cli._app import app
from mgedb.cli import study as _study  # noqa: F401  (registers commands)
from mgedb.cli import encode as _encode  # noqa: F401
from mgedb.cli import metrics as _metrics  # noqa: F401
from mgedb.cli import prune as _prune  # noqa: F401
from mgedb.cli import store as _store  # noqa: F401
from mgedb.cli import predict as _predict  # noqa: F401

__all__ = ["app"]
