"""Which topometrics drive one network's predicted drop: occlusion against the training medians.

For a network ``x`` and a feature ``f``, the attribution is ``p(x) − p(x with f := median_f)``, the
change in predicted relative drop when that one metric is replaced by its median over the
predictor's training networks. Positive: the network's value of ``f`` raises its predicted drop
compared with a typical network; negative: it lowers it. Attributions of a tree ensemble are not
additive (interactions), so they rank influence; they do not decompose the prediction.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mgedb.errors import PredictorError
from mgedb.predict.evaluate import single_thread
from mgedb.predict.features import build_features
from mgedb.predict.predictor import Predictor

__all__ = ["occlusion", "top_features"]


def occlusion(predictor: Predictor, records: pd.DataFrame,
              layers: pd.DataFrame | None = None) -> pd.DataFrame:
    """Attribution per network (rows, index = key) and feature (columns), in drop units."""
    medians = predictor.manifest.get("feature_medians")
    if not medians:
        raise PredictorError("this predictor has no training medians (trained by an older mgedb); "
                             "retrain it with `mgedb predict train`")
    models = records.set_index("key")["model"].astype(str)
    main = build_features(predictor.feature_set, records, layers).X
    group_of = {}
    for k in records["key"]:
        g = predictor._group(str(models[k]))
        if g is not None and g != "*" and k not in main.index and "*" in predictor.pipelines:
            g = "*"  # no layer rows: the fallback model scored it
        group_of[k] = g
    frames = []
    for group in sorted(predictor.pipelines):
        keys = [k for k, g in group_of.items() if g == group]
        X = main if predictor._spec(group) == predictor.feature_set else build_features(
            predictor._spec(group), records, layers).X
        keys = [k for k in keys if k in X.index]
        if not keys:
            continue
        cols = predictor.columns[group]
        x = X.loc[keys, cols].to_numpy(dtype=float)
        med = np.array([np.nan if medians[group][c] is None else medians[group][c]
                        for c in cols], dtype=float)
        n, f = x.shape
        variants = np.repeat(x[:, None, :], f, axis=1)  # (n, f, f): row j has feature j occluded
        idx = np.arange(f)
        variants[:, idx, idx] = med[None, :]
        pipe = predictor.pipelines[group]
        with single_thread():
            base = pipe.predict(x)
            occluded = pipe.predict(variants.reshape(n * f, f)).reshape(n, f)
        frames.append(pd.DataFrame(base[:, None] - occluded, index=pd.Index(keys, name="key"),
                                   columns=cols))
    if not frames:
        raise PredictorError("no network has the predictor's features; compute them first")
    out = pd.concat(frames)
    return out.reindex([k for k in records["key"] if k in out.index])


def top_features(attribution: pd.DataFrame, n: int = 3) -> list[list[tuple[str, float]]]:
    """Per row, the ``n`` features with the largest |attribution| and their signed values."""
    out = []
    for _, row in attribution.iterrows():
        order = row.abs().sort_values(ascending=False, kind="stable").index[:n]
        out.append([(str(c), float(row[c])) for c in order])
    return out
