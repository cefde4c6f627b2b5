"""The study's score step: predict every network's accuracy drop, explain it, rank the pruners.

:func:`score` scores the measured networks with the predictor trained on the published table
(and the occlusion attribution of its three most influential topometrics); :func:`rank` ranks the
pruners per sparsity and, where networks were trained, gives Kendall τ between the predicted and
the true drop (:func:`mgedb.predict.ranking.kendall_tau`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from mgedb.predict.ranking import kendall_tau
from mgedb.study.config import DATASET_NAMES, NetworkResult, StudyConfig

__all__ = ["rank", "score"]


def score(cfg: StudyConfig, results: Sequence[NetworkResult]) -> dict[str, Any]:
    from mgedb.metrics import normalise
    from mgedb.models import REFERENCE_NAMES
    from mgedb.predict.attribution import occlusion
    from mgedb.predict.predictor import default_predictor
    from mgedb.predict.records import record_from_metrics

    predictor = default_predictor(cfg.features)
    dataset = DATASET_NAMES.get(cfg.dataset, cfg.dataset)
    records = pd.concat([
        record_from_metrics(normalise(r.metrics), model=REFERENCE_NAMES[cfg.model],
                            dataset=dataset, pruner=r.run.pruner, sparsity=r.run.sparsity,
                            seed=r.run.seed, key=r.key, accuracy=r.accuracy,
                            dense_accuracy=r.dense_accuracy)
        for r in results], ignore_index=True)
    pred = predictor.predict(records)
    drops = dict(zip(pred["key"], pred["predicted_drop"].astype(float), strict=True))
    accs = dict(zip(pred["key"], pred["predicted_accuracy"].astype(float), strict=True))
    attr = occlusion(predictor, records)
    for r in results:
        r.predicted_drop, r.predicted_accuracy = drops[r.key], accs[r.key]
        r.attribution = {str(c): float(v) for c, v in
                         zip(attr.columns, attr.loc[r.key].to_numpy(dtype=float), strict=True)}
    cv = predictor.manifest.get("cv_summary") or []
    return {"feature_set": predictor.feature_set, "n_train": predictor.manifest.get("n_train"),
            "regressor": predictor.manifest.get("regressor"), "cv_summary": cv,
            "relative_to": str(pred["relative_to"].iloc[0]),
            "architectures": predictor.manifest.get("architectures")}


def rank(results: Sequence[NetworkResult]) -> tuple[pd.DataFrame, dict[float, float]]:
    """Pruners ranked per sparsity by mean predicted drop (1 = smallest drop), with the three most
    influential metrics (mean occlusion attribution over seeds) and, where known, the true drop
    and Kendall τ between the predicted and the true drop over the pruners of a sparsity."""
    rows = []
    key = lambda r: (r.run.sparsity, r.run.pruner)  # noqa: E731
    for (sparsity, pruner), group in itertools.groupby(sorted(results, key=key), key=key):
        nets = list(group)
        drops = np.array([n.predicted_drop for n in nets])
        attr = pd.DataFrame([n.attribution for n in nets]).mean()
        top = attr.abs().sort_values(ascending=False, kind="stable").index[:3]
        true = np.array([n.true_drop for n in nets])
        rows.append({
            "sparsity": sparsity, "pruner": pruner, "seeds": len(nets),
            "predicted_drop": float(drops.mean()),
            "predicted_drop_std": float(drops.std(ddof=1)) if len(nets) > 1 else math.nan,
            "predicted_accuracy": float(np.mean([n.predicted_accuracy for n in nets])),
            "true_drop": float(np.nanmean(true)) if not np.isnan(true).all() else math.nan,
            "top_metrics": [(str(c), float(attr[c])) for c in top],
        })
    table = pd.DataFrame(rows)
    table["rank"] = table.groupby("sparsity")["predicted_drop"].rank(method="min").astype(int)
    table["true_rank"] = table.groupby("sparsity")["true_drop"].rank(method="min")
    table = table.sort_values(["sparsity", "rank", "pruner"]).reset_index(drop=True)
    tau = {float(s): kendall_tau(table.loc[table["sparsity"] == s, "predicted_drop"].tolist(),
                              table.loc[table["sparsity"] == s, "true_drop"].tolist())
           for s in sorted(set(table["sparsity"]))}
    return table, tau
