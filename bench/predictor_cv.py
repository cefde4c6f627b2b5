"""Choose the study's predictor by grouped cross-validation, and write its CV scores.

    python bench/predictor_cv.py [--seeds 0,1,2] [--jobs 2] [--out mgedb/data/predictor_cv.json]

For every candidate (a pre-training feature set — mask-only topometrics, the setting, layer
densities, their within-setting centred versions — with a regressor): R² of the drop under
grouped 5-fold CV per architecture (the seeds of a network in one fold; the row-shuffled, leaky
k-fold is shown next to it), Kendall τ of the PaI ranking on unseen settings (``lgo``) and on an
unseen pruner (``lopo``), and the coverage of 90 % split-conformal intervals on grouped folds;
mean ± std over the CV seeds. Prints
Markdown tables and writes the JSON that ``default_predictor`` copies into the study predictor's
manifest (keyed by the shipped data's digest, the feature set and the regressor). Deterministic:
the same data, seeds and library versions give the same file, whatever ``--jobs``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mgedb.predict.compare import compare_feature_sets
from mgedb.predict.domain import conformal_coverage
from mgedb.predict.evaluate import assemble, cross_validate
from mgedb.predict.predictor import LEVEL, STUDY_FEATURES, STUDY_REGRESSOR, versions
from mgedb.predict.published import load_shipped, shipped_digest
from mgedb.predict.ranking import oof_tau
from mgedb.predict.targets import reference_accuracies

#: Candidates (feature set, regressor), fixed before looking at the results: the audit's feature
#: families under the two tree ensembles it found best.
CANDIDATES: tuple[tuple[str, str], ...] = (
    ("mge-structural", "hgb"),
    (STUDY_FEATURES, "hgb"),
    (STUDY_FEATURES, "et"),
)
ARCHS = ("CONV-6", "Resnet-20", "Resnet-32", "Wide-Resnet-28-2")


def cand_key(spec: str, regressor: str) -> str:
    """The key of a candidate in the JSON's ``candidates``."""
    return f"{regressor}:{spec}"


def _ms(v: list[float]) -> list[float]:
    a = np.asarray(v, dtype=float)
    return [float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else float("nan")]


def _coverage(oof: pd.DataFrame) -> float:
    c = conformal_coverage(oof, LEVEL)
    return float(np.average(c["covered"], weights=c["n"]))


def _r2_part(R: pd.DataFrame, L: pd.DataFrame, ref: pd.DataFrame, seeds: list[int],
             cands: tuple[tuple[str, str], ...], grouped: bool) -> dict[str, dict[str, object]]:
    name = "r2_kfold_grouped" if grouped else "r2_kfold_rows"
    out: dict[str, dict[str, object]] = {}
    for reg in dict.fromkeys(r for _, r in cands):
        specs = [s for s, r in cands if r == reg]
        comp = compare_feature_sets(R, L, specs, seeds=seeds, regressor=reg, reference=ref,
                                    group_seeds=grouped)
        per_seed = comp._per_seed("r2")
        for spec in specs:
            row: dict[str, object] = {name: _ms([float(p.at[spec, "mean"]) for p in per_seed]),
                                      f"{name}_per_arch": {
                str(a): float(v) for a, v in comp.table().loc[spec].drop("mean").items()}}
            if grouped:
                row["coverage_kfold"] = _ms([_coverage(r.oof) for r in comp.runs[spec]])
            out[cand_key(spec, reg)] = row
    return out


