"""``mgedb encode`` / ``info`` / ``export`` on the ResNet-20 fixture, through the Typer app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mgedb.cli import app
from mgedb.graph import ENCODINGS, Graph, GraphSet, load_graph
from mgedb.models import build_model

TAG = "Resnet-20-er-0.98-seed0"
runner = CliRunner()


def invoke(*args: str) -> Any:
    res = runner.invoke(app, list(args))
    assert res.exit_code == 0, res.output
    return res


@pytest.fixture(scope="module")
def encoded(reference_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every encoding of the fixture, written by ``mgedb encode … --json``, and its summary."""
    out_dir = tmp_path_factory.mktemp("cli")
    pt = reference_dir / f"{TAG}.pt"
    result: dict[str, Any] = {"dir": out_dir, "ref": reference_dir}
    for enc in ENCODINGS:
        out = out_dir / f"{enc}.npz"
        res = invoke("encode", str(pt), "--model", "resnet20", "--encoding", enc, "--out",
                     str(out), "--json")
        result[enc] = (out, json.loads(res.stdout))
    return result


@pytest.mark.parametrize("enc", ENCODINGS)
def test_encode_writes_a_loadable_graph(encoded: dict[str, Any], enc: str) -> None:
    out, printed = encoded[enc]
    value = load_graph(out)
    assert value.encoding == enc == printed["encoding"]
    assert isinstance(value, GraphSet if enc.startswith("rolled") else Graph)
    assert value.summary() == printed
    assert value.meta["model"] == "resnet20" and value.meta["checkpoint"].endswith(f"{TAG}.pt")
    assert not list(out.parent.glob("*.tmp"))  # no temporary file left behind


@pytest.mark.parametrize("enc", ENCODINGS)
def test_info_json_counts(encoded: dict[str, Any], enc: str) -> None:
    out, _ = encoded[enc]
    info = json.loads(invoke("info", str(out), "--json").stdout)
    js = json.loads((encoded["ref"] / f"{TAG}.graph.json").read_text())
    if enc == "mge-reference":
        assert (info["n_nodes"], info["n_edges"]) == (191894, 1244886)
        assert [p["size"] for p in info["partitions"]] == js["dimension"]
        assert info["edges_by_partition_pair"] == js["block_pair_edge_counts"]
        assert info["edges_by_kind"] == {"conv": 1244886 - 14656 - 41472 - 20608,
                                         "linear": 14656, "shortcut": 41472 + 20608}
    elif enc == "mge":
        assert info["n_nodes"] == 191894 - 3468 + 3072
        assert [p["size"] for p in info["partitions"]][:2] == [3072, 16384]
        assert info["partitions"][0]["kind"] == "input"
        assert set(info["edges_by_kind"]) == {"conv", "linear", "shortcut", "skip"}
        assert info["edges_by_kind"]["skip"] == 3 * 16 * 1024 + 2 * 32 * 256 + 2 * 64 * 64
    else:
        assert info["n_graphs"] == 22
        assert info["layers"][0]["dimension"] == ([27, 16] if enc == "rolled" else [3, 16])
        if enc == "rolled":  # rolled-channel: see test_rolled_channel_edges_are_nonzero_kernels
            assert info["n_edges"] == 5053
        assert info["layers"][-1]["layer"] == "linear"
        assert info["layers"][-1]["dimension"] == [64, 10]


def test_rolled_channel_edges_are_nonzero_kernels(encoded: dict[str, Any]) -> None:
    info = json.loads(invoke("info", str(encoded["rolled-channel"][0]), "--json").stdout)
    sd = torch.load(encoded["ref"] / f"{TAG}.pt", weights_only=True)
    kernels = sum(int((v.flatten(2).abs().sum(2) != 0).sum()) if v.dim() == 4
                  else int((v != 0).sum()) for v in sd.values() if v.dim() > 1)
    assert info["n_edges"] == kernels


def test_info_table_and_csv(encoded: dict[str, Any]) -> None:
    table = invoke("info", str(encoded["mge"][0])).stdout
    assert "partitions" in table and "16384" in table and "skip" in table
    csv = invoke("info", str(encoded["rolled"][0]), "--format", "csv").stdout
    assert csv.splitlines()[0].startswith("encoding")


