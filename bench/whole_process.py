"""Whole-process cost of ``mgedb metrics CKPT`` (issue #15): import, load + encode, metrics.

    python bench/whole_process.py [--model resnet20] [--sparsity 0.9] [--encoding mge-reference]

Prunes a fresh model (ER, the reference's variant, seed 0) into a temporary checkpoint, then times
``mgedb metrics CKPT -m MODEL --encoding ENC -f json`` as a child process (wall, user + sys CPU,
peak RSS) and, in another child, the same steps phase by phase: ``import mgedb.cli`` (torch,
numba, igraph, …), loading the numba kernels (:func:`mgedb.metrics.kernels.warm_up`), loading and
encoding the checkpoint, and the metric suite — one after the other, where the command itself
encodes in a forked child while it loads the kernels (``mgedb/cli/_background.py``), so the
command's wall time is less than the phases' sum. Not a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def phases(ckpt: str, model: str, encoding: str) -> None:
    """Child: time every phase of the command's work in this process; print JSON."""
    out: dict[str, float] = {}
    cpu: dict[str, float] = {}
    t, c = time.perf_counter(), time.process_time()
    import mgedb.cli  # noqa: F401  (what the command imports)
    from mgedb.model_source import resolve as resolve_model
    from mgedb.study.measure import Source

    out["import"], cpu["import"] = time.perf_counter() - t, time.process_time() - c
    t, c = time.perf_counter(), time.process_time()
    from mgedb.metrics.kernels import warm_up

    warm_up()
    out["kernels"], cpu["kernels"] = time.perf_counter() - t, time.process_time() - c
    t, c = time.perf_counter(), time.process_time()
    src = Source.parse(Path(ckpt), model=resolve_model(model, (), Path(ckpt)), classes=10,
                       encoding=encoding, allow_pickle=False, input_shape=(3, 32, 32))
    value = src.load()
    out["load+encode"], cpu["load+encode"] = time.perf_counter() - t, time.process_time() - c
    t, c = time.perf_counter(), time.process_time()
    from mgedb.metrics import compute_mge_metrics

    compute_mge_metrics(value, seed=0)  # type: ignore[arg-type]
    out["metrics"], cpu["metrics"] = time.perf_counter() - t, time.process_time() - c
    out["peak_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps({"wall": out, "cpu": cpu}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--sparsity", type=float, default=0.9)
    ap.add_argument("--encoding", default="mge-reference")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--phases", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phases:
        phases(args.phases, args.model, args.encoding)
        return
    mgedb = str(Path(sys.executable).with_name("mgedb"))
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = str(Path(tmp) / "net.pt")
        subprocess.run([mgedb, "prune", "-m", args.model, "-p", "er", "-s", str(args.sparsity),
                        "-o", ckpt], check=True, capture_output=True)
        cmd = [mgedb, "metrics", ckpt, "-m", args.model, "--encoding", args.encoding, "-f",
               "json"]
        print("$ mgedb metrics CKPT -m", args.model, "--encoding", args.encoding, "-f json")
        for _ in range(args.repeat):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            wall = time.perf_counter() - t
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            print(f"whole process: wall {wall:.2f} s, CPU {cpu:.2f} s, "
                  f"peak RSS {after.ru_maxrss / 2**20:.2f} GiB")
        for _ in range(args.repeat):
            r = subprocess.run([sys.executable, __file__, "--phases", ckpt, "--model", args.model,
                                "--encoding", args.encoding],
                               check=True, capture_output=True, text=True)
            p = json.loads(r.stdout.strip().splitlines()[-1])
            print("phases (serial), wall (CPU) s: " + ", ".join(
                f"{k} {v:.2f} ({p['cpu'][k]:.2f})" for k, v in p["wall"].items() if k in p["cpu"])
                + f"; peak RSS {p['wall']['peak_gib']:.2f} GiB")


if __name__ == "__main__":
    main()
