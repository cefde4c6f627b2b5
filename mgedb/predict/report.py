"""``mgedb report``: a Markdown report with tables and PNG plots, every number recomputed from data.

Sections: data and target, feature-set comparison (k-fold per architecture), leave-one-
architecture-out, leave-one-dataset-out and per-sparsity summaries, feature importance, and the PaI
ranking against the Ramanujan and density baselines.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, SupportsFloat, SupportsIndex

import numpy as np
import pandas as pd

from mgedb.predict.compare import Comparison, compare_feature_sets, default_specs
from mgedb.predict.evaluate import CVResult
from mgedb.predict.importance import Importance, feature_importance
from mgedb.predict.ranking import RankingResult, rank_pai
from mgedb.predict.targets import DEFAULT_REFERENCE_NOTE

__all__ = ["ReportInputs", "build_report", "markdown_table", "pyplot"]

_SHORT = {"Wide-Resnet-28-2": "WRN-28-2", "MobileNetV2": "MobileNetV2"}


def _num(v: object) -> float:
    """A numeric table cell as a float (pandas-stubs types a ``.at[]`` cell as any scalar)."""
    if isinstance(v, SupportsFloat | SupportsIndex | str):
        return float(v)
    raise TypeError(f"expected a number, got {v!r}")


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if isinstance(v, float | np.floating):
        return f"{v:.{digits}f}"
    return str(v)


def markdown_table(df: pd.DataFrame, digits: int = 3, index: bool = True) -> str:
    """A GitHub-flavoured Markdown table of ``df`` (NaN shown as —)."""
    d = df.reset_index() if index else df
    head = "| " + " | ".join(str(c) for c in d.columns) + " |"
    sep = "|" + "|".join("---" for _ in d.columns) + "|"
    rows = ["| " + " | ".join(_fmt(v, digits) for v in r) + " |"
            for r in d.itertuples(index=False, name=None)]
    return "\n".join([head, sep, *rows])


def _pm(mean: pd.DataFrame, std: pd.DataFrame) -> pd.DataFrame:
    out = mean.copy().astype(object)
    for c in mean.columns:
        for i in mean.index:
            m = _num(mean.at[i, c])
            s = _num(std.at[i, c]) if (c in std.columns and i in std.index) else float("nan")
            out.at[i, c] = ("—" if pd.isna(m) else
                            f"{m:.3f}" + ("" if pd.isna(s) else f" ± {s:.3f}"))
    return out


@dataclass
class ReportInputs:
    """What the report is computed from."""

    records: pd.DataFrame
    layers: pd.DataFrame | None
    data_label: str
    import_summary: list[str]
    reference: pd.DataFrame | None = None
    reference_label: str = "default"
    regressor: str = "hgb"
    seed: int = 0


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10,
                         "figure.dpi": 110})
    return plt


def _scatter(results: dict[str, CVResult], path: Path) -> None:
    plt = pyplot()
    archs = sorted(set().union(*(set(r.oof["model"]) for r in results.values())))
    fig, axes = plt.subplots(1, len(archs), figsize=(3.4 * len(archs), 3.6), squeeze=False)
    colors = ["tab:blue", "tab:orange", "tab:green"]
    for ax, arch in zip(axes[0], archs, strict=True):
        lo, hi = np.inf, -np.inf
        for (spec, res), col in zip(results.items(), colors, strict=False):
            o = res.oof[res.oof["model"] == arch]
            if o.empty:
                continue
            lo = min(lo, o["y_true"].min(), o["y_pred"].min())
            hi = max(hi, o["y_true"].max(), o["y_pred"].max())
            r2 = _num(res.summary().set_index("group").at[arch, "r2_mean"])
            ax.scatter(100 * o["y_true"], 100 * o["y_pred"], s=6, alpha=0.5, color=col,
                       label=f"{spec} (R² {r2:.2f})")
        ax.plot([100 * lo, 100 * hi], [100 * lo, 100 * hi], color="black", lw=0.8, ls="--")
        ax.set_title(_SHORT.get(arch, arch))
        ax.set_xlabel("true drop (%)")
        ax.legend(fontsize=7, loc="upper left", markerscale=2)
    axes[0][0].set_ylabel("predicted drop (%, out-of-fold)")
    fig.suptitle("Predicted vs true accuracy drop, grouped 5-fold CV per architecture (PaI "
                 "networks)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _importance_bars(imp: Importance, path: Path, n: int = 16) -> None:
    plt = pyplot()
    top = imp.overall.head(n).iloc[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(top) + 1.2))
    ax.barh(top["feature"], top["importance"], xerr=top["std"].fillna(0), color="tab:blue",
            ecolor="grey", capsize=2)
    ax.set_xlabel("permutation importance (mean drop of held-out R², ± std over folds)")
    ax.set_title(f"Feature importance, {imp.spec} (5-fold CV per architecture)")
    ax.axvline(0, color="black", lw=0.6)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _heatmap(df: pd.DataFrame, path: Path, title: str, xlabel: str, fmt: str = "{:.2f}",
             cmap: str = "viridis", center: float | None = None) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(1.1 * df.shape[1] + 3.2, 0.34 * df.shape[0] + 1.6))
    vals = df.to_numpy(dtype=float)
    kw: dict[str, Any] = {}
    if center is not None:
        m = np.nanmax(np.abs(vals - center)) if np.isfinite(vals).any() else 1.0
        kw = {"vmin": center - m, "vmax": center + m}
    im = ax.imshow(vals, aspect="auto", cmap=cmap, **kw)
    ax.set_xticks(range(df.shape[1]), [str(c) for c in df.columns], rotation=30, ha="right")
    ax.set_yticks(range(df.shape[0]), [str(i) for i in df.index])
    for i in range(df.shape[0]):
        for j in range(df.shape[1]):
            if np.isfinite(vals[i, j]):
                ax.text(j, i, fmt.format(vals[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if im.norm(vals[i, j]) < 0.5 else "black")
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _ranking_plot(rank: RankingResult, path: Path) -> None:
    plt = pyplot()
    g = rank.groups
    archs = sorted(set(g["model"]))
    fig, axes = plt.subplots(1, len(archs), figsize=(3.9 * len(archs), 5.2), squeeze=False,
                             sharey=True)
    for ax, arch in zip(axes[0], archs, strict=True):
        sub = g[g["model"] == arch]
        data = [sub[f"tau:{m}"].dropna().to_numpy() for m in rank.methods]
        ax.boxplot(data, showmeans=True)
        for k, d in enumerate(data, start=1):
            x = k + np.linspace(-0.15, 0.15, len(d))
            ax.scatter(x, d, s=8, alpha=0.6, color="tab:blue")
        labels = [m.removeprefix("predictor:").replace("rolled-channel-mean", "rc-mean")
                  for m in rank.methods]
        ax.set_xticks(range(1, len(rank.methods) + 1), labels, rotation=35, ha="right",
                      fontsize=8)
        ax.axhline(0, color="grey", lw=0.6, ls="--")
        ax.set_title(f"{_SHORT.get(arch, arch)} ({len(sub)} settings)")
    axes[0][0].set_ylabel("Kendall τ vs true PaI ranking (per dataset × sparsity)")
    fig.suptitle("Ranking 7 PaI algorithms per (dataset, sparsity): τ of each score "
                 "(box: quartiles, ▲ mean; dashed: random)\nPredictors by feature set; "
                 "baselines: mean Δr / IMDB / density, model: regressor on that set; "
                 "rc = rolled-channel", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def build_report(out_dir: str | Path, inputs: ReportInputs, *,
                 specs: Sequence[str] | None = None, importance_spec: str = "mge",
                 on_step: Callable[[str], None] | None = None) -> Path:
    """Compute everything and write ``report.md`` and its PNGs to ``out_dir``; returns the path."""
    import mgedb

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    step = on_step or (lambda s: None)
    kw: dict[str, Any] = {"regressor": inputs.regressor, "seed": inputs.seed,
                          "reference": inputs.reference}
    R, L = inputs.records, inputs.layers
    md: list[str] = []

    step("k-fold comparison")
    comp: Comparison = compare_feature_sets(R, L, specs or default_specs("kfold"),
                                            protocol="kfold", **kw)
    best_single, best_single_v = comp.best(unions=False)
    best_union, best_union_v = comp.best(unions=True)
    step("leave-one-architecture-out")
    loao = compare_feature_sets(R, L, default_specs("loao"), protocol="loao", **kw)
    short_specs = list(dict.fromkeys(
        s for s in ["mge", "mge-structural", "rolled-channel-mean", "density", "sparsity",
                    best_union] if s and s in comp.results))
    step("leave-one-dataset-out")
    lodo = compare_feature_sets(R, L, short_specs, protocol="lodo", **kw)
    step("per-sparsity")
    persp = compare_feature_sets(R, L, short_specs, protocol="per-sparsity", **kw)
    step("importance")
    imp = feature_importance(_data_for(R, L, importance_spec, inputs),
                             regressor=inputs.regressor, seed=inputs.seed)
    step("ranking")
    rank_specs = [s for s in dict.fromkeys([importance_spec, "mge-structural", best_union]) if s]
    base_rank = rank_pai(R, L, rank_specs, **kw)

    step("plots")
    scatter_sets = {s: comp.results[s] for s in dict.fromkeys(["mge", best_single, best_union])
                    if s in comp.results}
    _scatter(scatter_sets, out / "scatter_predicted_vs_true.png")
    _importance_bars(imp, out / "importance_overall.png")
    if not imp.by_architecture.empty:
        _heatmap(imp.by_architecture.rename(columns=_SHORT), out / "importance_by_architecture.png",
                 f"Permutation importance of {imp.spec} per architecture", "architecture")
    if not imp.by_sparsity.empty:
        _heatmap(imp.by_sparsity, out / "importance_by_sparsity.png",
                 f"Permutation importance of {imp.spec} per sparsity (per-sparsity models)",
                 "global sparsity")
    _ranking_plot(base_rank, out / "ranking_tau.png")

    # ---------------------------------------------------------------- Markdown
    ref = inputs.reference if inputs.reference is not None else _ref_table(R)
    md.append("# mgedb predictor report\n")
    md.append(f"Generated by `mgedb report` (mgedb {mgedb.__version__}) from {inputs.data_label}; "
              f"regressor `{inputs.regressor}` ({_REG_TEXT.get(inputs.regressor, '')}), seed "
              f"{inputs.seed}. Every number below was recomputed from the data by this command.\n")
    md.append("## Data and target\n")
    md.append("Import report:\n\n```\n" + "\n".join(inputs.import_summary) + "\n```\n")
    md.append(f"**Target.** {DEFAULT_REFERENCE_NOTE} Reference table used "
              f"({inputs.reference_label}):\n")
    md.append(markdown_table(ref.set_index(["model", "dataset"]), 4) + "\n")
    md.append("Only pruning-at-initialisation networks (grasp, er, erk, prospr, synflow, uniform, "
              "snip) are used. Every feature set is scored on the same networks (per "
              "architecture, those every covering set has; MobileNetV2 has only MGE rows and is "
              "left out of the cross-architecture mean).\n")

    md.append("## Feature sets, grouped 5-fold CV per architecture (R², mean ± std over folds)\n")
    md.append("Folds keep the seeds of a network (model, dataset, pruner, sparsity) together; "
              "`mgedb predict compare --no-group-seeds` gives the old, leaky row-shuffled "
              "numbers and `mgedb report --paper` the 3-seed spread.\n")
    md.append(markdown_table(_pm(comp.table("r2").rename(columns=_SHORT),
                                 comp.std_table("r2").rename(columns=_SHORT))) + "\n")
    beats = best_union_v > best_single_v
    md.append(f"Best single set: **{best_single}** (mean R² {best_single_v:.3f}); best union "
              f"(of the {sum('+' in s for s in comp.results)} unions fixed in advance): "
              f"**{best_union}** ({best_union_v:.3f}), which "
              f"{'beats' if beats else 'does NOT beat'} every single set. Note: the best union is "
              "selected on these same folds.\n")
    n_arch = comp.long().groupby("group")["n"].max().rename(index=_SHORT)
    md.append("Networks per architecture: " + ", ".join(f"{k} {v}" for k, v in n_arch.items())
              + ".\n")
    mae = comp.table("mae")[["mean"]].rename(columns={"mean": "MAE (mean over archs)"})
    rho = comp.table("spearman")[["mean"]].rename(columns={"mean": "Spearman ρ"})
    md.append(markdown_table(mae.join(rho), 4) + "\n")
    md.append("![predicted vs true](scatter_predicted_vs_true.png)\n")

    md.append("## Leave-one-architecture-out (architecture-independent sets)\n")
    md.append("Each column is a held-out architecture: the model is trained on the other "
              "architectures' networks only (`mean`: over the architectures every set covers). "
              "R²:\n")
    md.append(markdown_table(loao.table("r2").rename(columns=_SHORT)) + "\n")
    md.append("Spearman ρ (ranking quality within the held-out architecture):\n")
    md.append(markdown_table(loao.table("spearman").rename(columns=_SHORT)) + "\n")

    md.append("## Leave-one-dataset-out (per architecture; R² mean ± std over the 3 held-out "
              "datasets)\n")
    md.append(markdown_table(_pm(lodo.table("r2").rename(columns=_SHORT),
                                 lodo.std_table("r2").rename(columns=_SHORT))) + "\n")
    md.append("R² is poor here because the proxy drop's level differs between datasets (a model "
              "trained on two datasets mis-places the third one's drops); the ranking of the "
              "held-out dataset's networks is what transfers. Spearman ρ (mean ± std):\n")
    md.append(markdown_table(_pm(lodo.table("spearman").rename(columns=_SHORT),
                                 lodo.std_table("spearman").rename(columns=_SHORT))) + "\n")
    md.append("## Per sparsity level (5-fold CV per architecture × sparsity; R² mean over "
              "architectures)\n")
    ps = persp.long()
    ps["sparsity"] = ps["group"].str.split("@").str[1]
    ps["arch"] = ps["group"].str.split("@").str[0]
    common_arch = set.intersection(*(set(ps[ps["feature_set"] == s]["arch"])
                                     for s in persp.results))
    psw = (ps[ps["arch"].isin(common_arch)].groupby(["feature_set", "sparsity"])["r2_mean"]
           .mean().unstack("sparsity").loc[list(persp.results)])
    md.append(markdown_table(psw) + "\n")
    md.append("Within one sparsity level, the drop varies much less, so R² is lower.\n")

    md.append(f"## Feature importance ({imp.spec})\n")
    md.append("Permutation importance: mean drop of held-out R² when one feature is shuffled "
              "(5 repeats), averaged over folds. Per sparsity uses models trained per "
              "architecture × sparsity.\n")
    md.append(markdown_table(imp.overall.head(16).set_index("feature"), 4) + "\n")
    md.append("![importance](importance_overall.png)\n")
    if not imp.by_architecture.empty:
        md.append("![importance per architecture](importance_by_architecture.png)\n")
    if not imp.by_sparsity.empty:
        md.append("![importance per sparsity](importance_by_sparsity.png)\n")
    if imp.shap is not None:
        md.append("Mean |SHAP| (TreeExplainer on the fold models):\n")
        md.append(markdown_table(imp.shap.head(16).set_index("feature"), 5) + "\n")
    else:
        md.append("(SHAP not installed: `pip install shap` adds mean |SHAP| values.)\n")

    md.append("## Ranking PaI algorithms before training\n")
    md.append("For each (architecture, dataset, sparsity) setting, the 7 PaI algorithms "
              "(averaged over seeds) are ranked by each score and compared with their true "
              "accuracy ranking. Predictors use out-of-fold predictions where the whole setting "
              "was held out (leave-(dataset, sparsity)-groups-out, per architecture). Baseline "
              "directions were fixed in advance (higher mean Δr / IMDB / density = better). A "
              "random ranking gives τ = 0 and top-1 = 1/7 ≈ 0.143.\n")
    for note in base_rank.notes[1:]:
        md.append(f"- {note}")
    md.append("")
    summ = base_rank.summary()
    md.append(markdown_table(summ.set_index("method")) + "\n")
    winner = str(summ.set_index("method")["tau_mean"].idxmax())
    top1 = str(summ.set_index("method")["top1"].idxmax())
    st = summ.set_index("method")
    runner_up = st["tau_mean"].drop(winner).idxmax() if len(st) > 1 else winner
    gap = _num(st.at[winner, "tau_mean"]) - _num(st.at[runner_up, "tau_mean"])
    verdict = ("within two standard errors, i.e. not a clear win" if gap < 2 * max(
        _num(st.at[winner, "tau_sem"]), _num(st.at[runner_up, "tau_sem"])) else "more than two "
        "standard errors ahead")
    md.append(f"Highest mean τ: **{winner}**, {gap:.3f} ahead of {runner_up} ({verdict}); "
              f"highest top-1 rate: **{top1}**. These are the numbers of this run; read them "
              "as they are.\n")
    per_arch = base_rank.summary("model").pivot(index="method", columns="model",
                                                values="tau_mean").rename(columns=_SHORT)
    md.append("Mean τ per architecture:\n")
    md.append(markdown_table(per_arch.loc[base_rank.methods]) + "\n")
    md.append("![ranking tau](ranking_tau.png)\n")
    md.append(f"_Computed in {time.perf_counter() - t0:.0f} s._\n")
    path = out / "report.md"
    path.write_text("\n".join(md))
    return path


_REG_TEXT = {
    "hgb": "HistGradientBoostingRegressor, max_iter 100, learning rate 0.15, 15 leaves",
    "rf": "RandomForestRegressor, 200 trees",
    "ridge": "Ridge, alpha 1",
    "xgb": "XGBRegressor, 150 trees, depth 3",
}


def _ref_table(records: pd.DataFrame) -> pd.DataFrame:
    from mgedb.predict.targets import reference_accuracies

    return reference_accuracies(records)


def _data_for(records: pd.DataFrame, layers: pd.DataFrame | None, spec: str,
              inputs: ReportInputs) -> Any:
    from mgedb.predict.evaluate import assemble

    return assemble(records, layers, spec, reference=inputs.reference)
