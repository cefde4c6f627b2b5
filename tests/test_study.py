"""The main job (`mgedb study`): ranking and attribution by hand, then the quick preset end to end
(stored networks, agreement with `mgedb metrics`, report files, resume, Ctrl-C, engine cross-check).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from mgedb.cli import app
from mgedb.errors import MgedbError, PruningError
from mgedb.predict.attribution import occlusion, top_features
from mgedb.predict.predictor import Predictor
from mgedb.predict.records import MGE_STRUCTURAL
from mgedb.store import open_store
from mgedb.study import NetworkResult, Run, StudyConfig, rank, run_study

runner = CliRunner()
QUICK_PRUNERS = ("uniform", "erk", "snip", "synflow")
INTEGER_METRICS = ("n_nodes", "n_edges", "sink_nodes", "source_nodes", "disconnected_nodes",
                   "removable_out", "removable_in", "cut_edges", "cut_nodes", "n_components")


# -- ranking and attribution, by hand ------------------------------------------------------------
def _net(pruner: str, seed: int, drop: float, attribution: dict[str, float],
         acc: float = math.nan, dense: float = math.nan, sparsity: float = 0.9) -> NetworkResult:
    return NetworkResult(run=Run(pruner, sparsity, seed), checkpoint=Path("x.pt"),
                         key=f"{pruner}{seed}{sparsity}", metrics={}, realised_sparsity=sparsity,
                         accuracy=acc, dense_accuracy=dense, predicted_drop=drop,
                         predicted_accuracy=0.9 * (1 - drop), attribution=attribution)


def test_rank_orders_pruners_by_mean_predicted_drop_with_top_metrics() -> None:
    nets = [
        _net("a", 0, 0.30, {"m1": 0.10, "m2": -0.02, "m3": 0.0, "m4": 0.01}),
        _net("a", 1, 0.50, {"m1": 0.20, "m2": -0.04, "m3": 0.0, "m4": 0.01}),
        _net("b", 0, 0.10, {"m1": 0.00, "m2": -0.30, "m3": 0.05, "m4": 0.02}),
        _net("b", 1, 0.20, {"m1": 0.00, "m2": -0.10, "m3": 0.03, "m4": 0.02}),
        _net("c", 0, 0.25, {"m1": 0.01, "m2": 0.0, "m3": 0.0, "m4": 0.0}),
        _net("c", 1, 0.25, {"m1": 0.01, "m2": 0.0, "m3": 0.0, "m4": 0.0}),
    ]
    table, tau = rank(nets)
    assert table["pruner"].tolist() == ["b", "c", "a"]
    assert table["rank"].tolist() == [1, 2, 3]
    assert table["predicted_drop"].tolist() == pytest.approx([0.15, 0.25, 0.40])
    assert table["predicted_drop_std"].tolist() == pytest.approx(
        [np.std([0.1, 0.2], ddof=1), 0.0, np.std([0.3, 0.5], ddof=1)])
    top_b = table.loc[table["pruner"] == "b", "top_metrics"].item()
    assert [n for n, _ in top_b] == ["m2", "m3", "m4"]
    assert top_b[0][1] == pytest.approx(-0.20)
    top_a = table.loc[table["pruner"] == "a", "top_metrics"].item()
    assert [n for n, _ in top_a] == ["m1", "m2", "m4"]
    assert top_a[0][1] == pytest.approx(0.15)
    assert math.isnan(tau[0.9])  # no true labels


def test_rank_kendall_tau_against_true_drops() -> None:
    attr = {"m": 0.0}
    agree = [_net("a", 0, 0.1, attr, acc=0.85, dense=0.9),   # true drop 0.0556
             _net("b", 0, 0.2, attr, acc=0.80, dense=0.9),   # 0.111
             _net("c", 0, 0.3, attr, acc=0.60, dense=0.9)]   # 0.333
    table, tau = rank(agree)
    assert tau[0.9] == pytest.approx(1.0)
    assert table["true_drop"].tolist() == pytest.approx([0.05 / 0.9, 0.1 / 0.9, 0.3 / 0.9])
    assert table["true_rank"].tolist() == [1.0, 2.0, 3.0]
    swapped = [_net("a", 0, 0.1, attr, acc=0.60, dense=0.9),
               _net("b", 0, 0.2, attr, acc=0.80, dense=0.9),
               _net("c", 0, 0.3, attr, acc=0.85, dense=0.9)]
    assert rank(swapped)[1][0.9] == pytest.approx(-1.0)
    one_swap = [_net("a", 0, 0.1, attr, acc=0.80, dense=0.9),
                _net("b", 0, 0.2, attr, acc=0.85, dense=0.9),
                _net("c", 0, 0.3, attr, acc=0.60, dense=0.9)]
    assert rank(one_swap)[1][0.9] == pytest.approx(1 / 3)  # 2 concordant, 1 discordant pair


class _Linear:
    """A fitted 'pipeline': predicted drop = coef · x."""

    def __init__(self, coef: np.ndarray) -> None:
        self.coef = coef

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, float) @ self.coef


def test_occlusion_is_the_change_against_the_training_median() -> None:
    cols = list(MGE_STRUCTURAL)
    coef = np.zeros(len(cols))
    coef[cols.index("k-core")] = 2.0
    coef[cols.index("sink_nodes")] = -1.0
    medians = dict.fromkeys(cols, 0.5)
    predictor = Predictor({"*": _Linear(coef)}, {"*": cols},
                          {"feature_set": "mge-structural", "feature_medians": {"*": medians}})
    rng = np.random.default_rng(0)
    values = rng.uniform(0, 1, (3, len(cols)))
    records = pd.DataFrame(values, columns=cols)
    records.insert(0, "key", ["n0", "n1", "n2"])
    records.insert(1, "model", "Resnet-20")
    attr = occlusion(predictor, records)
    assert attr.index.tolist() == ["n0", "n1", "n2"]
    expect_k = 2.0 * (values[:, cols.index("k-core")] - 0.5)
    expect_s = -1.0 * (values[:, cols.index("sink_nodes")] - 0.5)
    np.testing.assert_allclose(attr["k-core"], expect_k)
    np.testing.assert_allclose(attr["sink_nodes"], expect_s)
    others = attr.drop(columns=["k-core", "sink_nodes"]).to_numpy()
    assert np.all(others == 0.0)
    top = top_features(attr, 2)
    for row, k, s in zip(top, expect_k, expect_s, strict=True):
        assert {name for name, _ in row} == {"k-core", "sink_nodes"}
        assert dict(row)["k-core"] == pytest.approx(k) and dict(row)["sink_nodes"] == \
            pytest.approx(s)


def test_occlusion_needs_training_medians() -> None:
    predictor = Predictor({"*": _Linear(np.zeros(13))}, {"*": list(MGE_STRUCTURAL)},
                          {"feature_set": "mge-structural"})
    with pytest.raises(MgedbError, match="no training medians"):
        occlusion(predictor, pd.DataFrame({"key": ["a"], "model": ["m"]}))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"pruners": ("uniform", "magic")}, "unknown pruner 'magic'"),
    ({"sparsities": (1.0,)}, "sparsity 1.0 is outside"),
    ({"encoding": "rolled"}, "unknown encoding"),
    ({"engine": "gpu"}, "unknown engine"),
    ({"seeds": ()}, "at least one"),
])
def test_config_rejects_bad_input(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises((MgedbError, PruningError), match=match):
        StudyConfig(**kwargs)


def test_cli_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    res = runner.invoke(app, ["study", "--pruners", "uniform,magic", "--out", str(tmp_path / "o"),
                              "--db", str(tmp_path / "db")])
    assert res.exit_code == 2
    assert "unknown pruner 'magic'" in res.output
    assert not (tmp_path / "db").exists()
    res = runner.invoke(app, ["study", "--sparsities", "0.9,x", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "comma-separated list of numbers" in res.output


# -- the quick preset, end to end (the `quick` fixture: tests/conftest.py) -------------------------


def test_quick_study_ranks_every_pruner(quick: dict[str, Any]) -> None:
    res = quick["res"]
    assert res.exit_code == 0, res.output
    for pruner in QUICK_PRUNERS:
        assert pruner in res.output
    assert "resnet20 · sparsity 0.98" in res.output
    assert "4 networks (0 reused)" in res.output
    assert "time per stage: prune" in res.output


def test_quick_study_stores_complete_networks_with_metrics(quick: dict[str, Any]) -> None:
    with open_store("embedded", quick["db"], read_only=True) as store:
        rows = store.query("MATCH (n:Network) RETURN n.key AS key, n.pruner AS pruner, "
                           "n.sparsity AS sparsity, n.complete AS complete, n.kind AS kind, "
                           "n.flavour AS flavour, n.n_edges AS n_edges")
        assert sorted(rows["pruner"]) == sorted(QUICK_PRUNERS)
        assert rows["complete"].all() and set(rows["kind"]) == {"mge"}
        assert set(rows["flavour"]) == {"mge-reference"}
        assert set(rows["sparsity"]) == {0.98}
        for r in rows.to_dict("records"):
            metrics = store.get_metrics(r["key"])
            assert len(metrics) == 18  # 16 topometrics + n_nodes + n_edges
            assert metrics["n_edges"] == r["n_edges"]
            assert store.read_graph(r["key"]).n_edges == r["n_edges"]


def test_quick_study_metrics_equal_mgedb_metrics(quick: dict[str, Any]) -> None:
    ckpt = quick["out"] / "checkpoints" / "resnet20-erk-s0.98-seed0.pt"
    res = runner.invoke(app, ["metrics", str(ckpt), "-m", "resnet20", "-e", "mge-reference",
                              "-f", "json"])
    assert res.exit_code == 0, res.output
    cli = json.loads(res.stdout)
    results = pd.read_csv(quick["out"] / "results.csv")
    key = results.loc[results["pruner"] == "erk", "key"].item()
    with open_store("embedded", quick["db"], read_only=True) as store:
        stored = store.get_metrics(key)
    assert set(cli) == set(stored)
    for name, value in cli.items():
        if name in INTEGER_METRICS:
            assert stored[name] == value, name
        else:
            assert stored[name] == pytest.approx(value, rel=1e-12), name


def test_quick_study_db_engine_agrees_on_a_stored_key(quick: dict[str, Any]) -> None:
    results = pd.read_csv(quick["out"] / "results.csv")
    key = results.loc[results["pruner"] == "snip", "key"].item()
    res = runner.invoke(app, ["metrics", key, "--engine", "both", "--db", str(quick["db"]),
                              "--only", "sink_nodes,removable_in,strength", "-f", "json"])
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout)
    assert row["agree"] is True and row["key"] == key


def test_quick_study_report(quick: dict[str, Any]) -> None:
    out = quick["out"]
    report = (out / "report.md").read_text()
    assert "## Ranking per sparsity" in report and "### Sparsity 0.98" in report
    for pruner in QUICK_PRUNERS:  # ⚠: outside the predictor's domain
        assert f"| {pruner} |" in report or f"| {pruner} ⚠ |" in report
    results = pd.read_csv(out / "results.csv")
    assert sorted(results["pruner"]) == sorted(QUICK_PRUNERS)
    assert results["predicted_drop"].between(-0.5, 1.5).all()
    # every network has its 90 % interval, the domain check and the training notice
    assert (results["drop_lo"] < results["predicted_drop"]).all()
    assert (results["predicted_drop"] < results["drop_hi"]).all()
    assert results["in_domain"].dtype == bool and not results["in_training"].any()
    assert "| 90 % interval (%) |" in report
    assert "Intervals: 90 % split-conformal on grouped out-of-fold residuals (Resnet-20 model" \
        in report and "measured coverage on grouped folds" in report
    assert "grouped 5-fold (the seeds of a network in one fold)" in report
    for r in results.itertuples():
        if not r.in_domain:
            assert f"{r.pruner} 0.98 seed 0: outside the predictor's domain" in report
    assert (results["realised_sparsity"] - 0.98).abs().max() < 1e-3
    ranking = pd.read_csv(out / "ranking.csv")
    assert sorted(ranking["rank"]) == [1, 2, 3, 4]
    assert ranking["predicted_drop"].is_monotonic_increasing
    assert ranking["top_metrics"].str.count(" pp").eq(3).all()
    for name in ("predicted_drop", "metric_profiles", "attribution"):
        with Image.open(out / "figures" / f"{name}.png") as img:
            assert img.format == "PNG" and img.width >= 600 and img.height >= 400


def test_quick_study_resumes_without_recomputing(quick: dict[str, Any]) -> None:
    ckpts = sorted((quick["out"] / "checkpoints").glob("*.pt"))
    before = {p: p.stat().st_mtime_ns for p in ckpts}
    res = runner.invoke(app, ["study", "--quick", "--out", str(quick["out"]), "--db",
                              str(quick["db"])])
    assert res.exit_code == 0, res.output
    assert "4 networks (4 reused)" in res.output
    assert {p: p.stat().st_mtime_ns for p in ckpts} == before


def test_interrupted_ingest_is_not_marked_complete_and_resumes(
        quick: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from mgedb.store.kuzu_store import KuzuStore

    out, db = quick["root"] / "interrupted", quick["root"] / "interrupted-db"
    (out / "checkpoints").mkdir(parents=True)
    for p in (quick["out"] / "checkpoints").glob("resnet20-[ue]*"):  # uniform, erk (+ sidecars)
        shutil.copy2(p, out / "checkpoints" / p.name)
    cfg = StudyConfig(out=out, db=db, pruners=("uniform", "erk"), sparsities=(0.98,),
                      synthetic_samples=512)
    real = KuzuStore._load_tables
    calls = {"n": 0}

    def flaky(self: KuzuStore, *args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        real(self, *args, **kwargs)

    monkeypatch.setattr(KuzuStore, "_load_tables", flaky)
    with pytest.raises(KeyboardInterrupt):
        run_study(cfg, report=False)
    with open_store("embedded", db, read_only=True) as store:
        rows = store.query("MATCH (n:Network) RETURN n.key AS key, n.pruner AS pruner, "
                           "n.complete AS c")
        owners = [set(store.query(q)["k"]) for q in (
            "MATCH (u:InputPixel) RETURN DISTINCT u.network AS k",
            "MATCH (u:ConvUnit) RETURN DISTINCT u.network AS k",
            "MATCH (u:Neuron) RETURN DISTINCT u.network AS k",
            "MATCH (m:Metric) RETURN DISTINCT m.network AS k")]
    assert rows[["pruner", "c"]].to_dict("records") == [{"pruner": "uniform", "c": True}]
    assert all(o == {rows["key"].item()} for o in owners), owners
    monkeypatch.setattr(KuzuStore, "_load_tables", real)
    result = run_study(cfg, report=False)
    assert [n.reused for n in result.networks] == [True, False]
    with open_store("embedded", db, read_only=True) as store:
        rows = store.query("MATCH (n:Network) RETURN n.pruner AS pruner, n.complete AS c")
    assert sorted(rows["pruner"]) == ["erk", "uniform"] and rows["c"].all()

    both = run_study(replace_cfg(cfg, pruners=("uniform",), engine="both"), report=True)
    assert both.mismatches == []
    assert "All metrics agree." in (out / "report.md").read_text()


def _study_copy(quick: dict[str, Any], name: str, pruners: str = "[u]") -> tuple[Path, Path]:
    """A fresh study directory holding the quick study's checkpoints of ``pruners`` (a glob)."""
    out, db = quick["root"] / name, quick["root"] / f"{name}-db"
    (out / "checkpoints").mkdir(parents=True)
    for p in (quick["out"] / "checkpoints").glob(f"resnet20-{pruners}*"):
        shutil.copy2(p, out / "checkpoints" / p.name)
    return out, db


