"""Trained predictors: fit, save, load, score; and the default predictor cached per data digest.

A :class:`Predictor` holds one fitted pipeline (architecture-independent feature sets, key ``"*"``)
or one per architecture (layer-wise sets; optionally plus a pooled ``"*"`` fallback on the
architecture-independent part of the features, used for other architectures and flagged out of
domain), the columns each expects, and a JSON-able manifest: mgedb / scikit-learn / numpy versions
(a load under other versions is refused), feature set and names, regressor, training keys,
protocol and CV scores, split-conformal interval quantiles and their measured coverage, the
training domain, the reference-accuracy table and the data digest. Saved files are joblib pickles
(load only files you trust: unpickling runs code) with the manifest also written next to them as
``<file>.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mgedb.atomic import atomic_write, write_json
from mgedb.errors import PredictorError
from mgedb.predict import STUDY_FEATURES, STUDY_REGRESSOR
from mgedb.predict.evaluate import (
    ModelData,
    assemble,
    cross_validate,
    fit_pipeline,
    single_thread,
)
from mgedb.predict.features import build_features, parse_feature_spec
from mgedb.predict.targets import DEFAULT_REFERENCE_NOTE, accuracy_drop

__all__ = ["STUDY_FEATURES", "STUDY_REGRESSOR", "Predictor", "default_predictor",
           "shipped_cv_scores", "train_predictor"]

FORMAT = "mgedb-predictor/1"


def _version() -> str:
    import mgedb

    return str(mgedb.__version__)


def versions() -> dict[str, str]:
    """The versions a pickled predictor depends on (checked on load)."""
    import sklearn

    return {"mgedb": _version(), "scikit-learn": str(sklearn.__version__),
            "numpy": str(np.__version__)}


def version_changes(saved: dict[str, Any]) -> list[str]:
    """``"name saved (now current)"`` for every :func:`versions` entry that differs from
    ``saved``."""
    return [f"{k} {saved.get(k)} (now {v})" for k, v in versions().items() if saved.get(k) != v]


#: Nominal coverage of the prediction intervals.
LEVEL = 0.9


@dataclass
class Predictor:
    """Fitted pipelines keyed by architecture (or ``"*"``) and a manifest."""

    pipelines: dict[str, Any]
    columns: dict[str, list[str]]
    manifest: dict[str, Any]

    @property
    def feature_set(self) -> str:
        return str(self.manifest["feature_set"])

    @property
    def per_architecture(self) -> bool:
        return bool(self.manifest.get("per_architecture", "*" not in self.pipelines))

    @property
    def weight_dependent(self) -> bool:
        return bool(self.manifest.get("weight_dependent", False))

    def _group(self, arch: str) -> str | None:
        if not self.per_architecture:
            return "*"
        if arch in self.pipelines and arch != "*":
            return arch
        return "*" if "*" in self.pipelines else None

    def predict(self, records: pd.DataFrame, layers: pd.DataFrame | None = None) -> pd.DataFrame:
        """Predicted drop (and accuracy, where a dense or reference accuracy is known) per record,
        with its interval (``drop_lo``/``drop_hi``, at the manifest's ``interval_level``) and the
        domain check (``in_domain``, ``in_training``, ``domain_notes``) where the predictor has
        them.

        Raises :class:`PredictorError` when a network lacks the predictor's features.
        """
        from mgedb.predict.domain import DomainCheck, scale_at

        if records.empty:
            raise PredictorError("no network to score")
        meta = records.set_index("key")
        archs = [str(meta["model"].loc[k]) for k in records["key"]]
        groups: dict[str, str] = {}
        main = build_features(self.feature_set, records, layers).X
        lacking: set[str] = set()
        for key, arch in zip(records["key"], archs, strict=True):
            g = self._group(arch)
            if g is None:
                raise PredictorError(
                    f"network {key!r} is a {arch}, but this per-architecture predictor "
                    f"({self.feature_set}) was trained for {', '.join(sorted(self.pipelines))}")
            if g != "*" and key not in main.index and "*" in self.pipelines:
                g = "*"  # no layer rows: the architecture-independent fallback scores it
                lacking.add(str(key))
            groups[key] = g
        tables = {}
        for spec in {self._spec(g) for g in groups.values()}:
            ft = build_features(spec, records, layers)
            missing = [k for k in records["key"] if self._spec(groups[k]) == spec
                       and k not in ft.X.index]
            if missing:
                why = "; ".join(f"{n} ({r})" for r, n in ft.dropped.items()) or "no features"
                raise PredictorError(
                    f"network {missing[0]!r} lacks the features of predictor {spec!r} "
                    f"({why}); compute them first (mgedb metrics) or use a predictor trained on "
                    "features it has")
            tables[spec] = ft.X
        rows = []
        for key, arch in zip(records["key"], archs, strict=True):
            group = groups[key]
            X = tables[self._spec(group)]
            cols = self.columns[group]
            absent = [c for c in cols if c not in X.columns]
            if absent:
                raise PredictorError(
                    f"network {key!r} does not have feature {absent[0]!r} (and {len(absent) - 1} "
                    f"more) that predictor {self.feature_set!r} was trained on")
            x = X.loc[[key], cols]
            if np.isnan(x.to_numpy(dtype=float)).all():
                raise PredictorError(f"network {key!r}: every feature of predictor "
                                     f"{self.feature_set!r} is NaN")
            with single_thread():
                drop = float(self.pipelines[group].predict(x.to_numpy(dtype=float))[0])
            row: dict[str, Any] = {"key": key, "model": arch, "predicted_drop": drop}
            iv = self.manifest.get("intervals", {}).get(group)
            if iv:
                half = float(iv["q"]) * scale_at(iv["scale"], float(meta["sparsity"].loc[key]))
                row["drop_lo"], row["drop_hi"] = drop - half, drop + half
            dom = self.manifest.get("domain", {}).get(group)
            if dom:
                known = group != "*" or not self.per_architecture or str(key) in lacking
                chk = DomainCheck(dom, arch).check(x, meta.loc[[key]], architecture_known=known)
                row.update(chk.loc[key].to_dict())
                if str(key) in lacking:
                    row["in_domain"] = False
                    row["domain_notes"] = "; ".join(
                        n for n in ("no layer densities: scored by the architecture-independent "
                                    "fallback model", row["domain_notes"]) if n)
            rows.append(row)
        out = pd.DataFrame(rows)
        ref = pd.DataFrame(self.manifest.get("reference", []),
                           columns=["model", "dataset", "reference_accuracy"])
        target = accuracy_drop(records, ref)
        base = target["base"].to_numpy(dtype=float)
        _clip_to_range(out, base)
        out.insert(3, "predicted_accuracy", base * (1 - out["predicted_drop"].to_numpy()))
        out.insert(4, "relative_to", target["basis"].to_numpy())
        return out

    def _spec(self, group: str) -> str:
        if group == "*" and self.per_architecture:
            return str(self.manifest["fallback_feature_set"])
        return self.feature_set

    def save(self, path: str | Path) -> Path:
        """Write the joblib file and ``<path>.json`` (the manifest)."""
        import joblib

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"format": FORMAT, "pipelines": self.pipelines, "columns": self.columns,
                   "manifest": self.manifest}
        with atomic_write(path) as fh:
            joblib.dump(payload, fh, compress=3)
        write_json(path.with_name(path.name + ".json"), _public(self.manifest))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Predictor:
        """Read a predictor written by :meth:`save` (a trusted file: joblib unpickles code)."""
        import joblib

        path = Path(path)
        if not path.is_file():
            raise PredictorError(f"{path}: no such predictor file; train one with "
                                 "`mgedb predict train --out FILE`")
        try:
            obj = joblib.load(path)
        except Exception as e:  # any unpickling failure means "not a predictor file"
            raise PredictorError(f"{path}: not a readable predictor file ({type(e).__name__})"
                                 ) from None
        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            raise PredictorError(f"{path}: not an mgedb predictor (expected format {FORMAT})")
        saved = obj["manifest"].get("versions") or {"mgedb": obj["manifest"].get("mgedb_version")}
        diff = version_changes(saved)
        if diff:
            raise PredictorError(
                f"{path}: saved under {', '.join(diff)}; a pickled scikit-learn model is only "
                "reliable under the versions that wrote it. Retrain it with `mgedb predict train "
                "--out FILE` (the built-in predictor retrains by itself)")
        return cls(obj["pipelines"], obj["columns"], obj["manifest"])


def _clip_to_range(out: pd.DataFrame, base: np.ndarray) -> None:
    """Clip the predicted drop and its interval to the possible range of the target: an accuracy
    in [0, 1] gives drop = (base − acc) / base in [1 − 1/base, 1] (only ≤ 1 where no base is
    known). Clipping never uncovers a true drop, which always lies in that range."""
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = np.where(np.isfinite(base) & (base > 0), 1 - 1 / base, -np.inf)
    for c in ("predicted_drop", "drop_lo", "drop_hi"):
        if c in out.columns:
            out[c] = np.clip(out[c].to_numpy(dtype=float), lo, 1.0)


def _public(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest without the bulky training matrices (for the JSON sidecar)."""
    out = dict(manifest)
    if "domain" in out:
        out["domain"] = {g: {k: v for k, v in d.items() if k not in ("train_z", "keys")}
                         for g, d in out["domain"].items()}
    return out


def _cv_rows(summary: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
            for r in summary.to_dict("records")]


def _pooled_oof(data: ModelData, regressor: str, seed: int) -> pd.DataFrame:
    """Grouped 5-fold out-of-fold predictions of one model pooled over every row (group ``*``)."""
    from joblib import Parallel, delayed

    from mgedb.predict.evaluate import _fit_fold, _folds

    pred = np.full(len(data.X), np.nan)
    fold_of = np.empty(len(data.X), dtype=object)
    folds = _folds(data.meta, "kfold", 5, seed)
    fitted = Parallel()(delayed(_fit_fold)(data.X.iloc[tr], data.y.iloc[tr], data.X.iloc[te],
                                           regressor, seed, False, False)
                        for _, tr, te in folds)
    for (fold, _, te), (_, _, p) in zip(folds, fitted, strict=True):
        pred[te] = p
        fold_of[te] = fold
    oof = data.meta[["model", "dataset", "pruner", "sparsity"]].copy()
    oof["y_true"], oof["y_pred"], oof["group"], oof["fold"] = data.y.to_numpy(), pred, "*", fold_of
    return oof[np.isfinite(pred)]


def _intervals(oof: pd.DataFrame, level: float) -> dict[str, dict[str, Any]]:
    """Per group: the conformal quantile, the per-sparsity scale and the measured coverage."""
    from mgedb.predict.domain import (
        conformal_coverage,
        conformal_quantile,
        cross_fitted_scores,
        sparsity_scale,
    )

    cov = conformal_coverage(oof, level)
    out: dict[str, dict[str, Any]] = {}
    for g, og in oof.groupby("group", sort=True):
        res = (og["y_true"] - og["y_pred"]).to_numpy(dtype=float)
        sp = og["sparsity"].to_numpy(dtype=float)
        scores = cross_fitted_scores(res, sp, og["fold"].to_numpy())
        c = cov[cov["group"] == g]
        out[str(g)] = {
            "level": level, "q": conformal_quantile(scores, level),
            "scale": sparsity_scale(sp, res),
            "n": len(og),
            "coverage": float(np.average(c["covered"], weights=c["n"])) if len(c) else None,
            "mean_width": float(np.average(c["width"], weights=c["n"])) if len(c) else None,
            "how": "split-conformal on grouped 5-fold out-of-fold residuals (seeds of a network "
                   "in one fold), scaled per sparsity by a scale cross-fitted on the other "
                   "folds; coverage: each fold covered by a quantile and a scale from the other "
                   "folds only",
        }
    return out


def _fit_group(X: pd.DataFrame, y: pd.Series, meta: pd.DataFrame, regressor: str, seed: int,
               tune: bool) -> tuple[Any, list[str], dict[str, float | None], dict[str, Any]]:
    """One group's final pipeline, columns, feature medians and training domain (a joblib task)."""
    from mgedb.predict.domain import describe_domain

    with single_thread():
        pipe, cols = fit_pipeline(X, y, regressor, seed, tune=tune)
    med = X[cols].median()
    return (pipe, cols, {str(c): (None if np.isnan(v) else float(v)) for c, v in med.items()},
            describe_domain(X[cols], meta))


def _fit_groups(data: ModelData, groups: dict[str, np.ndarray], regressor: str, seed: int,
                tune: bool) -> tuple[dict[str, Any], dict[str, list[str]],
                                     dict[str, dict[str, float | None]], dict[str, Any]]:
    from joblib import Parallel, delayed

    names = [str(g) for g in groups]
    fitted = Parallel()(delayed(_fit_group)(data.X.iloc[idx], data.y.iloc[idx],
                                            data.meta.iloc[idx], regressor, seed, tune)
                        for idx in groups.values())
    return ({g: f[0] for g, f in zip(names, fitted, strict=True)},
            {g: f[1] for g, f in zip(names, fitted, strict=True)},
            {g: f[2] for g, f in zip(names, fitted, strict=True)},
            {g: f[3] for g, f in zip(names, fitted, strict=True)})


def train_predictor(records: pd.DataFrame, layers: pd.DataFrame | None, features: str = "mge",
                    *, regressor: str = "hgb", protocol: str | None = "loao", seed: int = 0,
                    pai_only: bool = True, reference: pd.DataFrame | None = None,
                    tune: bool = False, data_digest: str = "", intervals: bool = True,
                    fallback: bool = False, group_seeds: bool = True,
                    level: float = LEVEL) -> Predictor:
    """Cross-validate under ``protocol`` (None: skip) and fit the final model on every row.

    ``intervals``: add split-conformal intervals at ``level`` from grouped out-of-fold residuals.
    ``fallback``: for a per-architecture set, also fit a pooled model on its
    architecture-independent parts, used (and flagged out of domain) for other architectures.
    """
    spec = "+".join(parse_feature_spec(features))
    data = assemble(records, layers, spec, pai_only=pai_only, reference=reference)
    if data.X.empty:
        raise PredictorError(f"no network has the features {spec!r} and an accuracy drop")
    cv_summary: list[dict[str, Any]] = []
    cv_folds: list[dict[str, Any]] = []
    cv = None
    if protocol:
        cv = cross_validate(data, protocol, regressor=regressor, seed=seed, tune=tune,
                            group_seeds=group_seeds)
        cv_summary = _cv_rows(cv.summary())
        cv_folds = _cv_rows(cv.folds)
    groups: dict[str, np.ndarray] = (
        {str(k): np.asarray(v) for k, v in data.meta.groupby("model").indices.items()}
        if data.per_architecture else {"*": np.arange(len(data.X))})
    pipelines, columns, medians, domain = _fit_groups(data, groups, regressor, seed, tune)
    ivals: dict[str, Any] = {}
    if intervals:
        if protocol == "kfold" and group_seeds and data.per_architecture and not tune:
            assert cv is not None
            oof = cv.oof  # the same grouped folds: no need to fit them twice
        elif data.per_architecture:
            oof = cross_validate(data, "kfold", regressor=regressor, seed=seed).oof
        else:
            oof = _pooled_oof(data, regressor, seed)
        ivals = _intervals(oof, level)
    fb_spec = ""
    if fallback and data.per_architecture:
        from mgedb.predict.features import FEATURE_SETS

        fb_spec = "+".join(p for p in parse_feature_spec(spec)
                           if not FEATURE_SETS[p].per_architecture)
        if fb_spec:
            fb = assemble(records, layers, fb_spec, pai_only=pai_only, reference=reference)
            p2, c2, m2, d2 = _fit_groups(fb, {"*": np.arange(len(fb.X))}, regressor, seed, tune)
            pipelines |= p2
            columns |= c2
            medians |= m2
            domain |= d2
            if intervals:
                ivals |= _intervals(_pooled_oof(fb, regressor, seed), level)
    ref = data.reference
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "mgedb_version": _version(),
        "versions": versions(),
        "feature_set": spec,
        "fallback_feature_set": fb_spec,
        "weight_dependent": data.weight_dependent,
        "per_architecture": data.per_architecture,
        "feature_names": columns,
        "feature_medians": medians,
        "regressor": regressor,
        "regressor_params": {g: repr(p) for g, p in pipelines.items()},
        "tuned": tune,
        "seed": seed,
        "pai_only": pai_only,
        "target": "relative accuracy drop (base − acc) / base",
        "target_note": DEFAULT_REFERENCE_NOTE,
        "reference": ref[["model", "dataset", "reference_accuracy", "origin"]].to_dict("records"),
        "protocol": protocol,
        "group_seeds": group_seeds,
        "cv_summary": cv_summary,
        "cv_folds": cv_folds,
        "interval_level": level if intervals else None,
        "intervals": ivals,
        "domain": domain,
        "n_train": len(data.X),
        "training_keys": [str(k) for k in data.X.index],
        "architectures": sorted(set(data.meta["model"])),
        "data_digest": data_digest,
        "notes": data.notes,
    }
    return Predictor(pipelines, columns, manifest)


