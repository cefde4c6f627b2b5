"""Comparing feature sets under one protocol, on the same networks.

For a fair comparison every set is scored on the same rows: per architecture, the networks available
to *every* set that covers that architecture (MobileNetV2 has only MGE rows, so it is scored by the
MGE sets alone and left out of the cross-architecture mean). Splits are seeded, hence identical for
every set on the same rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mgedb.predict.evaluate import CVResult, ModelData, assemble, cross_validate
from mgedb.predict.features import FEATURE_SETS, parse_feature_spec

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
    specs = [*FEATURE_SETS, *DEFAULT_UNIONS]
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
    results: dict[str, CVResult]
    notes: list[str] = field(default_factory=list)

    def long(self) -> pd.DataFrame:
        """One row per (feature set, group): n, mean/std of R², MAE, Spearman, pooled R²."""
        frames = []
        for spec, res in self.results.items():
            if self.protocol == "loao":
                s = res.folds.rename(columns={"fold": "held_out"})
                s = pd.DataFrame({"group": s["held_out"], "n": s["n_test"], "folds": 1,
                                  "r2_mean": s["r2"], "r2_std": np.nan, "mae_mean": s["mae"],
                                  "mae_std": np.nan, "spearman_mean": s["spearman"],
                                  "spearman_std": np.nan, "r2_pooled": s["r2"]})
            else:
                s = res.summary()
            s.insert(0, "feature_set", spec)
            frames.append(s)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def table(self, metric: str = "r2") -> pd.DataFrame:
        """Feature set × group of ``metric`` means, plus ``mean`` over groups every set covers."""
        df = self.long()
        wide = df.pivot(index="feature_set", columns="group", values=f"{metric}_mean")
        wide = wide.loc[list(self.results)]
        shared = [c for c in wide.columns if wide[c].notna().all()]
        wide["mean"] = wide[shared].mean(axis=1) if shared else np.nan
        return wide

    def std_table(self, metric: str = "r2") -> pd.DataFrame:
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


def compare_feature_sets(records: pd.DataFrame, layers: pd.DataFrame | None,
                         specs: Sequence[str] | None = None, *, protocol: str = "kfold",
                         regressor: str = "hgb", seed: int = 0, pai_only: bool = True,
                         reference: pd.DataFrame | None = None, keep_models: bool = False,
                         on_step: Callable[[str], None] | None = None) -> Comparison:
    """Cross-validate each feature set of ``specs`` on the common rows (see module docstring)."""
    specs = list(specs) if specs else default_specs(protocol)
    datas = {s: assemble(records, layers, s, pai_only=pai_only, reference=reference)
             for s in specs}
    keys = common_keys(list(datas.values()))
    notes = [f"{len(keys)} networks scored (per architecture, those every covering set has)"]
    results: dict[str, CVResult] = {}
    for s, d in datas.items():
        if on_step is not None:
            on_step(s)
        results[s] = cross_validate(d.subset(keys), protocol, regressor=regressor, seed=seed,
                                    keep_models=keep_models)
    first = next(iter(datas.values()))
    notes += first.notes[:1]
    return Comparison(protocol, regressor, results, notes)
