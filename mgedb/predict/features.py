"""Named feature sets built from a record table and a layer table.

Single sets (see :data:`FEATURE_SETS`) and unions written ``a+b+c``. A network is *available* for a
set when it has the set's source data: record sets need every column non-NaN; layer sets need layer
rows of the right encoding (NaN inside a layer metric, e.g. an undefined Ramanujan bound, is allowed
and left to the regressor). Layer-wise sets are *per architecture*: their columns are named after
the layer (``rolled:layer1.0.conv1:motif``), so a layer-wise model is fitted for one architecture
at a time; all other sets are architecture-independent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import numpy as np
import pandas as pd

from mgedb.errors import DataError, PredictorError
from mgedb.predict.records import (
    BGE_METRICS,
    BGE_STRUCTURAL,
    DATASETS,
    MGE_METRICS,
    MGE_STRUCTURAL,
    RAMANUJAN_METRICS,
)

__all__ = [
    "FEATURE_SETS",
    "FeatureSet",
    "FeatureTable",
    "build_features",
    "parse_feature_spec",
]

#: Short names of the Ramanujan metrics in feature names.
RAMANUJAN_SHORT = {"degree_bound": "delta_r", "iterative_spectral_gap": "imsg",
                   "iterative_degree_bound": "imdb"}


@dataclass(frozen=True)
class FeatureSet:
    """One named single feature set."""

    name: str
    description: str
    source: str  # "record" | "setting" | "layer-mean" | "layerwise" | "centred"
    columns: tuple[str, ...]
    encoding: str = ""
    weight_dependent: bool = False
    base: str = ""  # for "centred": the set whose columns are centred

    @property
    def per_architecture(self) -> bool:
        if self.source == "centred":
            return FEATURE_SETS[self.base].per_architecture
        return self.source == "layerwise"


#: The columns of the ``setting`` set: known before training, from the configuration and the mask.
SETTING_COLUMNS = ("sparsity", *(f"dataset={d}" for d in DATASETS), "log10_nodes", "log10_edges")
#: A setting: the candidate networks one ranks against each other (the same model, dataset and
#: global sparsity). Centred sets subtract the setting's mean over the table being featurised.
SETTING = ("model", "dataset", "sparsity")


FEATURE_SETS: dict[str, FeatureSet] = {
    s.name: s for s in (
        FeatureSet("mge", "the 16 MGE topometrics (published normalisation)", "record",
                   MGE_METRICS, weight_dependent=True),
        FeatureSet("mge-structural", "the 13 mask-only MGE topometrics (no strength, spectral "
                   "gap, spectral radius)", "record", MGE_STRUCTURAL),
        FeatureSet("sparsity", "global sparsity only", "record", ("sparsity",)),
        FeatureSet("rolled-mean", "the 10 rolled-BGE topometrics averaged over layers",
                   "layer-mean", BGE_METRICS, "rolled", weight_dependent=True),
        FeatureSet("rolled-channel-mean", "the 10 rolled-channel-BGE topometrics averaged over "
                   "layers", "layer-mean", BGE_METRICS, "rolled-channel", weight_dependent=True),
        FeatureSet("rolled-layerwise", "the 10 rolled-BGE topometrics of every layer",
                   "layerwise", BGE_METRICS, "rolled", weight_dependent=True),
        FeatureSet("rolled-channel-layerwise", "the 10 rolled-channel-BGE topometrics of every "
                   "layer", "layerwise", BGE_METRICS, "rolled-channel", weight_dependent=True),
        FeatureSet("ramanujan", "per layer: Δr, iterative mean spectral gap, IMDB (rolled BGE)",
                   "layerwise", RAMANUJAN_METRICS, "rolled", weight_dependent=True),
        FeatureSet("density", "the density of every layer", "layerwise", ("density",), "rolled"),
        FeatureSet("setting", "global sparsity, dataset (one-hot), log10 of the MGE's nodes and "
                   "edges: known before training", "setting", SETTING_COLUMNS),
        FeatureSet("ramanujan-structural", "per layer: Δr and IMDB (rolled BGE, mask-only; no "
                   "weighted spectral gap)", "layerwise",
                   ("degree_bound", "iterative_degree_bound"), "rolled"),
        FeatureSet("rolled-channel-structural", "the 7 mask-only rolled-channel-BGE topometrics "
                   "of every layer", "layerwise", BGE_STRUCTURAL, "rolled-channel"),
        FeatureSet("mge-structural-centred", "mge-structural minus its mean over the setting's "
                   "networks (same model, dataset, sparsity; no labels)", "centred",
                   MGE_STRUCTURAL, base="mge-structural"),
        FeatureSet("density-centred", "density minus its mean over the setting's networks",
                   "centred", ("density",), base="density"),
        FeatureSet("rolled-channel-structural-centred", "rolled-channel-structural minus its "
                   "mean over the setting's networks", "centred", BGE_STRUCTURAL,
                   base="rolled-channel-structural"),
    )
}
#: Sets added for the grouped-CV study (#16); `predict compare` keeps the older defaults.
NEW_SETS = ("setting", "ramanujan-structural", "rolled-channel-structural",
            "mge-structural-centred", "density-centred", "rolled-channel-structural-centred")


def parse_feature_spec(spec: str) -> tuple[str, ...]:
    """``'mge+density'`` → ``('mge', 'density')``; unknown names raise :class:`PredictorError`."""
    parts = tuple(p.strip() for p in spec.split("+") if p.strip())
    if not parts:
        raise PredictorError(f"empty feature set {spec!r}; choose from {', '.join(FEATURE_SETS)}")
    bad = [p for p in parts if p not in FEATURE_SETS]
    if bad:
        raise PredictorError(f"unknown feature set {bad[0]!r} in {spec!r}; choose from "
                             f"{', '.join(FEATURE_SETS)} or a union such as 'mge+density'")
    return tuple(dict.fromkeys(parts))


@dataclass
class FeatureTable:
    """Features (index = network key) of the available networks, and what was left out."""

    spec: str
    X: pd.DataFrame
    per_architecture: bool
    weight_dependent: bool
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> count

    @property
    def names(self) -> list[str]:
        return list(self.X.columns)


def _record_set(fs: FeatureSet, records: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    X = records.set_index("key")[list(fs.columns)].astype(float)
    ok = X.notna().all(axis=1)
    return X[ok], int((~ok).sum())


def _setting_set(records: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    r = records.set_index("key")
    X = pd.DataFrame(index=r.index)
    X["sparsity"] = r["sparsity"].astype(float)
    for d in DATASETS:
        X[f"dataset={d}"] = (r["dataset"] == d).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        X["log10_nodes"] = np.log10(r["nodes"].astype(float).where(r["nodes"] > 0))
        X["log10_edges"] = np.log10(r["edges"].astype(float).where(r["edges"] > 0))
    ok = X.notna().all(axis=1)
    return X[ok], int((~ok).sum())


def _centred_set(fs: FeatureSet, records: pd.DataFrame, layers: pd.DataFrame
                 ) -> tuple[pd.DataFrame, int]:
    """The base set minus its mean over each setting's networks (NaN-skipping; no labels)."""
    base = build_features(fs.base, records, layers).X
    setting = records.set_index("key").loc[base.index, list(SETTING)]
    groups = [setting[c].astype(str).to_numpy() for c in SETTING]
    mean = base.groupby(groups).transform("mean")
    X = base - mean.to_numpy()
    X.columns = [f"centred:{c}" for c in base.columns]
    return X, len(records) - len(X)


