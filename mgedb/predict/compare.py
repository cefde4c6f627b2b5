"""Comparing feature sets under one protocol, on the same networks.

For a fair comparison every set is scored on the same rows: per architecture, the networks available
to *every* set that covers that architecture (MobileNetV2 has only MGE rows, so it is scored by the
MGE sets alone and left out of the cross-architecture mean). Splits are seeded, hence identical for
every set on the same rows.

With several CV seeds (``seeds``), each set is cross-validated once per seed (splits and regressor
seeds); tables then give the mean over seeds and the std over seeds (the spread of the estimate),
instead of the std over folds.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mgedb.predict.evaluate import CVResult, CVRun, ModelData, assemble, cross_validate_many
from mgedb.predict.features import FEATURE_SETS, NEW_SETS, parse_feature_spec

__all__ = ["DEFAULT_UNIONS", "Comparison", "common_keys", "compare_feature_sets",
           "default_specs"]

#: Unions compared by default (fixed in advance; the best one is reported).
DEFAULT_UNIONS = (
    "mge+density",
    "mge+rolled-channel-mean",
    "mge+rolled-channel-mean+density",
    "mge-structural+density",
)


def default_specs(protocol: str = "kfold") -> list[str]:
    """Every single set, then :data:`DEFAULT_UNIONS`; LOAO keeps architecture-independent ones."""
    specs = [*(s for s in FEATURE_SETS if s not in NEW_SETS), *DEFAULT_UNIONS]
    if protocol == "loao":
        specs = [s for s in specs
                 if not any(FEATURE_SETS[p].per_architecture for p in parse_feature_spec(s))]
    return specs


def common_keys(datas: Sequence[ModelData]) -> pd.Index:
    """Per architecture, the keys shared by every data set that has rows of that architecture."""
    out: list[str] = []
    archs = sorted(set().union(*(set(d.meta["model"]) for d in datas)))
    for arch in archs:
        sets = [set(d.meta.index[d.meta["model"] == arch]) for d in datas]
        sets = [s for s in sets if s]
        out += sorted(set.intersection(*sets))
    return pd.Index(out)


@dataclass
class Comparison:
    """Cross-validation results of several feature sets on common rows."""

    protocol: str
    regressor: str
    results: dict[str, CVResult]  # the first CV seed's results
    notes: list[str] = field(default_factory=list)
    runs: dict[str, list[CVResult]] = field(default_factory=dict)  # every CV seed's results
    group_seeds: bool = True

    @property
    def n_seeds(self) -> int:
        return max((len(v) for v in self.runs.values()), default=1)

    def _long_one(self, spec: str, res: CVResult) -> pd.DataFrame:
        if self.protocol == "loao":
            s = res.folds.rename(columns={"fold": "held_out"})
            s = pd.DataFrame({"group": s["held_out"], "n": s["n_test"], "folds": 1,
                              "r2_mean": s["r2"], "r2_std": np.nan, "mae_mean": s["mae"],
                              "mae_std": np.nan, "spearman_mean": s["spearman"],
                              "spearman_std": np.nan, "r2_pooled": s["r2"]})
        else:
            s = res.summary()
        s.insert(0, "feature_set", spec)
        return s

    def long(self) -> pd.DataFrame:
        """One row per (feature set, group): n, mean/std of R², MAE, Spearman, pooled R² (first
        CV seed; std over folds)."""
        frames = [self._long_one(spec, res) for spec, res in self.results.items()]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def _per_seed(self, metric: str) -> list[pd.DataFrame]:
        """Per CV seed: feature set × group of fold means, plus the cross-group ``mean``."""
        out = []
        runs = self.runs or {k: [v] for k, v in self.results.items()}
        for i in range(self.n_seeds):
            frames = [self._long_one(spec, rs[i]) for spec, rs in runs.items() if len(rs) > i]
            df = pd.concat(frames, ignore_index=True)
            wide = df.pivot(index="feature_set", columns="group", values=f"{metric}_mean")
            wide = wide.reindex(list(self.results))
            shared = [c for c in wide.columns if wide[c].notna().all()]
            wide["mean"] = wide[shared].mean(axis=1) if shared else np.nan
            out.append(wide)
        return out

    def table(self, metric: str = "r2") -> pd.DataFrame:
        """Feature set × group of ``metric`` means (over folds, then over CV seeds), plus
        ``mean`` over the groups every set covers."""
        per = self._per_seed(metric)
        return sum(per[1:], per[0]) / len(per) if len(per) > 1 else per[0]

    def std_table(self, metric: str = "r2") -> pd.DataFrame:
        """The spread: std over CV seeds (several seeds) or over folds (one seed)."""
        per = self._per_seed(metric)
        if len(per) > 1:
            stack = np.stack([p.to_numpy(dtype=float) for p in per])
            return pd.DataFrame(_std_over_seeds(stack), index=per[0].index,
                                columns=per[0].columns)
        df = self.long()
        return df.pivot(index="feature_set", columns="group", values=f"{metric}_std").loc[
            list(self.results)]

    def best(self, unions: bool) -> tuple[str, float]:
        """The best single set (``unions=False``) or union by the cross-group mean."""
        t = self.table()["mean"]
        t = t[[("+" in s) == unions for s in t.index]].dropna()
        if t.empty:
            return "", float("nan")
        return str(t.idxmax()), float(t.max())

    def clearly_best(self, specs: Sequence[str] | None = None, metric: str = "r2"
                     ) -> tuple[str, str, bool]:
        """(best, runner-up, whether the gap exceeds the larger of their two spreads)."""
        t = self.table(metric)["mean"]
        sd = self.std_table(metric)
        sdm = sd["mean"] if "mean" in sd.columns else pd.Series(np.nan, index=t.index)
        if specs is not None:
            t = t.loc[[s for s in specs if s in t.index]]
        t = t.dropna()
        if len(t) < 2:
            return (str(t.index[0]) if len(t) else ""), "", False
        order = t.sort_values(ascending=metric == "mae").index
        a, b = str(order[0]), str(order[1])
        spread = float(np.nanmax([sdm.get(a, np.nan), sdm.get(b, np.nan)]))
        return a, b, bool(np.isfinite(spread) and abs(t[a] - t[b]) > spread)


def _std_over_seeds(stack: np.ndarray) -> np.ndarray:
    """Sample std over axis 0 of the finite values; NaN where fewer than two (a set that does not
    cover an architecture has no score there under any seed)."""
    finite = np.isfinite(stack)
    out = np.full(stack.shape[1:], np.nan)
    ok = finite.sum(axis=0) > 1
    out[ok] = np.nanstd(stack[:, ok], axis=0, ddof=1)
    return out


def compare_feature_sets(records: pd.DataFrame, layers: pd.DataFrame | None,
                         specs: Sequence[str] | None = None, *, protocol: str = "kfold",
                         regressor: str = "hgb", seed: int = 0, pai_only: bool = True,
                         reference: pd.DataFrame | None = None,
                         keep_models: bool | Collection[str] = False,
                         on_step: Callable[[str], None] | None = None,
                         seeds: Sequence[int] | None = None,
                         group_seeds: bool = True,
                         regressors: Mapping[str, str] | None = None) -> Comparison:
    """Cross-validate each feature set of ``specs`` on the common rows (see module docstring).

    ``seeds``: the CV seeds (default: ``(seed,)``); ``group_seeds=False`` gives the old
    row-shuffled k-fold (seed replicates of a network on both sides of a split).
    ``keep_models``: keep the fold models of every set (True) or of the sets named.
    ``regressors``: per feature set, a regressor other than ``regressor`` (e.g. the study's
    predictor, a fixed feature set and regressor pair).
    """
    specs = list(specs) if specs else default_specs(protocol)
    cv_seeds = list(seeds) if seeds else [seed]
    datas = {s: assemble(records, layers, s, pai_only=pai_only, reference=reference)
             for s in specs}
    keys = common_keys(list(datas.values()))
    notes = [f"{len(keys)} networks scored (per architecture, those every covering set has)"]
    if protocol in ("kfold", "per-sparsity"):
        notes.append("folds keep the seeds of a network together" if group_seeds else
                     "row-shuffled folds (--no-group-seeds): a network's seed replicates fall on "
                     "both sides of a split, which inflates the scores")
    if len(cv_seeds) > 1:
        notes.append(f"mean ± std over {len(cv_seeds)} CV seeds ({', '.join(map(str, cv_seeds))})")
    runs: dict[str, list[CVResult]] = {}
    for s, d in datas.items():
        if on_step is not None:
            on_step(s)
        sub = d.subset(keys)
        keep = keep_models if isinstance(keep_models, bool) else s in keep_models
        reg = (regressors or {}).get(s, regressor)
        runs[s] = cross_validate_many([CVRun(sub, protocol, regressor=reg, seed=cs,
                                             keep_models=keep, group_seeds=group_seeds)
                                       for cs in cv_seeds])
    first = next(iter(datas.values()))
    notes += first.notes[:1]
    return Comparison(protocol, regressor, {s: r[0] for s, r in runs.items()}, notes, runs,
                      group_seeds)
