"""``mgedb metrics`` on graph files written under tmp_path."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import mgedb.cli.metrics  # noqa: F401  (registers the command)
from mgedb.cli import app
from mgedb.graph import Graph, GraphSet, LayerSpec, save_graph
from mgedb.metrics import compute_mge_metrics, published_columns

runner = CliRunner()

NET = [(0, 3), (1, 3), (1, 4), (3, 6), (3, 7), (5, 7)]


@pytest.fixture()
def mge_file(tmp_path: Path) -> Path:
    src, dst = (np.array(x) for x in zip(*NET, strict=True))
    g = Graph.from_edges(src, dst, np.linspace(0.5, 1.0, len(NET)), [3, 3, 2],
                         encoding="mge-reference")
    return save_graph(tmp_path / "net.npz", g)


@pytest.fixture()
def bge_file(tmp_path: Path) -> Path:
    graphs = []
    for name, (a, b) in (("fc1", (3, 4)), ("fc2", (4, 2))):
        e = [(i, a + j) for i in range(a) for j in range(b)]
        g = Graph.from_edges(np.array([x[0] for x in e]), np.array([x[1] for x in e]),
                             np.ones(len(e)), [a, b], encoding="rolled")
        spec = LayerSpec(name=name, op="linear", role="main", weight_shape=(b, a),
                         in_shape=(a,), out_shape=(b,), nnz=len(e))
        graphs.append(Graph(src=g.src, dst=g.dst, weight=g.weight, kind=g.kind,
                            partitions=g.partitions, encoding="rolled", layers=(spec,)))
    return save_graph(tmp_path / "bge.npz", GraphSet(graphs=tuple(graphs), encoding="rolled"))


def invoke(*args: str) -> tuple[int, str, str]:
    r = runner.invoke(app, ["metrics", *args])
    return r.exit_code, r.stdout, r.stderr


def test_json_one_object(mge_file: Path) -> None:
    code, out, _ = invoke(str(mge_file), "--format", "json")
    assert code == 0
    row = json.loads(out)
    assert isinstance(row, dict)
    assert row["n_nodes"] == 8 and row["cut_edges"] == 6
    assert row["motifs"] is None  # NaN → null
    expected = compute_mge_metrics(Graph.from_edges(
        np.array([e[0] for e in NET]), np.array([e[1] for e in NET]),
        np.linspace(0.5, 1.0, len(NET)), [3, 3, 2], encoding="mge-reference"))
    assert row["sink_nodes"] == expected["sink_nodes"]
    assert row["spectral_radius"] == pytest.approx(expected["spectral_radius"])


def test_only_and_seed(mge_file: Path) -> None:
    code, out, _ = invoke(str(mge_file), "--only", "sink_nodes,cut_edges", "-f", "json",
                          "--seed", "3")
    assert code == 0
    assert list(json.loads(out)) == ["n_nodes", "n_edges", "sink_nodes", "cut_edges"]


def test_unknown_name_is_a_clear_error(mge_file: Path) -> None:
    code, _, err = invoke(str(mge_file), "--only", "sink_nodes,nope")
    assert code == 2
    assert "unknown metric 'nope'" in err and "spectral_gap" in err


def test_normalised_csv_has_published_columns(mge_file: Path) -> None:
    code, out, _ = invoke(str(mge_file), "--normalised", "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 1
    assert list(rows[0]) == published_columns(sizes=True)
    assert float(rows[0]["cut-edges"]) == pytest.approx(6 / 6)


def test_table_output(mge_file: Path) -> None:
    code, out, _ = invoke(str(mge_file))
    assert code == 0 and "spectral_radius" in out


def test_bge_rows_and_ramanujan(bge_file: Path) -> None:
    code, out, _ = invoke(str(bge_file), "-f", "json")
    assert code == 0
    rows = json.loads(out)
    assert [r["layer_name"] for r in rows] == ["fc1", "fc2"]
    assert rows[0]["k_core"] == 3
    code, out, _ = invoke(str(bge_file), "--ramanujan", "-f", "json")
    assert code == 0
    rows = json.loads(out)
    assert rows[0]["delta_r"] == pytest.approx(1.0)  # K_{3,4}: λ₃ = 0
    assert rows[1]["imdb"] is None  # K_{4,2}: right degree 4 but left degree 2 < 3


def test_usage_errors(mge_file: Path, bge_file: Path, tmp_path: Path) -> None:
    code, _, err = invoke(str(bge_file), "--normalised")
    assert code == 2 and "MGE graphs only" in err
    code, _, err = invoke(str(mge_file), "--ramanujan")
    assert code == 2 and "rolled" in err
    code, _, err = invoke(str(mge_file), "--encoding", "mge")
    assert code == 2 and "'mge-reference'" in err
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"not a checkpoint")
    code, _, err = invoke(str(ckpt))
    assert code == 2 and "--model" in err
    code, _, err = invoke(str(tmp_path / "missing.npz"))
    assert code == 2 and "no such file" in err


def test_motifs_exact_and_fast_give_the_same_estimate(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    dims = [1200, 1000, 10]
    src = np.concatenate([rng.integers(0, 1200, 4000), rng.integers(1200, 2200, 3000)])
    dst = np.concatenate([rng.integers(1200, 2200, 4000), rng.integers(2200, 2210, 3000)])
    key = np.unique(src * 2210 + dst)
    path = save_graph(tmp_path / "big.npz", Graph.from_edges(
        key // 2210, key % 2210, np.ones(len(key)), dims, encoding="mge-reference"))
    values = []
    for mode in ("fast", "exact"):
        code, out, err = invoke(str(path), "--only", "motifs", "--motifs", mode, "-f", "json")
        assert code == 0, err
        values.append(json.loads(out)["motifs"])
    assert values[0] == values[1] and values[0] > 0
    code, _, err = invoke(str(path), "--motifs", "sometimes")
    assert code == 2 and "sometimes" in err