def test_resume_verifies_reused_networks_and_redoes_a_damaged_one(
        quick: dict[str, Any]) -> None:
    out, db = _study_copy(quick, "damaged")
    cfg = StudyConfig(out=out, db=db, pruners=("uniform",), sparsities=(0.98,),
                      synthetic_samples=512)
    key = run_study(cfg, report=False).networks[0].key
    with open_store("embedded", db) as store:
        n_edges = store.network(key).n_edges
        store.query("MATCH (a:ConvUnit)-[r:W]->() WHERE a.network = $key AND a.partition = 1 "
                    "DELETE r", {"key": key}, write=True)  # what Kùzu's delete bug did
        assert store.verify(key) and store.has_network(key)
    again = run_study(cfg, report=False)
    assert [n.reused for n in again.networks] == [False]  # not silently reused
    with open_store("embedded", db, read_only=True) as store:
        assert store.verify(key) == [] and store.network(key).n_edges == n_edges
        assert store.query("MATCH (a)-[r:W]->() WHERE a.network = $key RETURN count(r) AS n",
                           {"key": key})["n"].item() == n_edges
    assert again.networks[0].metrics == pytest.approx(quick_metrics(quick, key), nan_ok=True)


def quick_metrics(quick: dict[str, Any], key: str) -> dict[str, float]:
    with open_store("embedded", quick["db"], read_only=True) as store:
        return store.get_metrics(key)


