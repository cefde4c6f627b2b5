"""Commands: ``import-published``, ``predict train|score|compare`` and ``report``."""

from __future__ import annotations

import math
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, SupportsFloat, SupportsIndex, cast

import typer

from mgedb.cli._app import app
from mgedb.cli._options import output_dir, output_file
from mgedb.cli._render import Format, err_console, progress, render
from mgedb.errors import DataError
from mgedb.predict import STUDY_FEATURES

if TYPE_CHECKING:
    import pandas as pd

    from mgedb.predict.published import PublishedData

predict_app = typer.Typer(help="Predict the accuracy drop of sparse networks from their topology.",
                          no_args_is_help=True)
app.add_typer(predict_app, name="predict")


def _num(v: object) -> float:
    """A numeric table cell as a float (pandas-stubs types a ``.at[]`` cell as any scalar)."""
    if isinstance(v, SupportsFloat | SupportsIndex | str):
        return float(v)
    raise TypeError(f"expected a number, got {v!r}")


class Regressor(str, Enum):
    hgb = "hgb"
    rf = "rf"
    et = "et"
    ridge = "ridge"
    xgb = "xgb"


class Protocol(str, Enum):
    kfold = "kfold"
    lodo = "lodo"
    loao = "loao"
    per_sparsity = "per-sparsity"
    lgo = "lgo"
    lopo = "lopo"


class Metric(str, Enum):
    r2 = "r2"
    mae = "mae"
    spearman = "spearman"


DataOpt = typer.Option(None, "--data", help="Read a paper-data folder (published layout) "
                       "instead of the copy shipped with mgedb.")
RefOpt = typer.Option(None, "--reference-accuracy", help="CSV model,dataset,accuracy or JSON "
                      "{model: {dataset: accuracy}} overriding the reference (stand-in dense) "
                      "accuracies; default: best published sparse accuracy per model+dataset.")
SeedOpt = typer.Option(0, "--seed", help="Seed of the CV splits and the regressors.")
ModelOpt = typer.Option(Regressor.hgb, "--model", help="Regressor.")
PaiOpt = typer.Option(True, "--pai-only/--all-pruners",
                      help="Use pruning-at-initialisation networks only (default) or all pruners.")
StoreOpt = typer.Option(None, "--store", help="Graph store backend (as for the store commands).")
DbOpt = typer.Option(None, "--db", help="Graph store database path.")
FromStoreOpt = typer.Option(False, "--with-store", help="Also use the networks measured by mgedb "
                            "(source 'mgedb') that the graph store holds.")
FmtOpt = typer.Option(Format.table, "--format", help="Output format.")
JobsOpt = typer.Option(0, "--jobs", "-j", min=0, help="Worker processes for the CV fits "
                       "(0: one per core). The results do not depend on it.")


def _jobs(n: int) -> Any:
    """The joblib context the CV fits run under (``n`` workers; 0 = every core)."""
    from joblib import parallel_config

    return parallel_config(n_jobs=n if n > 0 else -1)


def _load(data: Path | None) -> tuple[PublishedData, str]:
    from mgedb.predict.published import load_published, load_shipped

    if data is not None:
        return load_published(data), f"the paper-data folder {data}"
    return load_shipped(), "the published table shipped with mgedb (mgedb/data)"


def _table(data: Path | None, with_store: bool, store: str | None, db: Path | None
           ) -> tuple[pd.DataFrame, pd.DataFrame, str, list[str]]:
    import pandas as pd

    from mgedb.predict.records import (
        LAYER_COLUMNS,
        RECORD_COLUMNS,
        validate_layers,
        validate_records,
    )

    d, label = _load(data)
    records, layers = d.records, d.layers
    notes = d.report.summary()
    if with_store:
        from mgedb.store import open_store

        with open_store(store, db) as st:
            own = st.read_records(source="mgedb")
            own_layers = st.read_layers(source="mgedb") if hasattr(st, "read_layers") else None
        own = validate_records(own.reindex(columns=list(RECORD_COLUMNS)), "store records")
        if len(own):
            records = validate_records(pd.concat([records, own], ignore_index=True), "records")
        if own_layers is not None and len(own_layers):
            own_layers = validate_layers(own_layers.reindex(columns=list(LAYER_COLUMNS)),
                                         "store layer rows")
            layers = pd.concat([layers, own_layers], ignore_index=True)
        notes.append(f"{len(own):>6} networks measured by mgedb added from the graph store")
        label += " plus the mgedb networks of the graph store"
    return records, layers, label, notes


