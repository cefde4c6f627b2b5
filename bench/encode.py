"""Encoder benchmark: time and peak memory of building MGEs, printed as a table.

Usage: ``python bench/encode.py [--cases resnet20:0.9,conv6:0.9,conv6:0.6] [--repeat 3]``

Masks follow the reference's ER variant (density ∝ sum(shape)/prod(shape), saturated at 1) so edge
counts match the published graphs' scale (ResNet-20 ER-0.9 ≈ 6.4 M reference edges). Peak memory is
the peak of traced allocations (``tracemalloc``; NumPy reports its buffers to it) during the build,
i.e. the encoder's own working memory, excluding the model and torch.
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from mgedb.checkpoint import prunable_layers
from mgedb.encode.mge import build_mge
from mgedb.encode.trace import trace_model
from mgedb.models import build_model


def er_masks(model: torch.nn.Module, sparsity: float, seed: int = 0) -> None:
    """Zero weights in place with ER-style per-layer densities (reference variant)."""
    layers = prunable_layers(model)
    shapes = [tuple(m.weight.shape) for m in layers.values()]
    raw = np.array([sum(s) / np.prod(s) for s in shapes])
    numel = np.array([np.prod(s) for s in shapes])
    target = (1 - sparsity) * numel.sum()
    lo, hi = 0.0, 1e6
    for _ in range(200):
        eps = (lo + hi) / 2
        if (np.minimum(eps * raw, 1) * numel).sum() > target:
            hi = eps
        else:
            lo = eps
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m, p in zip(layers.values(), np.minimum(lo * raw, 1), strict=True):
            m.weight.mul_(torch.rand(m.weight.shape, generator=g) < float(p))


def run(name: str, sparsity: float, reference: bool, repeat: int) -> dict[str, float]:
    model = build_model(name)
    er_masks(model, sparsity)
    t0 = time.perf_counter()
    trace, weights = trace_model(model)
    t_trace = time.perf_counter() - t0
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        g = build_mge(trace, weights, reference=reference)
        times.append(time.perf_counter() - t0)
        m = g.n_edges
        del g
    tracemalloc.start()
    g = build_mge(trace, weights, reference=reference)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"edges": m, "nodes": g.n_nodes, "trace_s": t_trace, "build_s": min(times),
            "peak_MiB": peak / 2**20, "bytes_per_edge": peak / max(m, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cases", default="resnet20:0.9,resnet20:0.98,conv6:0.9,wrn28_2:0.9")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    table = Table(title="MGE construction (one core)")
    for col in ("model", "sparsity", "flavour", "nodes", "edges", "trace s", "build s",
                "peak MiB", "B/edge"):
        table.add_column(col, justify="right")
    for case in args.cases.split(","):
        name, sp = case.split(":")
        for flavour in ("mge-reference", "mge"):
            r = run(name, float(sp), flavour == "mge-reference", args.repeat)
            table.add_row(name, sp, flavour, f"{r['nodes']:,}", f"{r['edges']:,}",
                          f"{r['trace_s']:.2f}", f"{r['build_s']:.3f}", f"{r['peak_MiB']:.0f}",
                          f"{r['bytes_per_edge']:.1f}")
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