def _cache_dir(cache_dir: str | Path | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("MGEDB_CACHE_DIR")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("mgedb"))


def shipped_cv_scores(spec: str, regressor: str, digest: str) -> dict[str, Any] | None:
    """The grouped-CV scores of (``spec``, ``regressor``) in mgedb/data/predictor_cv.json
    (written by bench/predictor_cv.py): None when the file or the candidate is absent or was
    computed on other data.

    Raises :class:`PredictorError` when the file was written under other mgedb / scikit-learn /
    numpy versions (its scores describe models those versions fitted).
    """
    from importlib.resources import files

    f = files("mgedb.data") / "predictor_cv.json"
    if not f.is_file():
        return None
    doc = json.loads(f.read_text())
    row = doc.get("candidates", {}).get(f"{regressor}:{spec}")
    if doc.get("data_digest") != digest or row is None:
        return None
    diff = version_changes(doc.get("versions") or {})
    if diff:
        raise PredictorError(
            f"mgedb/data/predictor_cv.json was computed under {', '.join(diff)}; its CV scores "
            "describe models fitted by those versions. Recompute it with "
            "`python bench/predictor_cv.py`")
    return {"scores": row, **{k: doc[k] for k in ("cv_seeds", "how", "versions",
                                                  "architectures", "level") if k in doc},
            "regressor": regressor, "features": spec}


