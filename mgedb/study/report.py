"""The study report: ``report.md``, ``results.csv``, ``ranking.csv`` and three figures.

``figures/predicted_drop.png``: predicted (and, where trained, true) relative accuracy drop per
pruner and sparsity. ``figures/metric_profiles.png``: every topometric (normalised as in the
published table) per pruner and sparsity. ``figures/attribution.png``: which metrics push each
pruner's predicted drop up or down (occlusion against the training medians).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mgedb.metrics.registry import METRICS, published_order, spec
from mgedb.predict.report import markdown_table, pyplot
from mgedb.study.config import StudyResult

__all__ = ["format_top", "raw_name", "write_report"]

_RAW_BY_COLUMN = {m.column: m.name for m in METRICS}
_UNIT = {"N": "÷ nodes", "E": "÷ edges", None: "raw"}


def raw_name(column: str) -> str:
    """The raw metric name of a published column (``k-core`` → ``k_core``)."""
    return _RAW_BY_COLUMN.get(column, column)


def format_top(top: list[tuple[str, float]]) -> str:
    """``[('k-core', 0.031), …]`` → ``k_core ↑3.1 pp, …`` (signed effect on the predicted drop)."""
    return ", ".join(f"{raw_name(c)} {'↑' if v > 0 else '↓'}{abs(100 * v):.1f} pp"
                     for c, v in top)


def _md(df: pd.DataFrame, digits: int = 3) -> str:
    return markdown_table(df, digits, index=False)


def _pruner_order(result: StudyResult) -> list[str]:
    return [p for p in result.config.pruners
            if any(n.run.pruner == p for n in result.networks)]


def _drop_plot(result: StudyResult, path: Path) -> None:
    plt = pyplot()
    table = result.table()
    pruners = _pruner_order(result)
    sparsities = sorted(table["sparsity"].unique())
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(pruners) + 2), 4.2))
    width = 0.8 / len(sparsities)
    x = np.arange(len(pruners))
    colours = plt.get_cmap("viridis")(np.linspace(0.15, 0.85, len(sparsities)))
    for i, (s, col) in enumerate(zip(sparsities, colours, strict=True)):
        sub = table[table["sparsity"] == s].groupby("pruner")
        mean = sub["predicted_drop"].mean().reindex(pruners) * 100
        std = sub["predicted_drop"].std().reindex(pruners).fillna(0) * 100
        xs = x - 0.4 + width * (i + 0.5)
        ax.bar(xs, mean, width * 0.92, yerr=std, color=col, capsize=2, ecolor="grey",
               label=f"predicted, sparsity {s:g}")
        true = sub["true_drop"].mean().reindex(pruners) * 100
        if true.notna().any():
            ax.scatter(xs, true, marker="D", color="black", s=22, zorder=3,
                       label="true (trained)" if i == 0 else None)
    ax.set_xticks(x, pruners)
    ax.set_xlabel("pruning algorithm")
    ax.set_ylabel("relative accuracy drop (%)")
    ax.axhline(0, color="black", lw=0.6)
    n_seeds = len(result.config.seeds)
    ax.set_title(f"{result.config.model}: predicted accuracy drop per pruner "
                 f"({result.predictor.get('feature_set')} predictor"
                 f"{f', mean ± std over {n_seeds} seeds' if n_seeds > 1 else ''})")
    ax.legend(fontsize=8, loc="best")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _profile_plot(result: StudyResult, path: Path) -> None:
    plt = pyplot()
    from mgedb.metrics import normalise

    rows = []
    for n in result.networks:
        row: dict[str, Any] = dict(normalise(n.metrics))
        row.update(pruner=n.run.pruner, sparsity=n.run.sparsity)
        rows.append(row)
    table = pd.DataFrame(rows)
    pruners = _pruner_order(result)
    sparsities = sorted(table["sparsity"].unique())
    names = [m for m in published_order() if spec(m).column in table.columns]
    ncols = 4
    nrows = math.ceil(len(names) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.3 * ncols, 2.5 * nrows + 0.8),
                             squeeze=False)
    markers = ["o", "s", "^", "D", "v", "P"]
    colours = plt.get_cmap("viridis")(np.linspace(0.15, 0.85, len(sparsities)))
    x = np.arange(len(pruners))
    for ax, name in zip(axes.flat, names, strict=False):
        s_ = spec(name)
        for i, s in enumerate(sparsities):
            vals = (table[table["sparsity"] == s].groupby("pruner")[s_.column].mean()
                    .reindex(pruners))
            ax.plot(x, vals, marker=markers[i % len(markers)], color=colours[i], lw=0.8, ms=4,
                    label=f"sparsity {s:g}")
        ax.set_title(f"{name} ({_UNIT[s_.divisor]})")
        ax.set_xticks(x, pruners, rotation=45, ha="right", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", fontsize=8, ncols=len(sparsities))
    fig.suptitle(f"{result.config.model}: MGE topometric profiles per pruner "
                 f"({result.config.encoding}; normalised as in the published table)", x=0.02,
                 ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path)
    plt.close(fig)


def _attribution_plot(result: StudyResult, path: Path) -> None:
    plt = pyplot()
    sparsities = sorted({n.run.sparsity for n in result.networks})
    pruners = _pruner_order(result)
    frames = {}
    for s in sparsities:
        rows = {p: pd.DataFrame([n.attribution for n in result.networks
                                 if n.run.sparsity == s and n.run.pruner == p]).mean()
                for p in pruners}
        frames[s] = pd.DataFrame(rows).T.reindex(pruners) * 100
    cols = list(frames[sparsities[0]].columns)
    lim = max(float(np.nanmax(np.abs(f.to_numpy()))) for f in frames.values()) or 1.0
    fig, axes = plt.subplots(1, len(sparsities),
                             figsize=(0.55 * len(cols) * len(sparsities) + 2.5,
                                      0.42 * len(pruners) + 2.6), squeeze=False)
    im = None
    for ax, s in zip(axes[0], sparsities, strict=True):
        f = frames[s]
        im = ax.imshow(f.to_numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
        ax.set_xticks(range(len(cols)), [raw_name(c) for c in cols], rotation=60, ha="right",
                      fontsize=8)
        ax.set_yticks(range(len(pruners)), pruners)
        ax.set_title(f"sparsity {s:g}")
        for (i, j), v in np.ndenumerate(f.to_numpy()):
            if abs(v) >= 0.25 * lim:
                ax.text(j, i, f"{v:+.1f}", ha="center", va="center", fontsize=6,
                        color="white" if abs(v) >= 0.6 * lim else "black")
    if im is not None:
        bar = fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8)
        bar.set_label("effect on predicted drop (pp)\nvs. training median")
    fig.suptitle("Which topometrics drive the predicted drop (red: raise it, blue: lower it)",
                 x=0.02, ha="left")
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def _ranking_md(result: StudyResult) -> list[str]:
    out = []
    for s in result.sparsities:
        g = result.ranking_at(s)
        has_true = g["true_drop"].notna().any()
        interval = [f"{100 * lo:.1f} … {100 * hi:.1f}" if math.isfinite(lo) else "—"
                    for lo, hi in zip(g["drop_lo"], g["drop_hi"], strict=True)]
        df = pd.DataFrame({
            "rank": g["rank"], "pruner": g["pruner"] + ["" if d else " ⚠" for d in g["in_domain"]],
            "predicted drop (%)": 100 * g["predicted_drop"],
            "90 % interval (%)": interval,
            "predicted accuracy": g["predicted_accuracy"],
            "most influential topometrics (effect on predicted drop)":
                [format_top(t) for t in g["top_metrics"]],
        })
        if has_true:
            df["true drop (%)"] = 100 * g["true_drop"]
            df["true rank"] = g["true_rank"]
        out += [f"### Sparsity {s:g}", "", _md(df, 2), ""]
        tau = result.tau.get(s, math.nan)
        if has_true:
            out += [f"Kendall τ between predicted and true drop over the pruners: {tau:.3f}", ""]
    return out


def _predictor_md(pred: dict[str, Any]) -> list[str]:
    """The predictor's honest scores, its interval coverage and the domain warnings."""
    out: list[str] = []
    cvs = pred.get("cv_scores") or {}
    scores = cvs.get("scores")
    if scores:
        def pm(k: str) -> str:
            if k not in scores:
                return "—"
            m, s = scores[k]
            return f"{m:.3f} ± {s:.3f}"
        seeds = cvs.get("cv_seeds", [])
        out += [f"Grouped cross-validation of this predictor ({pred.get('regressor')} on "
                f"{pred.get('feature_set')}) on the published table (mean ± std over "
                f"{len(seeds)} CV seeds, bench/predictor_cv.py, mgedb/data/predictor_cv.json):", "",
                "| score | grouped CV |", "|---|---|",
                f"| R² of the drop, grouped 5-fold (mean over architectures) | "
                f"{pm('r2_kfold_grouped')} |",
                f"| R² of the drop, row-shuffled k-fold (leaky, for comparison) | "
                f"{pm('r2_kfold_rows')} |",
                f"| Kendall τ of the pruner ranking, unseen setting | {pm('tau_lgo')} |",
                f"| Kendall τ of the pruner ranking, unseen pruner | {pm('tau_lopo')} |",
                f"| 90 % interval coverage, grouped folds | {pm('coverage_kfold')} |",
                f"| 90 % interval coverage, unseen setting | {pm('coverage_lgo')} |",
                f"| 90 % interval coverage, unseen pruner | {pm('coverage_lopo')} |", ""]
    elif pred.get("cv_scores_note"):
        out += [f"No shipped grouped-CV scores: {pred['cv_scores_note']}.", ""]
    iv = pred.get("interval")
    if iv:
        cov = iv.get("coverage")
        out += [f"Intervals: {100 * iv['level']:.0f} % split-conformal on grouped out-of-fold "
                f"residuals ({pred.get('group')} model, {iv.get('n')} networks), scaled per "
                f"sparsity; measured coverage on grouped folds "
                f"{'—' if cov is None else f'{100 * cov:.1f} %'}. They hold for new networks of "
                "seen settings; for an unseen setting or pruner they cover less.", ""]
    warnings = pred.get("warnings") or []
    if warnings:
        out += ["**Domain warnings** (⚠ in the tables; the prediction is an extrapolation):", "",
                *[f"- {w}" for w in warnings], ""]
    else:
        out += ["Every network lies inside the predictor's training domain (architecture, "
                "dataset, sparsity range, feature ranges, distance to the training networks).",
                ""]
    return out


