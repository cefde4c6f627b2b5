"""The regression target: the relative accuracy drop of a sparse network.

``drop = (dense − sparse) / dense``. Where a record has ``dense_accuracy`` it is used. The published
table has none, so a *reference accuracy* per (model, dataset) stands in for it: by default the best
published sparse accuracy of that model and dataset among the networks that are *never scored* —
the dynamic-sparse-training (DST) runs when the PaI networks are modelled — so no test row of any
fold enters its own target (for MobileNetV2 the best network is a PaI one, whose drop is then
slightly negative). A CSV or JSON file can override any entry (``--reference-accuracy FILE``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mgedb.errors import DataError
from mgedb.predict.records import PAI_PRUNERS

__all__ = ["DEFAULT_REFERENCE_NOTE", "accuracy_drop", "load_reference_file",
           "reference_accuracies"]

DEFAULT_REFERENCE_NOTE = (
    "Dense accuracies are not published: the published rows' drop is (ref − acc) / ref with ref = "
    "the best published sparse accuracy of the same model and dataset among the networks never "
    "scored (the DST runs), so no test row enters its own target, unless overridden with "
    "--reference-accuracy; rows with a recorded dense accuracy use it instead."
)


def load_reference_file(path: str | Path) -> pd.DataFrame:
    """Read a reference-accuracy override: CSV ``model,dataset,accuracy`` or JSON.

    JSON may be ``{"Resnet-20": {"CIFAR-10": 0.92}}`` or a list of ``{"model", "dataset",
    "accuracy"}`` objects. Accuracies are fractions in (0, 1].
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such reference-accuracy file")
    try:
        if path.suffix.lower() == ".json":
            obj = json.loads(path.read_text())
            if isinstance(obj, dict):
                rows = [{"model": m, "dataset": d, "accuracy": a}
                        for m, per in obj.items() for d, a in dict(per).items()]
                df = pd.DataFrame(rows, columns=["model", "dataset", "accuracy"])
            else:
                df = pd.DataFrame(list(obj))
        else:
            df = pd.read_csv(path)
    except (ValueError, TypeError, OSError, pd.errors.ParserError) as e:
        raise DataError(f"{path}: unreadable reference-accuracy file ({e}); expected CSV "
                        "model,dataset,accuracy or JSON {model: {dataset: accuracy}}") from None
    for c in ("model", "dataset", "accuracy"):
        if c not in df.columns:
            raise DataError(f"{path}: missing column {c!r} (expected model,dataset,accuracy)")
    acc = pd.to_numeric(df["accuracy"], errors="coerce")
    if acc.isna().any() or not ((acc > 0) & (acc <= 1)).all():
        raise DataError(f"{path}: column 'accuracy' must hold fractions in (0, 1]")
    out = pd.DataFrame({"model": df["model"].astype(str), "dataset": df["dataset"].astype(str),
                        "reference_accuracy": acc.astype(float),
                        "origin": f"file {path.name}"})
    if out.duplicated(["model", "dataset"]).any():
        raise DataError(f"{path}: a (model, dataset) pair appears twice")
    return out


def reference_accuracies(records: pd.DataFrame, override: pd.DataFrame | None = None, *,
                         scored: Sequence[str] | None = PAI_PRUNERS) -> pd.DataFrame:
    """Reference accuracy per (model, dataset): best published accuracy of a pruner not in
    ``scored`` (``None``: every pruner, the pre-#16 leaky default), then ``override``.

    A (model, dataset) with no unscored row falls back to every row; its ``origin`` says so.
    """
    pub = records[records["source"] == "published"]
    src = pub if len(pub) else records
    origin = "best published sparse accuracy" if len(pub) else "best recorded accuracy"
    best_all = src.groupby(["model", "dataset"])["accuracy"].max()
    if scored is None:
        ref = best_all.rename("reference_accuracy").reset_index()
        ref["origin"] = origin + " (all pruners, scored rows included)"
    else:
        unscored = src[~src["pruner"].isin(list(scored))]
        best = unscored.groupby(["model", "dataset"])["accuracy"].max()
        ref = best.reindex(best_all.index).rename("reference_accuracy").reset_index()
        ref["origin"] = origin + " of the never-scored (DST) runs"
        miss = ref["reference_accuracy"].isna().to_numpy()
        if miss.any():
            ref.loc[miss, "reference_accuracy"] = best_all.to_numpy()[miss]
            ref.loc[miss, "origin"] = origin + " (no unscored run: scored rows included)"
    if override is not None and len(override):
        ref = ref.set_index(["model", "dataset"])
        ov = override.set_index(["model", "dataset"])
        ref = ov[["reference_accuracy", "origin"]].combine_first(ref).reset_index()
    return ref.sort_values(["model", "dataset"]).reset_index(drop=True)


def accuracy_drop(records: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """Per record: ``drop``, the accuracy it is relative to (``base``) and ``basis``.

    ``basis`` is ``'dense'`` (recorded dense accuracy), ``'reference'`` (reference table) or
    ``'none'`` (neither known; ``drop`` is NaN). Index: network key.
    """
    ref = records.merge(reference[["model", "dataset", "reference_accuracy"]],
                        on=["model", "dataset"], how="left")
    dense = ref["dense_accuracy"].to_numpy(dtype=float)
    refacc = ref["reference_accuracy"].to_numpy(dtype=float)
    base = np.where(np.isfinite(dense), dense, refacc)
    basis = np.where(np.isfinite(dense), "dense", np.where(np.isfinite(refacc), "reference",
                                                           "none"))
    with np.errstate(invalid="ignore", divide="ignore"):
        drop = (base - ref["accuracy"].to_numpy(dtype=float)) / base
    return pd.DataFrame({"drop": drop, "base": base, "basis": basis},
                        index=pd.Index(ref["key"], name="key"))
