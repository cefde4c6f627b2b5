"""Grouped CV, leak-free reference, pre-training feature sets, intervals, domain, versions."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from test_predict_published import make_paper_data

from mgedb.errors import PredictorError
from mgedb.predict.compare import _std_over_seeds, compare_feature_sets
from mgedb.predict.domain import conformal_coverage, conformal_quantile, cross_fitted_scores
from mgedb.predict.evaluate import assemble, cross_validate, network_groups
from mgedb.predict.features import build_features
from mgedb.predict.paper import _profiles, profile_agreement, verdict
from mgedb.predict.predictor import Predictor, train_predictor
from mgedb.predict.published import PublishedData, load_published
from mgedb.predict.records import PAI_PRUNERS
from mgedb.predict.targets import reference_accuracies


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> PublishedData:
    return load_published(make_paper_data(tmp_path_factory.mktemp("paper"),
                                          sparsities=(0.6, 0.9, 0.95)))


def _split_networks(cv_models: list, meta: pd.DataFrame) -> int:
    """How many fold models have a network configuration on both sides of their split."""
    groups = pd.Series(network_groups(meta), index=meta.index)
    n = 0
    for fm in cv_models:
        test = set(groups.loc[fm.test_keys])
        train = set(groups[(meta["model"] == fm.group) & ~meta.index.isin(fm.test_keys)])
        n += bool(test & train)
    return n


def test_grouped_kfold_never_splits_the_seeds_of_a_network(data: PublishedData) -> None:
    d = assemble(data.records, data.layers, "mge")
    grouped = cross_validate(d, "kfold", regressor="ridge", keep_models=True)
    assert _split_networks(grouped.models, d.meta) == 0
    assert len(grouped.oof) == len(d.X)
    leaky = cross_validate(d, "kfold", regressor="ridge", keep_models=True, group_seeds=False)
    assert _split_networks(leaky.models, d.meta) == len(leaky.models)  # every fold leaks


def test_leave_one_pruner_out(data: PublishedData) -> None:
    d = assemble(data.records, data.layers, "mge")
    cv = cross_validate(d, "lopo", regressor="ridge")
    assert sorted(set(cv.folds["fold"])) == sorted(PAI_PRUNERS)
    for (_, fold), o in cv.oof.groupby(["group", "fold"]):
        assert set(o["pruner"]) == {fold}


def test_reference_never_includes_scored_rows(data: PublishedData) -> None:
    r = data.records
    ref = reference_accuracies(r).set_index(["model", "dataset"])["reference_accuracy"]
    dst = r[~r["pruner"].isin(PAI_PRUNERS)].groupby(["model", "dataset"])["accuracy"].max()
    pd.testing.assert_series_equal(ref.sort_index(), dst.sort_index(), check_names=False)
    old = reference_accuracies(r, scored=None).set_index(["model", "dataset"])
    assert (old["reference_accuracy"] == r.groupby(["model", "dataset"])["accuracy"].max()).all()
    # a (model, dataset) without any unscored run falls back, and says so
    only_pai = r[r["pruner"].isin(PAI_PRUNERS)]
    fb = reference_accuracies(only_pai)
    assert fb["origin"].str.contains("scored rows included").all()


def test_setting_and_centred_sets(data: PublishedData) -> None:
    r = data.records
    ft = build_features("setting+mge-structural-centred", r, data.layers)
    X = ft.X
    row = r.set_index("key").loc[X.index[0]]
    assert X.iloc[0]["sparsity"] == row["sparsity"]
    assert X.iloc[0][f"dataset={row['dataset']}"] == 1.0
    assert X.iloc[0][["dataset=CIFAR-10", "dataset=CIFAR-100", "dataset=tinyimagenet"]].sum() == 1
    assert X.iloc[0]["log10_edges"] == pytest.approx(math.log10(row["edges"]))
    # centred columns have mean 0 within every (model, dataset, sparsity) setting
    meta = r.set_index("key").loc[X.index]
    means = X.filter(like="centred:").groupby([meta["model"], meta["dataset"],
                                               meta["sparsity"]]).mean()
    assert np.abs(means.to_numpy()).max() < 1e-9
    c = X["centred:disc_nodes"]
    raw = r.set_index("key")["disc_nodes"]
    k = X.index[0]
    same = meta[(meta["model"] == meta.at[k, "model"]) & (meta["dataset"] == meta.at[k, "dataset"])
                & (meta["sparsity"] == meta.at[k, "sparsity"])].index
    assert c[k] == pytest.approx(raw[k] - raw[same].mean())
    assert not ft.per_architecture and not ft.weight_dependent
    assert build_features("density-centred", r, data.layers).per_architecture


def test_compare_over_cv_seeds(data: PublishedData) -> None:
    comp = compare_feature_sets(data.records, data.layers, ["mge", "sparsity"],
                                regressor="ridge", seeds=[0, 1, 2])
    assert comp.n_seeds == 3
    per = [p.at["mge", "mean"] for p in comp._per_seed("r2")]
    assert comp.table().at["mge", "mean"] == pytest.approx(np.mean(per))
    assert comp.std_table().at["mge", "mean"] == pytest.approx(np.std(per, ddof=1))
    best, runner, clear = comp.clearly_best()
    assert (best, runner) == ("mge", "sparsity") and clear


def test_std_over_seeds_needs_two_values_and_does_not_warn() -> None:
    # seeds × cells; the last cell is a set that does not cover an architecture
    stack = np.array([[1.0, 2.0, np.nan], [3.0, np.nan, np.nan], [5.0, 4.0, np.nan]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "Degrees of freedom <= 0" would raise
        sd = _std_over_seeds(stack)
    np.testing.assert_allclose(sd[:2], [2.0, np.sqrt(2.0)])
    assert np.isnan(sd[2])


def test_conformal_quantile_and_coverage() -> None:
    r = np.arange(1.0, 10.0)  # 9 residuals: the ⌈10·0.9⌉ = 9th smallest
    assert conformal_quantile(r, 0.9) == 9.0
    assert conformal_quantile(r, 0.5) == 5.0  # ⌈10·0.5⌉ = 5
    assert conformal_quantile(r[:5], 0.9) == math.inf  # ⌈6·0.9⌉ = 6 > 5
    rng = np.random.default_rng(0)
    n = 4000
    oof = pd.DataFrame({"group": "g", "fold": rng.integers(0, 5, n),
                        "sparsity": rng.choice([0.6, 0.9], n), "y_true": 0.0})
    oof["y_pred"] = rng.normal(0, 1, n) * np.where(oof["sparsity"] > 0.8, 3.0, 1.0)
    cov = conformal_coverage(oof, 0.9)
    assert len(cov) == 5
    assert np.average(cov["covered"], weights=cov["n"]) == pytest.approx(0.9, abs=0.02)
    # the per-sparsity scale makes the wide level's intervals wider
    assert cov["width"].min() > 0


def test_cross_fitted_scores_use_the_other_folds_scale() -> None:
    # fold 0: |r| 1, 2 ; fold 1: |r| 3, 4 (one sparsity level): each fold is scaled by the other
    s = cross_fitted_scores(np.array([1.0, -2.0, 3.0, -4.0]), np.full(4, 0.9),
                            np.array([0, 0, 1, 1]))
    np.testing.assert_allclose(s, [1 / 3.5, 2 / 3.5, 3 / 1.5, 4 / 1.5])
    assert np.isnan(cross_fitted_scores(np.ones(3), np.full(3, 0.9), np.zeros(3))).all()


def test_coverage_is_nominal_with_few_rows_per_sparsity() -> None:
    # 40 sparsity levels × 15 rows, spread growing with the level: a scale fitted on the residuals
    # it divides shrinks them (the old under-coverage); the cross-fitted one does not
    rng = np.random.default_rng(1)
    covered = []
    for _ in range(10):
        sp = np.repeat(np.linspace(0.5, 0.99, 40), 15)
        oof = pd.DataFrame({"group": "g", "fold": rng.integers(0, 5, len(sp)), "sparsity": sp,
                            "y_true": 0.0, "y_pred": rng.normal(0, 1, len(sp)) * (1 + 5 * sp)})
        c = conformal_coverage(oof, 0.9)
        covered.append(np.average(c["covered"], weights=c["n"]))
    assert np.mean(covered) == pytest.approx(0.9, abs=0.015)  # the old scale: about 0.87


def test_predictor_intervals_domain_and_training_notice(data: PublishedData) -> None:
    p = train_predictor(data.records, data.layers, "mge-structural+setting", regressor="ridge",
                        protocol="kfold")
    iv = p.manifest["intervals"]["*"]
    assert iv["level"] == 0.9 and 0.75 <= iv["coverage"] <= 1.0 and iv["q"] > 0
    assert set(p.manifest["versions"]) == {"mgedb", "scikit-learn", "numpy"}
    train_row = data.records[data.records["key"] == p.manifest["training_keys"][0]]
    out = p.predict(train_row).iloc[0]
    assert out["drop_lo"] < out["predicted_drop"] < out["drop_hi"]
    assert out["in_training"] and out["training_match"] == train_row["key"].iloc[0]
    assert out["in_domain"]
    odd = train_row.assign(key="x/odd", dataset="ImageNet", sparsity=0.999, seed=9)
    odd["disc_nodes"] = 3.5
    o = p.predict(odd).iloc[0]
    assert not o["in_domain"] and not o["in_training"]
    notes = o["domain_notes"]
    assert "dataset ImageNet not in training" in notes
    assert "sparsity 0.999 outside the training range [0.6, 0.95]" in notes
    assert "disc_nodes" in notes and "far from the training networks" in notes


def test_fallback_model_scores_another_architecture(data: PublishedData) -> None:
    conv = data.records[data.records["model"] == "CONV-6"]
    p = train_predictor(conv, data.layers, "mge-structural+density", regressor="ridge",
                        protocol=None, fallback=True)
    assert p.manifest["fallback_feature_set"] == "mge-structural"
    other = data.records[data.records["model"] == "Resnet-20"].head(2)
    out = p.predict(other, data.layers)
    assert (~out["in_domain"]).all()
    assert out["domain_notes"].str.contains("architecture Resnet-20 not in training").all()
    assert np.isfinite(out["drop_hi"]).all()


def test_version_mismatch_is_refused(data: PublishedData, tmp_path: Path) -> None:
    p = train_predictor(data.records, data.layers, "mge-structural", regressor="ridge",
                        protocol=None, intervals=False)
    path = p.save(tmp_path / "p.joblib")
    assert "train_z" not in path.with_name("p.joblib.json").read_text()
    Predictor.load(path)  # same versions: fine
    obj = joblib.load(path)
    obj["manifest"]["versions"]["scikit-learn"] = "0.0.1"
    joblib.dump(obj, path)
    with pytest.raises(PredictorError, match=r"saved under scikit-learn 0\.0\.1 \(now "):
        Predictor.load(path)


def test_verdicts_and_profile_agreement() -> None:
    assert verdict(0.10, 0.03) == "holds"
    assert verdict(-0.10, 0.03) == "does not hold (reversed)"
    assert verdict(0.02, 0.03) == "within spread (no clear difference)"
    assert verdict(math.nan, 0.1) == "not computable"
    feats = list("abcdef")
    rows = []
    for seed in (0, 1):
        for model, order in (("A", [6, 5, 4, 3, 2, 1]), ("B", [1, 2, 3, 4, 5, 6])):
            rows += [{"seed": seed, "model": model, "sparsity": "all", "fold": "0",
                      "feature": f, "importance": float(v)} for f, v in zip(feats, order,
                                                                           strict=True)]
    between, _, within, _ = profile_agreement(pd.DataFrame(rows), "model")
    assert between == pytest.approx(-1.0) and within == pytest.approx(1.0)


def test_parallel_folds_give_the_same_predictions(data: PublishedData) -> None:
    from joblib import parallel_config

    d = assemble(data.records, data.layers, "mge-structural+setting")
    one = cross_validate(d, "kfold", regressor="hgb", seed=3)
    with parallel_config(n_jobs=2):
        two = cross_validate(d, "kfold", regressor="hgb", seed=3)
    pd.testing.assert_frame_equal(one.oof, two.oof)
    pd.testing.assert_frame_equal(one.folds, two.folds)


def test_permutation_importance_is_the_same_for_any_worker_count(data: PublishedData) -> None:
    from joblib import parallel_config

    d = assemble(data.records, data.layers, "mge-structural")
    d = d.subset(d.meta.index[d.meta["model"] == "CONV-6"])
    runs = [cross_validate(d, "kfold", regressor="ridge", seed=1, keep_models=True)]
    one = _profiles(d, runs, (1,))
    with parallel_config(backend="threading", n_jobs=2):  # (worker processes start slowly)
        two = _profiles(d, runs, (1,))
    pd.testing.assert_frame_equal(one, two)
    # one row per (architecture, part, fold, feature); parts: all rows and each sparsity
    assert set(one["sparsity"]) == {"all", "0.6", "0.9", "0.95"}
    assert len(one) == len(one.drop_duplicates(["model", "sparsity", "fold", "feature"]))
    assert one["importance"].abs().max() > 0.01


def test_predictions_and_intervals_lie_in_the_possible_range(data: PublishedData) -> None:
    p = train_predictor(data.records, data.layers, "mge-structural+setting", regressor="ridge",
                        protocol="kfold")
    recs = data.records[data.records["key"].isin(p.manifest["training_keys"])].head(4)
    p.manifest["intervals"]["*"]["q"] = 1e3  # an interval far wider than the possible range
    out = p.predict(recs)
    ref = p.manifest["reference"]
    base = [next(r["reference_accuracy"] for r in ref
                 if (r["model"], r["dataset"]) == (m, ds))
            for m, ds in zip(recs["model"], recs["dataset"], strict=True)]
    # accuracy in [0, 1] ⇒ drop in [1 − 1/base, 1]
    assert out["drop_hi"].tolist() == [1.0] * 4
    assert out["drop_lo"].to_numpy() == pytest.approx(1 - 1 / np.asarray(base))
    assert ((out["predicted_drop"] >= out["drop_lo"])
            & (out["predicted_drop"] <= out["drop_hi"])).all()



def test_shipped_cv_scores_refuse_other_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    from importlib.resources import files

    import mgedb.predict.predictor as pp
    from mgedb.predict import STUDY_FEATURES, STUDY_REGRESSOR
    from mgedb.predict.published import shipped_digest

    doc = json.loads((files("mgedb.data") / "predictor_cv.json").read_text())
    digest = shipped_digest()
    assert doc["data_digest"] == digest
    got = pp.shipped_cv_scores(STUDY_FEATURES, STUDY_REGRESSOR, digest)
    assert got is not None and len(got["cv_seeds"]) >= 3
    m, s = got["scores"]["r2_kfold_grouped"]
    assert 0 < m <= 1 and s >= 0
    assert pp.shipped_cv_scores(STUDY_FEATURES, STUDY_REGRESSOR, "other data") is None
    monkeypatch.setattr(pp, "versions", lambda: {**doc["versions"], "scikit-learn": "0.0.1"})
    with pytest.raises(PredictorError, match=r"computed under scikit-learn .* \(now 0\.0\.1\)"):
        pp.shipped_cv_scores(STUDY_FEATURES, STUDY_REGRESSOR, digest)
