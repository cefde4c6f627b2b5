"""Encoder benchmark: time and peak memory of building MGEs, printed as a table.

Usage: ``python bench/encode.py [--cases resnet20:0.9,conv6:0.9,conv6:0.6] [--repeat 3]``
and ``python bench/encode.py --torchvision [resnet18,vgg11,…] [--input 32]`` (the 13 torchvision
classification models of the real-models audit, random init, 90 % per-layer L1 pruning with
``torch.nn.utils.prune``; needs torchvision, the test extra). Their perturbation-oracle checks are
tests: ``pytest --runslow tests/test_encode_torchvision.py``.

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
from mgedb.errors import MgedbError
from mgedb.graph import Graph
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


#: The audit's torchvision classification models (constructor arguments; AlexNet needs 64×64).
TORCHVISION = {
    "resnet18": {}, "resnet50": {}, "vgg11": {}, "mobilenet_v2": {}, "regnet_x_400mf": {},
    "alexnet": {}, "densenet121": {}, "squeezenet1_0": {}, "shufflenet_v2_x1_0": {},
    "googlenet": {"aux_logits": False, "init_weights": True}, "mobilenet_v3_small": {},
    "efficientnet_b0": {}, "convnext_tiny": {},
}


def run_torchvision(name: str, size: int) -> dict[str, object]:
    """Encode one pruned torchvision model (``mge``): time, traced peak, or the refusal."""
    import warnings

    import torchvision
    from torch.nn.utils import prune

    from mgedb.encode import encode_model
    from mgedb.model_source import strip_prune_hooks

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = getattr(torchvision.models, name)(weights=None, num_classes=10,
                                                **TORCHVISION[name]).eval()
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d | torch.nn.Linear):
            prune.l1_unstructured(m, "weight", amount=0.9)
    strip_prune_hooks(net)
    size = max(size, 64) if name == "alexnet" else size
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        g = encode_model(net, encoding="mge", input_shape=(3, size, size))
    except MgedbError as e:
        tracemalloc.stop()
        return {"model": name, "size": size, "refused": str(e)}
    dt = time.perf_counter() - t0
    assert isinstance(g, Graph)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"model": name, "size": size, "nodes": g.n_nodes, "edges": g.n_edges, "s": dt,
            "bytes_per_edge": peak / max(g.n_edges, 1)}


def torchvision_table(names: list[str], size: int) -> None:
    table = Table(title="torchvision models, 90 % L1 per layer, mge (one core)")
    for col in ("model", "input", "nodes", "edges", "s", "peak B/edge", "refusal"):
        table.add_column(col, justify="left" if col in ("model", "refusal") else "right")
    for name in names:
        r = run_torchvision(name, size)
        if "refused" in r:
            table.add_row(name, f"{r['size']}²", "", "", "", "", str(r["refused"]).split(";")[0])
        else:
            table.add_row(name, f"{r['size']}²", f"{r['nodes']:,}", f"{r['edges']:,}",
                          f"{r['s']:.1f}", f"{r['bytes_per_edge']:.1f}", "")
    Console(width=160).print(table)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cases", default="resnet20:0.9,resnet20:0.98,conv6:0.9,wrn28_2:0.9")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--torchvision", nargs="?", const=",".join(TORCHVISION), default=None,
                    help="Comma-separated torchvision models (default: all 13 of the audit).")
    ap.add_argument("--input", type=int, default=32, help="--torchvision: input height/width.")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.torchvision:
        torchvision_table(args.torchvision.split(","), args.input)
        return
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
