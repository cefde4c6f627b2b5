"""Trained predictors: fit, save, load, score; and the default predictor cached per data digest.

A :class:`Predictor` holds one fitted pipeline (architecture-independent feature sets, key ``"*"``)
or one per architecture (layer-wise sets), the columns each expects, and a JSON-able manifest:
mgedb version, feature set and names, regressor, training keys, protocol and CV scores, the
reference-accuracy table and the data digest. Saved files are joblib pickles (load only files you
trust: unpickling runs code) with the manifest also written next to them as ``<file>.json``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mgedb.atomic import atomic_write, write_json
from mgedb.errors import PredictorError
from mgedb.predict.evaluate import assemble, cross_validate, fit_pipeline, single_thread
from mgedb.predict.features import build_features, parse_feature_spec
from mgedb.predict.targets import DEFAULT_REFERENCE_NOTE, accuracy_drop

__all__ = ["Predictor", "default_predictor", "train_predictor"]

FORMAT = "mgedb-predictor/1"


def _version() -> str:
    import mgedb

    return str(mgedb.__version__)


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
        return "*" not in self.pipelines

    @property
    def weight_dependent(self) -> bool:
        return bool(self.manifest.get("weight_dependent", False))

    def predict(self, records: pd.DataFrame, layers: pd.DataFrame | None = None) -> pd.DataFrame:
        """Predicted drop (and accuracy, where a dense or reference accuracy is known) per record.

        Raises :class:`PredictorError` when a network lacks the predictor's features.
        """
        if records.empty:
            raise PredictorError("no network to score")
        ft = build_features(self.feature_set, records, layers)
        missing = [k for k in records["key"] if k not in ft.X.index]
        if missing:
            why = "; ".join(f"{n} ({r})" for r, n in ft.dropped.items()) or "no features"
            raise PredictorError(
                f"network {missing[0]!r} lacks the features of predictor {self.feature_set!r} "
                f"({why}); compute them first (mgedb metrics) or use a predictor trained on "
                "features it has")
        out = []
        meta = records.set_index("key")
        for key in records["key"]:
            arch = str(meta.at[key, "model"])
            group = "*" if "*" in self.pipelines else arch
            if group not in self.pipelines:
                raise PredictorError(
                    f"network {key!r} is a {arch}, but this per-architecture predictor "
                    f"({self.feature_set}) was trained for {', '.join(sorted(self.pipelines))}")
            cols = self.columns[group]
            absent = [c for c in cols if c not in ft.X.columns]
            if absent:
                raise PredictorError(
                    f"network {key!r} does not have feature {absent[0]!r} (and {len(absent) - 1} "
                    f"more) that predictor {self.feature_set!r} was trained on")
            x = ft.X.loc[[key], cols].to_numpy(dtype=float)
            if np.isnan(x).all():
                raise PredictorError(f"network {key!r}: every feature of predictor "
                                     f"{self.feature_set!r} is NaN")
            with single_thread():
                out.append(float(self.pipelines[group].predict(x)[0]))
        ref = pd.DataFrame(self.manifest.get("reference", []),
                           columns=["model", "dataset", "reference_accuracy"])
        base = accuracy_drop(records, ref)
        drop = np.asarray(out)
        return pd.DataFrame({
            "key": records["key"].to_numpy(), "model": records["model"].to_numpy(),
            "predicted_drop": drop,
            "predicted_accuracy": base["base"].to_numpy() * (1 - drop),
            "relative_to": base["basis"].to_numpy(),
        })

    def save(self, path: str | Path) -> Path:
        """Write the joblib file and ``<path>.json`` (the manifest)."""
        import joblib

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"format": FORMAT, "pipelines": self.pipelines, "columns": self.columns,
                   "manifest": self.manifest}
        with atomic_write(path) as fh:
            joblib.dump(payload, fh, compress=3)
        write_json(path.with_name(path.name + ".json"), self.manifest)
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
        return cls(obj["pipelines"], obj["columns"], obj["manifest"])


def _cv_rows(summary: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
            for r in summary.to_dict("records")]


def train_predictor(records: pd.DataFrame, layers: pd.DataFrame | None, features: str = "mge",
                    *, regressor: str = "hgb", protocol: str | None = "loao", seed: int = 0,
                    pai_only: bool = True, reference: pd.DataFrame | None = None,
                    tune: bool = False, data_digest: str = "") -> Predictor:
    """Cross-validate under ``protocol`` (None: skip) and fit the final model on every row."""
    spec = "+".join(parse_feature_spec(features))
    data = assemble(records, layers, spec, pai_only=pai_only, reference=reference)
    if data.X.empty:
        raise PredictorError(f"no network has the features {spec!r} and an accuracy drop")
    cv_summary: list[dict[str, Any]] = []
    cv_folds: list[dict[str, Any]] = []
    if protocol:
        cv = cross_validate(data, protocol, regressor=regressor, seed=seed, tune=tune)
        cv_summary = _cv_rows(cv.summary())
        cv_folds = _cv_rows(cv.folds)
    groups = (data.meta.groupby("model").indices if data.per_architecture
              else {"*": np.arange(len(data.X))})
    pipelines: dict[str, Any] = {}
    columns: dict[str, list[str]] = {}
    medians: dict[str, dict[str, float | None]] = {}
    with single_thread():
        for g, idx in groups.items():
            pipelines[str(g)], columns[str(g)] = fit_pipeline(
                data.X.iloc[idx], data.y.iloc[idx], regressor, seed, tune=tune)
            med = data.X.iloc[idx][columns[str(g)]].median()
            medians[str(g)] = {str(c): (None if np.isnan(v) else float(v))
                               for c, v in med.items()}
    ref = data.reference
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "mgedb_version": _version(),
        "feature_set": spec,
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
        "cv_summary": cv_summary,
        "cv_folds": cv_folds,
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


def default_predictor(features: str = "mge-structural", *, regressor: str = "hgb",
                      cache_dir: str | Path | None = None) -> Predictor:
    """A predictor trained on the shipped published table (PaI rows), cached on disk.

    The cache file (under ``platformdirs.user_cache_dir('mgedb')``, or ``$MGEDB_CACHE_DIR``, or
    ``cache_dir``) is keyed by the shipped data's digest, the feature set, the regressor and the
    mgedb version, so a new release or new data retrains it (a few seconds). The default set is
    ``mge-structural`` because networks scored before training have no trained weights.
    """
    from mgedb.predict.published import load_shipped, shipped_digest

    spec = "+".join(parse_feature_spec(features))
    digest = shipped_digest()
    tag = hashlib.sha256(f"{digest}|{spec}|{regressor}|{_version()}".encode()).hexdigest()[:16]
    path = _cache_dir(cache_dir) / "predictors" / f"{spec}-{regressor}-{tag}.joblib"
    if path.is_file():
        try:
            p = Predictor.load(path)
            if (p.manifest.get("data_digest") == digest and p.feature_set == spec
                    and "feature_medians" in p.manifest):
                return p
        except PredictorError:
            pass  # a corrupt cache entry is rebuilt below
    data = load_shipped()
    p = train_predictor(data.records, data.layers, spec, regressor=regressor, protocol=None,
                        data_digest=digest)
    p.save(path)
    return p
