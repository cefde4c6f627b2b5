"""Feature sets and the drop target on hand-computed tiny tables."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mgedb.errors import DataError, PredictorError
from mgedb.predict.features import FEATURE_SETS, build_features, parse_feature_spec
from mgedb.predict.records import (
    BGE_METRICS,
    LAYER_COLUMNS,
    MGE_METRICS,
    MGE_STRUCTURAL,
    RECORD_COLUMNS,
    make_key,
)
from mgedb.predict.targets import accuracy_drop, load_reference_file, reference_accuracies


def _records() -> pd.DataFrame:
    rows = []
    for i, (model, acc) in enumerate([("CONV-6", 0.9), ("CONV-6", 0.8), ("Resnet-20", 0.7)]):
        r = {c: float(i + j) for j, c in enumerate(MGE_METRICS)}
        r |= {"key": make_key("published", model, "CIFAR-10", "snip", 0.9, i),
              "source": "published", "model": model, "dataset": "CIFAR-10", "pruner": "snip",
              "sparsity": 0.9, "seed": i, "accuracy": acc, "dense_accuracy": math.nan,
              "nodes": 10.0, "edges": 20.0}
        rows.append(r)
    return pd.DataFrame(rows)[list(RECORD_COLUMNS)]


def _layers(records: pd.DataFrame) -> pd.DataFrame:
    rows = []
    names = {"CONV-6": ["a", "b"], "Resnet-20": ["conv1", "b"]}
    for k, (key, model) in enumerate(zip(records["key"], records["model"], strict=True)):
        for enc in ("rolled", "rolled-channel"):
            for lid, name in enumerate(names[model]):
                r: dict[str, object] = {"key": key, "encoding": enc, "layer_id": lid,
                                        "layer_name": name, "density": 0.1 * (lid + 1) + k}
                for j, m in enumerate(BGE_METRICS):
                    r[m] = float(10 * lid + j + (100 if enc == "rolled-channel" else 0))
                r["degree_bound"] = 0.5 if lid == 0 else math.nan
                r["iterative_degree_bound"] = 0.2 * (lid + 1)
                r["iterative_spectral_gap"] = 1.0
                rows.append(r)
    return pd.DataFrame(rows)[list(LAYER_COLUMNS)]


def test_registry_and_parse() -> None:
    assert len(FEATURE_SETS["mge"].columns) == 16
    assert FEATURE_SETS["mge-structural"].columns == MGE_STRUCTURAL
    assert len(MGE_STRUCTURAL) == 13
    assert {"avg_node_strength", "spectral_gap", "spectral_radius"}.isdisjoint(MGE_STRUCTURAL)
    assert not FEATURE_SETS["mge-structural"].weight_dependent
    assert FEATURE_SETS["mge"].weight_dependent
    assert parse_feature_spec("mge + density+mge") == ("mge", "density")
    with pytest.raises(PredictorError, match="unknown feature set 'nope'"):
        parse_feature_spec("mge+nope")
    with pytest.raises(PredictorError, match="empty"):
        parse_feature_spec(" + ")


def test_record_sets_drop_nan_rows() -> None:
    rec = _records()
    rec.loc[1, "sink_nodes"] = math.nan
    ft = build_features("mge", rec, None)
    assert list(ft.X.index) == [rec.key[0], rec.key[2]]
    assert ft.dropped == {"mge: NaN metrics": 1}
    assert list(ft.X.columns) == list(MGE_METRICS)
    assert len(build_features("mge-structural", rec, None).X) == 2
    sp = build_features("sparsity", rec, None)
    assert sp.X.shape == (3, 1) and not sp.per_architecture


def test_layer_mean_and_layerwise_values() -> None:
    rec = _records()
    lay = _layers(rec)
    m = build_features("rolled-mean", rec, lay).X
    # motif is BGE_METRICS index 2: layer values 2 and 12 -> mean 7
    assert m.loc[rec.key[0], "rolled-mean:motif"] == pytest.approx(7.0)
    c = build_features("rolled-channel-mean", rec, lay).X
    assert c.loc[rec.key[0], "rolled-channel-mean:motif"] == pytest.approx(107.0)
    lw = build_features("rolled-layerwise", rec, lay)
    assert lw.per_architecture
    assert lw.X.loc[rec.key[0], "rolled:b:motif"] == pytest.approx(12.0)
    # 'a' exists only in CONV-6, 'conv1' only in Resnet-20: NaN across architectures
    assert math.isnan(lw.X.loc[rec.key[2], "rolled:a:motif"])
    assert lw.X.loc[rec.key[2], "rolled:conv1:motif"] == pytest.approx(2.0)
    d = build_features("density", rec, lay).X
    assert d.loc[rec.key[1], "density:b"] == pytest.approx(1.2)
    r = build_features("ramanujan", rec, lay).X
    assert r.loc[rec.key[0], "ramanujan:a:delta_r"] == pytest.approx(0.5)
    assert math.isnan(r.loc[rec.key[0], "ramanujan:b:delta_r"])
    assert r.loc[rec.key[0], "ramanujan:b:imdb"] == pytest.approx(0.4)
    # column order: by layer position, then metric
    assert list(d.columns)[:2] in (["density:a", "density:conv1"],
                                   ["density:conv1", "density:a"])


def test_union_is_inner_join_without_duplicate_columns() -> None:
    rec = _records()
    lay = _layers(rec).iloc[4:]  # the first network loses its layer rows
    ft = build_features("mge+mge-structural+density", rec, lay)
    assert list(ft.X.index) == list(rec.key[1:])
    assert ft.X.columns.is_unique
    assert ft.X.shape[1] == 16 + 3  # density: a, b, conv1
    assert ft.dropped == {"density: no rolled rows": 1}
    assert ft.per_architecture and ft.weight_dependent
    assert not build_features("mge-structural+sparsity", rec, lay).weight_dependent


def test_duplicate_layer_name_fails() -> None:
    rec = _records()
    lay = _layers(rec)
    lay.loc[1, "layer_name"] = "a"
    with pytest.raises(DataError, match="two rolled layers named 'a'"):
        build_features("density", rec, lay)


def test_drop_and_reference(tmp_path: Path) -> None:
    rec = _records()
    rec.loc[2, "dense_accuracy"] = 0.875
    ref = reference_accuracies(rec)
    assert ref.set_index("model").loc["CONV-6", "reference_accuracy"] == pytest.approx(0.9)
    # these records are all PaI (scored): the reference falls back to them, and says so
    assert ref["origin"].str.startswith("best published sparse accuracy (no unscored run").all()
    t = accuracy_drop(rec, ref)
    assert t.loc[rec.key[0], "drop"] == pytest.approx(0.0)
    assert t.loc[rec.key[1], "drop"] == pytest.approx((0.9 - 0.8) / 0.9)
    assert t.loc[rec.key[2], "drop"] == pytest.approx((0.875 - 0.7) / 0.875)
    assert list(t["basis"]) == ["reference", "reference", "dense"]
    # CSV override of one entry
    f = tmp_path / "ref.csv"
    f.write_text("model,dataset,accuracy\nCONV-6,CIFAR-10,0.95\n")
    ref2 = reference_accuracies(rec, load_reference_file(f))
    row = ref2.set_index("model").loc["CONV-6"]
    assert row["reference_accuracy"] == pytest.approx(0.95) and row["origin"] == "file ref.csv"
    assert accuracy_drop(rec, ref2).loc[rec.key[0], "drop"] == pytest.approx(0.05 / 0.95)
    # JSON, both shapes
    j = tmp_path / "ref.json"
    j.write_text(json.dumps({"Resnet-20": {"CIFAR-10": 0.8}}))
    assert load_reference_file(j)["reference_accuracy"].tolist() == [0.8]
    j.write_text(json.dumps([{"model": "A", "dataset": "B", "accuracy": 0.5}]))
    assert load_reference_file(j)["model"].tolist() == ["A"]
    # unknown model/dataset -> no target
    other = rec.assign(dataset="tinyimagenet")
    assert accuracy_drop(other, ref)["basis"].tolist() == ["none", "none", "dense"]


@pytest.mark.parametrize(("text", "match"), [
    ("model,dataset\nA,B\n", "missing column 'accuracy'"),
    ("model,dataset,accuracy\nA,B,93\n", r"fractions in \(0, 1\]"),
    ("model,dataset,accuracy\nA,B,0.9\nA,B,0.8\n", "appears twice"),
])
def test_bad_reference_files(tmp_path: Path, text: str, match: str) -> None:
    f = tmp_path / "r.csv"
    f.write_text(text)
    with pytest.raises(DataError, match=match):
        load_reference_file(f)
    with pytest.raises(DataError, match="no such"):
        load_reference_file(tmp_path / "absent.csv")


def test_inf_in_features_becomes_nan() -> None:
    rec = _records()
    rec.loc[0, "motif"] = np.inf
    X = build_features("mge", rec, None).X
    assert math.isnan(X.loc[rec.key[0], "motif"])
