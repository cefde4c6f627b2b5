"""Ranking PaI algorithms before training, against Ramanujan and density baselines.

For every (model, dataset, sparsity) setting the PaI algorithms are ranked by a *score* (higher =
predicted better) after averaging over seeds, and compared with the ranking by true accuracy:
Kendall τ-b and the top-1 hit rate (ties in the score split the hit). Scores:

* ``predictor:<set>`` — minus the out-of-fold predicted drop of a regressor on ``<set>``, from the
  ``lgo`` protocol: no network of the ranked setting was seen in training.
* ``mean Δr`` / ``mean IMDB`` — the mean over layers of the rolled-BGE Ramanujan gap / iterative
  mean difference of bound (NaN layers skipped); higher is taken as better, fixed in advance
  (a larger gap to the Ramanujan bound = a better expander).
* ``mean density`` — the unweighted mean of the layer densities (higher is better, fixed in
  advance).
* ``model:density`` / ``model:ramanujan`` — the same regressor and protocol on those feature sets.

A random ranking has E[τ] = 0 and a top-1 rate of 1/7 with 7 algorithms.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mgedb.predict.evaluate import CVRun, assemble, cross_validate_many
from mgedb.predict.records import PAI_PRUNERS

__all__ = ["RankingResult", "group_ranking_scores", "kendall_tau", "oof_tau", "rank_pai"]

_SETTING = ["model", "dataset", "sparsity"]


def _tau(score: np.ndarray, acc: np.ndarray) -> float:
    from scipy.stats import kendalltau

    if len(score) < 2 or np.ptp(score) == 0 or np.ptp(acc) == 0:
        return float("nan")
    return float(kendalltau(score, acc).statistic)


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall τ-b between two score lists over the pairs where both are known (NaN dropped);
    NaN with fewer than two such pairs or a constant list."""
    x, y = np.asarray(a, float), np.asarray(b, float)
    ok = ~(np.isnan(x) | np.isnan(y))
    return _tau(x[ok], y[ok])


def _top1(score: np.ndarray, acc: np.ndarray) -> float:
    best_pred = np.flatnonzero(score == score.max())
    best_true = set(np.flatnonzero(acc == acc.max()).tolist())
    return float(np.mean([i in best_true for i in best_pred]))


def group_ranking_scores(table: pd.DataFrame, methods: Sequence[str]) -> pd.DataFrame:
    """Per setting: τ and top-1 of each method's score column against ``accuracy``.

    ``table`` holds one row per (setting, pruner) with ``accuracy`` and one column per method.
    Settings with fewer than 3 pruners are skipped.
    """
    rows = []
    for setting, g in table.groupby(_SETTING, sort=True):
        if len(g) < 3:
            continue
        acc = g["accuracy"].to_numpy(dtype=float)
        row: dict[str, object] = dict(zip(_SETTING, setting, strict=True))
        row["pruners"] = len(g)
        row["best"] = str(g["pruner"].iloc[int(np.argmax(acc))])
        for m in methods:
            s = g[m].to_numpy(dtype=float)
            ok = np.isfinite(s)
            row[f"tau:{m}"] = _tau(s[ok], acc[ok]) if ok.sum() >= 3 else float("nan")
            row[f"top1:{m}"] = _top1(s[ok], acc[ok]) if ok.sum() >= 3 else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def oof_tau(oof: pd.DataFrame) -> pd.DataFrame:
    """Per setting: τ / top-1 of minus the out-of-fold predicted drop (``oof`` of a
    :class:`~mgedb.predict.evaluate.CVResult`; seeds averaged per pruner)."""
    t = oof.assign(score=-oof["y_pred"])
    per = t.groupby([*_SETTING, "pruner"], sort=True)[["accuracy", "score"]].mean().reset_index()
    return group_ranking_scores(per, ["score"])


@dataclass
class RankingResult:
    """Per-setting τ / top-1 of every method, and what rows were used."""

    spec: str
    methods: list[str]
    groups: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def summary(self, by: str | None = None) -> pd.DataFrame:
        """Per method (and per ``by`` column, e.g. ``'model'``): τ mean/std/median, top-1 rate."""
        rows = []
        parts = [("all", self.groups)] if by is None else list(self.groups.groupby(by))
        for label, g in parts:
            for m in self.methods:
                t = g[f"tau:{m}"].dropna()
                h = g[f"top1:{m}"].dropna()
                rows.append({**({} if by is None else {by: label}), "method": m,
                             "settings": len(t), "tau_mean": float(t.mean()) if len(t) else
                             float("nan"),
                             "tau_std": float(t.std(ddof=1)) if len(t) > 1 else float("nan"),
                             "tau_sem": float(t.std(ddof=1) / np.sqrt(len(t))) if len(t) > 1
                             else float("nan"),
                             "tau_median": float(t.median()) if len(t) else float("nan"),
                             "top1": float(h.mean()) if len(h) else float("nan")})
        return pd.DataFrame(rows)

    def winner(self) -> str:
        s = self.summary().set_index("method")["tau_mean"].dropna()
        return str(s.idxmax()) if len(s) else ""


