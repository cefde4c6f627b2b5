"""Benchmark: the study on the local executor vs on Ray, and the projection for N Ray workers.

    python bench/study.py                    # the 14-network default study (ResNet-20, 7 × 2)
    python bench/study.py --quick            # the 4-network quick preset
    python bench/study.py --cpus 2 --workers 1,2,4,8,16,32

Each executor runs the same study into its own fresh folder and store (temporary, deleted at the
end); the 1-minute load average after each run says how much else the machine was doing. The
table gives the wall time of the whole study (prune → report) and its parts; for Ray, the parts
are worker-seconds summed over tasks (they overlap) and the store ingest is the driver's. The
projection models a run on N one-CPU workers from the Ray run's parts:

    T(N) ≈ start-up + max(ingest, (prune + encode + metrics) / N + mean chain) + score + report

— the driver ingests one network at a time (the embedded store has one writer) while the workers
measure the next ones, so the ingest is the floor once N is large.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from mgedb.study import QUICK, StudyConfig, run_study
from mgedb.study.executors import LocalExecutor, RayExecutor

PARTS = ("prune", "measure: encode", "measure: metrics", "measure: ingest", "score", "report")


def _run(cfg: StudyConfig, executor: Any) -> tuple[float, dict[str, float]]:
    t = time.perf_counter()
    result = run_study(cfg, executor=executor)
    timings = dict(result.timings)
    timings["load"] = os.getloadavg()[0]
    return time.perf_counter() - t, timings


def _ray_startup(cpus: int) -> float:
    import ray

    t = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, logging_level="WARNING",
             log_to_driver=False)
    ray.get(ray.remote(lambda: 0).remote())
    took = time.perf_counter() - t
    ray.shutdown()
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the quick preset (4 networks)")
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray instance")
    ap.add_argument("--workers", default="1,2,4,8,16,32", help="N for the projection")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="mgedb-bench-study-"))
    try:
        opts: dict[str, Any] = dict(QUICK) if args.quick else {}
        runs: dict[str, tuple[float, dict[str, float]]] = {}
        for name, executor in (("local", LocalExecutor()),
                               ("ray", RayExecutor(num_cpus=args.cpus))):
            cfg = StudyConfig(out=root / name, db=root / f"{name}-db", **opts)
            runs[name] = _run(cfg, executor)
        n = len(StudyConfig(**opts).runs)
        startup = _ray_startup(args.cpus)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    base = runs["local"][0]
    print(f"\nstudy: {n} networks (ResNet-20, {'quick preset' if args.quick else 'default'}); "
          f"Ray on {args.cpus} CPUs (start-up {startup:.1f} s)\n")
    head = "| executor | wall (s) | speed-up | " + " | ".join(PARTS) + " | load after |"
    print(head)
    print("|" + "---|" * (4 + len(PARTS)))
    for name, (wall, t) in runs.items():
        parts = " | ".join(f"{t.get(p, 0.0):.1f}" for p in PARTS)
        print(f"| {name} | {wall:.1f} | {base / wall:.2f}× | {parts} | {t['load']:.1f} |")

    _, t = runs["ray"]
    work = t.get("prune", 0.0) + t.get("measure: encode", 0.0) + t.get("measure: metrics", 0.0)
    ingest = t.get("measure: ingest", 0.0)
    chain = work / n
    fixed = startup + t.get("score", 0.0) + t.get("report", 0.0)
    print(f"\nprojection (worker-seconds {work:.0f}, driver ingest {ingest:.0f} s, "
          f"mean chain {chain:.0f} s, fixed {fixed:.0f} s):\n")
    print("| workers N | projected wall (s) | speed-up vs local | bound by |")
    print("|---|---|---|---|")
    for w in (int(x) for x in args.workers.split(",")):
        par = work / w + chain
        total = fixed + max(ingest, par)
        print(f"| {w} | {total:.0f} | {base / total:.2f}× | "
              f"{'driver ingest' if ingest >= par else 'workers'} |")


if __name__ == "__main__":
    main()
