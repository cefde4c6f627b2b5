"""Loading and validating the published metric tables of the MGE paper (``paper-data`` layout).

Layout (the ``graph_data/`` folder of eliacunegatti/mge-snn, commit 02ba1eb)::

    graph_metrics/unrolled/unrolled.csv                          one row per network (MGE)
    graph_metrics/rolled/rolled-<dataset>-<model>.csv            one row per layer (rolled BGE)
    graph_metrics/rolled_channel/rolled_channel-<dataset>-<model>.csv
    ramanunjan_results/<model>/rolled-<dataset>-<model>.csv      Ramanujan metrics, no pruner column

Every anomaly is handled explicitly and written to :class:`ImportReport`: exact duplicate rows are
dropped, conflicting duplicates keep their first row, rows with NaN metrics are kept (with NaN) and
left out later by the feature builder, ``±inf`` Ramanujan values become NaN. Malformed files raise a
one-line :class:`~mgedb.errors.DataError` naming the file and the column.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mgedb.errors import DataError
from mgedb.predict.records import (
    BGE_METRICS,
    LAYER_COLUMNS,
    MGE_METRICS,
    RAMANUJAN_METRICS,
    make_key,
    validate_layers,
    validate_records,
)

__all__ = ["ImportReport", "PublishedData", "load_published", "load_shipped", "shipped_digest",
           "write_shipped"]

UNROLLED = Path("graph_metrics/unrolled/unrolled.csv")
_ID = ("model", "dataset", "pruning", "sparsity", "seed")
_LAYER_ID = (*_ID, "layer_id")

#: Long-schema (68-column) BGE names → the published normalised names used everywhere in mgedb.
BGE_LONG_NAMES = {
    "bridges": "cut-edges",
    "a_point": "cut-nodes",
    "motifs_count": "motif",
    "nei_one_hop": "1-hop_nei",
    "strenght_all": "avg_node_strength",
    "coreness_all": "k-core",
    "strong_clusters": "no_connected_components",
    "mean_strong": "mean_connected_components",
    "spectral_gap_weighted_undirected": "spectral_gap",
    "spectral_radius_laplacian_weighted_undirected": "spectral_radius",
}
_FILE_RE = {
    "rolled": re.compile(r"^rolled-(CIFAR-10|CIFAR-100|tinyimagenet)-(.+)\.csv$"),
    "rolled-channel": re.compile(r"^rolled_channel-(CIFAR-10|CIFAR-100|tinyimagenet)-(.+)\.csv$"),
}
_ENC_DIR = {"rolled": "rolled", "rolled-channel": "rolled_channel"}


@dataclass
class ImportReport:
    """What the loader found and did, as human-readable lines plus counters."""

    notes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, counter: str, n: int, note: str) -> None:
        """Add ``n`` to ``counter`` and record ``note`` when ``n`` > 0."""
        self.counts[counter] = self.counts.get(counter, 0) + int(n)
        if n and note:
            self.notes.append(note)

    def to_dict(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "notes": list(self.notes)}

    def summary(self) -> list[str]:
        """One line per counter: how many, and what was done."""
        return [f"{n:>6} {COUNTER_TEXT.get(c, c)}" for c, n in self.counts.items()]


COUNTER_TEXT = {
    "networks": "networks imported",
    "layer_rows": "layer rows imported (rolled + rolled-channel)",
    "duplicate_rows_dropped": "exact duplicate rows dropped (first kept)",
    "conflicting_duplicates_dropped": "rows repeating a network/layer with other values dropped "
                                      "(first kept)",
    "nan_accuracy_dropped": "networks without accuracy dropped",
    "nan_metric_rows": "networks with NaN MGE metrics kept with NaN (left out by feature sets "
                       "that use them)",
    "nan_layer_rows": "layer rows with NaN metrics kept with NaN",
    "ramanujan_rows_aligned": "Ramanujan rows aligned row by row with the rolled rows (accuracy, "
                              "layer name, density verified)",
    "ramanujan_inf_to_nan": "±inf Ramanujan values (zero degree bound) set to NaN",
    "ramanujan_files_missing": "Ramanujan files absent (columns left NaN)",
    "networks_without_mge": "networks only in the rolled files, kept with NaN MGE metrics",
}


@dataclass
class PublishedData:
    """Records (one row per network), layer rows and the import report."""

    records: pd.DataFrame
    layers: pd.DataFrame
    report: ImportReport


def _read_csv(path: Path, required: dict[str, str], root: Path) -> pd.DataFrame:
    """Read a CSV and check that ``required`` columns exist with kind 'num', 'int' or 'str'."""
    rel = path.relative_to(root) if path.is_relative_to(root) else path
    try:
        df = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError(f"{rel}: unreadable CSV ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''})") from None
    for col, kind in required.items():
        if col not in df.columns:
            raise DataError(f"{rel}: missing column {col!r}")
        s = df[col]
        if kind == "str":
            if s.isna().any():
                raise DataError(f"{rel}: column {col!r} has empty values")
            df[col] = s.astype(str)
            continue
        if not pd.api.types.is_numeric_dtype(s):
            raise DataError(f"{rel}: column {col!r} must be numeric (found e.g. "
                            f"{_first_bad(s)!r})")
        if kind == "int":
            if s.isna().any() or not np.all(np.mod(s.to_numpy(dtype=float), 1) == 0):
                raise DataError(f"{rel}: column {col!r} must hold integers")
            df[col] = s.astype("int64")
        else:
            df[col] = s.astype("float64")
    return df


def _first_bad(s: pd.Series) -> Any:
    num = pd.to_numeric(s, errors="coerce")
    bad = s[num.isna() & s.notna()]
    return bad.iloc[0] if len(bad) else None


def _dedupe(df: pd.DataFrame, key: tuple[str, ...], rel: str, report: ImportReport,
            what: str) -> pd.DataFrame:
    exact = df.duplicated()
    report.add("duplicate_rows_dropped", int(exact.sum()),
               f"{rel}: {int(exact.sum())} exact duplicate {what} rows dropped (kept the first)")
    df = df[~exact]
    conflict = df.duplicated(list(key))
    report.add("conflicting_duplicates_dropped", int(conflict.sum()),
               f"{rel}: {int(conflict.sum())} {what} rows repeat an earlier key with different "
               "values; kept the first occurrence")
    return df[~conflict].reset_index(drop=True)


def _id_fields() -> dict[str, str]:
    return {"accuracy": "num", "pruning": "str", "sparsity": "num", "model": "str",
            "dataset": "str", "seed": "int"}


def _load_unrolled(root: Path, report: ImportReport) -> pd.DataFrame:
    path = root / UNROLLED
    if not path.is_file():
        raise DataError(f"{root}: no {UNROLLED} (expected the paper-data layout; see "
                        "docs/predict.md)")
    req = {**_id_fields(), "nodes": "num", "edges": "num", **dict.fromkeys(MGE_METRICS, "num")}
    df = _read_csv(path, req, root)
    rel = str(UNROLLED)
    df = _dedupe(df, _ID, rel, report, "network")
    nan_acc = df["accuracy"].isna()
    report.add("nan_accuracy_dropped", int(nan_acc.sum()),
               f"{rel}: {int(nan_acc.sum())} rows without accuracy dropped")
    df = df[~nan_acc]
    nan_rows = df[list(MGE_METRICS)].isna().any(axis=1)
    if nan_rows.any():
        desc = df.loc[nan_rows, ["model", "pruning", "sparsity"]].drop_duplicates()
        which = "; ".join(f"{r.model} {r.pruning} {r.sparsity:g}" for r in desc.itertuples())
        cols = [c for c in MGE_METRICS if df.loc[nan_rows, c].isna().any()]
        report.add("nan_metric_rows", int(nan_rows.sum()),
                   f"{rel}: {int(nan_rows.sum())} networks have NaN in {', '.join(cols)} ({which});"
                   " kept with NaN, left out of training by any feature set that uses them")
    return df.reset_index(drop=True)


def _layer_file(path: Path, root: Path, encoding: str, report: ImportReport) -> pd.DataFrame:
    head = pd.read_csv(path, nrows=0).columns
    rel = str(path.relative_to(root))
    long = "pruning_algorithm" in head
    names = BGE_LONG_NAMES if long else {m: m for m in BGE_METRICS}
    req = {**_id_fields(), "layer_id": "int", "layer_name": "str", "layer_sparsity": "num",
           **dict.fromkeys(names, "num")}
    if long:
        req["pruning_algorithm"] = req.pop("pruning")
    df = _read_csv(path, req, root)
    df = df.rename(columns={**names, "pruning_algorithm": "pruning", "layer_sparsity": "density"})
    keep = [*_ID, "accuracy", "layer_id", "layer_name", "density", *BGE_METRICS]
    df = df[keep].reset_index(drop=True)
    if encoding == "rolled":
        df = _ramanujan(path, df, root, report)
    else:
        for c in RAMANUJAN_METRICS:
            df[c] = np.nan
    df = _dedupe(df, _LAYER_ID, rel, report, "layer")
    nan = df[[*BGE_METRICS, "density"]].isna().any(axis=1)
    report.add("nan_layer_rows", int(nan.sum()),
               f"{rel}: {int(nan.sum())} layer rows have NaN metrics; kept with NaN")
    df["encoding"] = encoding
    return df


def _ramanujan(rolled_path: Path, rolled: pd.DataFrame, root: Path,
               report: ImportReport) -> pd.DataFrame:
    """Attach the Ramanujan columns to the rolled rows of the same file, verifying the alignment."""
    m = _FILE_RE["rolled"].match(rolled_path.name)
    assert m is not None
    model = m.group(2)
    path = root / "ramanunjan_results" / model / rolled_path.name
    out = rolled.copy()
    for c in RAMANUJAN_METRICS:
        out[c] = np.nan
    if not path.is_file():
        report.add("ramanujan_files_missing", 1, f"{path.relative_to(root)}: absent; Ramanujan "
                   "columns left NaN for these networks")
        return out
    rel = str(path.relative_to(root))
    req = {k: v for k, v in _id_fields().items() if k != "pruning"}
    req |= {"layer_id": "int", "layer_name": "str", "layer_sparsity": "num",
            **dict.fromkeys(RAMANUJAN_METRICS, "num")}
    ram = _read_csv(path, req, root)
    if len(ram) != len(rolled):
        raise DataError(f"{rel}: {len(ram)} rows but {rolled_path.relative_to(root)} has "
                        f"{len(rolled)}; cannot align them row by row")
    checks = {
        "accuracy": np.isclose(ram["accuracy"], rolled["accuracy"], rtol=0, atol=1e-9),
        "layer_name": ram["layer_name"].to_numpy() == rolled["layer_name"].to_numpy(),
        "layer_sparsity": np.isclose(ram["layer_sparsity"], rolled["density"], rtol=1e-6,
                                     atol=1e-9),
        "layer_id": ram["layer_id"].to_numpy() == rolled["layer_id"].to_numpy(),
        "sparsity": np.isclose(ram["sparsity"], rolled["sparsity"]),
        "seed": ram["seed"].to_numpy() == rolled["seed"].to_numpy(),
    }
    for col, ok in checks.items():
        ok = np.asarray(ok)
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            raise DataError(f"{rel}: row {i + 2} does not align with "
                            f"{rolled_path.relative_to(root)} (column {col!r} differs); the files "
                            "must list the same networks and layers in the same order")
    vals = ram[list(RAMANUJAN_METRICS)].to_numpy(dtype=float)
    inf = np.isinf(vals)
    report.add("ramanujan_inf_to_nan", int(inf.sum()),
               f"{rel}: {int(inf.sum())} ±inf Ramanujan values (degenerate layer, zero bound) set "
               "to NaN")
    vals[inf] = np.nan
    out[list(RAMANUJAN_METRICS)] = vals
    report.add("ramanujan_rows_aligned", len(ram), "")
    return out


def load_published(root: str | Path) -> PublishedData:
    """Load a paper-data folder into a record table and a layer table (validated, de-duplicated)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such directory (expected the paper-data layout)")
    report = ImportReport()
    unrolled = _load_unrolled(root, report)

    layer_frames = []
    for encoding, sub in _ENC_DIR.items():
        folder = root / "graph_metrics" / sub
        files = sorted(p for p in folder.glob("*.csv") if _FILE_RE[encoding].match(p.name))
        for p in files:
            layer_frames.append(_layer_file(p, root, encoding, report))
    if layer_frames:
        layers = pd.concat(layer_frames, ignore_index=True)
    else:
        report.add("layer_files", 0, "")
        report.notes.append(f"{root}: no rolled / rolled-channel files; layer feature sets are "
                            "unavailable")
        layers = pd.DataFrame(columns=[*_ID, "accuracy", "layer_id", "layer_name", "density",
                                       *BGE_METRICS, *RAMANUJAN_METRICS, "encoding"])

    nets_from_layers = (layers.groupby(list(_ID), sort=False)["accuracy"]
                        .agg(["first", "nunique"]).reset_index())
    bad = nets_from_layers["nunique"] > 1
    if bad.any():
        r = nets_from_layers[bad].iloc[0]
        raise DataError(f"layer files: network {r['model']}/{r['dataset']}/{r['pruning']}/"
                        f"{r['sparsity']:g}/{r['seed']} has several accuracies across its layers")
    nets_from_layers = nets_from_layers.rename(columns={"first": "accuracy_layers"})
    nets = unrolled.merge(nets_from_layers[[*_ID, "accuracy_layers"]], on=list(_ID), how="outer",
                          indicator=True)
    both = nets["_merge"] == "both"
    mism = both & ~np.isclose(nets["accuracy"], nets["accuracy_layers"], rtol=0, atol=1e-9)
    if mism.any():
        r = nets[mism].iloc[0]
        raise DataError(f"{UNROLLED} and the layer files disagree on the accuracy of "
                        f"{r['model']}/{r['dataset']}/{r['pruning']}/{r['sparsity']:g}/{r['seed']}")
    only_layers = nets["_merge"] == "right_only"
    report.add("networks_without_mge", int(only_layers.sum()),
               f"{int(only_layers.sum())} networks appear only in the rolled files (no unrolled "
               "row): kept with NaN MGE metrics, nodes and edges")
    nets["accuracy"] = nets["accuracy"].fillna(nets["accuracy_layers"])
    nets = nets.drop(columns=["accuracy_layers", "_merge"])
    nets["key"] = [make_key("published", *t) for t in
                   nets[list(_ID)].itertuples(index=False, name=None)]
    nets["source"] = "published"
    nets["dense_accuracy"] = np.nan
    nets = nets.rename(columns={"pruning": "pruner"})
    nets = nets.sort_values(["model", "dataset", "pruner", "sparsity", "seed"], kind="stable")
    records = validate_records(nets, str(UNROLLED))

    if len(layers):
        layers = layers.merge(nets.rename(columns={"pruner": "pruning"})[[*_ID, "key"]],
                              on=list(_ID), how="left")
    else:
        layers["key"] = pd.Series(dtype=str)
    layers = validate_layers(layers[list(LAYER_COLUMNS)], "layer files")
    layers = layers.sort_values(["key", "encoding", "layer_id"], kind="stable").reset_index(
        drop=True)
    report.counts["networks"] = len(records)
    report.counts["layer_rows"] = len(layers)
    return PublishedData(records.reset_index(drop=True), layers, report)


