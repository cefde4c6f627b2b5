"""CV protocols, scores, comparison, importance, ranking and saved predictors on small data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_predict_published import make_paper_data

from mgedb.errors import PredictorError
from mgedb.predict import STUDY_FEATURES
from mgedb.predict.compare import common_keys, compare_feature_sets, default_specs
from mgedb.predict.evaluate import assemble, cross_validate, scores
from mgedb.predict.importance import feature_importance
from mgedb.predict.models import make_regressor
from mgedb.predict.predictor import Predictor, default_predictor, train_predictor
from mgedb.predict.published import PublishedData, load_published
from mgedb.predict.ranking import _top1, group_ranking_scores, rank_pai


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> PublishedData:
    return load_published(make_paper_data(tmp_path_factory.mktemp("paper")))


def test_scores_hand_computed() -> None:
    s = scores(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0, 5.0]))
    # SS_res = 1, SS_tot = 5 -> R² = 0.8; MAE = 0.25; monotone -> ρ = 1
    assert s["r2"] == pytest.approx(0.8)
    assert s["mae"] == pytest.approx(0.25)
    assert s["spearman"] == pytest.approx(1.0)
    c = scores(np.array([1.0, 2.0]), np.array([3.0, 3.0]))
    assert math.isnan(c["spearman"])
    assert math.isnan(scores(np.array([1.0]), np.array([1.0]))["r2"])


def test_assemble_pai_only_and_target(data: PublishedData) -> None:
    d = assemble(data.records, data.layers, "mge")
    assert set(d.meta["pruner"]) == {"grasp", "er", "erk", "prospr", "synflow", "uniform", "snip"}
    assert len(d.X) == 2 * 2 * 7 * 4 * 2
    assert (d.meta["basis"] == "reference").all()
    # reference = best accuracy over all pruners incl. rigl (DST), so every drop is ≥ 0
    assert (d.y >= 0).all()
    all_d = assemble(data.records, data.layers, "mge", pai_only=False)
    assert len(all_d.X) == 2 * 2 * 8 * 4 * 2


def test_kfold_per_architecture_learns_signal(data: PublishedData) -> None:
    d = assemble(data.records, data.layers, "mge")
    cv = cross_validate(d, "kfold", regressor="ridge")
    s = cv.summary().set_index("group")
    assert list(s.index) == ["CONV-6", "Resnet-20"]
    assert (s["folds"] == 5).all()
    assert (s["r2_mean"] > 0.75).all()  # sink_nodes and disc_nodes carry sparsity and pruner
    assert len(cv.oof) == len(d.X) and cv.oof.index.is_unique
    noise = assemble(data.records, data.layers, "rolled-channel-mean")
    cvn = cross_validate(noise, "kfold", regressor="ridge")
    assert (cvn.summary()["r2_mean"] < 0.3).all()


def test_protocol_structure(data: PublishedData) -> None:
    d = assemble(data.records, data.layers, "mge")
    lodo = cross_validate(d, "lodo", regressor="ridge")
    assert sorted(lodo.folds["fold"].unique()) == ["CIFAR-10", "CIFAR-100"]
    for _, o in lodo.oof.groupby(["group", "fold"]):
        assert o["dataset"].nunique() == 1
    loao = cross_validate(d, "loao", regressor="ridge")
    assert sorted(loao.folds["fold"]) == ["CONV-6", "Resnet-20"]
    held = loao.oof.groupby("fold")["model"].unique()
    assert all(len(v) == 1 and v[0] == k for k, v in held.items())
    ps = cross_validate(d, "per-sparsity", regressor="ridge")
    assert set(ps.folds["group"]) == {f"{m}@{s:g}" for m in ("CONV-6", "Resnet-20")
                                      for s in (0.6, 0.8, 0.9, 0.95)}
    lgo = cross_validate(d, "lgo", regressor="ridge", keep_models=True)
    for fm in lgo.models:  # no (dataset, sparsity) setting on both sides of a split
        test = d.meta.loc[fm.test_keys]
        train = d.meta[(d.meta["model"] == fm.group) & ~d.meta.index.isin(fm.test_keys)]
        ts = set(zip(test["dataset"], test["sparsity"], strict=True))
        tr = set(zip(train["dataset"], train["sparsity"], strict=True))
        assert ts and not ts & tr
    with pytest.raises(PredictorError, match="unknown protocol"):
        cross_validate(d, "bogus")


def test_loao_rejects_layerwise_sets(data: PublishedData) -> None:
    d = assemble(data.records, data.layers, "density")
    with pytest.raises(PredictorError, match="architecture-independent"):
        cross_validate(d, "loao")
    assert "density" not in default_specs("loao")
    assert "mge+density" not in default_specs("loao") and "mge" in default_specs("loao")


def test_same_seed_same_result(data: PublishedData) -> None:
    d = assemble(data.records, data.layers, "mge-structural")
    a = cross_validate(d, "kfold", seed=3)
    b = cross_validate(d, "kfold", seed=3)
    pd.testing.assert_frame_equal(a.oof, b.oof)


def test_regressors() -> None:
    for name in ("hgb", "rf", "ridge"):
        assert make_regressor(name).steps[-1][0] == "reg"
    with pytest.raises(PredictorError, match="unknown regressor"):
        make_regressor("svm")
    try:
        import xgboost  # noqa: F401
    except ImportError:
        with pytest.raises(PredictorError, match="pip install xgboost"):
            make_regressor("xgb")
    else:
        assert make_regressor("xgb").steps[-1][0] == "reg"


def test_rf_ridge_accept_nan_columns(data: PublishedData) -> None:
    d = assemble(data.records, data.layers, "ramanujan")  # IMDB of layer 0 is always NaN
    assert d.X.isna().any().any()
    for reg in ("rf", "ridge", "hgb"):
        cv = cross_validate(d.subset(d.meta.index[d.meta["model"] == "CONV-6"]), "kfold",
                            regressor=reg)
        assert len(cv.oof) == (d.meta["model"] == "CONV-6").sum()


def test_compare_uses_common_rows(data: PublishedData) -> None:
    recs = data.records.copy()
    drop_key = recs.loc[recs["pruner"] == "snip", "key"].iloc[0]
    lay = data.layers[data.layers["key"] != drop_key]
    comp = compare_feature_sets(recs, lay, ["mge", "density", "mge+density"], regressor="ridge")
    for res in comp.results.values():
        assert drop_key not in res.oof.index
        assert len(res.oof) == 2 * 2 * 7 * 4 * 2 - 1
    t = comp.table()
    assert list(t.columns) == ["CONV-6", "Resnet-20", "mean"]
    assert t.loc["mge", "mean"] == pytest.approx(t.loc["mge", ["CONV-6", "Resnet-20"]].mean())
    assert comp.best(unions=True)[0] == "mge+density"
    d1 = assemble(recs, lay, "mge")
    d2 = assemble(recs, lay, "density")
    assert len(common_keys([d1, d2])) == len(d1.X) - 1


def test_importance_finds_the_informative_features(data: PublishedData) -> None:
    d = assemble(data.records, data.layers, "mge")
    imp = feature_importance(d, regressor="ridge", n_repeats=3, with_shap=False)
    assert set(imp.top(2)) == {"sink_nodes", "disc_nodes"}
    assert list(imp.by_architecture.columns) == ["CONV-6", "Resnet-20"]
    assert list(imp.by_sparsity.columns) == [0.6, 0.8, 0.9, 0.95]
    # within one sparsity level only the pruner effect (disc_nodes) is left to explain (grouped
    # folds on 14 configurations per level are noisy: take the mean over the levels)
    assert imp.by_sparsity.mean(axis=1).idxmax() == "disc_nodes"


def test_ranking_metrics_hand_computed() -> None:
    assert _top1(np.array([1.0, 3.0, 2.0]), np.array([0.1, 0.9, 0.5])) == 1.0
    assert _top1(np.array([3.0, 3.0, 2.0]), np.array([0.1, 0.9, 0.5])) == 0.5
    t = pd.DataFrame({"model": "M", "dataset": "D", "sparsity": 0.9,
                      "pruner": ["a", "b", "c", "d"], "accuracy": [0.1, 0.2, 0.3, 0.4],
                      "good": [1.0, 2.0, 3.0, 4.0], "bad": [4.0, 3.0, 2.0, 1.0],
                      "swap": [2.0, 1.0, 3.0, 4.0]})
    g = group_ranking_scores(t, ["good", "bad", "swap"]).iloc[0]
    assert g["tau:good"] == pytest.approx(1.0) and g["tau:bad"] == pytest.approx(-1.0)
    assert g["tau:swap"] == pytest.approx(4 / 6)  # one discordant pair of six
    assert g["top1:good"] == 1.0 and g["top1:bad"] == 0.0 and g["best"] == "d"


def test_rank_pai_runs_with_baselines(data: PublishedData) -> None:
    r = rank_pai(data.records, data.layers, "mge", regressor="ridge")
    assert r.methods == ["predictor:mge", "mean Δr", "mean IMDB", "mean density",
                         "model:density", "model:ramanujan"]
    assert len(r.groups) == 2 * 2 * 4
    assert (r.groups["pruners"] == 7).all()
    s = r.summary().set_index("method")
    # disc_nodes encodes the pruner effect exactly: the MGE predictor ranks well
    assert s.loc["predictor:mge", "tau_mean"] > 0.8
    assert s.loc["predictor:mge", "top1"] > 0.8
    # the synthetic layer densities carry the pruner effect without noise: a density model wins
    assert s.loc["model:density", "tau_mean"] == pytest.approx(1.0)
    assert r.winner() == "model:density"
    assert abs(s.loc["mean Δr", "tau_mean"]) < 0.4  # random Ramanujan values: no skill
    per = r.summary("model")
    assert set(per["model"]) == {"CONV-6", "Resnet-20"}


def test_predictor_train_save_load_score(data: PublishedData, tmp_path: Path) -> None:
    p = train_predictor(data.records, data.layers, "mge", regressor="ridge", protocol="loao")
    m = p.manifest
    assert m["feature_set"] == "mge" and m["protocol"] == "loao"
    assert m["feature_names"] == {"*": list(p.columns["*"])}
    assert len(m["training_keys"]) == m["n_train"] == 2 * 2 * 7 * 4 * 2
    assert len(m["cv_folds"]) == 2
    path = p.save(tmp_path / "p.joblib")
    json.loads((tmp_path / "p.joblib.json").read_text())
    q = Predictor.load(path)
    some = data.records[data.records["pruner"] == "snip"].head(4)
    a, b = p.predict(some), q.predict(some)
    np.testing.assert_allclose(a["predicted_drop"], b["predicted_drop"])
    assert (b["relative_to"] == "reference").all()
    ref = {(r["model"], r["dataset"]): r["reference_accuracy"] for r in m["reference"]}
    exp = [ref[(mo, ds)] for mo, ds in zip(some["model"], some["dataset"], strict=True)]
    np.testing.assert_allclose(b["predicted_accuracy"], np.array(exp) * (1 - b["predicted_drop"]))
    bad = some.copy()
    bad["sink_nodes"] = np.nan
    with pytest.raises(PredictorError, match="lacks the features of predictor 'mge'"):
        q.predict(bad)
    with pytest.raises(PredictorError, match="no such predictor"):
        Predictor.load(tmp_path / "absent.joblib")
    (tmp_path / "junk.joblib").write_bytes(b"not a pickle")
    with pytest.raises(PredictorError, match="not a readable predictor"):
        Predictor.load(tmp_path / "junk.joblib")


def test_per_architecture_predictor_rejects_other_architectures(data: PublishedData) -> None:
    recs = data.records
    conv = recs[recs["model"] == "CONV-6"]
    p = train_predictor(conv, data.layers, "density", regressor="ridge", protocol="kfold")
    assert list(p.pipelines) == ["CONV-6"] and p.per_architecture
    other = recs[recs["model"] == "Resnet-20"].head(1)
    with pytest.raises(PredictorError, match="trained for CONV-6"):
        p.predict(other, data.layers)
    assert len(p.predict(conv.head(2), data.layers)) == 2


def test_default_predictor_is_cached(tmp_path: Path) -> None:
    p = default_predictor(cache_dir=tmp_path)
    files = list((tmp_path / "predictors").glob("*.joblib"))
    assert len(files) == 1
    assert p.feature_set == STUDY_FEATURES and not p.weight_dependent
    assert p.manifest["n_train"] > 1000
    # grouped-CV scores, intervals and the pooled fallback for other architectures
    assert p.manifest["protocol"] == "kfold" and p.manifest["group_seeds"]
    assert {r["group"] for r in p.manifest["cv_summary"]} == {
        "CONV-6", "Resnet-20", "Resnet-32", "Wide-Resnet-28-2"}
    assert set(p.pipelines) == {"CONV-6", "Resnet-20", "Resnet-32", "Wide-Resnet-28-2", "*"}
    assert 0.8 < p.manifest["intervals"]["Resnet-20"]["coverage"] < 1.0
    mtime = files[0].stat().st_mtime_ns
    q = default_predictor(cache_dir=tmp_path)
    assert files[0].stat().st_mtime_ns == mtime
    assert q.manifest["training_keys"] == p.manifest["training_keys"]
    files[0].write_bytes(b"corrupt")
    r = default_predictor(cache_dir=tmp_path)  # rebuilt, not an error
    assert r.manifest["data_digest"] == p.manifest["data_digest"]
