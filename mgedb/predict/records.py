"""The one record schema shared by published networks and networks measured by mgedb.

A *record table* is a :class:`pandas.DataFrame` with one row per trained sparse network and the
columns :data:`RECORD_COLUMNS`, in that order. A *layer table* holds one row per (network, encoding,
layer) with the columns :data:`LAYER_COLUMNS`. Both are what ``GraphStore.write_records`` stores and
``GraphStore.read_records`` returns; docs/predict.md documents every column.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mgedb.errors import DataError
from mgedb.metrics.registry import BGE_METRICS as REGISTRY_BGE_METRICS
from mgedb.metrics.registry import RAMANUJAN_PUBLISHED, published_columns, published_order, spec
from mgedb.store.records import RECORD_META
from mgedb.vocab import Dataset, Encoding, Pruner

__all__ = [
    "BGE_METRICS",
    "BGE_STRUCTURAL",
    "DATASETS",
    "DST_PRUNERS",
    "LAYER_COLUMNS",
    "MGE_METRICS",
    "MGE_STRUCTURAL",
    "MGE_WEIGHTED",
    "MODELS",
    "PAI_PRUNERS",
    "RAMANUJAN_METRICS",
    "RECORD_COLUMNS",
    "SOURCES",
    "density_layers",
    "empty_layers",
    "empty_records",
    "make_key",
    "record_from_metrics",
    "validate_layers",
    "validate_records",
]

#: Published architecture names (the ``model`` column).
MODELS = ("CONV-6", "Resnet-20", "Resnet-32", "Wide-Resnet-28-2", "MobileNetV2")
#: Pruning-at-initialisation algorithms (ranked by ``mgedb predict``).
PAI_PRUNERS: tuple[str, ...] = Pruner.values()
#: Dynamic-sparse-training algorithms of the published table.
DST_PRUNERS = ("snfs", "itop", "rigl", "dsr")
#: Published dataset names (the ``dataset`` column).
DATASETS: tuple[str, ...] = tuple(d.published for d in Dataset)
SOURCES = ("published", "mgedb")

# Every metric column comes from the metric registry (mgedb.metrics.registry), under its
# published column name.
#: The 16 MGE topometrics, under the published (normalised) column names, in the published order.
MGE_METRICS: tuple[str, ...] = tuple(published_columns())
#: The MGE topometrics that depend on the trained weights (the rest depend on the mask only).
MGE_WEIGHTED: tuple[str, ...] = tuple(spec(n).column for n in published_order()
                                      if spec(n).weighted)
#: The 13 mask-only MGE topometrics.
MGE_STRUCTURAL = tuple(m for m in MGE_METRICS if m not in MGE_WEIGHTED)

#: The 10 per-layer topometrics of the rolled / rolled-channel BGEs (raw, un-normalised).
BGE_METRICS: tuple[str, ...] = tuple(spec(n).column for n in REGISTRY_BGE_METRICS)
#: The 7 BGE topometrics that depend on the mask only (no strength, spectral gap or radius).
BGE_STRUCTURAL: tuple[str, ...] = tuple(spec(n).column for n in REGISTRY_BGE_METRICS
                                        if not spec(n).weighted)
#: Per-layer Ramanujan metrics of the rolled BGE (published ``ramanunjan_results``).
RAMANUJAN_METRICS: tuple[str, ...] = tuple(RAMANUJAN_PUBLISHED.values())

RECORD_COLUMNS = (*RECORD_META, *MGE_METRICS)
LAYER_COLUMNS = (
    "key", "encoding", "layer_id", "layer_name", "density", *BGE_METRICS, *RAMANUJAN_METRICS,
)
LAYER_ENCODINGS: tuple[str, ...] = tuple(e.value for e in Encoding if e.bge)

_STR = ("key", "source", "model", "dataset", "pruner")
_INT = ("seed",)
_LAYER_STR = ("key", "encoding", "layer_name")
_LAYER_INT = ("layer_id",)


def make_key(source: str, model: str, dataset: str, pruner: str, sparsity: float,
             seed: int) -> str:
    """The canonical network key, e.g. ``published/Resnet-20/CIFAR-10/snip/0.9/0``."""
    return f"{source}/{model}/{dataset}/{pruner}/{float(sparsity):g}/{int(seed)}"


def empty_records() -> pd.DataFrame:
    """A record table with no rows and the right dtypes."""
    return validate_records(pd.DataFrame({c: [] for c in RECORD_COLUMNS}), "empty")


def empty_layers() -> pd.DataFrame:
    """A layer table with no rows and the right dtypes."""
    return validate_layers(pd.DataFrame({c: [] for c in LAYER_COLUMNS}), "empty")


def _coerce(df: pd.DataFrame, what: str, str_cols: tuple[str, ...],
            int_cols: tuple[str, ...], columns: tuple[str, ...]) -> pd.DataFrame:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"{what}: missing column(s) {', '.join(missing)}; expected {list(columns)}")
    out = df.loc[:, list(columns)].copy()
    for c in columns:
        if c in str_cols:
            if out[c].isna().any():
                raise DataError(f"{what}: column {c!r} has empty values; it must be text")
            out[c] = out[c].astype(str)
            continue
        try:
            num = pd.to_numeric(out[c], errors="raise")
        except (ValueError, TypeError):
            raise DataError(f"{what}: column {c!r} must be numeric") from None
        if c in int_cols:
            if num.isna().any() or not np.all(np.mod(num.to_numpy(dtype=float), 1) == 0):
                raise DataError(f"{what}: column {c!r} must hold integers")
            out[c] = num.astype("int64")
        else:
            out[c] = num.astype("float64")
    return out.reset_index(drop=True)


def validate_records(df: pd.DataFrame, what: str = "records") -> pd.DataFrame:
    """Check and coerce a record table (columns, dtypes, sources, unique keys); returns a copy."""
    out = _coerce(df, what, _STR, _INT, RECORD_COLUMNS)
    bad = sorted(set(out["source"]) - set(SOURCES))
    if bad:
        raise DataError(f"{what}: column 'source' has {bad}; allowed: {list(SOURCES)}")
    dup = out["key"][out["key"].duplicated()]
    if len(dup):
        raise DataError(f"{what}: column 'key' is not unique (e.g. {dup.iloc[0]!r})")
    return out


def validate_layers(df: pd.DataFrame, what: str = "layers") -> pd.DataFrame:
    """Check and coerce a layer table; returns a copy."""
    out = _coerce(df, what, _LAYER_STR, _LAYER_INT, LAYER_COLUMNS)
    bad = sorted(set(out["encoding"]) - set(LAYER_ENCODINGS))
    if bad:
        raise DataError(f"{what}: column 'encoding' has {bad}; allowed: {list(LAYER_ENCODINGS)}")
    dup = out.duplicated(["key", "encoding", "layer_id"])
    if dup.any():
        r = out[dup].iloc[0]
        raise DataError(f"{what}: duplicated layer row (key={r['key']!r}, encoding="
                        f"{r['encoding']!r}, layer_id={r['layer_id']})")
    return out


def density_layers(key: str, densities: Sequence[tuple[str, float]]) -> pd.DataFrame:
    """Layer rows holding only each layer's density (``encoding='rolled'``, other metrics NaN):
    what the density feature sets need, computable from a mask before training."""
    rows = [{"key": key, "encoding": "rolled", "layer_id": i, "layer_name": name,
             "density": float(d)} for i, (name, d) in enumerate(densities)]
    df = pd.DataFrame(rows, columns=["key", "encoding", "layer_id", "layer_name", "density"])
    return validate_layers(df.reindex(columns=list(LAYER_COLUMNS)), f"layers of {key}")


def record_from_metrics(metrics: Mapping[str, Any], *, model: str, dataset: str, pruner: str,
                        sparsity: float, seed: int, accuracy: float = math.nan,
                        dense_accuracy: float = math.nan, nodes: float = math.nan,
                        edges: float = math.nan, key: str | None = None,
                        source: str = "mgedb") -> pd.DataFrame:
    """A one-row record table from normalised topometrics (``mgedb.metrics.normalise`` output).

    Metrics absent from ``metrics`` are NaN; ``nodes``/``edges`` default to ``metrics['nodes']`` /
    ``metrics['edges']`` when present.
    """
    row: dict[str, Any] = {
        "key": key or make_key(source, model, dataset, pruner, sparsity, seed),
        "source": source, "model": model, "dataset": dataset, "pruner": pruner,
        "sparsity": sparsity, "seed": seed, "accuracy": accuracy,
        "dense_accuracy": dense_accuracy,
        "nodes": metrics.get("nodes", nodes) if math.isnan(nodes) else nodes,
        "edges": metrics.get("edges", edges) if math.isnan(edges) else edges,
    }
    for m in MGE_METRICS:
        v = metrics.get(m, math.nan)
        row[m] = math.nan if v is None else float(v)
    return validate_records(pd.DataFrame([row]), f"network {row['key']}")