def test_export_mge_reference_matches_fixture_numbering(encoded: dict[str, Any]) -> None:
    out = encoded["dir"] / "edges-ref.npz"
    res = invoke("export", str(encoded["mge-reference"][0]), "--edges", str(out))
    assert "1,244,886 edges" in res.stderr
    with np.load(out) as z, np.load(encoded["ref"] / f"{TAG}.npz") as ref:
        assert z["src"].dtype == z["dst"].dtype == np.int64 and z["weight"].dtype == np.float32
        assert np.array_equal(z["dimension"], ref["dimension"])
        order = np.lexsort((z["dst"], z["src"]))
        assert np.array_equal(z["src"][order], ref["src"])
        assert np.array_equal(z["dst"][order], ref["dst"])
        assert np.array_equal(z["weight"][order], ref["weight"].astype(np.float32))
        assert "graph_ptr" not in z.files


def test_export_graphset_is_a_disjoint_union(encoded: dict[str, Any]) -> None:
    out = encoded["dir"] / "edges-rolled.npz"
    invoke("export", str(encoded["rolled"][0]), "--edges", str(out))
    gs = load_graph(encoded["rolled"][0])
    assert isinstance(gs, GraphSet)
    with np.load(out) as z:
        assert z["src"].dtype == np.int64 and z["weight"].dtype == np.float32
        assert z["graph_ptr"].tolist() == list(range(0, 2 * 22 + 1, 2))
        assert z["dimension"].tolist() == [int(d) for g in gs for d in g.dimension]
        base = 0
        pos = 0
        for g in gs:
            sl = slice(pos, pos + g.n_edges)
            assert np.array_equal(z["src"][sl], g.src.astype(np.int64) + base)
            assert np.array_equal(z["dst"][sl], g.dst.astype(np.int64) + base)
            assert np.array_equal(z["weight"][sl], g.weight)
            base += g.n_nodes
            pos += g.n_edges
        assert pos == len(z["src"]) == 5053


def test_compressed_output_round_trips(encoded: dict[str, Any]) -> None:
    out = encoded["dir"] / "compressed.npz"
    invoke("encode", str(encoded["ref"] / f"{TAG}.pt"), "-m", "resnet20", "-e", "mge-reference",
           "-o", str(out), "--compress", "--format", "json")
    a, b = load_graph(out), load_graph(encoded["mge-reference"][0])
    assert isinstance(a, Graph) and isinstance(b, Graph)
    assert np.array_equal(a.src, b.src) and np.array_equal(a.weight, b.weight)
    assert out.stat().st_size < encoded["mge-reference"][0].stat().st_size


def test_allow_pickle_flag(tmp_path: Path) -> None:
    model = build_model("resnet20")
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.mul_(torch.rand(p.shape) < 0.01)
    torch.save(model, tmp_path / "full.pt")
    out = tmp_path / "g.npz"
    res = runner.invoke(app, ["encode", str(tmp_path / "full.pt"), "-m", "resnet20", "-e",
                              "rolled", "-o", str(out)])
    assert res.exit_code == 2 and "--allow-pickle" in res.stderr and not out.exists()
    invoke("encode", str(tmp_path / "full.pt"), "-m", "resnet20", "-e", "rolled", "-o", str(out),
           "--allow-pickle")
    gs = load_graph(out)
    assert sum(g.n_edges for g in gs) == sum(  # type: ignore[union-attr]
        int((p != 0).sum()) for p in model.parameters() if p.dim() > 1)


@pytest.mark.parametrize("what", ["missing", "not-npz", "plain-npz"])
def test_info_and_export_on_bad_graph_files(tmp_path: Path, what: str) -> None:
    path = tmp_path / "g.npz"
    if what == "not-npz":
        path.write_bytes(b"garbage")
    elif what == "plain-npz":
        np.savez(path, src=np.arange(3))
    for args in (["info", str(path)], ["export", str(path), "--edges", str(tmp_path / "e.npz")]):
        res = runner.invoke(app, args)
        assert res.exit_code == 2
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"Error: {path}")
        assert "mgedb encode" in lines[0]
    assert not (tmp_path / "e.npz").exists()


def test_unknown_encoding_is_a_usage_error(encoded: dict[str, Any], tmp_path: Path) -> None:
    res = runner.invoke(app, ["encode", str(encoded["ref"] / f"{TAG}.pt"), "-m", "resnet20",
                              "-e", "unrolled", "-o", str(tmp_path / "g.npz")])
    assert res.exit_code == 2 and "unrolled" in res.stderr
    assert not (tmp_path / "g.npz").exists()
