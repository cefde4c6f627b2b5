"""Assembling a modelling table and cross-validating a regressor under the named protocols.

Protocols (``group`` = the unit a summary row describes):

* ``kfold`` — per architecture, shuffled 5-fold CV (group = architecture). By default the folds
  are *grouped by network*: the seeds of one (model, dataset, pruner, sparsity) configuration stay
  in one fold (``group_seeds=False`` gives the old row-shuffled folds, whose scores are inflated:
  the seed replicates of a test network are in the training fold).
* ``lodo`` — per architecture, leave one dataset out (3 folds; group = architecture).
* ``loao`` — all architectures pooled, leave one architecture out (GroupKFold with one group per
  architecture; fold = held-out architecture). Only for architecture-independent feature sets.
* ``per-sparsity`` — per (architecture, sparsity), shuffled 5-fold CV (group = ``arch@sparsity``),
  grouped by network like ``kfold``.
* ``lgo`` — per architecture, 5-fold GroupKFold whose groups are (dataset, sparsity): every
  prediction for a (model, dataset, sparsity) setting comes from a model that saw no network of that
  setting (leave-settings-out). The ranking uses these out-of-fold predictions.
* ``lopo`` — per architecture, leave one pruner out (7 folds for the PaI pruners): how well a pruner
  the predictor never saw is placed (the stated use: ranking a new pruner).

:func:`repeated_cv` runs a protocol under several CV seeds (the splits and the regressors' seeds);
tables report the mean ± std over seeds of the cross-group mean.

Scores per fold: R², MAE and Spearman ρ of predicted vs true drop; summaries give mean ± sample std
(ddof=1) over folds and the R² of the pooled out-of-fold predictions.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd

from mgedb.errors import PredictorError
from mgedb.predict.features import FeatureTable, build_features
from mgedb.predict.models import make_regressor
from mgedb.predict.records import PAI_PRUNERS
from mgedb.predict.targets import accuracy_drop, reference_accuracies

__all__ = [
    "PROTOCOLS",
    "CVResult",
    "CVRun",
    "FoldModel",
    "ModelData",
    "assemble",
    "cross_validate",
    "cross_validate_many",
    "fit_pipeline",
    "network_groups",
    "repeated_cv",
    "scores",
    "seed_spread",
    "single_thread",
]

PROTOCOLS = ("kfold", "lodo", "loao", "per-sparsity", "lgo", "lopo")
#: A network configuration: its seeds are replicates and never straddle a fold.
NETWORK = ["model", "dataset", "pruner", "sparsity"]
_META = ["model", "dataset", "pruner", "sparsity", "seed", "accuracy"]


@dataclass
class ModelData:
    """Features, target and metadata of the networks used for one feature set."""

    spec: str
    X: pd.DataFrame  # index: key
    y: pd.Series  # drop, index: key
    meta: pd.DataFrame  # index: key; _META + base, basis
    per_architecture: bool
    weight_dependent: bool
    reference: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def subset(self, keys: pd.Index) -> ModelData:
        keys = self.X.index[self.X.index.isin(keys)]
        return ModelData(self.spec, self.X.loc[keys], self.y.loc[keys], self.meta.loc[keys],
                         self.per_architecture, self.weight_dependent, self.reference,
                         list(self.notes))


def assemble(records: pd.DataFrame, layers: pd.DataFrame | None, spec: str, *,
             pai_only: bool = True, reference: pd.DataFrame | None = None,
             features: FeatureTable | None = None) -> ModelData:
    """Join features and the drop target; rows without either are left out and noted."""
    notes: list[str] = []
    recs = records
    if pai_only:
        recs = records[records["pruner"].isin(PAI_PRUNERS)]
        notes.append(f"PaI rows only ({len(recs)} of {len(records)} networks)")
    ref = reference if reference is not None else reference_accuracies(records)
    ft = features if features is not None else build_features(spec, recs, layers)
    for why, n in ft.dropped.items():
        notes.append(f"{n} networks left out ({why})")
    target = accuracy_drop(recs, ref)
    keys = ft.X.index[ft.X.index.isin(target.index[np.isfinite(target["drop"])])]
    n_no_target = len(ft.X) - len(keys)
    if n_no_target:
        notes.append(f"{n_no_target} networks left out (no dense or reference accuracy)")
    meta = recs.set_index("key").loc[keys, _META].join(target.loc[keys, ["base", "basis"]])
    X = ft.X.loc[keys]
    return ModelData(ft.spec, X, target.loc[keys, "drop"].astype(float), meta,
                     ft.per_architecture, ft.weight_dependent, ref, notes)


def scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """R², MAE and Spearman ρ (NaN where undefined: fewer than 2 rows or a constant input)."""
    from scipy.stats import spearmanr
    from sklearn.metrics import mean_absolute_error, r2_score

    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    n = len(y_true)
    r2 = float(r2_score(y_true, y_pred)) if n >= 2 and np.ptp(y_true) > 0 else float("nan")
    mae = float(mean_absolute_error(y_true, y_pred)) if n else float("nan")
    rho = float("nan")
    if n >= 2 and np.ptp(y_true) > 0 and np.ptp(y_pred) > 0:
        rho = float(spearmanr(y_true, y_pred).statistic)
    return {"r2": r2, "mae": mae, "spearman": rho}


@dataclass
class FoldModel:
    """A pipeline fitted on one training fold, with its columns and test keys."""

    group: str
    fold: str
    pipeline: Any
    columns: list[str]
    test_keys: list[str]


@dataclass
class CVResult:
    """Out-of-fold predictions, per-fold scores and (optionally) the fitted fold models."""

    protocol: str
    spec: str
    regressor: str
    oof: pd.DataFrame  # index key: _META + y_true, y_pred, group, fold
    folds: pd.DataFrame  # group, fold, n_train, n_test, r2, mae, spearman
    models: list[FoldModel] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> pd.DataFrame:
        """Per group: n, folds, mean and std of each score over folds, pooled out-of-fold R²."""
        rows = []
        for g, f in self.folds.groupby("group", sort=False):
            o = self.oof[self.oof["group"] == g]
            row: dict[str, Any] = {"group": g, "n": len(o), "folds": len(f)}
            for s in ("r2", "mae", "spearman"):
                v = f[s].dropna()
                row[f"{s}_mean"] = float(v.mean()) if len(v) else float("nan")
                row[f"{s}_std"] = float(v.std(ddof=1)) if len(v) > 1 else float("nan")
            row["r2_pooled"] = scores(o["y_true"].to_numpy(), o["y_pred"].to_numpy())["r2"]
            rows.append(row)
        return pd.DataFrame(rows)


def _split_groups(meta: pd.DataFrame, protocol: str, per_architecture: bool
                  ) -> Iterator[tuple[str, np.ndarray]]:
    if protocol == "loao":
        if per_architecture:
            raise PredictorError(
                "leave-one-architecture-out needs architecture-independent features, but this "
                "set is layer-wise (its columns are layers of one architecture); use mge, "
                "mge-structural, rolled-mean, rolled-channel-mean or sparsity")
        yield "all", np.arange(len(meta))
        return
    if protocol == "per-sparsity":
        for key, idx in meta.groupby(["model", "sparsity"], sort=True).indices.items():
            model, sparsity = cast("tuple[str, float]", key)
            yield f"{model}@{sparsity:g}", np.asarray(idx)
        return
    for m, idx in meta.groupby("model", sort=True).indices.items():
        yield str(m), np.asarray(idx)


def network_groups(meta: pd.DataFrame) -> np.ndarray:
    """One label per network configuration (model, dataset, pruner, sparsity)."""
    return (meta["model"].astype(str) + "|" + meta["dataset"].astype(str) + "|"
            + meta["pruner"].astype(str) + "|" + meta["sparsity"].map("{:g}".format)).to_numpy()


def _folds(meta: pd.DataFrame, protocol: str, n_splits: int, seed: int, group_seeds: bool = True
           ) -> list[tuple[str, np.ndarray, np.ndarray]]:
    from sklearn.model_selection import GroupKFold, KFold, LeaveOneGroupOut

    n = len(meta)
    if protocol in ("kfold", "per-sparsity"):
        if group_seeds:
            groups = network_groups(meta)
            k = min(n_splits, len(set(groups)))
            if k < 2:
                return []
            gkf = GroupKFold(k, shuffle=True, random_state=seed)
            return [(str(i), tr, te) for i, (tr, te) in
                    enumerate(gkf.split(np.zeros(n), groups=groups))]
        k = min(n_splits, n // 2)
        if k < 2:
            return []
        return [(str(i), tr, te) for i, (tr, te) in
                enumerate(KFold(k, shuffle=True, random_state=seed).split(np.zeros(n)))]
    if protocol in ("lodo", "loao", "lopo"):
        col = {"lodo": "dataset", "loao": "model", "lopo": "pruner"}[protocol]
        groups = meta[col].to_numpy()
        if len(set(groups)) < 2:
            return []
        return [(str(groups[te][0]), tr, te) for tr, te in
                LeaveOneGroupOut().split(np.zeros(n), groups=groups)]
    if protocol == "lgo":
        groups = (meta["dataset"].astype(str) + "@" + meta["sparsity"].map("{:g}".format)
                  ).to_numpy()
        k = min(n_splits, len(set(groups)))
        if k < 2:
            return []
        gkf = GroupKFold(k, shuffle=True, random_state=seed)
        return [(str(i), tr, te) for i, (tr, te) in
                enumerate(gkf.split(np.zeros(n), groups=groups))]
    raise PredictorError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")


def fit_pipeline(X: pd.DataFrame, y: pd.Series, regressor: str, seed: int, *,
                 tune: bool = False) -> tuple[Any, list[str]]:
    """Fit a fresh pipeline on the columns of ``X`` that are not entirely NaN."""
    cols = [str(c) for c in X.columns[X.notna().any(axis=0)]]
    if not cols:
        raise PredictorError("no usable feature column (all NaN) for this group of networks")
    pipe = make_regressor(regressor, seed, tune=tune)
    pipe.fit(X[cols].to_numpy(dtype=float), y.to_numpy(dtype=float))
    return pipe, cols


def cross_validate(data: ModelData, protocol: str = "kfold", *, regressor: str = "hgb",
                   seed: int = 0, n_splits: int = 5, tune: bool = False,
                   keep_models: bool = False, group_seeds: bool = True) -> CVResult:
    """Cross-validate ``regressor`` on ``data`` under ``protocol``; see the module docstring."""
    return cross_validate_many([CVRun(data, protocol, regressor=regressor, seed=seed,
                                      n_splits=n_splits, tune=tune, keep_models=keep_models,
                                      group_seeds=group_seeds)])[0]


@dataclass
class CVRun:
    """The arguments of one :func:`cross_validate` call, for :func:`cross_validate_many`."""

    data: ModelData
    protocol: str = "kfold"
    regressor: str = "hgb"
    seed: int = 0
    n_splits: int = 5
    tune: bool = False
    keep_models: bool = False
    group_seeds: bool = True


def cross_validate_many(runs: Sequence[CVRun]) -> list[CVResult]:
    """:func:`cross_validate` of every run, their fold fits in one joblib call (n_jobs from the
    caller's ``joblib.parallel_config``, the CLI's ``--jobs``; 1 by default): the workers stay
    busy across runs instead of waiting for each run's slowest fold. Every fit is seeded by its
    run, so the results equal separate calls for any worker count."""
    from joblib import Parallel, delayed

    plans = []
    for r in runs:
        if r.protocol not in PROTOCOLS:
            raise PredictorError(f"unknown protocol {r.protocol!r}; choose one of "
                                 f"{', '.join(PROTOCOLS)}")
        plans.append(_plan(r))
    with single_thread():
        fitted = Parallel()(
            delayed(_fit_fold)(r.data.X.iloc[itr], r.data.y.iloc[itr], r.data.X.iloc[ite],
                               r.regressor, r.seed, r.tune, r.keep_models)
            for r, (tasks, _) in zip(runs, plans, strict=True) for _, _, itr, ite in tasks)
    out, i = [], 0
    for r, (tasks, notes) in zip(runs, plans, strict=True):
        out.append(_collect(r, tasks, fitted[i:i + len(tasks)], notes))
        i += len(tasks)
    return out


def repeated_cv(data: ModelData, protocol: str = "kfold", *, seeds: Sequence[int] = (0, 1, 2),
                regressor: str = "hgb", group_seeds: bool = True, n_splits: int = 5
                ) -> list[CVResult]:
    """:func:`cross_validate` under each CV seed in ``seeds`` (splits and regressor seeds)."""
    return cross_validate_many([CVRun(data, protocol, regressor=regressor, seed=s,
                                      n_splits=n_splits, group_seeds=group_seeds)
                                for s in seeds])


def seed_spread(results: Sequence[CVResult], metric: str = "r2") -> tuple[float, float]:
    """Mean and sample std over CV seeds of the cross-group mean of ``metric`` (fold means)."""
    vals = []
    for r in results:
        s = r.summary()
        v = s[f"{metric}_mean"].dropna() if len(s) else pd.Series(dtype=float)
        if r.protocol == "loao" and len(r.folds):
            v = r.folds[metric].dropna()
        vals.append(float(v.mean()) if len(v) else float("nan"))
    a = np.asarray(vals, dtype=float)
    a = a[np.isfinite(a)]
    if not len(a):
        return float("nan"), float("nan")
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else float("nan")


def single_thread() -> Any:
    """Limit OpenMP/BLAS to one thread: with small tables, thread start-up and oversubscription on
    a shared machine cost far more than they gain (10× measured on 2 busy cores)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def _fit_fold(X_tr: pd.DataFrame, y_tr: pd.Series, X_te: pd.DataFrame, regressor: str, seed: int,
              tune: bool, keep: bool = True) -> tuple[Any, list[str], np.ndarray]:
    """Fit one training fold and predict its test fold (one joblib task); the fitted pipeline is
    returned only if ``keep`` (a 300-tree forest is megabytes to send back from a worker)."""
    with single_thread():
        pipe, cols = fit_pipeline(X_tr, y_tr, regressor, seed, tune=tune)
        return pipe if keep else None, cols, pipe.predict(X_te[cols].to_numpy(dtype=float))