def _reference(records: pd.DataFrame, path: Path | None, pai_only: bool = True
               ) -> tuple[pd.DataFrame, str]:
    from mgedb.predict.records import PAI_PRUNERS
    from mgedb.predict.targets import load_reference_file, reference_accuracies

    override = load_reference_file(path) if path is not None else None
    label = f"overridden by {path}" if path is not None else "default"
    if not pai_only and path is None:
        label += " (--all-pruners: every run is scored, so the best run of each model and " \
                 "dataset is in its own target)"
    return reference_accuracies(records, override, scored=PAI_PRUNERS if pai_only else None), \
        label


def _note(msg: str) -> None:
    err_console.print(msg, highlight=False)


@app.command("import-published")
def import_published(
    directory: Path = typer.Argument(..., help="A paper-data folder (published layout)."),
    store: str | None = StoreOpt,
    db: Path | None = DbOpt,
    fmt: Format = FmtOpt,
) -> None:
    """Load the published metric tables into the graph store (networks + layer rows)."""
    from mgedb.predict.published import load_published
    from mgedb.store import open_store

    d = load_published(directory)
    with open_store(store, db) as st:
        n = st.write_records(d.records, d.layers)
    for line in d.report.summary():
        _note(line)
    for line in d.report.notes:
        _note(f"  {line}")
    render([{"networks_written": n, "networks": len(d.records), "layer_rows": len(d.layers)}],
           fmt, single=True)


@predict_app.command("train")
def train(
    out: Path = typer.Option(..., "--out", callback=output_file,
                             help="Where to write the predictor (joblib) and its "
                             "manifest (<out>.json)."),
    features: str = typer.Option("mge", "--features", help="Feature set or union (a+b)."),
    protocol: Protocol = typer.Option(Protocol.loao, "--protocol",
                                      help="CV protocol whose scores go in the manifest."),
    model: Regressor = ModelOpt,
    pai_only: bool = PaiOpt,
    data: Path | None = DataOpt,
    reference_accuracy: Path | None = RefOpt,
    seed: int = SeedOpt,
    tune: bool = typer.Option(False, "--tune", help="Tune hyper-parameters by inner 3-fold CV "
                              "(nested CV)."),
    with_store: bool = FromStoreOpt,
    store: str | None = StoreOpt,
    db: Path | None = DbOpt,
    fmt: Format = FmtOpt,
    jobs: int = JobsOpt,
) -> None:
    """Cross-validate and fit a drop predictor, then save it."""
    from mgedb.predict.predictor import train_predictor
    from mgedb.predict.targets import DEFAULT_REFERENCE_NOTE

    records, layers, label, _ = _table(data, with_store, store, db)
    ref, ref_label = _reference(records, reference_accuracy, pai_only)
    with _jobs(jobs):
        p = train_predictor(records, layers, features, regressor=model.value,
                            protocol=protocol.value, seed=seed, pai_only=pai_only,
                            reference=ref, tune=tune)
    p.manifest["data"] = label
    p.manifest["reference_label"] = ref_label
    p.save(out)
    _note(f"Target: {DEFAULT_REFERENCE_NOTE} (reference: {ref_label})")
    for n in p.manifest["notes"]:
        _note(f"  {n}")
    render(p.manifest["cv_summary"], fmt,
           title=f"{p.feature_set} · {model.value} · {protocol.value} CV")
    _note(f"predictor written to {out} (+ {out.name}.json), {p.manifest['n_train']} networks")