# --- the compact copy shipped inside the package (mgedb/data) ------------------------------------

SHIPPED_NETWORKS = "published_networks.csv.gz"
SHIPPED_LAYERS = "published_layers.csv.gz"
SHIPPED_LAYER_NAMES = "published_layer_names.csv"
SHIPPED_MANIFEST = "published_manifest.json"
SHIPPED_FILES = (SHIPPED_NETWORKS, SHIPPED_LAYERS, SHIPPED_LAYER_NAMES, SHIPPED_MANIFEST)
#: Significant digits kept in the shipped copy (records / layer metrics). Five digits bound the
#: relative rounding error by 5e-5, the order of the reference's own run-to-run spectral noise.
RECORD_DIGITS = 8
LAYER_DIGITS = 5
_LAYER_VALUES = ["density", *BGE_METRICS, *RAMANUJAN_METRICS]


def _gz_csv(df: pd.DataFrame, digits: int) -> bytes:
    import gzip

    text = df.to_csv(index=False, float_format=f"%.{digits}g", lineterminator="\n")
    return gzip.compress(text.encode(), compresslevel=9, mtime=0)


def write_shipped(data: PublishedData, out_dir: str | Path, *, pai_layers_only: bool = True
                  ) -> dict[str, int]:
    """Write the compact copy: all records, the (PaI) layer rows, layer names and a manifest.

    Layer rows refer to their network by its row number in the records file (``net``) and to
    their name through the small layer-name table, which keeps the copy under 2 MB.
    """
    from mgedb.predict.records import PAI_PRUNERS

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    recs = data.records.reset_index(drop=True)
    net = pd.Series(np.arange(len(recs)), index=recs["key"])
    lay = data.layers.merge(recs[["key", "model", "pruner"]], on="key", how="left")
    if pai_layers_only:
        lay = lay[lay["pruner"].isin(PAI_PRUNERS)]
    names = lay[["model", "encoding", "layer_id", "layer_name"]].drop_duplicates()
    if names.duplicated(["model", "encoding", "layer_id"]).any():
        raise DataError("layer table: one (model, encoding, layer_id) has several layer names")
    names = names.sort_values(["model", "encoding", "layer_id"])
    compact = pd.DataFrame({"net": net.loc[lay["key"]].to_numpy(),
                            "encoding": lay["encoding"].to_numpy(),
                            "layer_id": lay["layer_id"].to_numpy()})
    for c in _LAYER_VALUES:
        compact[c] = lay[c].to_numpy()
    blobs = {
        SHIPPED_NETWORKS: _gz_csv(recs, RECORD_DIGITS),
        SHIPPED_LAYERS: _gz_csv(compact, LAYER_DIGITS),
        SHIPPED_LAYER_NAMES: names.to_csv(index=False, lineterminator="\n").encode(),
    }
    manifest = {
        "source": "graph_data/ of github.com/eliacunegatti/mge-snn (commit 02ba1eb), Apache-2.0; "
                  "see NOTICE",
        "built_by": "bench/build_published_table.py (mgedb.predict.published.write_shipped)",
        "networks": len(recs),
        "layer_rows": len(compact),
        "layer_rows_scope": "PaI networks only" if pai_layers_only else "all networks",
        "record_significant_digits": RECORD_DIGITS,
        "layer_significant_digits": LAYER_DIGITS,
        "import_report": data.report.to_dict(),
    }
    blobs[SHIPPED_MANIFEST] = (json.dumps(manifest, indent=2) + "\n").encode()
    for name, blob in blobs.items():
        (out / name).write_bytes(blob)
    return {name: len(blob) for name, blob in blobs.items()}