def _oof_scores(records: pd.DataFrame, layers: pd.DataFrame | None,
                runs: Sequence[tuple[str, str]], seed: int, reference: pd.DataFrame | None,
                protocol: str = "lgo") -> list[pd.Series]:
    """Minus the out-of-fold predicted drop of each (feature set, regressor) in ``runs``, their
    fold fits in one joblib call."""
    cvs = cross_validate_many([
        CVRun(assemble(records, layers, spec, pai_only=True, reference=reference), protocol,
              regressor=reg, seed=seed) for spec, reg in runs])
    return [-cv.oof["y_pred"] for cv in cvs]


#: What each ranking protocol holds out (the predictor never saw it).
RANK_PROTOCOLS = {"lgo": "the ranked setting (dataset, sparsity)", "lopo": "the pruner",
                  "lodo": "the dataset", "loao": "the architecture"}


def rank_pai(records: pd.DataFrame, layers: pd.DataFrame | None,
             spec: str | Sequence[str] = "mge", *, regressor: str = "hgb", seed: int = 0,
             reference: pd.DataFrame | None = None, baselines: bool = True,
             protocol: str = "lgo", regressors: Mapping[str, str] | None = None
             ) -> RankingResult:
    """Rank PaI algorithms per setting by each predictor in ``spec`` and by the baselines.

    ``protocol`` gives the out-of-fold predictions (:data:`RANK_PROTOCOLS`: what is held out);
    ``regressors``: per feature set of ``spec``, a regressor other than ``regressor``.
    """
    specs = [spec] if isinstance(spec, str) else list(spec)
    pai = records[records["pruner"].isin(PAI_PRUNERS)].set_index("key")
    scores = pd.DataFrame(index=pai.index)
    with_base = baselines and layers is not None and len(layers) > 0
    runs = {f"predictor:{sp}": (sp, (regressors or {}).get(sp, regressor)) for sp in specs}
    if with_base:
        runs |= {f"model:{s}": (s, regressor) for s in ("density", "ramanujan")}
    oof = dict(zip(runs, _oof_scores(records, layers, list(runs.values()), seed, reference,
                                     protocol), strict=True))
    methods = [f"predictor:{sp}" for sp in specs]
    for m in methods:
        scores[m] = oof[m]
    notes = [f"predictors: out-of-fold predictions ({protocol}: the model never saw "
             f"{RANK_PROTOCOLS.get(protocol, protocol)})"]
    if with_base:
        assert layers is not None
        rolled = layers[(layers["encoding"] == "rolled") & layers["key"].isin(pai.index)]
        g = rolled.groupby("key")
        with np.errstate(all="ignore"):
            base = pd.DataFrame({
                "mean Δr": g["degree_bound"].mean(),
                "mean IMDB": g["iterative_degree_bound"].mean(),
                "mean density": g["density"].mean(),
            })
        scores = scores.join(base)
        methods += list(base.columns)
        for s in ("density", "ramanujan"):
            scores[f"model:{s}"] = oof[f"model:{s}"]
            methods.append(f"model:{s}")
    full = scores[methods].notna().any(axis=0)
    methods = [m for m in methods if full[m]]
    ok = scores[methods].notna().all(axis=1)
    dropped = int((~ok).sum())
    if dropped:
        left = pai.loc[~ok, "model"].value_counts().to_dict()
        notes.append(f"{dropped} PaI networks left out because some method has no score for them "
                     f"({left}); every method is compared on the same networks")
    table = pai.loc[ok[ok].index, [*_SETTING, "pruner", "accuracy"]].join(scores.loc[ok, methods])
    per_pruner = (table.groupby([*_SETTING, "pruner"], sort=True)[["accuracy", *methods]]
                  .mean().reset_index())
    groups = group_ranking_scores(per_pruner, methods)
    notes.append(f"{len(groups)} settings (model, dataset, sparsity) ranked; scores averaged over "
                 "seeds per algorithm")
    return RankingResult("+".join(specs) if len(specs) == 1 else ", ".join(specs), methods,
                         groups, notes)