@predict_app.command("compare")
def compare(
    protocol: Protocol = typer.Option(Protocol.kfold, "--protocol", help="CV protocol."),
    features: str | None = typer.Option(None, "--features", help="Comma-separated feature sets "
                                        "(default: every single set and the default unions)."),
    metric: Metric = typer.Option(Metric.r2, "--metric", help="Score to tabulate."),
    model: Regressor = ModelOpt,
    pai_only: bool = PaiOpt,
    data: Path | None = DataOpt,
    reference_accuracy: Path | None = RefOpt,
    seed: int = SeedOpt,
    cv_seeds: int = typer.Option(3, "--cv-seeds", min=1, help="Repeat the CV under this many "
                                 "seeds (seed, seed+1, …); cells are mean ± std over seeds."),
    group_seeds: bool = typer.Option(True, "--group-seeds/--no-group-seeds",
                                     help="k-fold folds keep a network's seeds together "
                                     "(default); --no-group-seeds gives the old row-shuffled, "
                                     "leaky folds."),
    with_store: bool = FromStoreOpt,
    store: str | None = StoreOpt,
    db: Path | None = DbOpt,
    fmt: Format = FmtOpt,
    jobs: int = JobsOpt,
) -> None:
    """Table of feature set × architecture scores under one protocol (mean ± std over CV seeds;
    with --cv-seeds 1, over folds)."""
    from mgedb.predict.compare import compare_feature_sets, default_specs
    from mgedb.predict.targets import DEFAULT_REFERENCE_NOTE

    records, layers, _, _ = _table(data, with_store, store, db)
    ref, ref_label = _reference(records, reference_accuracy, pai_only)
    specs = ([s.strip() for s in features.split(",") if s.strip()] if features
             else default_specs(protocol.value))
    with progress() as bar, _jobs(jobs):
        task = bar.add_task("cross-validating", total=len(specs))

        def step(spec: str) -> None:
            bar.update(task, description=spec, advance=0 if bar.tasks[task].completed == 0
                       and spec == specs[0] else 1)

        comp = compare_feature_sets(records, layers, specs, protocol=protocol.value,
                                    regressor=model.value, seed=seed, pai_only=pai_only,
                                    reference=ref, on_step=step,
                                    seeds=[seed + i for i in range(cv_seeds)],
                                    group_seeds=group_seeds)
    table = comp.table(metric.value)
    std = comp.std_table(metric.value)
    rows: list[dict[str, Any]] = []
    for spec in table.index:
        row: dict[str, Any] = {"feature_set": spec}
        for c in table.columns:
            v = _num(table.at[spec, c])
            s = _num(std.at[spec, c]) if c in std.columns else math.nan
            if fmt is Format.table:
                row[c] = "—" if math.isnan(v) else (
                    f"{v:.3f}" + ("" if math.isnan(s) else f" ± {s:.3f}"))
            else:
                row[c] = None if math.isnan(v) else float(v)
                if c != "mean":
                    row[f"{c}_std"] = None if math.isnan(s) else float(s)
        rows.append(row)
    spread = f"mean ± std over {cv_seeds} CV seeds" if cv_seeds > 1 else "mean ± std over folds"
    grouping = ("" if protocol.value not in ("kfold", "per-sparsity") else
                " · seeds grouped" if group_seeds else " · rows shuffled (leaky)")
    render(rows, fmt, title=f"{metric.value} · {protocol.value}{grouping} · {model.value} "
           f"({spread})")
    _note(f"Target: {DEFAULT_REFERENCE_NOTE} (reference: {ref_label})")
    for n in comp.notes:
        _note(n)
    bs, bsv = comp.best(unions=False)
    bu, buv = comp.best(unions=True)
    if bs:
        _note(f"best single set: {bs} (mean {bsv:.3f})")
    if bu:
        _note(f"best union: {bu} (mean {buv:.3f}; selected on the same folds)")
    a, b, clear = comp.clearly_best(metric=metric.value)
    if b:
        _note(f"{a} vs runner-up {b}: " + ("the gap exceeds the spread" if clear else
                                           "within the spread (no clear winner)"))


@predict_app.command("score")
def score(
    target: str = typer.Argument(..., help="A network key in the graph store, or a checkpoint "
                                 "file (then --arch is needed)."),
    predictor: Path | None = typer.Option(None, "--predictor", help="A predictor written by "
                                          "`mgedb predict train` (default: the built-in one, "
                                          "trained on the shipped table and cached)."),
    features: str = typer.Option(STUDY_FEATURES, "--features",
                                 help="Feature set of the built-in predictor (default: the "
                                 "study's, chosen by grouped CV)."),
    arch: str | None = typer.Option(None, "--arch", help="Zoo model of a checkpoint."),
    classes: int = typer.Option(10, "--classes", help="Classes of a checkpoint's model."),
    dataset: str | None = typer.Option(None, "--dataset", help="Dataset of a checkpoint "
                                       "(published name, e.g. CIFAR-10): gives a predicted "
                                       "accuracy relative to that dataset's reference."),
    store: str | None = StoreOpt,
    db: Path | None = DbOpt,
    fmt: Format = FmtOpt,
) -> None:
    """Predict the accuracy drop of one network (store key) or checkpoint."""
    from mgedb.predict.predictor import Predictor, default_predictor

    p = Predictor.load(predictor) if predictor is not None else default_predictor(features)
    path = Path(target)
    layers = None
    if path.is_file():
        if arch is None:
            raise DataError(f"{target}: scoring a checkpoint needs --arch (its zoo model)")
        from mgedb.predict.records import MGE_METRICS
        from mgedb.study.measure import checkpoint_record

        used = {c.removeprefix("centred:") for cols in p.columns.values() for c in cols}
        rec, layers = checkpoint_record(path, arch, classes, dataset,
                                        [m for m in MGE_METRICS if m in used])
        if p.weight_dependent:
            _note(f"note: predictor {p.feature_set!r} uses weight-dependent metrics learnt on "
                  "trained weights; an untrained checkpoint is out of its domain (use "
                  "--features mge-structural)")
    else:
        from mgedb.store import open_store

        with open_store(store, db) as st:
            recs = st.read_records()
            rec = recs[recs["key"] == target]
            if not rec.empty and hasattr(st, "read_layers"):
                lay = st.read_layers()
                layers = lay[lay["key"] == target]
        if rec.empty:
            raise DataError(f"{target}: neither a checkpoint file nor a network key in the graph "
                            "store; list keys with the store commands or pass a checkpoint path")
    out = p.predict(rec, layers)
    rows = cast("list[dict[str, Any]]", out.to_dict("records"))  # column labels are str
    for r in rows:
        if r.get("in_training"):
            _note(f"note: {r['key']} is in the predictor's training table (as "
                  f"{r['training_match']}); its prediction is not an out-of-sample estimate")
        if not r.get("in_domain", True):
            _note(f"warning: {r['key']} is outside the predictor's domain: {r['domain_notes']}")
    for r in rows:
        r["feature_set"] = p.feature_set
    render(rows, fmt, single=True)


