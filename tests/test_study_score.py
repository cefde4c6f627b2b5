"""The study's score step with the study's predictor: intervals, domain check, training notice and
the report, without pruning or measuring (a predictor trained on small synthetic data)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from test_predict_published import make_paper_data

import mgedb.metrics
import mgedb.predict.predictor
from mgedb.predict import STUDY_FEATURES, STUDY_REGRESSOR
from mgedb.predict.predictor import train_predictor
from mgedb.predict.published import load_published, shipped_digest
from mgedb.predict.records import MGE_METRICS
from mgedb.study import NetworkResult, Run, StudyConfig, StudyResult
from mgedb.study.report import write_report
from mgedb.study.score import rank, score


def test_score_gives_intervals_domain_and_training_notice(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    data = load_published(make_paper_data(tmp_path / "paper"))
    p = train_predictor(data.records, data.layers, STUDY_FEATURES, regressor="ridge",
                        protocol="kfold", fallback=True)
    monkeypatch.setattr(mgedb.predict.predictor, "default_predictor", lambda features: p)
    monkeypatch.setattr(mgedb.metrics, "normalise", lambda raw: dict(raw))
    rec = data.records.set_index("key")
    lay = data.layers[data.layers["encoding"] == "rolled"]
    results = []
    for i, pruner in enumerate(("erk", "snip", "uniform")):
        key = f"published/Resnet-20/CIFAR-10/{pruner}/0.9/0"
        ckpt = tmp_path / f"{pruner}.pt"
        dens = lay[lay["key"] == key].set_index("layer_name")["density"].to_dict()
        ckpt.with_name(ckpt.name + ".json").write_text(pd.Series(
            {"layer_densities": dens}).to_json())
        metrics = {m: float(rec.at[key, m]) for m in (*MGE_METRICS, "nodes", "edges")}
        if i == 2:  # a mask unlike any training network
            metrics["disc_nodes"] = 3.5
        results.append(NetworkResult(Run(pruner, 0.9, 0), ckpt, f"mgedb/{pruner}", metrics, 0.9))
    cfg = StudyConfig(out=tmp_path / "out", pruners=("erk", "snip", "uniform"),
                      sparsities=(0.9,))
    info = score(cfg, results, 10)
    assert info["feature_set"] == STUDY_FEATURES and info["group"] == "Resnet-20"
    assert info["interval"]["level"] == 0.9 and info["interval"]["coverage"] > 0.5
    for r in results:
        # clipped to the possible range: accuracy in [0, 1]
        assert r.drop_lo <= r.predicted_drop <= r.drop_hi <= 1
        assert 0 <= r.predicted_accuracy <= 1
    uniform = results[2]
    assert not uniform.in_domain and "disc_nodes" in uniform.domain_notes
    assert any("uniform 0.9 seed 0: outside the predictor's domain" in w
               for w in info["warnings"])
    ranking, _ = rank(results)
    assert {"drop_lo", "drop_hi", "in_domain"} <= set(ranking.columns)
    # the shipped grouped-CV scores of the study's predictor, as default_predictor attaches them
    cvs = mgedb.predict.predictor.shipped_cv_scores(STUDY_FEATURES, STUDY_REGRESSOR,
                                                    shipped_digest())
    assert cvs is not None
    info["cv_scores"] = cvs
    result = StudyResult(cfg, results, ranking, {}, {"score": 0.0}, "db", predictor=info)
    md = write_report(result).read_text()
    for label, k in (("R² of the drop, grouped 5-fold", "r2_kfold_grouped"),
                     ("unseen setting", "tau_lgo"), ("unseen pruner", "tau_lopo"),
                     ("90 % interval coverage, grouped folds", "coverage_kfold")):
        m, sd = cvs["scores"][k]
        assert f"{label}" in md and f"| {m:.3f} ± {sd:.3f} |" in md
    assert "| uniform ⚠ |" in md and "**Domain warnings**" in md
    assert "Intervals: 90 % split-conformal" in md
    table = pd.read_csv(cfg.out / "results.csv")
    assert {"drop_lo", "drop_hi", "in_domain", "in_training", "domain_notes"} <= set(table)