def default_predictor(features: str = STUDY_FEATURES, *, regressor: str = STUDY_REGRESSOR,
                      cache_dir: str | Path | None = None) -> Predictor:
    """The study's predictor, trained on the shipped published table (PaI rows), cached on disk.

    Fitted at first use (grouped 5-fold CV for its scores and split-conformal intervals, then the
    final per-architecture models and the pooled fallback, on every core)
    rather than shipped as a pickle, because a pickled scikit-learn model is only valid under the
    library versions that wrote it. The cache file (under
    ``platformdirs.user_cache_dir('mgedb')``, or ``$MGEDB_CACHE_DIR``, or ``cache_dir``) is keyed
    by the shipped data's digest, the feature set, the regressor and the mgedb / scikit-learn /
    numpy versions, so new data or a new library retrains it. The manifest also carries the
    3-seed grouped-CV table of bench/predictor_cv.py when it matches the data (``cv_scores``).
    """
    from mgedb.predict.published import load_shipped, shipped_digest

    spec = "+".join(parse_feature_spec(features))
    digest = shipped_digest()
    v = versions()
    tag = hashlib.sha256(f"{digest}|{spec}|{regressor}|{sorted(v.items())}".encode()
                         ).hexdigest()[:16]
    name = spec if len(spec) <= 40 else hashlib.sha256(spec.encode()).hexdigest()[:12]
    path = _cache_dir(cache_dir) / "predictors" / f"{name}-{regressor}-{tag}.joblib"
    if path.is_file():
        try:
            p = Predictor.load(path)
            if (p.manifest.get("data_digest") == digest and p.feature_set == spec
                    and "feature_medians" in p.manifest and "intervals" in p.manifest):
                return _with_cv_scores(p, spec, regressor, digest)
        except PredictorError:
            pass  # a corrupt or outdated cache entry is rebuilt below
    from joblib import parallel_config

    data = load_shipped()
    with parallel_config(n_jobs=-1):  # the fold and final fits on every core
        p = train_predictor(data.records, data.layers, spec, regressor=regressor,
                            protocol="kfold", data_digest=digest, fallback=True)
    p.save(path)
    return _with_cv_scores(p, spec, regressor, digest)


def _with_cv_scores(p: Predictor, spec: str, regressor: str, digest: str) -> Predictor:
    """Attach the shipped CV scores (read afresh: the file may be newer than the cache)."""
    p.manifest.pop("cv_scores_note", None)
    try:
        p.manifest["cv_scores"] = shipped_cv_scores(spec, regressor, digest)
    except PredictorError as e:  # the study still runs; its report says why no scores are shown
        p.manifest["cv_scores"] = None
        p.manifest["cv_scores_note"] = str(e)
    return p