@app.command("report")
def report(
    out: Path | None = typer.Option(None, "--out", callback=output_dir,
                                    help="Output folder (report.md + PNG plots; "
                                    "with --paper, paper.md)."),
    paper: bool = typer.Option(False, "--paper", help="Test the paper's three claims under "
                               "grouped CV and print claim | paper says | our number ± spread | "
                               "verdict."),
    cv_seeds: int = typer.Option(3, "--cv-seeds", min=2, help="CV seeds for --paper (≥ 2: the "
                                 "spread is the std over seeds)."),
    data: Path | None = DataOpt,
    reference_accuracy: Path | None = RefOpt,
    model: Regressor = ModelOpt,
    seed: int = SeedOpt,
    with_store: bool = FromStoreOpt,
    store: str | None = StoreOpt,
    db: Path | None = DbOpt,
    fmt: Format = FmtOpt,
    jobs: int = JobsOpt,
) -> None:
    """Write a Markdown report (feature sets, protocols, importance, PaI ranking), or with
    --paper test the paper's claims under grouped CV."""
    records, layers, label, notes = _table(data, with_store, store, db)
    ref, ref_label = _reference(records, reference_accuracy)
    if paper:
        with _jobs(jobs):
            _paper(records, layers, ref, label, ref_label, model.value,
                   [seed + i for i in range(cv_seeds)], out, fmt)
        return
    if out is None:
        raise DataError("mgedb report needs --out DIR (where report.md goes), or --paper")
    from mgedb.predict.report import ReportInputs, build_report

    inputs = ReportInputs(records, layers, label, notes, ref, ref_label, model.value, seed)
    with progress() as bar, _jobs(jobs):
        task = bar.add_task("report", total=None)
        path = build_report(out, inputs,
                            on_step=lambda s: bar.update(task, description=s))
    typer.echo(str(path))


def _paper(records: pd.DataFrame, layers: pd.DataFrame, ref: pd.DataFrame, label: str,
           ref_label: str, regressor: str, seeds: list[int], out: Path | None,
           fmt: Format) -> None:
    import time

    from mgedb.predict.paper import paper_claims, paper_markdown
    from mgedb.predict.targets import DEFAULT_REFERENCE_NOTE

    t0 = time.perf_counter()
    with progress() as bar:
        task = bar.add_task("paper claims", total=None)
        claims = paper_claims(records, layers, seeds=seeds, regressor=regressor, reference=ref,
                              on_step=lambda s: bar.update(task, description=s))
    secs = time.perf_counter() - t0
    rows = cast("list[dict[str, Any]]", claims.table().to_dict("records"))
    render(rows, fmt, title=f"The paper's claims under grouped CV ({regressor}, CV seeds "
           f"{', '.join(map(str, seeds))})")
    _note(f"Data: {label}. Target: {DEFAULT_REFERENCE_NOTE} (reference: {ref_label})")
    for n in claims.notes:
        _note(n)
    _note(f"computed in {secs:.0f} s")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        path = out / "paper.md"
        path.write_text(paper_markdown(claims, label, secs))
        _note(f"written to {path}")
