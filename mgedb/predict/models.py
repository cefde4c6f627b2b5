"""The regressors, as scikit-learn pipelines with fixed, documented hyper-parameters.

* ``hgb`` — ``HistGradientBoostingRegressor(max_iter=100, learning_rate=0.15, max_leaf_nodes=15,
  min_samples_leaf=5, l2_regularization=1e-3)``; accepts NaN natively.
* ``rf`` — median imputation, then ``RandomForestRegressor(n_estimators=200, min_samples_leaf=2,
  max_features=0.5)``.
* ``et`` — median imputation, then ``ExtraTreesRegressor(n_estimators=300, min_samples_leaf=1,
  max_features=0.5)``.
* ``ridge`` — median imputation, standardisation, ``Ridge(alpha=1.0)``.
* ``xgb`` — ``XGBRegressor(n_estimators=150, max_depth=3, learning_rate=0.1, subsample=0.8)``
  (the naive first look's settings), only if ``xgboost`` is importable.

``tune=True`` wraps the regressor in a 3-fold ``GridSearchCV`` over a small grid (nested CV when
the result is itself cross-validated).
"""

from __future__ import annotations

from typing import Any

from mgedb.errors import PredictorError

__all__ = ["REGRESSORS", "make_regressor"]

REGRESSORS = ("hgb", "rf", "et", "ridge", "xgb")

_GRIDS: dict[str, dict[str, list[Any]]] = {
    "hgb": {"reg__max_iter": [100, 300], "reg__max_leaf_nodes": [7, 15, 31]},
    "rf": {"reg__min_samples_leaf": [1, 2, 5], "reg__max_features": [0.3, 0.5, 1.0]},
    "et": {"reg__min_samples_leaf": [1, 2, 5], "reg__max_features": [0.3, 0.5, 1.0]},
    "ridge": {"reg__alpha": [0.01, 0.1, 1.0, 10.0, 100.0]},
    "xgb": {"reg__max_depth": [3, 5], "reg__n_estimators": [150, 400]},
}


def make_regressor(name: str = "hgb", seed: int = 0, *, tune: bool = False) -> Any:
    """A fresh, unfitted pipeline (last step named ``reg``)."""
    from sklearn.ensemble import (
        ExtraTreesRegressor,
        HistGradientBoostingRegressor,
        RandomForestRegressor,
    )
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    steps: list[tuple[str, Any]]
    if name == "hgb":
        steps = [("reg", HistGradientBoostingRegressor(
            max_iter=100, learning_rate=0.15, max_leaf_nodes=15, min_samples_leaf=5,
            l2_regularization=1e-3, random_state=seed))]
    elif name == "rf":
        steps = [("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                 ("reg", RandomForestRegressor(n_estimators=200, min_samples_leaf=2,
                                               max_features=0.5, random_state=seed, n_jobs=1))]
    elif name == "et":
        steps = [("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                 ("reg", ExtraTreesRegressor(n_estimators=300, min_samples_leaf=1,
                                             max_features=0.5, random_state=seed, n_jobs=1))]
    elif name == "ridge":
        steps = [("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                 ("scale", StandardScaler()), ("reg", Ridge(alpha=1.0))]
    elif name == "xgb":
        try:
            from xgboost import XGBRegressor
        except ImportError:
            raise PredictorError("--model xgb needs the optional package xgboost; "
                                 "`pip install xgboost` or use --model hgb") from None
        steps = [("reg", XGBRegressor(n_estimators=150, max_depth=3, learning_rate=0.1,
                                      subsample=0.8, random_state=seed, n_jobs=1))]
    else:
        raise PredictorError(f"unknown regressor {name!r}; choose one of {', '.join(REGRESSORS)}")
    pipe = Pipeline(steps)
    if not tune:
        return pipe
    from sklearn.model_selection import GridSearchCV, KFold

    return GridSearchCV(pipe, _GRIDS[name], cv=KFold(3, shuffle=True, random_state=seed),
                        scoring="r2", n_jobs=1)