def _data_files() -> Any:
    from importlib.resources import files

    return files("mgedb.data")


def shipped_digest(root: Any = None) -> str:
    """SHA-256 over the shipped files' bytes (keys the default-predictor cache)."""
    h = hashlib.sha256()
    root = _data_files() if root is None else root
    for name in SHIPPED_FILES:
        f = root / name
        if not f.is_file():
            raise DataError(f"mgedb/data/{name} is missing from the installed package; rebuild it "
                            "with bench/build_published_table.py")
        h.update(name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def load_shipped(root: Any = None) -> PublishedData:
    """The published table shipped with mgedb (records + PaI layer rows), validated.

    ``root``: another folder written by :func:`write_shipped` (default: the package's mgedb/data).
    """
    import io

    root = _data_files() if root is None else root
    for name in SHIPPED_FILES:
        if not (root / name).is_file():
            raise DataError(f"mgedb/data/{name} is missing from the installed package; rebuild "
                            "it with bench/build_published_table.py")
    recs = validate_records(pd.read_csv(io.BytesIO((root / SHIPPED_NETWORKS).read_bytes()),
                                        compression="gzip"), f"mgedb/data/{SHIPPED_NETWORKS}")
    compact = pd.read_csv(io.BytesIO((root / SHIPPED_LAYERS).read_bytes()), compression="gzip")
    names = pd.read_csv(io.BytesIO((root / SHIPPED_LAYER_NAMES).read_bytes()))
    if compact["net"].max() >= len(recs) or compact["net"].min() < 0:
        raise DataError(f"mgedb/data/{SHIPPED_LAYERS}: column 'net' points past the records")
    lay = compact.copy()
    lay["key"] = recs["key"].to_numpy()[compact["net"].to_numpy()]
    lay["model"] = recs["model"].to_numpy()[compact["net"].to_numpy()]
    lay = lay.merge(names, on=["model", "encoding", "layer_id"], how="left")
    if lay["layer_name"].isna().any():
        raise DataError(f"mgedb/data/{SHIPPED_LAYER_NAMES}: a layer has no name")
    layers = validate_layers(lay, f"mgedb/data/{SHIPPED_LAYERS}")
    layers = layers.sort_values(["key", "encoding", "layer_id"], kind="stable").reset_index(
        drop=True)
    manifest = json.loads((root / SHIPPED_MANIFEST).read_text())
    rep = manifest.get("import_report", {})
    report = ImportReport(list(rep.get("notes", [])), dict(rep.get("counts", {})))
    return PublishedData(recs, layers, report)
