"""Bad graph files (issue #11, item 4): out-of-range, negative or float node ids, partitions that
do not add up, unknown edge kinds and encodings, non-float weights — each one line
``Error: …`` with exit code 2 from ``info``, ``metrics`` and ``ingest-graph``, and nothing
written to the store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from store_fixtures import tiny_graph
from typer.testing import CliRunner

from mgedb.cli import app
from mgedb.graph import save_graph

runner = CliRunner()


def _tamper(path: Path, **changes: Any) -> Path:
    """Rewrite a graph file with some arrays (``src=…``) or header fields (``header=fn``)."""
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(bytes(arrays["header"]).decode())
    if "header" in changes:
        changes.pop("header")(header)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    arrays.update({f"g0.{k}": v for k, v in changes.items()})
    np.savez(path, **arrays)
    return path


def _shrink(h: dict[str, Any]) -> None:
    h["graphs"][0]["partitions"][2]["shape"] = [1, 1, 1]  # 2 neurons said to be 1


def _encoding(h: dict[str, Any]) -> None:
    h["encoding"] = h["graphs"][0]["encoding"] = "bogus"


SRC = tiny_graph().src.astype(np.int64)
CASES: dict[str, tuple[dict[str, Any], str]] = {
    "src out of range": ({"src": np.where(SRC == 6, 9, SRC)}, "src has node id 9, outside 0..8"),
    "negative src": ({"src": np.where(SRC == 6, -1, SRC)}, "src has node id -1"),
    "float src": ({"src": SRC + 0.5}, "src holds float64 values; node ids must be integers"),
    "partitions shrunk": ({"header": _shrink}, "dst has node id 8, outside 0..7"),
    "edge kind 9": ({"kind": np.full(7, 9, np.uint8)}, "unknown edge kind"),
    "encoding bogus": ({"header": _encoding}, "unknown encoding 'bogus'"),
    "integer weights": ({"weight": np.ones(7, np.int64)}, "weights must be floats"),
    "short dst": ({"dst": tiny_graph().dst[:3]}, "differ in length"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_graph_file_is_one_line_error_exit_2_nothing_written(tmp_path: Path,
                                                                   case: str) -> None:
    changes, message = CASES[case]
    path = _tamper(save_graph(tmp_path / "g.npz", tiny_graph()), **changes)
    db = tmp_path / "db"
    for args in (["info", str(path)], ["metrics", str(path)],
                 ["ingest-graph", str(path), "--db", str(db)]):
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        assert res.output.startswith(f"Error: {path}: ") and message in res.output, res.output
        assert res.output.count("\n") <= 2, res.output  # one line (rich may wrap it once)
    assert not db.exists()
