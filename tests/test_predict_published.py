"""Loading the published tables: layout, validation, duplicates/NaN, alignment, shipped copy."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mgedb.errors import DataError
from mgedb.predict.published import (
    BGE_LONG_NAMES,
    load_published,
    load_shipped,
    shipped_digest,
    write_shipped,
)
from mgedb.predict.records import (
    BGE_METRICS,
    MGE_METRICS,
    PAI_PRUNERS,
    RECORD_COLUMNS,
    make_key,
    record_from_metrics,
    validate_records,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "paper-data"
LAYERS = {"CONV-6": ["convs1.0", "convs2.0", "fc"], "Resnet-20": ["conv1", "layer1.0.conv1",
                                                                   "linear"]}
PRUNER_EFFECT = {"grasp": 0.02, "er": 0.015, "erk": 0.0, "prospr": 0.03, "synflow": 0.01,
                 "uniform": 0.06, "snip": 0.04, "rigl": -0.01}


def make_paper_data(root: Path, *, models: tuple[str, ...] = ("CONV-6", "Resnet-20"),
                    datasets: tuple[str, ...] = ("CIFAR-10", "CIFAR-100"),
                    sparsities: tuple[float, ...] = (0.6, 0.8, 0.9, 0.95),
                    seeds: tuple[int, ...] = (0, 1), short_schema: str | None = None,
                    rng_seed: int = 0) -> Path:
    """A small synthetic paper-data folder whose metrics are informative about the accuracy.

    Accuracy = base(dataset) − 0.3·sparsity² − pruner effect + noise; the MGE ``disc_nodes`` and
    the layer densities carry the pruner effect, ``sink_nodes`` carries the sparsity.
    ``short_schema`` names one rolled file written with the short (unrolled-name) schema.
    """
    rng = np.random.default_rng(rng_seed)
    unrolled, rolled, channel, raman = [], [], [], []
    for model in models:
        for ds in datasets:
            base = {"CIFAR-10": 0.93, "CIFAR-100": 0.70, "tinyimagenet": 0.5}[ds]
            for pr, eff in PRUNER_EFFECT.items():
                for sp in sparsities:
                    for seed in seeds:
                        acc = round(base - 0.3 * sp**2 - eff * (1 + sp) + rng.normal(0, 0.002), 4)
                        row = {"accuracy": acc, "pruning": pr, "sparsity": sp, "model": model,
                               "dataset": ds, "seed": seed, "nodes": 1000, "edges": int(
                                   1e5 * (1 - sp))}
                        for i, m in enumerate(MGE_METRICS):
                            row[m] = float(rng.normal(0, 1)) + (i % 3)
                        row["sink_nodes"] = sp + rng.normal(0, 0.01)
                        row["disc_nodes"] = eff * (1 + sp) + rng.normal(0, 0.001)
                        row["no_connected_components"] = int(rng.integers(1, 5))
                        unrolled.append(row)
                        for lid, name in enumerate(LAYERS[model]):
                            dens = max(0.01, (1 - sp) * (1 + (lid - 1) * eff * 10))
                            lay = {"accuracy": acc, "pruning": pr, "sparsity": sp, "model": model,
                                   "dataset": ds, "seed": seed, "layer_id": lid,
                                   "layer_name": name, "layer_sparsity": dens}
                            for m in BGE_METRICS:
                                lay[m] = float(rng.normal(5, 1))
                            rolled.append(lay)
                            channel.append({**lay, **{m: float(rng.normal(3, 1))
                                                      for m in BGE_METRICS}})
                            raman.append({
                                "accuracy": acc, "sparsity": sp, "seed": seed, "model": model,
                                "dataset": ds, "layer_id": lid, "layer_name": name,
                                "iterative_spectral_gap": float(rng.normal(1, 0.1)),
                                "iterative_degree_bound": float(rng.normal(0.3, 0.1))
                                if lid else math.nan,
                                "degree_bound": -math.inf if (lid == 2 and pr == "uniform")
                                else float(rng.normal(0.1, 0.1)),
                                "layer_sparsity": dens, "no_weights": 1.0, "no_params": 2.0})
    (root / "graph_metrics" / "unrolled").mkdir(parents=True)
    (root / "graph_metrics" / "rolled").mkdir(parents=True)
    (root / "graph_metrics" / "rolled_channel").mkdir(parents=True)
    pd.DataFrame(unrolled).to_csv(root / "graph_metrics/unrolled/unrolled.csv", index=False)
    long_names = {v: k for k, v in BGE_LONG_NAMES.items()}
    for enc, rows, sub in (("rolled", rolled, "rolled"), ("rolled_channel", channel,
                                                          "rolled_channel")):
        df = pd.DataFrame(rows)
        for (model, ds), g in df.groupby(["model", "dataset"], sort=False):
            name = f"{enc}-{ds}-{model}.csv"
            if name != short_schema:
                g = g.rename(columns={**long_names, "pruning": "pruning_algorithm"})
                g = g.assign(unique_edges=1, transitivity=np.nan)  # extra long-schema columns
            g.to_csv(root / "graph_metrics" / sub / name, index=False)
    rm = pd.DataFrame(raman)
    for (model, ds), g in rm.groupby(["model", "dataset"], sort=False):
        (root / "ramanunjan_results" / model).mkdir(parents=True, exist_ok=True)
        g.to_csv(root / "ramanunjan_results" / model / f"rolled-{ds}-{model}.csv", index=False)
    return root


@pytest.fixture(scope="module")
def paper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_paper_data(tmp_path_factory.mktemp("paper"),
                           short_schema="rolled-CIFAR-100-CONV-6.csv")


def test_load_counts_keys_and_schema(paper: Path) -> None:
    d = load_published(paper)
    n = 2 * 2 * len(PRUNER_EFFECT) * 4 * 2
    assert len(d.records) == n
    assert list(d.records.columns) == list(RECORD_COLUMNS)
    assert d.records["key"].is_unique
    assert make_key("published", "CONV-6", "CIFAR-10", "snip", 0.9, 1) in set(d.records["key"])
    assert (d.records["source"] == "published").all()
    assert d.records["dense_accuracy"].isna().all()
    assert len(d.layers) == n * 3 * 2
    assert set(d.layers["encoding"]) == {"rolled", "rolled-channel"}
    # Ramanujan columns only on rolled rows; -inf became NaN and was counted
    ch = d.layers[d.layers["encoding"] == "rolled-channel"]
    assert ch["degree_bound"].isna().all()
    n_inf = 2 * 2 * 4 * 2  # uniform networks × layer 2
    assert d.report.counts["ramanujan_inf_to_nan"] == n_inf
    assert d.report.counts["ramanujan_rows_aligned"] == n * 3
    assert not np.isinf(d.layers["degree_bound"].to_numpy(dtype=float)).any()


def test_short_and_long_schema_give_same_columns(paper: Path) -> None:
    d = load_published(paper)
    raw = pd.read_csv(paper / "graph_metrics/rolled/rolled-CIFAR-100-CONV-6.csv")
    first = raw.iloc[0]
    key = make_key("published", "CONV-6", "CIFAR-100", first["pruning"], first["sparsity"],
                   first["seed"])
    row = d.layers[(d.layers["key"] == key) & (d.layers["encoding"] == "rolled")
                   & (d.layers["layer_id"] == 0)].iloc[0]
    for m in BGE_METRICS:
        assert row[m] == pytest.approx(first[m])
    long = pd.read_csv(paper / "graph_metrics/rolled/rolled-CIFAR-10-CONV-6.csv").iloc[0]
    key = make_key("published", "CONV-6", "CIFAR-10", long["pruning_algorithm"],
                   long["sparsity"], long["seed"])
    row = d.layers[(d.layers["key"] == key) & (d.layers["encoding"] == "rolled")
                   & (d.layers["layer_id"] == 0)].iloc[0]
    assert row["k-core"] == pytest.approx(long["coreness_all"])
    assert row["density"] == pytest.approx(long["layer_sparsity"])


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    for p in dst.rglob("*.csv"):
        p.chmod(0o644)
    return dst


def test_duplicates_and_nan_rows_reported(paper: Path, tmp_path: Path) -> None:
    root = _copy(paper, tmp_path / "p")
    f = root / "graph_metrics/unrolled/unrolled.csv"
    df = pd.read_csv(f)
    df.loc[5, ["sink_nodes", "r-in"]] = np.nan
    df = pd.concat([df, df.iloc[[0, 1, 2]]], ignore_index=True)
    conflict = df.iloc[[3]].copy()
    conflict["motif"] = 123.0
    df = pd.concat([df, conflict], ignore_index=True)
    df.to_csv(f, index=False)
    d = load_published(root)
    c = d.report.counts
    assert c["duplicate_rows_dropped"] == 3
    assert c["conflicting_duplicates_dropped"] == 1
    assert c["nan_metric_rows"] == 1
    assert len(d.records) == len(df) - 4
    assert any("sink_nodes, r-in" in n for n in d.report.notes)
    kept = d.records.set_index("key").loc[make_key("published", *df.iloc[3][
        ["model", "dataset", "pruning", "sparsity", "seed"]])]
    assert kept["motif"] == pytest.approx(df.iloc[3]["motif"])  # first occurrence kept
    assert any("exact duplicate" in line for line in d.report.summary())


def test_network_only_in_layer_files_is_kept(paper: Path, tmp_path: Path) -> None:
    root = _copy(paper, tmp_path / "p")
    f = root / "graph_metrics/unrolled/unrolled.csv"
    df = pd.read_csv(f)
    df.iloc[1:].to_csv(f, index=False)
    d = load_published(root)
    assert d.report.counts["networks_without_mge"] == 1
    r = d.records.set_index("key").loc[make_key("published", *df.iloc[0][
        ["model", "dataset", "pruning", "sparsity", "seed"]])]
    assert r["accuracy"] == pytest.approx(df.iloc[0]["accuracy"])
    assert math.isnan(r["sink_nodes"]) and math.isnan(r["nodes"])


@pytest.mark.parametrize(("column", "why"), [("layer_name", "layer_name"),
                                             ("accuracy", "accuracy"),
                                             ("layer_sparsity", "layer_sparsity")])
def test_misaligned_ramanujan_rows_fail(paper: Path, tmp_path: Path, column: str,
                                        why: str) -> None:
    root = _copy(paper, tmp_path / "p")
    f = root / "ramanunjan_results/Resnet-20/rolled-CIFAR-10-Resnet-20.csv"
    df = pd.read_csv(f)
    if column == "layer_name":
        df.loc[7, column] = "somewhere.else"
    else:
        df.loc[7, column] = df.loc[7, column] + 0.01
    df.to_csv(f, index=False)
    with pytest.raises(DataError, match=rf"rolled-CIFAR-10-Resnet-20.csv: row 9 .*'{why}'"):
        load_published(root)


def test_ramanujan_row_count_mismatch_fails(paper: Path, tmp_path: Path) -> None:
    root = _copy(paper, tmp_path / "p")
    f = root / "ramanunjan_results/CONV-6/rolled-CIFAR-10-CONV-6.csv"
    pd.read_csv(f).iloc[:-1].to_csv(f, index=False)
    with pytest.raises(DataError, match="cannot align them row by row"):
        load_published(root)


def test_missing_column_and_wrong_type_name_file_and_column(paper: Path,
                                                             tmp_path: Path) -> None:
    root = _copy(paper, tmp_path / "p")
    f = root / "graph_metrics/unrolled/unrolled.csv"
    df = pd.read_csv(f)
    df.drop(columns=["k-core"]).to_csv(f, index=False)
    with pytest.raises(DataError, match=r"unrolled\.csv: missing column 'k-core'"):
        load_published(root)
    df["motif"] = df["motif"].astype(object)
    df.loc[3, "motif"] = "many"
    df.to_csv(f, index=False)
    with pytest.raises(DataError, match=r"unrolled\.csv: column 'motif' must be numeric.*many"):
        load_published(root)
    df = pd.read_csv(paper / "graph_metrics/unrolled/unrolled.csv")
    df["seed"] = df["seed"] + 0.5
    df.to_csv(f, index=False)
    with pytest.raises(DataError, match="column 'seed' must hold integers"):
        load_published(root)


def test_missing_layout_fails(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such directory"):
        load_published(tmp_path / "absent")
    with pytest.raises(DataError, match=r"unrolled\.csv"):
        load_published(tmp_path)


def test_shipped_round_trip(paper: Path, tmp_path: Path) -> None:
    d = load_published(paper)
    sizes = write_shipped(d, tmp_path / "data")
    assert sum(sizes.values()) > 0
    s = load_shipped(tmp_path / "data")
    pd.testing.assert_frame_equal(s.records, d.records, check_exact=False, rtol=1e-7)
    pai = d.records.loc[d.records["pruner"].isin(PAI_PRUNERS), "key"]
    want = d.layers[d.layers["key"].isin(pai)].reset_index(drop=True)
    pd.testing.assert_frame_equal(s.layers, want, check_exact=False, rtol=5e-5)
    assert s.report.counts == d.report.counts
    assert shipped_digest(tmp_path / "data") != shipped_digest()


def test_shipped_copy_is_small_and_attributed() -> None:
    from importlib.resources import files

    root = files("mgedb.data")
    names = ["published_networks.csv.gz", "published_layers.csv.gz",
             "published_layer_names.csv", "published_manifest.json", "NOTICE-paper-data",
             "LICENSE-Apache-2.0-paper-data"]
    total = sum(len((root / n).read_bytes()) for n in names)
    assert total < 2 * 1024 * 1024
    notice = (root / "NOTICE-paper-data").read_text()
    assert "Cunegatti" in notice and "Apache License 2.0" in notice and "02ba1eb" in notice
    assert "Apache License" in (root / "LICENSE-Apache-2.0-paper-data").read_text()


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/paper-data not present")
def test_shipped_copy_equals_loader_output() -> None:
    d = load_published(SHARED)
    s = load_shipped()
    assert len(d.records) == 2333 and d.report.counts["duplicate_rows_dropped"] == 47
    assert d.report.counts["nan_metric_rows"] == 4
    pd.testing.assert_frame_equal(s.records, d.records, check_exact=False, rtol=1e-7)
    pai = d.records.loc[d.records["pruner"].isin(PAI_PRUNERS), "key"]
    want = d.layers[d.layers["key"].isin(pai)].reset_index(drop=True)
    pd.testing.assert_frame_equal(s.layers, want, check_exact=False, rtol=5e-5)


def test_record_from_metrics_and_validation() -> None:
    rec = record_from_metrics({"nodes": 10.0, "edges": 20.0, "sink_nodes": 0.1, "motif": None},
                              model="Resnet-20", dataset="CIFAR-10", pruner="snip", sparsity=0.9,
                              seed=2, accuracy=0.8, dense_accuracy=0.9)
    r = rec.iloc[0]
    assert r["key"] == "mgedb/Resnet-20/CIFAR-10/snip/0.9/2"
    assert r["source"] == "mgedb" and r["nodes"] == 10 and r["edges"] == 20
    assert r["sink_nodes"] == 0.1 and math.isnan(r["motif"]) and math.isnan(r["k-core"])
    with pytest.raises(DataError, match="'source'"):
        validate_records(rec.assign(source="elsewhere"))
    with pytest.raises(DataError, match="not unique"):
        validate_records(pd.concat([rec, rec]))
    with pytest.raises(DataError, match="missing column"):
        validate_records(rec.drop(columns=["motif"]))
