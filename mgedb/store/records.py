"""The predictor's record table in the store: metrics-only networks of kind ``records``.

:class:`RecordTable` (a base of :class:`~mgedb.store.base.BaseStore`) writes a record table — one
row per trained sparse network, the metadata columns :data:`RECORD_META` plus one column per
metric (published column names, kept verbatim) — as ``(:Network {kind: 'records'})`` nodes with
their ``(:Metric)`` nodes, and per-layer rows as ``(:LayerMetrics)`` nodes; it reads them back as
the same tables. :mod:`mgedb.predict.records` defines the schema's metric columns and validation.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from mgedb.errors import StoreIntegrityError
from mgedb.store.protocol import (
    mgedb_version,
    nan_if_none,
    now_iso,
    opt_float,
    opt_int,
    opt_str,
)

__all__ = ["RECORD_META", "RecordTable"]

#: Metadata columns of a record table; every other column is a metric.
RECORD_META = ("key", "source", "model", "dataset", "pruner", "sparsity", "seed", "accuracy",
               "dense_accuracy", "nodes", "edges")


class RecordTable(ABC):
    """``write_records`` / ``read_records`` / ``read_layers`` on a backend's primitives."""

    @abstractmethod
    def run_query(self, name: str, params: Mapping[str, Any] | None = None, *,
                  timeout: float | None = None) -> pd.DataFrame: ...

    @abstractmethod
    def _write(self, name: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame: ...

    @abstractmethod
    def list_networks(self, kind: str | None = None) -> pd.DataFrame: ...

    @abstractmethod
    def _write_metric_rows(self, rows: pd.DataFrame) -> None: ...

    @abstractmethod
    def _write_layer_rows(self, rows: pd.DataFrame) -> None: ...

    def write_records(self, records: pd.DataFrame, layers: pd.DataFrame | None = None) -> int:
        """Upsert metrics-only networks (kind ``records``) keyed by ``key``; returns #records.

        Columns :data:`RECORD_META` are metadata; every other column is a numeric metric stored as
        a ``(:Metric)`` node under its column name (``r-out``, ``2-hop_nei``, … are kept verbatim:
        metric names are values, not property keys). ``layers`` rows (``key, encoding, layer_id,
        layer_name, density`` + any float columns) become ``(:LayerMetrics)`` nodes whose metric
        columns are kept as a JSON map. Rewriting a key replaces its metrics and layer rows.
        """
        missing = [c for c in ("key",) if c not in records.columns]
        if missing:
            raise StoreIntegrityError("write_records: the record table has no 'key' column")
        if records["key"].duplicated().any():
            dup = records.loc[records["key"].duplicated(), "key"].iloc[0]
            raise StoreIntegrityError(f"write_records: key {dup!r} appears twice; keys must be "
                                      "unique")
        keys = [str(k) for k in records["key"]]
        if not keys:
            return 0
        clash = self.list_networks()
        graph_keys = set(clash.loc[clash["kind"] != "records", "key"]) if not clash.empty else set()
        bad = sorted(set(keys) & graph_keys)
        if bad:
            raise StoreIntegrityError(f"write_records: key {bad[0]!r} belongs to an ingested "
                                      "network; record keys must differ from network keys")
        now, version = now_iso(), mgedb_version()
        net_rows = []
        for r in records.to_dict("records"):
            net_rows.append({
                "key": str(r["key"]), "source": opt_str(r.get("source")),
                "model": opt_str(r.get("model")), "dataset": opt_str(r.get("dataset")),
                "pruner": opt_str(r.get("pruner")), "sparsity": opt_float(r.get("sparsity")),
                "seed": opt_int(r.get("seed")), "accuracy": opt_float(r.get("accuracy")),
                "dense_accuracy": opt_float(r.get("dense_accuracy")),
                "nodes": opt_int(r.get("nodes")), "edges": opt_int(r.get("edges")),
                "created": now, "mgedb_version": version,
            })
        metric_cols = [c for c in records.columns if c not in RECORD_META]
        for i in range(0, len(net_rows), 5_000):
            self._write("records/upsert_networks", {"rows": net_rows[i:i + 5_000]})
        self._write("records/delete_metrics", {"keys": keys})
        if metric_cols:
            long = records[["key", *metric_cols]].melt(id_vars="key", var_name="name",
                                                       value_name="value")
            order = {c: i for i, c in enumerate(metric_cols)}
            values = pd.to_numeric(long["value"], errors="coerce").astype("float64")
            rows = pd.DataFrame({
                "key": long["key"].astype(str) + "#" + long["name"].astype(str),
                "network": long["key"].astype(str),
                "name": long["name"].astype(str),
                "value": values.where(values.notna(), None),
                "normalised": values.where(values.notna(), None),
                "engine": "records",
                "ord": long["name"].map(order).astype("int64"),
            })
            self._write_metric_rows(rows)
        if layers is not None and not layers.empty:
            self._write_layer_rows(_layer_rows(layers))
        return len(keys)

    def read_records(self, source: str | None = None) -> pd.DataFrame:
        """The record table written by :meth:`write_records` (all sources, or one)."""
        nets = self.run_query("records/read_networks", {"source": source})
        if nets.empty:
            return pd.DataFrame({c: [] for c in RECORD_META})
        mets = self.run_query("records/read_metrics", {"source": source})
        out = nets.reindex(columns=list(RECORD_META)).copy()
        if not mets.empty:
            names = (mets[["name", "ord"]].drop_duplicates("name").sort_values(["ord", "name"])
                     ["name"].tolist())
            wide = mets.pivot_table(index="key", columns="name", values="value", aggfunc="first",
                                    dropna=False)
            wide = wide.reindex(columns=names)
            out = out.merge(wide, left_on="key", right_index=True, how="left")
            for c in names:
                out[c] = pd.to_numeric(out[c], errors="coerce").astype("float64")
        for c in ("sparsity", "accuracy", "dense_accuracy"):
            out[c] = pd.to_numeric(out[c], errors="coerce").astype("float64")
        for c in ("seed", "nodes", "edges"):
            out[c] = pd.to_numeric(out[c], errors="coerce")
        return out.reset_index(drop=True)

    def read_layers(self, source: str | None = None) -> pd.DataFrame:
        """The per-layer rows written with :meth:`write_records` (JSON metric maps expanded)."""
        rows = self.run_query("records/read_layer_metrics", {"source": source})
        base_cols = ["key", "encoding", "layer_id", "layer_name", "density"]
        if rows.empty:
            return pd.DataFrame({c: [] for c in base_cols})
        maps = [json.loads(s) if isinstance(s, str) else {} for s in rows["metrics_json"]]
        cols: list[str] = []
        for m in maps:
            cols += [c for c in m if c not in cols]
        extra = pd.DataFrame([{c: nan_if_none(m.get(c)) for c in cols} for m in maps],
                             columns=cols, dtype="float64")
        out = pd.concat([rows[base_cols].reset_index(drop=True), extra], axis=1)
        out["density"] = pd.to_numeric(out["density"], errors="coerce").astype("float64")
        return out


def _layer_rows(layers: pd.DataFrame) -> pd.DataFrame:
    need = ("key", "encoding", "layer_id")
    missing = [c for c in need if c not in layers.columns]
    if missing:
        raise StoreIntegrityError(f"write_records: the layer table lacks {', '.join(missing)}")
    fixed = ("key", "encoding", "layer_id", "layer_name", "density")
    metric_cols = [c for c in layers.columns if c not in fixed]
    values = layers[metric_cols].apply(pd.to_numeric, errors="coerce").astype("float64")
    maps = [json.dumps({c: (None if math.isnan(x) else x) for c, x in zip(metric_cols, row,
                                                                          strict=True)})
            for row in values.itertuples(index=False, name=None)]
    key = layers["key"].astype(str)
    enc = layers["encoding"].astype(str)
    lid = pd.to_numeric(layers["layer_id"], errors="raise").astype("int64")
    density = pd.to_numeric(layers["density"], errors="coerce") if "density" in layers \
        else pd.Series(np.nan, index=layers.index)
    return pd.DataFrame({
        "key": key + "#" + enc + "#" + lid.astype(str),
        "network": key, "encoding": enc, "layer_id": lid,
        "layer_name": layers["layer_name"].astype(str) if "layer_name" in layers else "",
        "density": density.astype("float64").where(density.notna(), None),
        "metrics_json": maps,
        "ord": np.arange(len(layers), dtype=np.int64),
    })
