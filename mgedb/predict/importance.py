"""Which features matter: permutation importance (and SHAP when installed) on held-out folds.

Importance of a feature = mean drop of R² on a fold's *test* rows when that feature's column is
permuted (``sklearn.inspection.permutation_importance``, ``n_repeats`` shuffles), averaged over
folds. *Overall* and *per architecture* use the ``kfold`` fold models (one model per architecture);
*per sparsity* uses the ``per-sparsity`` fold models (one model per architecture and sparsity), so
it tells which features separate networks *at* a given sparsity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mgedb.predict.evaluate import CVResult, ModelData, cross_validate, single_thread

__all__ = ["Importance", "feature_importance", "permutation_importances", "shap_available",
           "shap_importances"]


def permutation_importances(data: ModelData, cv: CVResult, *, n_repeats: int = 5,
                            seed: int = 0) -> pd.DataFrame:
    """Long table (group, fold, feature, importance) over the fold models kept in ``cv``."""
    from sklearn.inspection import permutation_importance

    rows = []
    with single_thread():
        for fm in cv.models:
            if len(fm.test_keys) < 3:
                continue
            X = data.X.loc[fm.test_keys, fm.columns].to_numpy(dtype=float)
            y = data.y.loc[fm.test_keys].to_numpy(dtype=float)
            if np.ptp(y) == 0:
                continue
            r = permutation_importance(fm.pipeline, X, y, n_repeats=n_repeats, random_state=seed,
                                       scoring="r2", n_jobs=1)
            rows += [{"group": fm.group, "fold": fm.fold, "feature": f, "importance": float(v)}
                     for f, v in zip(fm.columns, r.importances_mean, strict=True)]
    return pd.DataFrame(rows, columns=["group", "fold", "feature", "importance"])


def shap_available() -> bool:
    try:
        import shap  # noqa: F401
    except ImportError:
        return False
    return True


def shap_importances(data: ModelData, cv: CVResult) -> pd.DataFrame:
    """Mean |SHAP| per feature on each fold's test rows (tree regressors only; needs ``shap``)."""
    import shap

    rows = []
    for fm in cv.models:
        reg = fm.pipeline.steps[-1][1]
        if len(fm.pipeline.steps) > 1:  # imputation/scaling in front: explain the raw trees only
            continue
        X = data.X.loc[fm.test_keys, fm.columns].to_numpy(dtype=float)
        values = np.asarray(shap.TreeExplainer(reg).shap_values(X))
        rows += [{"group": fm.group, "fold": fm.fold, "feature": f, "importance": float(v)}
                 for f, v in zip(fm.columns, np.abs(values).mean(axis=0), strict=True)]
    return pd.DataFrame(rows, columns=["group", "fold", "feature", "importance"])


@dataclass
class Importance:
    """Permutation importances (mean over folds) at three levels, plus SHAP when available."""

    spec: str
    overall: pd.DataFrame  # feature, importance, std
    by_architecture: pd.DataFrame  # feature × architecture
    by_sparsity: pd.DataFrame  # feature × sparsity
    shap: pd.DataFrame | None = None  # feature, mean |SHAP| (overall)

    def top(self, n: int = 10) -> list[str]:
        return list(self.overall["feature"].head(n))


def _pivot(long: pd.DataFrame, col: str) -> pd.DataFrame:
    if long.empty:
        return pd.DataFrame()
    return long.groupby(["feature", col])["importance"].mean().unstack(col)


def feature_importance(data: ModelData, *, regressor: str = "hgb", seed: int = 0,
                       n_repeats: int = 5, per_sparsity: bool = True,
                       with_shap: bool = True) -> Importance:
    """Importances of ``data``'s features overall, per architecture and per sparsity."""
    cv = cross_validate(data, "kfold", regressor=regressor, seed=seed, keep_models=True)
    long = permutation_importances(data, cv, n_repeats=n_repeats, seed=seed)
    per_fold = long.groupby(["feature", "group", "fold"])["importance"].mean().reset_index()
    overall = (per_fold.groupby("feature")["importance"].agg(["mean", "std"])
               .rename(columns={"mean": "importance"}).sort_values("importance", ascending=False)
               .reset_index())
    by_arch = _pivot(long, "group")
    by_sp = pd.DataFrame()
    if per_sparsity:
        cvs = cross_validate(data, "per-sparsity", regressor=regressor, seed=seed,
                             keep_models=True)
        ls = permutation_importances(data, cvs, n_repeats=n_repeats, seed=seed)
        if not ls.empty:
            ls["sparsity"] = ls["group"].str.split("@").str[1].astype(float)
            by_sp = _pivot(ls, "sparsity")
    shp = None
    if with_shap and shap_available():
        s = shap_importances(data, cv)
        if not s.empty:
            shp = (s.groupby("feature")["importance"].mean().sort_values(ascending=False)
                   .reset_index())
    order = list(overall["feature"])
    return Importance(data.spec, overall, by_arch.reindex(order),
                      by_sp.reindex(order) if not by_sp.empty else by_sp, shp)
