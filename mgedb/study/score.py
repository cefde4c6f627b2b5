"""The study's score step: predict every network's accuracy drop, explain it, rank the pruners.

:func:`score` scores the measured networks with the study's predictor (``STUDY_FEATURES``: mask-only
MGE topometrics, the setting, the layer densities from the pruning masks and their within-setting
centred versions, chosen by grouped CV on the published table), with a 90 % split-conformal
interval, the domain check and the training notice per network, and the occlusion attribution of
its three most influential features; :func:`rank` ranks the pruners per sparsity and, where
networks were trained, gives Kendall τ between the predicted and the true drop
(:func:`mgedb.predict.ranking.kendall_tau`).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mgedb.predict.ranking import kendall_tau
from mgedb.study.config import DATASET_NAMES, NetworkResult, StudyConfig

__all__ = ["layer_densities", "rank", "score"]

log = logging.getLogger(__name__)


def layer_densities(checkpoint: Path, model: str, classes: int) -> dict[str, float]:
    """Per-layer density of a pruned checkpoint: from its sidecar (written by the prune stage),
    else from the checkpoint's masks."""
    try:
        side = json.loads(checkpoint.with_name(checkpoint.name + ".json").read_text())
        dens = side.get("layer_densities") if isinstance(side, dict) else None
    except (OSError, json.JSONDecodeError):
        dens = None
    if isinstance(dens, dict) and dens:
        return {str(k): float(v) for k, v in dens.items()}
    from mgedb.checkpoint import load_checkpoint

    ck = load_checkpoint(checkpoint, model, classes=classes)
    return {n: float(m.sum()) / m.numel() for n, m in ck.masks.items()}


def score(cfg: StudyConfig, results: Sequence[NetworkResult], classes: int | None = None
          ) -> dict[str, Any]:
    """Score every network (see the module docstring); returns the predictor's description for
    the report (feature set, grouped-CV scores, interval coverage, domain warnings)."""
    from mgedb.metrics import normalise
    from mgedb.models import REFERENCE_NAMES
    from mgedb.predict.attribution import occlusion
    from mgedb.predict.predictor import default_predictor
    from mgedb.predict.records import density_layers, record_from_metrics

    predictor = default_predictor(cfg.features)
    dataset = DATASET_NAMES.get(cfg.dataset, cfg.dataset)
    arch = REFERENCE_NAMES.get(cfg.model, cfg.model)
    records = pd.concat([
        record_from_metrics(normalise(r.metrics), model=arch,
                            dataset=dataset, pruner=r.run.pruner, sparsity=r.run.sparsity,
                            seed=r.run.seed, key=r.key, accuracy=r.accuracy,
                            dense_accuracy=r.dense_accuracy)
        for r in results], ignore_index=True)
    n_classes = classes or cfg.classes or 10
    layers = pd.concat([density_layers(r.key, list(layer_densities(
        r.checkpoint, cfg.model, n_classes).items())) for r in results], ignore_index=True)
    pred = predictor.predict(records, layers).set_index("key")
    attr = occlusion(predictor, records, layers)
    warnings: list[str] = []
    rows: dict[str, dict[str, Any]] = {
        str(k): v for k, v in pred.to_dict("index").items()}  # type: ignore[misc]
    for r in results:
        p = rows[r.key]
        r.predicted_drop, r.predicted_accuracy = p["predicted_drop"], p["predicted_accuracy"]
        r.drop_lo = float(p.get("drop_lo", math.nan))
        r.drop_hi = float(p.get("drop_hi", math.nan))
        r.in_domain = bool(p.get("in_domain", True))
        r.in_training = bool(p.get("in_training", False))
        r.domain_notes = str(p.get("domain_notes", "") or "")
        if not r.in_domain:
            warnings.append(f"{r.run.label}: outside the predictor's domain ({r.domain_notes})")
        if r.in_training:
            warnings.append(f"{r.run.label}: in the predictor's training table (as "
                            f"{p.get('training_match')}); not an out-of-sample prediction")
        a = attr.loc[r.key].dropna()
        r.attribution = {str(c): float(v) for c, v in zip(a.index, a.to_numpy(dtype=float),
                                                          strict=True)}
    for w in warnings:
        log.warning(w)
    m = predictor.manifest
    group = arch if arch in predictor.pipelines else "*"
    return {"feature_set": predictor.feature_set, "n_train": m.get("n_train"),
            "regressor": m.get("regressor"), "cv_summary": m.get("cv_summary") or [],
            "protocol": m.get("protocol"), "group_seeds": m.get("group_seeds"),
            "cv_scores": m.get("cv_scores"), "cv_scores_note": m.get("cv_scores_note"),
            "group": group,
            "fallback_feature_set": m.get("fallback_feature_set"),
            "interval": (m.get("intervals") or {}).get(group),
            "relative_to": str(pred["relative_to"].iloc[0]),
            "architectures": m.get("architectures"), "warnings": warnings}


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
            "drop_lo": float(np.mean([n.drop_lo for n in nets])),
            "drop_hi": float(np.mean([n.drop_hi for n in nets])),
            "in_domain": all(n.in_domain for n in nets),
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