@pytest.mark.slow  # four 2-network studies: ~2.5 min on the shared 2-core machine
def test_killed_study_leaves_only_verified_complete_networks_and_converges(
        quick: dict[str, Any]) -> None:
    """``kill -9`` of ``mgedb study`` at fixed-seed random moments of its measure stage."""
    from test_store_kill import _kills, _run

    def study(out: Path, db: Path) -> list[str]:
        return ["study", "--quick", "--pruners", "uniform,erk", "--out", str(out), "--db",
                str(db)]

    out, db = _study_copy(quick, "killed", "[ue]")
    args = study(out, db)
    ref_out, ref_db = _study_copy(quick, "killed-ref", "[ue]")
    code, took = _run(study(ref_out, ref_db))
    assert code == 0
    with open_store("embedded", ref_db, read_only=True) as store:
        expected = {k: store.get_metrics(k) for k in store.list_networks()["key"]}
    for delay in _kills(2, 31, took):
        _run(args, kill_after=delay)
        with open_store("embedded", db, read_only=True) as store:
            rows = store.list_networks()
            for k, complete in zip(rows["key"], rows["complete"], strict=True):
                assert not complete or store.verify(k) == [], k
    assert _run(args)[0] == 0
    with open_store("embedded", db, read_only=True) as store:
        got = {k: store.get_metrics(k) for k in store.list_networks()["key"]}
        assert all(store.verify(k) == [] for k in got)
    assert got.keys() == expected.keys()
    for k in got:
        assert got[k] == pytest.approx(expected[k], nan_ok=True)


