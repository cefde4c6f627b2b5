"""Where a predictor may be trusted: split-conformal intervals and a domain-of-validity check.

**Intervals.** Split-conformal on grouped out-of-fold residuals: a network's interval is
``prediction ± q`` with ``q`` the ⌈(n+1)·level⌉-th smallest absolute out-of-fold residual of its
architecture (the folds keep every seed of a network together, so the residuals are those of
networks the fold model never saw). The residuals are scaled by a per-sparsity spread (errors grow
with sparsity), so an interval is ``prediction ± q·scale(sparsity)``. The scale is cross-fitted:
each calibration residual is divided by a scale fitted on the *other* folds' residuals
(:func:`cross_fitted_scores`), as a new network's residual is divided by a scale fitted without
it; a scale fitted on the residuals it divides shrinks them and the intervals under-cover (0.877
instead of 0.9 on grouped folds). :func:`conformal_coverage` measures the coverage honestly: each
fold's rows are covered or not by a ``q`` and a scale computed from the *other* folds only.

**Domain.** A network is *in domain* when its architecture, dataset and sparsity were seen in
training, every feature lies in the training range (widened by 5 % of the range) and its
standardised distance to the nearest training network is no larger than the 99th percentile of the
training networks' own nearest-other-configuration distances. A network whose features equal a
training network's (distance ≈ 0) was in the training table, and the check says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["DomainCheck", "conformal_coverage", "conformal_quantile", "cross_fitted_scores",
           "describe_domain", "sparsity_scale"]

#: Relative widening of the training feature range before a value counts as outside it.
RANGE_SLACK = 0.05
#: Distances below this (standardised units) mean "the same features as a training network" (the
#: stored training matrix is rounded to 6 decimals).
SAME_TOL = 1e-4


def conformal_quantile(abs_residuals: np.ndarray, level: float) -> float:
    """The split-conformal quantile: the ⌈(n+1)·level⌉-th smallest value (inf if n is too small)."""
    r = np.sort(np.asarray(abs_residuals, dtype=float)[np.isfinite(abs_residuals)])
    n = len(r)
    k = math.ceil((n + 1) * level)
    if n == 0 or k > n:
        return math.inf
    return float(r[k - 1])


def sparsity_scale(sparsity: np.ndarray, residuals: np.ndarray) -> dict[str, float]:
    """Mean |residual| per training sparsity level (the interval's local scale)."""
    s = pd.Series(np.abs(residuals)).groupby(np.round(np.asarray(sparsity, float), 6)).mean()
    return {f"{k:g}": float(max(v, 1e-9)) for k, v in s.items()}


def scale_at(scale: dict[str, float], sparsity: float) -> float:
    """The scale of the nearest training sparsity level (log-odds distance)."""
    levels = np.array([float(k) for k in scale])
    vals = np.array(list(scale.values()))

    def logit(p: np.ndarray | float) -> np.ndarray:
        p = np.clip(np.asarray(p, float), 1e-6, 1 - 1e-6)
        return np.asarray(np.log(p / (1 - p)))

    i = int(np.argmin(np.abs(logit(levels) - logit(sparsity))))
    return float(vals[i])


def cross_fitted_scores(residuals: np.ndarray, sparsity: np.ndarray, folds: np.ndarray
                        ) -> np.ndarray:
    """The conformity scores ``|residual| / scale``, each row's scale fitted on the residuals of
    the folds other than its own (NaN where its fold is the only one)."""
    res = np.asarray(residuals, dtype=float)
    sp = np.asarray(sparsity, dtype=float)
    folds = np.asarray(folds)
    out = np.full(len(res), np.nan)
    for f in sorted(set(folds.tolist())):
        own = folds == f
        if own.all():
            continue
        scale = sparsity_scale(sp[~own], res[~own])
        out[own] = np.abs(res[own]) / np.array([scale_at(scale, x) for x in sp[own]])
    return out


def conformal_coverage(oof: pd.DataFrame, level: float) -> pd.DataFrame:
    """Per (group, fold) of one CV run: rows, covered fraction and mean interval width.

    ``oof`` holds ``group``, ``fold``, ``sparsity``, ``y_true`` and ``y_pred``. A fold is covered
    as a new network would be: its scale comes from the other folds of its group, and so does
    ``q``, from their :func:`cross_fitted_scores` (each calibration fold scaled by the folds that
    are neither it nor the test fold).
    """
    rows = []
    for g, og in oof.groupby("group", sort=True):
        res = (og["y_true"] - og["y_pred"]).to_numpy(dtype=float)
        sp = og["sparsity"].to_numpy(dtype=float)
        folds = og["fold"].to_numpy()
        for f in sorted(set(folds)):
            te = folds == f
            tr = ~te
            if tr.sum() < 10:
                continue
            scale = sparsity_scale(sp[tr], res[tr])
            s_te = np.array([scale_at(scale, x) for x in sp[te]])
            q = conformal_quantile(cross_fitted_scores(res[tr], sp[tr], folds[tr]), level)
            half = q * s_te
            rows.append({"group": g, "fold": f, "n": int(te.sum()),
                         "covered": float(np.mean(np.abs(res[te]) <= half)),
                         "width": float(np.mean(2 * half))})
    return pd.DataFrame(rows, columns=["group", "fold", "n", "covered", "width"])


def describe_domain(X: pd.DataFrame, meta: pd.DataFrame) -> dict[str, Any]:
    """The JSON-able description of one group's training domain (see the module docstring)."""
    x = X.to_numpy(dtype=float)
    centre = np.nanmedian(x, axis=0)
    spread = np.nanstd(x, axis=0)
    spread = np.where(np.isfinite(spread) & (spread > 0), spread, 1.0)
    z = _standardise(x, centre, spread)
    d = _pairwise(z, z)
    config = (meta["dataset"].astype(str) + "|" + meta["pruner"].astype(str) + "|"
              + meta["sparsity"].map("{:g}".format)).to_numpy()
    d[config[:, None] == config[None, :]] = np.inf
    nn = d.min(axis=1)
    nn = nn[np.isfinite(nn)]
    return {
        "columns": [str(c) for c in X.columns],
        "min": [_none(v) for v in np.nanmin(x, axis=0)],
        "max": [_none(v) for v in np.nanmax(x, axis=0)],
        "centre": [_none(v) for v in centre],
        "spread": [float(v) for v in spread],
        "distance_threshold": float(np.quantile(nn, 0.99)) if len(nn) else math.inf,
        "datasets": sorted({str(v) for v in meta["dataset"]}),
        "pruners": sorted({str(v) for v in meta["pruner"]}),
        "sparsity": [float(meta["sparsity"].min()), float(meta["sparsity"].max())],
        "keys": [str(k) for k in X.index],
        "train_z": z.round(6).tolist(),
    }


def _none(v: float) -> float | None:
    return None if not np.isfinite(v) else float(v)


def _standardise(x: np.ndarray, centre: np.ndarray, spread: np.ndarray) -> np.ndarray:
    z = (x - centre) / spread
    return np.where(np.isfinite(z), z, 0.0)


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.asarray(np.sqrt(np.maximum(sq, 0.0)))


class DomainCheck:
    """Checks networks against one group's :func:`describe_domain` output."""

    def __init__(self, domain: dict[str, Any], architecture: str) -> None:
        self.d = domain
        self.architecture = architecture
        self._z = np.asarray(domain["train_z"], dtype=float)
        self._centre = np.array([np.nan if v is None else v for v in domain["centre"]], float)
        self._spread = np.asarray(domain["spread"], dtype=float)
        self._keys = set(domain["keys"])

    def check(self, X: pd.DataFrame, meta: pd.DataFrame, *, architecture_known: bool = True
              ) -> pd.DataFrame:
        """Per row of ``X`` (columns as in training): ``in_domain``, ``in_training``, ``distance``
        and ``domain_notes`` (why a row is outside, ``;``-separated)."""
        cols: Sequence[str] = self.d["columns"]
        x = X[list(cols)].to_numpy(dtype=float)
        lo = np.array([np.nan if v is None else v for v in self.d["min"]], float)
        hi = np.array([np.nan if v is None else v for v in self.d["max"]], float)
        slack = RANGE_SLACK * np.where(np.isfinite(hi - lo), hi - lo, 0.0)
        z = _standardise(x, self._centre, self._spread)
        dist = _pairwise(z, self._z).min(axis=1) if len(self._z) else np.full(len(x), np.inf)
        nearest = (_pairwise(z, self._z).argmin(axis=1) if len(self._z)
                   else np.zeros(len(x), int))
        s_lo, s_hi = self.d["sparsity"]
        out = []
        for i, key in enumerate(X.index):
            notes: list[str] = []
            if not architecture_known:
                notes.append(f"architecture {self.architecture} not in training "
                             "(architecture-independent fallback model)")
            ds = str(meta.at[key, "dataset"])
            if ds not in self.d["datasets"]:
                notes.append(f"dataset {ds} not in training ({', '.join(self.d['datasets'])})")
            sp = float(meta["sparsity"].loc[key])
            if not s_lo - 1e-9 <= sp <= s_hi + 1e-9:
                notes.append(f"sparsity {sp:g} outside the training range [{s_lo:g}, {s_hi:g}]")
            out_cols = [c for j, c in enumerate(cols) if np.isfinite(x[i, j])
                        and np.isfinite(lo[j])
                        and not lo[j] - slack[j] <= x[i, j] <= hi[j] + slack[j]]
            if out_cols:
                notes.append(f"{len(out_cols)} feature(s) outside the training range "
                             f"({', '.join(out_cols[:3])}{', …' if len(out_cols) > 3 else ''})")
            thr = float(self.d["distance_threshold"])
            if dist[i] > thr:
                notes.append(f"far from the training networks (distance {dist[i]:.2f} > "
                             f"{thr:.2f}, the 99th percentile within training)")
            by_key = str(key) in self._keys
            same = by_key or bool(dist[i] <= SAME_TOL)
            match = str(key) if by_key else self.d["keys"][int(nearest[i])] if same else ""
            out.append({"key": key, "in_domain": not notes, "in_training": same,
                        "training_match": match,
                        "distance": float(dist[i]), "domain_notes": "; ".join(notes)})
        return pd.DataFrame(out).set_index("key")