def _tau_part(R: pd.DataFrame, L: pd.DataFrame, ref: pd.DataFrame, seeds: list[int],
              cands: tuple[tuple[str, str], ...]) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for spec, reg in cands:
        data = assemble(R, L, spec, reference=ref)
        row: dict[str, object] = {}
        for prot in ("lgo", "lopo"):
            taus, cov = [], []
            for s in seeds:
                oof = cross_validate(data, prot, regressor=reg, seed=s).oof
                taus.append(float(oof_tau(oof)["tau:score"].mean()))
                cov.append(_coverage(oof))
            row[f"tau_{prot}"] = _ms(taus)
            row[f"coverage_{prot}"] = _ms(cov)
        out[cand_key(spec, reg)] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes for the CV fits")
    ap.add_argument("--chosen-only", action="store_true",
                    help="only the study's predictor (STUDY_FEATURES, STUDY_REGRESSOR)")
    ap.add_argument("--out", type=Path, default=Path("mgedb/data/predictor_cv.json"))
    ap.add_argument("--part", choices=("all", "grouped", "rows", "tau", "merge"), default="all",
                    help="compute one part into OUT.<part>.json (to run the parts in parallel), "
                    "or merge the parts into OUT")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    cands = ((STUDY_FEATURES, STUDY_REGRESSOR),) if args.chosen_only else CANDIDATES
    t0 = time.perf_counter()
    parts: dict[str, dict[str, dict[str, object]]] = {}
    if args.part != "merge":
        from joblib import parallel_config

        d = load_shipped()
        R, L = d.records[d.records["model"].isin(ARCHS)], d.layers
        ref = reference_accuracies(d.records)
        todo = ("grouped", "rows", "tau") if args.part == "all" else (args.part,)
        for part in todo:
            with parallel_config(n_jobs=args.jobs):
                if part == "tau":
                    parts[part] = _tau_part(R, L, ref, seeds, cands)
                else:
                    parts[part] = _r2_part(R, L, ref, seeds, cands, part == "grouped")
            print(f"# {part} done ({time.perf_counter() - t0:.0f} s)", flush=True)
        if args.part != "all":
            path = args.out.with_name(f"{args.out.name}.{args.part}.json")
            path.write_text(json.dumps(parts[args.part], indent=1, sort_keys=True) + "\n")
            print(f"written to {path}")
            return
    else:
        for part in ("grouped", "rows", "tau"):
            parts[part] = json.loads(args.out.with_name(f"{args.out.name}.{part}.json")
                                     .read_text())
    out: dict[str, dict[str, object]] = {}
    for p in parts.values():
        for key, row in p.items():
            out.setdefault(key, {}).update(row)
    doc = {"data_digest": shipped_digest(), "versions": versions(), "cv_seeds": seeds,
           "level": LEVEL, "architectures": list(ARCHS),
           "chosen": {"features": STUDY_FEATURES, "regressor": STUDY_REGRESSOR},
           "candidates": out,
           "how": "R²: grouped 5-fold per architecture, mean over architectures; τ: Kendall of "
                  "the 7-pruner ranking per setting, lgo = unseen (dataset, sparsity), lopo = "
                  "unseen pruner; coverage: 90 % split-conformal (per-sparsity scale "
                  "cross-fitted on the other folds), each fold covered by a quantile and a scale "
                  "from the other folds; mean ± std over CV seeds"}
    args.out.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    rows = []
    for key, r in out.items():
        def f(k: str, r: dict[str, object] = r) -> str:
            if k not in r:
                return "—"
            m, s = r[k]  # type: ignore[misc]
            return f"{m:.3f} ± {s:.3f}"
        reg, spec = key.split(":", 1)
        rows.append({"feature set": spec, "regressor": reg, "R² rows (leaky)": f("r2_kfold_rows"),
                     "R² grouped": f("r2_kfold_grouped"), "τ unseen setting": f("tau_lgo"),
                     "τ unseen pruner": f("tau_lopo"), "90 % coverage (grouped)":
                     f("coverage_kfold"), "coverage lgo": f("coverage_lgo"),
                     "coverage lopo": f("coverage_lopo")})
    t = pd.DataFrame(rows)
    print("| " + " | ".join(t.columns) + " |")
    print("|" + "---|" * len(t.columns))
    for r in t.itertuples(index=False):
        print("| " + " | ".join(map(str, r)) + " |")
    print(f"\nwritten to {args.out} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
