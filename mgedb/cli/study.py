"""Command ``study``: the main job, from a zoo model to a ranked, explained verdict on pruners."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer

from mgedb.cli._app import app
from mgedb.cli._options import (
    DbPath,
    InputShape,
    Model,
    ModelArgs,
    StudyEncoding,
    StudyEngine,
    output_dir,
)
from mgedb.cli._render import Format, err_console, progress, render
from mgedb.errors import MgedbError
from mgedb.vocab import Dataset, ExecutorKind, Pruner

_STAGE_LABEL = {"cluster": "ray", "prune": "prune", "train": "train",
                "measure": "encode+measure+store", "score": "score", "report": "report"}


def _floats(text: str, what: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise MgedbError(f"{what}: {text!r} is not a comma-separated list of numbers "
                         "(e.g. 0.9,0.98)") from None


def _ints(text: str, what: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise MgedbError(f"{what}: {text!r} is not a comma-separated list of integers "
                         "(e.g. 0,1,2)") from None


@app.command("study")
def study_cmd(
    model: Model = "resnet20",
    model_args: ModelArgs = None,
    input_shape: InputShape = "3,32,32",
    pruners: str | None = typer.Option(
        None, "--pruners", "-p",
        help=f"Comma-separated pruners (default: {','.join(Pruner.values())})."),
    sparsities: str | None = typer.Option(
        None, "--sparsities", "-s", help="Comma-separated global sparsities (default: 0.9,0.98)."),
    seeds: str = typer.Option("0", "--seeds", help="Comma-separated seeds."),
    quick: bool = typer.Option(
        False, "--quick",
        help="Quick preset (< 2 min): uniform, erk, snip, synflow at sparsity 0.98 on 512 "
             "synthetic images; explicit --pruners/--sparsities override it."),
    out: Path = typer.Option(Path("mgedb-study"), "--out", "-o", callback=output_dir,
                             help="Report folder (checkpoints, tables, figures, report.md)."),
    db: DbPath = None,
    data_dir: Path | None = typer.Option(
        None, "--data-dir",
        help=f"Dataset directory (torchvision layout) for {'/'.join(Pruner.data_driven())} and "
             "training; default: built-in synthetic images."),
    dataset: Dataset = typer.Option(Dataset.CIFAR10, "--dataset",
                                    help="Dataset: class count and training recipe."),
    encoding: StudyEncoding = typer.Option(
        StudyEncoding.MGE_REFERENCE, "--encoding", "-e",
        help="mge-reference (like for like with the predictor's published training data) or "
             "mge (the corrected graph)."),
    engine: StudyEngine = typer.Option(
        StudyEngine.ARRAY, "--engine",
        help="array, or both: also compute every metric in the database and compare."),
    train_epochs: int = typer.Option(
        0, "--train-epochs", min=0,
        help="Also train dense and pruned networks for N epochs (on --device) and compare the "
             "predicted with the true drop (Kendall τ)."),
    device: str = typer.Option(
        "cpu", "--device", help="Training device: cpu or cuda (with --executor ray every "
                                "training task then asks Ray for one GPU)."),
    synthetic_samples: int | None = typer.Option(
        None, "--synthetic-samples", min=2, help="Synthetic training images (default: 2000)."),
    executor: ExecutorKind = typer.Option(
        ExecutorKind.LOCAL, "--executor",
        help="local: in this process, one network after another; ray: every network a chain of "
             "Ray tasks on a cluster (pip install 'mgedb[ray]'; docs/cluster.md)."),
    address: str | None = typer.Option(
        None, "--address",
        help="With --executor ray: auto (the cluster this machine is in) or ray://HOST:PORT "
             "(Ray Client); default: a Ray instance on this machine for this run."),
) -> None:
    """Prune a model with each pruner, encode and store every network, compute its topometrics,
    predict its accuracy drop and rank the pruners per sparsity; write a report folder.

    Re-running the same command resumes: finished checkpoints, training runs and stored networks
    are reused. Every network stays queryable (`mgedb ls`, `mgedb query`).
    """
    from mgedb.study import ALL_PRUNERS, QUICK, StudyConfig, run_study
    from mgedb.study.executors import make_executor

    opts: dict[str, Any] = dict(QUICK) if quick else {}
    if pruners is not None:
        opts["pruners"] = tuple(p.strip() for p in pruners.split(",") if p.strip())
    if sparsities is not None:
        opts["sparsities"] = _floats(sparsities, "--sparsities")
    if synthetic_samples is not None:
        opts["synthetic_samples"] = synthetic_samples
    opts.setdefault("pruners", ALL_PRUNERS)
    from mgedb.model_source import parse_input_shape, resolve

    label = resolve(model, model_args or ()).label
    cfg = StudyConfig(out=out, model=label, seeds=_ints(seeds, "--seeds"), db=db,
                      input_shape=parse_input_shape(input_shape),
                      data_dir=data_dir, dataset=dataset.value, encoding=encoding.value,
                      engine=engine.value,
                      train_epochs=train_epochs, device=device, **opts)
    runner = make_executor(executor, address)

    bar = progress(transient=False)
    tasks: dict[str, Any] = {}

    def update(stage: str, done: int, total: int, detail: str) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(_STAGE_LABEL.get(stage, stage), total=total)
        bar.update(tasks[stage], completed=done, total=total,
                   description=f"{_STAGE_LABEL.get(stage, stage)} {detail}".rstrip())

    try:
        with bar:
            result = run_study(cfg, executor=runner, progress=update)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]: nothing half-written is marked complete; run "
                          "the same command again to resume")
        raise typer.Exit(130) from None

    from mgedb.study.report import format_top

    for s in result.sparsities:
        rows = []
        for r in result.ranking_at(s).to_dict("records"):
            row = {"rank": r["rank"], "pruner": r["pruner"] + ("" if r["in_domain"] else " ⚠"),
                   "predicted drop %": round(100 * r["predicted_drop"], 2),
                   "90 % interval": (f"{100 * r['drop_lo']:.1f}–{100 * r['drop_hi']:.1f}"
                                     if not math.isnan(r["drop_lo"]) else "—"),
                   "top topometrics": format_top(r["top_metrics"])}
            if not math.isnan(r["true_drop"]):
                row["true drop %"] = round(100 * r["true_drop"], 2)
            rows.append(row)
        tau = result.tau.get(s, math.nan)
        title = f"{cfg.model} · sparsity {s:g}" + (
            f" · Kendall τ (predicted vs true) {tau:.2f}" if not math.isnan(tau) else "")
        render(rows, Format.table, title=title)
    for w in result.predictor.get("warnings") or []:
        err_console.print(f"[yellow]warning[/]: {w}", highlight=False)
    reused = sum(n.reused for n in result.networks)
    times = " · ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())
    err_console.print(f"time per stage: {times}")
    err_console.print(f"{len(result.networks)} networks ({reused} reused) in {result.store}; "
                      f"report: {result.report}")
    if result.mismatches:
        err_console.print("[red]engines disagree[/]:\n  " + "\n  ".join(result.mismatches))
        raise typer.Exit(1)