def replace_cfg(cfg: StudyConfig, **changes: Any) -> StudyConfig:
    from dataclasses import replace

    return replace(cfg, **changes)


def test_training_records_true_drops_and_kendall_tau(quick: dict[str, Any]) -> None:
    out = quick["root"] / "trained"
    (out / "checkpoints").mkdir(parents=True)
    for p in (quick["out"] / "checkpoints").glob("resnet20-[ue]*"):  # uniform, erk (+ sidecars)
        shutil.copy2(p, out / "checkpoints" / p.name)
    cfg = StudyConfig(out=out, db=quick["db"], pruners=("uniform", "erk"), sparsities=(0.98,),
                      synthetic_samples=128, train_epochs=1)
    result = run_study(cfg)
    records = sorted((out / "training").glob("*.json"))
    assert len(records) == 3  # dense + two pruned
    dense = json.loads(next(r for r in records if "-dense-" in r.name).read_text())
    for n in result.networks:
        assert 0.0 <= n.accuracy <= 1.0 and n.dense_accuracy == dense["accuracy"]
        assert n.true_drop == pytest.approx((n.dense_accuracy - n.accuracy) / n.dense_accuracy)
    assert result.ranking["true_drop"].notna().all()
    tau = result.tau[0.98]
    assert tau in (-1.0, 1.0) or math.isnan(tau)  # two pruners: concordant, discordant or a tie
    report = (out / "report.md").read_text()
    assert "true drop (%)" in report
    before = {r: r.stat().st_mtime_ns for r in records}
    again = run_study(cfg, report=False)
    assert {r: r.stat().st_mtime_ns for r in records} == before
    assert [n.accuracy for n in again.networks] == [n.accuracy for n in result.networks]