Task = tuple[str, str, np.ndarray, np.ndarray]  # group, fold, train rows, test rows


def _plan(run: CVRun) -> tuple[list[Task], list[str]]:
    """The (group, fold, train, test) tasks of one run, and notes on the groups skipped."""
    meta = run.data.meta
    notes: list[str] = []
    tasks: list[Task] = []
    for group, idx in _split_groups(meta, run.protocol, run.data.per_architecture):
        folds = _folds(meta.iloc[idx], run.protocol, run.n_splits, run.seed, run.group_seeds)
        if not folds:
            notes.append(f"{group}: too few networks or groups ({len(idx)}) for {run.protocol}; "
                         "skipped")
            continue
        tasks += [(group, fold, idx[tr], idx[te]) for fold, tr, te in folds]
    return tasks, notes


def _collect(run: CVRun, tasks: Sequence[Task],
             fitted: Sequence[tuple[Any, list[str], np.ndarray]], notes: list[str]) -> CVResult:
    data = run.data
    meta = data.meta
    pred = np.full(len(meta), np.nan)
    group_of = np.empty(len(meta), dtype=object)
    fold_of = np.empty(len(meta), dtype=object)
    fold_rows: list[dict[str, Any]] = []
    models: list[FoldModel] = []
    for (group, fold, itr, ite), (pipe, cols, p) in zip(tasks, fitted, strict=True):
        pred[ite] = p
        group_of[ite] = group
        fold_of[ite] = fold
        s = scores(data.y.iloc[ite].to_numpy(), p)
        fold_rows.append({"group": group, "fold": fold, "n_train": len(itr),
                          "n_test": len(ite), **s})
        if run.keep_models:
            models.append(FoldModel(group, fold, pipe, cols,
                                    [str(k) for k in data.X.index[ite]]))
    done = ~np.isnan(pred)
    oof = meta.loc[done].copy()
    oof["y_true"] = data.y.to_numpy()[done]
    oof["y_pred"] = pred[done]
    oof["group"] = group_of[done]
    oof["fold"] = fold_of[done]
    folds_df = pd.DataFrame(fold_rows, columns=["group", "fold", "n_train", "n_test", "r2", "mae",
                                                "spearman"])
    return CVResult(run.protocol, data.spec, run.regressor, oof, folds_df, models,
                    list(data.notes) + notes)
