"""``mgedb report --paper``: the MGE paper's three claims, tested under grouped cross-validation.

The abstract of Cunegatti et al. (TMLR 2024) claims (a) topometrics of the MGE predict the accuracy
drop much better than those of the input-agnostic BGEs (and than Ramanujan metrics), (b) the
analysis shows which metrics matter at which sparsity and for which architecture, and (c) a
mixture of topometrics ranks PaI algorithms better than Ramanujan-based metrics. Its numbers were
not published; here every number is recomputed:

* (a) R² of the drop, grouped 5-fold CV per architecture (the seeds of a network stay in one fold),
  mean over the architectures every set covers, on the same networks for every set.
* (b) permutation importance of claim (a)'s fold models (first two CV seeds) on their held-out
  rows. An importance *profile* per architecture (or per sparsity level) is compared with the
  others by Spearman correlation, and against the correlation of the same profile between two CV
  seeds (the noise floor).
* (c) Kendall τ of the 7-pruner ranking per (architecture, dataset, sparsity) setting, from
  out-of-fold predictions of models that never saw the setting (``lgo``).

Every comparison is paired (the same splits for both sides). The spread of a difference is the
larger of its std over CV seeds and, for τ, the standard error over settings; a difference no
larger than its spread is marked *within spread*. The study's predictor (the feature set and
regressor `mgedb study` ships, :data:`mgedb.predict.STUDY_FEATURES` / ``STUDY_REGRESSOR``) is shown
next to the regressors of claim (a) and (c) as the best honest pre-training reference, on the same
splits. Trained-weight metrics (strength, spectral gap,
spectral radius, the weighted iterative spectral gap) and mask-only ones are tested separately:
before training only the mask-only ones exist.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mgedb.predict import STUDY_FEATURES, STUDY_REGRESSOR
from mgedb.predict.compare import Comparison, compare_feature_sets
from mgedb.predict.evaluate import CVResult, ModelData, assemble, single_thread
from mgedb.predict.ranking import RankingResult, rank_pai

__all__ = ["ClaimRow", "PaperClaims", "paper_claims", "verdict"]

#: Feature sets of claim (a), by kind.
TRAINED = ("mge", "rolled-mean", "rolled-channel-mean", "rolled-layerwise",
           "rolled-channel-layerwise", "ramanujan")
MASK_ONLY = ("mge-structural", "rolled-channel-structural", "ramanujan-structural", "density",
             "setting")


def verdict(diff: float, spread: float, *, holds: str = "holds",
            fails: str = "does not hold (reversed)") -> str:
    """``holds`` if ``diff`` > spread, ``fails`` if < −spread, else *within spread*."""
    if not math.isfinite(diff):
        return "not computable"
    if math.isfinite(spread) and abs(diff) <= spread:
        return "within spread (no clear difference)"
    return holds if diff > 0 else fails


@dataclass
class ClaimRow:
    """One line of the claims table."""

    claim: str
    kind: str  # "trained weights" | "mask only" | "reference"
    paper: str
    ours: str
    value: float
    spread: float
    verdict: str


@dataclass
class PaperClaims:
    """The claims table and the tables behind it."""

    rows: list[ClaimRow]
    r2: Comparison
    ranking: list[RankingResult]
    importance: dict[str, pd.DataFrame]
    notes: list[str] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([{"claim": r.claim, "metrics": r.kind, "paper says": r.paper,
                              "our number ± spread": r.ours, "verdict": r.verdict}
                             for r in self.rows])


def _pm(v: float, s: float, digits: int = 3) -> str:
    if not math.isfinite(v):
        return "—"
    return f"{v:+.{digits}f}" + (f" ± {s:.{digits}f}" if math.isfinite(s) else "")


def _seed_means(comp: Comparison, spec: str, metric: str = "r2") -> np.ndarray:
    return np.array([p.at[spec, "mean"] for p in comp._per_seed(metric)], dtype=float)


def _r2_diff(comp: Comparison, a: str, others: Sequence[str]) -> tuple[float, float, str]:
    """Paired R² difference of ``a`` minus the best of ``others`` (mean over seeds), its std."""
    t = comp.table()["mean"]
    best = max((o for o in others if o in t.index and math.isfinite(t[o])), key=lambda o: t[o])
    d = _seed_means(comp, a) - _seed_means(comp, best)
    return float(d.mean()), float(d.std(ddof=1)) if len(d) > 1 else math.nan, best


def _tau_diff(ranks: Sequence[RankingResult], a: str, b: str) -> tuple[float, float]:
    """Paired τ difference ``a − b`` (mean over seeds) and its spread (max of the std over seeds
    and the standard error over settings)."""
    per_seed, sems = [], []
    for r in ranks:
        g = r.groups
        d = (g[f"tau:{a}"] - g[f"tau:{b}"]).dropna()
        per_seed.append(float(d.mean()))
        sems.append(float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else math.nan)
    v = np.asarray(per_seed)
    sd = float(v.std(ddof=1)) if len(v) > 1 else math.nan
    return float(v.mean()), float(np.nanmax([sd, *sems]))


def tau_summary(ranks: Sequence[RankingResult]) -> pd.DataFrame:
    """Per method: mean τ over settings, mean ± std over CV seeds, SEM over settings, top-1."""
    frames = [r.summary().set_index("method") for r in ranks]
    tau = pd.concat([f["tau_mean"] for f in frames], axis=1)
    return pd.DataFrame({"tau": tau.mean(axis=1),
                         "std over seeds": tau.std(axis=1, ddof=1) if len(frames) > 1 else np.nan,
                         "sem over settings": frames[0]["tau_sem"],
                         "top1": pd.concat([f["top1"] for f in frames], axis=1).mean(axis=1),
                         "settings": frames[0]["settings"]})


def _permutation(pipeline: Any, parts: Sequence[tuple[np.ndarray, np.ndarray]], seed: int
                 ) -> list[np.ndarray]:
    """Mean permutation importance (R², 3 repeats) of one fitted model on each (X, y) of
    ``parts`` (one joblib task per model: the model is sent to a worker once)."""
    from sklearn.inspection import permutation_importance

    with single_thread():
        return [np.asarray(permutation_importance(pipeline, X, y, n_repeats=3, random_state=seed,
                                                  scoring="r2", n_jobs=1).importances_mean)
                for X, y in parts]


def _profiles(data: ModelData, runs: Sequence[CVResult], seeds: Sequence[int]) -> pd.DataFrame:
    """Permutation importance of the fold models of ``runs`` (grouped k-fold, one per CV seed in
    ``seeds``, fitted with ``keep_models``) on their held-out rows (all of them, and each sparsity
    level), per (seed, architecture, sparsity, feature): the long table behind claim (b). The
    models are permuted in parallel under the caller's joblib context; each permutation is
    seeded, so any worker count gives the same table."""
    from joblib import Parallel, delayed

    labels: list[list[dict[str, Any]]] = []
    tasks: list[tuple[Any, list[tuple[np.ndarray, np.ndarray]], int]] = []
    columns: list[list[str]] = []
    for seed, cv in zip(seeds, runs, strict=True):
        for fm in cv.models:
            keys = pd.Index(fm.test_keys)
            sp = data.meta.loc[keys, "sparsity"].to_numpy()
            where, xy = [], []
            for label, sel in [("all", np.ones(len(keys), bool))] + [
                    (f"{s:g}", sp == s) for s in sorted(set(sp))]:
                if sel.sum() < 4:
                    continue
                y = data.y.loc[keys[sel]].to_numpy(dtype=float)
                if np.ptp(y) == 0:
                    continue
                xy.append((data.X.loc[keys[sel], fm.columns].to_numpy(dtype=float), y))
                where.append({"seed": seed, "model": fm.group, "sparsity": label,
                              "fold": fm.fold})
            if xy:
                labels.append(where)
                tasks.append((fm.pipeline, xy, seed))
                columns.append(fm.columns)
    means = Parallel()(delayed(_permutation)(*t) for t in tasks)
    return pd.DataFrame([{**w, "feature": f, "importance": float(v)}
                         for ws, cols, ms in zip(labels, columns, means, strict=True)
                         for w, m in zip(ws, ms, strict=True)
                         for f, v in zip(cols, m, strict=True)])


def _rho(a: pd.Series, b: pd.Series) -> float:
    from scipy.stats import spearmanr

    j = pd.concat([a, b], axis=1).dropna()
    if len(j) < 3 or j.iloc[:, 0].nunique() < 2 or j.iloc[:, 1].nunique() < 2:
        return math.nan
    return float(spearmanr(j.iloc[:, 0], j.iloc[:, 1]).statistic)


def profile_agreement(long: pd.DataFrame, by: str) -> tuple[float, float, float, float]:
    """(between-``by`` ρ mean, its std, between-seed ρ mean, its std) of importance profiles.

    ``by='model'``: profiles over all held-out rows, one per architecture. ``by='sparsity'``: one
    per (architecture, sparsity level), compared between levels within an architecture.
    """
    sub = long[long["sparsity"] == "all"] if by == "model" else long[long["sparsity"] != "all"]
    sub = sub.assign(unit=sub["model"] if by == "model" else sub["model"] + "@" + sub["sparsity"])
    prof = sub.groupby(["seed", "unit", "feature"])["importance"].mean()
    units = sorted(set(sub["unit"]))
    seeds = sorted(set(sub["seed"]))
    s0 = seeds[0]
    profiles: dict[tuple[int, str], pd.Series] = {}
    flat = prof.reset_index()
    for sd, u, f, v in zip(flat["seed"], flat["unit"], flat["feature"], flat["importance"],
                           strict=True):
        profiles.setdefault((int(sd), str(u)), pd.Series(dtype=float))[str(f)] = float(v)

    def p(seed: int, unit: str) -> pd.Series:
        return profiles.get((seed, unit), pd.Series(dtype=float))

    between = [_rho(p(s0, u), p(s0, v)) for u, v in itertools.combinations(units, 2)
               if by == "model" or u.split("@")[0] == v.split("@")[0]]
    within = [_rho(p(a, u), p(b, u)) for u in units for a, b in itertools.combinations(seeds, 2)]
    return (*_mean_sd(between), *_mean_sd(within))


def _mean_sd(v: Sequence[float]) -> tuple[float, float]:
    a = np.asarray(v, dtype=float)
    a = a[np.isfinite(a)]
    if not len(a):
        return math.nan, math.nan
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else math.nan


#: Feature sets whose importance profiles claim (b) compares, by kind.
IMPORTANCE = (("mge", "trained weights"), ("mge-structural", "mask only"))


def paper_claims(records: pd.DataFrame, layers: pd.DataFrame | None, *,
                 seeds: Sequence[int] = (0, 1, 2), regressor: str = "hgb",
                 predictor: tuple[str, str] = (STUDY_FEATURES, STUDY_REGRESSOR),
                 reference: pd.DataFrame | None = None,
                 on_step: Callable[[str], None] | None = None) -> PaperClaims:
    """Test claims (a)–(c) (see the module docstring) with ``regressor``; ``predictor``: the
    (feature set, regressor) of the study's predictor, shown as the best honest pre-training
    reference."""
    step = on_step or (lambda s: None)
    predictor_spec, predictor_reg = predictor
    kw: dict[str, Any] = {"regressor": regressor, "reference": reference,
                          "regressors": {predictor_spec: predictor_reg}}
    step("claim (a): R² of every feature set")
    specs = [s for s in dict.fromkeys([*TRAINED, *MASK_ONLY]) if s != predictor_spec]
    specs.append(predictor_spec)
    comp = compare_feature_sets(records, layers, specs, protocol="kfold", seeds=seeds,
                                keep_models=[s for s, _ in IMPORTANCE], **kw)
    t = comp.table()["mean"]
    rows: list[ClaimRow] = []
    pa = "topometrics on the MGE predict the drop much better than input-agnostic BGE ones"
    for a, others, kind, what in (
            ("mge", ("rolled-mean", "rolled-channel-mean"), "trained weights",
             "MGE − best layer-averaged BGE"),
            ("mge", ("rolled-layerwise", "rolled-channel-layerwise"), "trained weights",
             "MGE − best layer-wise BGE"),
            ("mge", ("ramanujan",), "trained weights", "MGE − Ramanujan (per layer)"),
            ("mge-structural", ("rolled-channel-structural",), "mask only",
             "MGE − layer-wise rolled-channel BGE"),
            ("mge-structural", ("ramanujan-structural",), "mask only",
             "MGE − Ramanujan Δr/IMDB (per layer)"),
            ("mge-structural", ("setting",), "mask only",
             "MGE − sparsity + dataset + size lookup")):
        d, sd, best = _r2_diff(comp, a, others)
        rows.append(ClaimRow(f"(a) R²: {what}", kind, pa,
                             f"{t[a]:.3f} vs {best} {t[best]:.3f}: {_pm(d, sd)}", d, sd,
                             verdict(d, sd)))
    rows.append(ClaimRow("(a) R²: study predictor (mask-only, pre-training)", "mask only",
                         "—", f"{predictor_reg} on {predictor_spec}: {t[predictor_spec]:.3f} ± "
                         f"{comp.std_table()['mean'][predictor_spec]:.3f}",
                         float(t[predictor_spec]), math.nan, "reference"))

    step("claim (b): importance profiles")
    importance: dict[str, pd.DataFrame] = {}
    pb = "which topometrics matter depends on the architecture and the sparsity"
    for spec, kind in IMPORTANCE:
        data = assemble(records, layers, spec, reference=reference)
        long = _profiles(data, comp.runs[spec][:2], seeds[:2])
        for cv in comp.runs[spec]:
            cv.models = []  # permuted: free them
        importance[spec] = long
        for by, what in (("model", "architecture"), ("sparsity", "sparsity level")):
            b, bsd, w, wsd = profile_agreement(long, by)
            d = w - b
            rows.append(ClaimRow(
                f"(b) importance differs by {what}", kind, pb,
                f"ρ between {what}s {b:.2f} ± {bsd:.2f} vs between CV seeds {w:.2f} ± {wsd:.2f}",
                d, bsd, verdict(d, bsd, holds="supported",
                                fails="not supported (profiles agree)")))
        top = (long[long["sparsity"] == "all"].groupby("feature")["importance"].mean()
               .sort_values(ascending=False).index[:2])
        rows[-1].ours += f"; top-2 overall: {', '.join(top)}"

    step("claim (c): ranking PaI algorithms")
    rank_specs = list(dict.fromkeys(["mge", "mge-structural", "ramanujan-structural",
                                     predictor_spec]))
    ranks = [rank_pai(records, layers, rank_specs, seed=s, **kw) for s in seeds]
    pc = "a mixture of topometrics ranks PaI algorithms better than Ramanujan-based metrics"
    ts = tau_summary(ranks)
    for ma, mb, kind, what in (
            ("predictor:mge", "model:ramanujan", "trained weights",
             "MGE regressor − Ramanujan regressor"),
            ("predictor:mge-structural", "predictor:ramanujan-structural", "mask only",
             "MGE regressor − Ramanujan Δr/IMDB regressor"),
            ("predictor:mge-structural", "mean Δr", "mask only", "MGE regressor − mean Δr"),
            ("predictor:mge-structural", "mean IMDB", "mask only", "MGE regressor − mean IMDB"),
            (f"predictor:{predictor_spec}", "model:ramanujan", "mask only",
             f"study predictor ({predictor_reg}) − Ramanujan regressor (trained)")):
        if f"tau:{ma}" not in ranks[0].groups or f"tau:{mb}" not in ranks[0].groups:
            continue
        d, sd = _tau_diff(ranks, ma, mb)
        rows.append(ClaimRow(f"(c) τ unseen setting: {what}", kind, pc,
                             f"{float(ts['tau'][ma]):.3f} vs {float(ts['tau'][mb]):.3f}: "
                             f"{_pm(d, sd)}",
                             d, sd, verdict(d, sd)))
    notes = [*comp.notes, *ranks[0].notes]
    return PaperClaims(rows, comp, ranks, importance, notes)


def paper_markdown(claims: PaperClaims, data_label: str, seconds: float) -> str:
    """The claims table and the tables behind it, as Markdown."""
    from mgedb.predict.report import markdown_table

    kind = dict.fromkeys(TRAINED, "trained weights") | dict.fromkeys(MASK_ONLY, "mask only")
    r2 = claims.r2.table().round(3).astype(object)
    sd = claims.r2.std_table().round(3)
    for c in r2.columns:
        r2[c] = [f"{m:.3f} ± {v:.3f}" if math.isfinite(m) else "—"
                 for m, v in zip(claims.r2.table()[c], sd[c], strict=True)]
    r2.insert(0, "metrics", [kind.get(s, "mask only") for s in r2.index])
    tau = tau_summary(claims.ranking)
    md = ["# The MGE paper's claims under grouped cross-validation", "",
          f"Data: {data_label}. Every number below was recomputed by `mgedb report --paper` "
          f"({seconds:.0f} s).", "", markdown_table(claims.table(), index=False), "",
          "## (a) R² of the drop, grouped 5-fold CV per architecture (mean ± std over CV seeds)",
          "", markdown_table(r2), "",
          "## (c) Kendall τ of the PaI ranking on unseen settings (lgo)", "",
          markdown_table(tau), "", "## Protocol", "",
          *[f"- {n}" for n in claims.notes], "",
          (__doc__ or "").split("\n\n", 1)[1]]
    return "\n".join(md)
