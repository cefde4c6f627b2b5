"""The predict commands through the CLI, with a tiny in-memory fake of the graph store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_predict_published import make_paper_data
from typer.testing import CliRunner

import mgedb.cli.predict  # registers the commands
import mgedb.store
from mgedb.cli import app
from mgedb.predict import STUDY_FEATURES, STUDY_REGRESSOR
from mgedb.predict.records import RECORD_COLUMNS, record_from_metrics


class FakeStore:
    """Implements the two store methods the predict commands use."""

    def __init__(self) -> None:
        self.records = pd.DataFrame({c: [] for c in RECORD_COLUMNS})
        self.layers: pd.DataFrame | None = None

    def __enter__(self) -> FakeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def write_records(self, records: pd.DataFrame, layers: pd.DataFrame | None = None) -> int:
        keep = self.records[~self.records["key"].isin(records["key"])]
        self.records = pd.concat([keep, records], ignore_index=True) if len(keep) else records
        self.layers = layers
        return len(records)

    def read_records(self, source: str | None = None) -> pd.DataFrame:
        r = self.records
        return r if source is None else r[r["source"] == source].reset_index(drop=True)


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> FakeStore:
    fake = FakeStore()

    def open_store(kind: str | None = None, db: Any = None, **kw: Any) -> FakeStore:
        return fake

    monkeypatch.setattr(mgedb.store, "open_store", open_store)
    return fake


@pytest.fixture(scope="module")
def paper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_paper_data(tmp_path_factory.mktemp("paper"), sparsities=(0.6, 0.9, 0.95))


runner = CliRunner()


def _run(*args: str) -> Any:
    return runner.invoke(app, list(args))


def test_import_published_writes_records_and_layers(paper: Path, store: FakeStore) -> None:
    r = _run("import-published", str(paper), "--format", "json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["networks_written"] == out["networks"] == 2 * 2 * 8 * 3 * 2
    assert len(store.records) == out["networks"]
    assert store.layers is not None and len(store.layers) == out["layer_rows"]
    assert "Ramanujan rows aligned" in r.stderr
    again = _run("import-published", str(paper), "--format", "json")  # idempotent
    assert again.exit_code == 0 and len(store.records) == out["networks"]


def test_import_published_bad_dir_is_one_line_error(tmp_path: Path, store: FakeStore) -> None:
    r = _run("import-published", str(tmp_path))
    assert r.exit_code == 2
    assert r.stderr.startswith("Error: ") and len(r.stderr.strip().splitlines()) == 1


def test_compare_table_json(paper: Path) -> None:
    r = _run("predict", "compare", "--data", str(paper), "--features", "mge,sparsity,mge+density",
             "--model", "ridge", "--format", "json")
    assert r.exit_code == 0, r.output
    rows = {x["feature_set"]: x for x in json.loads(r.stdout)}
    assert set(rows) == {"mge", "sparsity", "mge+density"}
    assert rows["mge"]["mean"] > rows["sparsity"]["mean"]
    assert set(rows["mge"]) >= {"CONV-6", "Resnet-20", "CONV-6_std", "mean"}
    assert "best union: mge+density" in r.stderr
    assert "best published sparse accuracy" in r.stderr  # the proxy target is always stated


def test_compare_grouped_by_default_and_leaky_on_request(paper: Path) -> None:
    args = ("predict", "compare", "--data", str(paper), "--features", "mge,sparsity", "--model",
            "ridge", "--cv-seeds", "2")
    g = _run(*args)
    assert g.exit_code == 0, g.output
    assert "seeds grouped" in g.stdout and "mean ± std over 2 CV seeds" in g.stdout
    assert "folds keep the seeds of a network together" in g.stderr
    leaky = _run(*args, "--no-group-seeds")
    assert leaky.exit_code == 0, leaky.output
    assert "rows shuffled (leaky)" in leaky.stdout and "inflates the scores" in leaky.stderr


def test_report_needs_out_or_paper(paper: Path) -> None:
    r = _run("report", "--data", str(paper))
    assert r.exit_code == 2 and "needs --out DIR" in r.stderr


@pytest.mark.slow
def test_report_paper(paper: Path, tmp_path: Path) -> None:
    r = _run("report", "--paper", "--data", str(paper), "--model", "ridge", "--cv-seeds", "2",
             "--out", str(tmp_path), "--format", "json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    claims = {x["claim"] for x in rows}
    assert any(c.startswith("(a)") for c in claims) and any(c.startswith("(c)") for c in claims)
    assert {x["metrics"] for x in rows} == {"trained weights", "mask only"}
    assert all(x["verdict"] for x in rows)
    # the study's predictor is the one the study ships (feature set and regressor), not --model
    assert any(f"{STUDY_REGRESSOR} on {STUDY_FEATURES}:" in x["our number ± spread"]
               for x in rows)
    assert "Degrees of freedom" not in r.stderr
    md = (tmp_path / "paper.md").read_text()
    assert "| claim | metrics | paper says | our number ± spread | verdict |" in md


def test_compare_rejects_unknown_set(paper: Path) -> None:
    r = _run("predict", "compare", "--data", str(paper), "--features", "mge,nope")
    assert r.exit_code == 2 and "unknown feature set 'nope'" in r.stderr


def test_train_and_score_by_key(paper: Path, tmp_path: Path, store: FakeStore) -> None:
    model = tmp_path / "m.joblib"
    r = _run("predict", "train", "--data", str(paper), "--features", "mge", "--protocol", "loao",
             "--model", "ridge", "--out", str(model), "--format", "json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary[0]["group"] == "all" and summary[0]["folds"] == 2
    manifest = json.loads((tmp_path / "m.joblib.json").read_text())
    assert manifest["protocol"] == "loao" and manifest["feature_set"] == "mge"
    assert manifest["data"].startswith("the paper-data folder")
    # a network measured by mgedb, in the store
    pub = pd.read_csv(paper / "graph_metrics/unrolled/unrolled.csv").iloc[0]
    rec = record_from_metrics(pub.to_dict(), model="CONV-6", dataset="CIFAR-10", pruner="snip",
                              sparsity=0.9, seed=0, accuracy=0.8, dense_accuracy=0.9)
    store.write_records(rec)
    s = _run("predict", "score", rec["key"].iloc[0], "--predictor", str(model), "--format",
             "json")
    assert s.exit_code == 0, s.output
    out = json.loads(s.stdout)
    assert out["relative_to"] == "dense"
    assert out["predicted_accuracy"] == pytest.approx(0.9 * (1 - out["predicted_drop"]))
    miss = _run("predict", "score", "mgedb/nothing", "--predictor", str(model))
    assert miss.exit_code == 2 and "neither a checkpoint file nor a network key" in miss.stderr


def test_train_with_store_rows_and_reference_override(paper: Path, tmp_path: Path,
                                                     store: FakeStore) -> None:
    pub = pd.read_csv(paper / "graph_metrics/unrolled/unrolled.csv").iloc[0]
    rec = record_from_metrics(pub.to_dict(), model="CONV-6", dataset="CIFAR-10", pruner="snip",
                              sparsity=0.9, seed=7, accuracy=0.8, dense_accuracy=0.9)
    store.write_records(rec)
    ref = tmp_path / "ref.json"
    ref.write_text(json.dumps({"CONV-6": {"CIFAR-10": 0.99}}))
    r = _run("predict", "train", "--data", str(paper), "--features", "mge-structural",
             "--protocol", "kfold", "--model", "ridge", "--with-store", "--reference-accuracy",
             str(ref), "--out", str(tmp_path / "p.joblib"))
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "p.joblib.json").read_text())
    assert rec["key"].iloc[0] in m["training_keys"]
    refs = {(x["model"], x["dataset"]): x for x in m["reference"]}
    assert refs[("CONV-6", "CIFAR-10")]["reference_accuracy"] == 0.99
    assert refs[("CONV-6", "CIFAR-10")]["origin"] == "file ref.json"


def test_train_loao_with_layerwise_set_fails_clearly(paper: Path, tmp_path: Path) -> None:
    r = _run("predict", "train", "--data", str(paper), "--features", "density", "--protocol",
             "loao", "--out", str(tmp_path / "x.joblib"))
    assert r.exit_code == 2 and "architecture-independent" in r.stderr
    assert not (tmp_path / "x.joblib").exists()


def test_report_writes_markdown_and_plots(paper: Path, tmp_path: Path) -> None:
    out = tmp_path / "rep"
    r = _run("report", "--out", str(out), "--data", str(paper), "--model", "ridge")
    assert r.exit_code == 0, r.output
    md = (out / "report.md").read_text()
    for section in ("Feature sets, grouped 5-fold CV", "Leave-one-architecture-out",
                    "Leave-one-dataset-out", "Per sparsity level", "Feature importance",
                    "Ranking PaI algorithms", "best published sparse accuracy"):
        assert section in md
    for png in ("scatter_predicted_vs_true.png", "importance_overall.png",
                "importance_by_architecture.png", "importance_by_sparsity.png",
                "ranking_tau.png"):
        assert (out / png).stat().st_size > 1000
        assert f"]({png})" in md


def test_score_checkpoint_with_default_predictor(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from mgedb.checkpoint import save_checkpoint
    from mgedb.models import build_model

    monkeypatch.setenv("MGEDB_CACHE_DIR", str(tmp_path / "cache"))
    torch.manual_seed(0)
    model = build_model("resnet20")
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d | torch.nn.Linear):
                m.weight.mul_((torch.rand_like(m.weight) > 0.98).float())
    ckpt = save_checkpoint(tmp_path / "r20.pt", model,
                           meta={"pruner": "uniform", "sparsity": 0.98, "seed": 0})
    r = _run("predict", "score", str(ckpt), "--arch", "resnet20", "--dataset", "CIFAR-10",
             "--format", "json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["feature_set"] == STUDY_FEATURES and out["model"] == "Resnet-20"
    assert out["relative_to"] == "reference"
    # a random 98%-sparse ResNet-20 loses a lot: the published uniform 0.98 rows lose ~40 %
    assert 0.1 < out["predicted_drop"] < 0.9
    assert out["drop_lo"] < out["predicted_drop"] < out["drop_hi"]
    assert not out["in_training"]
    assert (tmp_path / "cache" / "predictors").is_dir()
    noarch = _run("predict", "score", str(ckpt))
    assert noarch.exit_code == 2 and "needs --arch" in noarch.stderr