def _layer_rows(fs: FeatureSet, layers: pd.DataFrame) -> pd.DataFrame:
    rows = layers[layers["encoding"] == fs.encoding]
    if fs.name == "density" and rows.empty:
        rows = layers[layers["encoding"] == "rolled-channel"]
    return rows


def _layer_mean_set(fs: FeatureSet, layers: pd.DataFrame) -> pd.DataFrame:
    rows = _layer_rows(fs, layers)
    cols = list(fs.columns)
    g = rows.groupby("key", sort=False)[cols]
    X = g.mean()  # skips NaN; all-NaN layer columns stay NaN
    X.columns = [f"{fs.name}:{c}" for c in cols]
    return X


def _feature_label(fs: FeatureSet, layer: str, metric: str) -> str:
    if fs.name == "density":
        return f"density:{layer}"
    if fs.name in ("ramanujan", "ramanujan-structural"):
        return f"ramanujan:{layer}:{RAMANUJAN_SHORT[metric]}"
    return f"{fs.encoding}:{layer}:{metric}"


def _layerwise_set(fs: FeatureSet, layers: pd.DataFrame) -> pd.DataFrame:
    rows = _layer_rows(fs, layers)
    cols = list(fs.columns)
    if rows.duplicated(["key", "layer_name"]).any():
        r = rows[rows.duplicated(["key", "layer_name"])].iloc[0]
        raise DataError(f"layer table: network {r['key']!r} has two {fs.encoding} layers named "
                        f"{r['layer_name']!r}; layer names must be unique within a network")
    wide = rows.pivot(index="key", columns="layer_name", values=cols)
    position = rows.groupby("layer_name")["layer_id"].min()
    # column MultiIndex (metric, layer_name): order by layer position, then metric
    pairs = cast("pd.MultiIndex", wide.columns)
    order: list[tuple[str, str]] = sorted(
        pairs, key=lambda c: (position[c[1]], c[1], cols.index(c[0])))
    wide = wide[order]
    wide.columns = [_feature_label(fs, name, metric) for metric, name in order]
    return wide.astype(float)


def build_features(spec: str, records: pd.DataFrame, layers: pd.DataFrame | None) -> FeatureTable:
    """The feature matrix of ``spec`` (a single set or a ``+`` union) for each available network."""
    parts = parse_feature_spec(spec)
    layers = layers if layers is not None else pd.DataFrame(columns=["key", "encoding"])
    frames: list[pd.DataFrame] = []
    dropped: dict[str, int] = {}
    keys = pd.Index(records["key"])
    for name in parts:
        fs = FEATURE_SETS[name]
        if fs.source in ("record", "setting", "centred"):
            if fs.source == "record":
                X, n_nan = _record_set(fs, records)
            elif fs.source == "setting":
                X, n_nan = _setting_set(records)
            else:
                X, n_nan = _centred_set(fs, records, layers)
            if n_nan:
                why = "NaN metrics" if fs.source == "record" else "NaN or missing inputs"
                dropped[f"{name}: {why}"] = n_nan
        else:
            X = (_layer_mean_set if fs.source == "layer-mean" else _layerwise_set)(fs, layers)
            X = X[X.index.isin(keys)]
            missing = int((~keys.isin(X.index)).sum())
            if missing:
                dropped[f"{name}: no {fs.encoding or 'layer'} rows"] = missing
        frames.append(X)
    X = frames[0]
    for other in frames[1:]:
        new = [c for c in other.columns if c not in X.columns]
        X = X.join(other[new], how="inner")
    X = X.loc[keys[keys.isin(X.index)]]
    X = X.replace([np.inf, -np.inf], np.nan)
    sets = [FEATURE_SETS[p] for p in parts]
    return FeatureTable(
        spec="+".join(parts), X=X,
        per_architecture=any(s.per_architecture for s in sets),
        weight_dependent=any(s.weight_dependent for s in sets),
        dropped=dropped,
    )
