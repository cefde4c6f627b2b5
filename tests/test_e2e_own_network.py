"""End to end from the CLI with a researcher's own network (#13's "done means"): a torchvision
ResNet-18 pruned with ``torch.nn.utils.prune``, given as ``--model torchvision.models:resnet18
--model-arg num_classes=10`` (with its state dict) and as a ``torch.export`` ``.pt2``, through
``mgedb encode``, ``metrics``, ``ingest`` (embedded store in a temporary folder) and
``study --quick``. Slow: several minutes on the shared 2-core machine."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.nn.utils import prune
from typer.testing import CliRunner

from mgedb.cli import app
from mgedb.graph import load_graph

tv = pytest.importorskip("torchvision")

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:The tensor attributes")]

R18 = ["--model", "torchvision.models:resnet18", "--model-arg", "num_classes=10"]


def run(*args: str) -> str:
    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == 0, (args, res.stderr, res.exception)
    return res.stdout


@pytest.fixture(scope="module")
def r18(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int]:
    """The pruned ResNet-18 as a state dict (weight_orig + weight_mask) and as a .pt2, and its
    surviving weight count."""
    tmp = tmp_path_factory.mktemp("r18")
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = tv.models.resnet18(num_classes=10).eval()
    layers = [(m, "weight") for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    prune.global_unstructured(layers, pruning_method=prune.L1Unstructured, amount=0.99)
    kept = sum(int(m.weight_mask.sum()) for m, _ in layers)
    ck, pt2 = tmp / "r18.pt", tmp / "r18.pt2"
    torch.save(net.state_dict(), ck)
    prog = torch.export.export(net, (torch.zeros(2, 3, 32, 32),),
                               dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(prog, pt2)
    return ck, pt2, kept


def test_encode_metrics_ingest_study(r18: tuple[Path, Path, int], tmp_path: Path) -> None:
    ck, pt2, kept = r18
    # encode: the same graph from both sources, every surviving weight in it
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    run("encode", str(ck), *R18, "-e", "mge", "-o", str(a))
    run("encode", str(pt2), "-e", "mge", "-o", str(b))
    ga, gb = load_graph(a), load_graph(b)
    assert ga.n_edges == gb.n_edges > kept
    assert ga.n_nodes == gb.n_nodes == 3 * 32 * 32 + sum(p.size for p in ga.partitions[1:])
    for f in ("src", "dst", "weight", "kind"):
        assert np.array_equal(getattr(ga, f), getattr(gb, f)), f
    assert sum(layer.nnz for layer in ga.layers) == kept
    assert ga.partitions[-1].size == 10

    # metrics: the graph file and the .pt2 (encoded on the fly) give the same values
    ma = json.loads(run("metrics", str(a), "-f", "json"))
    mb = json.loads(run("metrics", str(pt2), "-e", "mge", "-f", "json"))
    assert ma == mb
    assert ma["n_edges"] == ga.n_edges and ma["n_nodes"] == ga.n_nodes
    numeric = [v for v in ma.values() if isinstance(v, int | float) and not isinstance(v, bool)]
    assert len(numeric) >= 10 and all(math.isfinite(v) for v in numeric)

    # ingest: both into one embedded store, two networks of the same size
    db = tmp_path / "db"
    run("ingest", str(ck), *R18, "-e", "mge", "--db", str(db))
    run("ingest", str(pt2), "-e", "mge", "--db", str(db))
    rows = json.loads(run("ls", "--db", str(db), "-f", "json"))
    nets = [r for r in rows if r.get("kind") == "mge"]
    assert len(nets) == 2
    assert {r["n_edges"] for r in nets} == {ga.n_edges}

    # study --quick: pruned, measured, stored and ranked, per source (the .pt2 with one data-free
    # and one data-driven pruner: synflow's 100 float64 rounds on ResNet-18 take ~10 min here)
    stored_before = 2
    for name, model, pruners in (
        ("factory", R18, []), ("pt2", ["--model", str(pt2)], ["-p", "uniform,snip"]),
    ):
        quick = set(pruners[1].split(",")) if pruners else {"uniform", "erk", "snip", "synflow"}
        out = tmp_path / f"study-{name}"
        run("study", "--quick", *model, *pruners, "-e", "mge", "-o", str(out), "--db", str(db))
        rk = pd.read_csv(out / "ranking.csv").sort_values("rank")
        assert set(rk["pruner"]) == quick
        assert rk["rank"].tolist() == list(range(1, len(quick) + 1))
        assert (rk["sparsity"] == 0.98).all()
        drops = rk["predicted_drop"].to_numpy()
        assert np.isfinite(drops).all() and (np.diff(drops) >= 0).all()  # rank 1: least drop
        res = pd.read_csv(out / "results.csv")
        assert set(res["pruner"]) == quick
        assert np.allclose(res["realised_sparsity"], 0.98, atol=2e-3)
        stored = json.loads(run("ls", "--db", str(db), "-f", "json"))
        stored_before += len(quick)
        assert len([r for r in stored if r.get("kind") == "mge"]) == stored_before