def write_report(result: StudyResult) -> Path:
    """Write the report folder ``<out>`` (Markdown, CSVs, PNGs); returns ``<out>/report.md``."""
    cfg = result.config
    out = cfg.out
    figs = out / "figures"
    figs.mkdir(parents=True, exist_ok=True)
    table = result.table()
    table.to_csv(out / "results.csv", index=False)
    rk = result.ranking.copy()
    rk["top_metrics"] = [format_top(t) for t in rk["top_metrics"]]
    rk.to_csv(out / "ranking.csv", index=False)
    _drop_plot(result, figs / "predicted_drop.png")
    _profile_plot(result, figs / "metric_profiles.png")
    _attribution_plot(result, figs / "attribution.png")
    pred = result.predictor
    cv = ", ".join(f"{r.get('group')}: R² {r.get('r2_mean', math.nan):.2f}"
                   for r in pred.get("cv_summary", []) if "r2_mean" in r)
    if cv and pred.get("protocol") == "kfold":
        cv = ("grouped 5-fold (the seeds of a network in one fold), R² per architecture, one CV "
              "seed: " + cv)
    lines = [
        f"# mgedb study: {cfg.model}", "",
        f"{len(result.networks)} networks: pruners {', '.join(cfg.pruners)}; sparsities "
        f"{', '.join(f'{s:g}' for s in cfg.sparsities)}; seeds "
        f"{', '.join(map(str, cfg.seeds))}. Pruning data: "
        f"{'synthetic images (no --data-dir)' if cfg.synthetic else cfg.data_dir}. "
        f"Encoding: `{cfg.encoding}`; metrics: array engine"
        f"{' cross-checked by the database' if cfg.engine == 'both' else ''}.", "",
        f"Predicted drop = relative accuracy drop `(dense − sparse) / dense` predicted by a "
        f"`{pred.get('regressor')}` regressor on the `{pred.get('feature_set')}` topometrics, "
        f"trained on {pred.get('n_train')} PaI networks of the published table "
        f"({', '.join(pred.get('architectures') or [])}); predicted accuracy is relative to "
        f"the {pred.get('relative_to')} accuracy. Top metrics: the three largest changes of the "
        "predicted drop when one metric is replaced by its training median (pp = percentage "
        "points; ↑ raises the predicted drop).", "",
    ]
    if cv:
        lines += [f"Predictor cross-validation: {cv}.", ""]
    lines += _predictor_md(pred)
    lines += ["## Ranking per sparsity (1 = smallest predicted drop)", "", *_ranking_md(result)]
    lines += ["## Figures", "",
              "![predicted drop](figures/predicted_drop.png)", "",
              "![metric profiles](figures/metric_profiles.png)", "",
              "![attribution](figures/attribution.png)", ""]
    names = ["n_nodes", "n_edges", *published_order()]
    net = table[["pruner", "sparsity", "seed", "key", *[n for n in names if n in table]]]
    lines += ["## Topometrics (raw values, as `mgedb metrics` prints them)", "", _md(net, 4), ""]
    if cfg.engine == "both":
        mism = result.mismatches
        lines += ["## Engine cross-check (array vs database)", "",
                  "All metrics agree." if not mism else "\n".join(f"- {m}" for m in mism), ""]
    lines += ["## Where things are", "",
              f"- store: `{result.store}` (embedded); e.g. "
              f"`mgedb query --db {result.store} \"MATCH (n:Network) RETURN n.key, n.pruner, "
              "n.sparsity\"`",
              f"- checkpoints: `{cfg.out / 'checkpoints'}`; tables: `results.csv`, `ranking.csv`",
              "", "## Time per stage (s)", "",
              _md(pd.DataFrame({"stage": list(result.timings),
                                "seconds": list(result.timings.values())}), 1), ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
