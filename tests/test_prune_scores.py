"""SNIP, GraSP, SynFlow and ProsPr scores against direct computations on tiny networks."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mgedb.prune import grasp, prospr, prune, snip, synflow
from mgedb.prune.base import keep_count, masks_from_scores


def linear_net(sizes: tuple[int, ...], seed: int = 0) -> nn.Sequential:
    g = torch.Generator().manual_seed(seed)
    layers = [nn.Linear(a, b, bias=False) for a, b in itertools.pairwise(sizes)]
    with torch.no_grad():
        for lin in layers:
            lin.weight.copy_(torch.randn(lin.weight.shape, generator=g, dtype=torch.float64))
    return nn.Sequential(*layers).double()


def data(n: int, features: int, classes: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, features, generator=g, dtype=torch.float64),
            torch.randint(0, classes, (n,), generator=g))


def test_snip_score_is_w_times_hand_gradient() -> None:
    net = linear_net((5, 3))
    x, y = data(7, 5, 3)
    w = net[0].weight.detach()
    # cross-entropy of softmax(W x): ∂L/∂W = (softmax − onehot)ᵀ x / n
    p = torch.softmax(x @ w.T, dim=1)
    grad = (p - F.one_hot(y, 3).double()).T @ x / x.shape[0]
    s = snip.scores(net, (x, y))
    assert torch.allclose(s["0"], (w * grad).abs(), atol=1e-12)
    masks = prune(net, "snip", 0.6, batches=[(x, y)])
    k = keep_count(15, 0.6)
    threshold = torch.sort(s["0"].flatten(), descending=True).values[k - 1]
    assert int(masks["0"].sum()) == k and bool((s["0"][masks["0"]] >= threshold).all())


def test_synflow_score_two_layer_linear_closed_form() -> None:
    net = linear_net((4, 3, 2))
    w1, w2 = net[0].weight.detach().abs(), net[1].weight.detach().abs()
    # R = 1ᵀ|W2||W1|1: ∂R/∂W1[i,j] = Σ_k |W2[k,i]|, ∂R/∂W2[k,i] = Σ_j |W1[i,j]|
    s = synflow.scores(net, input_shape=(4,))
    assert torch.allclose(s["0"], w1 * w2.sum(0)[:, None], rtol=1e-12)
    assert torch.allclose(s["1"], w2 * w1.sum(1)[None, :], rtol=1e-12)
    # masking a weight removes its flow: with W1[0, :] pruned, neuron 0 carries nothing
    mask = {"0": torch.ones(3, 4, dtype=torch.bool), "1": torch.ones(2, 3, dtype=torch.bool)}
    mask["0"][0] = False
    s2 = synflow.scores(net, mask, input_shape=(4,))
    assert torch.equal(s2["1"][:, 0], torch.zeros(2, dtype=torch.float64))


def test_synflow_iterative_single_round_is_one_shot_topk() -> None:
    net = linear_net((6, 5, 3))
    s = synflow.scores(net, input_shape=(6,))
    one_shot = masks_from_scores(s, keep_count(45, 0.7))
    masks = prune(net, "synflow", 0.7, synflow_iterations=1, input_shape=(6,))
    assert all(torch.equal(one_shot[n], masks[n]) for n in masks)
    many = prune(net, "synflow", 0.7, synflow_iterations=30, input_shape=(6,))
    assert sum(int(m.sum()) for m in many.values()) == keep_count(45, 0.7)


def test_synflow_does_not_resurrect_pruned_weights_on_ties() -> None:
    # a dead input neuron gives zero scores to a whole column; rounds must keep the count exact
    net = linear_net((4, 4, 2))
    with torch.no_grad():
        net[0].weight[:, 0] = 0.0
    masks = prune(net, "synflow", 0.5, synflow_iterations=10, input_shape=(4,))
    assert sum(int(m.sum()) for m in masks.values()) == keep_count(24, 0.5)


def test_grasp_score_against_full_hessian() -> None:
    torch.manual_seed(0)
    net = linear_net((4, 3, 3), seed=2)
    x, y = data(8, 4, 3, seed=3)
    temperature = 200.0
    shapes = [p.shape for p in net.parameters()]
    sizes = [p.numel() for p in net.parameters()]
    theta = torch.cat([p.detach().flatten() for p in net.parameters()])

    def loss(flat: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
        w1, w2 = (t.reshape(s) for t, s in zip(flat.split(sizes), shapes, strict=True))
        return F.cross_entropy(xs @ w1.T @ w2.T / temperature, ys)

    halves = [(x[:4], y[:4]), (x[4:], y[4:])]
    g = sum(torch.autograd.functional.jacobian(lambda t, h=h: loss(t, *h), theta)
            for h in halves)
    hg = sum(torch.autograd.functional.hessian(lambda t, h=h: loss(t, *h), theta) @ g
             for h in halves)
    expected = (-theta * hg).split(sizes)
    s = grasp.scores(net, x, y, temperature=temperature, reinit=False)
    assert torch.allclose(s["0"].flatten(), expected[0], rtol=1e-9, atol=1e-30)
    assert torch.allclose(s["1"].flatten(), expected[1], rtol=1e-9, atol=1e-30)


def test_grasp_keeps_the_smallest_scores_and_fetches_per_class() -> None:
    net = linear_net((4, 6, 3), seed=4)
    x, y = data(60, 4, 3, seed=5)
    xs, ys = grasp.fetch_per_class([(x[:30], y[:30]), (x[30:], y[30:])], 3, 5)
    assert ys.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    first0 = x[torch.nonzero(y == 0).flatten()[:5]]
    assert torch.equal(xs[:5], first0)
    gen = torch.Generator().manual_seed(9)
    masks = grasp.prune(net, 0.5, generator=gen, batches=[(x, y)], samples_per_class=5,
                        reinit=False)
    s = grasp.scores(net, xs, ys, reinit=False)
    flat = torch.cat([v.flatten() for v in s.values()])
    kept = torch.cat([m.flatten() for m in masks.values()])
    assert int(kept.sum()) == keep_count(42, 0.5)
    assert float(flat[kept].max()) <= float(flat[~kept].min())


def test_grasp_reinit_uses_the_generator_not_the_model_weights() -> None:
    net = linear_net((4, 6, 3), seed=4)
    x, y = data(30, 4, 3, seed=5)
    a = prune(net, "grasp", 0.5, seed=1, batches=[(x, y)])
    net2 = linear_net((4, 6, 3), seed=7)  # different weights, same shapes
    b = prune(net2, "grasp", 0.5, seed=1, batches=[(x, y)])
    assert all(torch.equal(a[n], b[n]) for n in a)


def test_prospr_without_inner_steps_equals_snip() -> None:
    net = linear_net((5, 4, 3), seed=6)
    x, y = data(9, 5, 3, seed=7)
    s0 = prospr.scores(net, [(x, y)])
    s1 = snip.scores(net, (x, y))
    assert all(torch.allclose(s0[n], s1[n], rtol=1e-12) for n in s0)


def test_prospr_meta_gradient_against_finite_differences() -> None:
    net = linear_net((3, 4, 2), seed=8)
    batches = [data(6, 3, 2, seed=s) for s in (10, 11, 12)]  # two inner steps, one meta batch
    lr, momentum = 0.5, 0.9
    w0 = [p.detach().clone() for p in net.parameters()]

    def meta_loss(m1: torch.Tensor, m2: torch.Tensor) -> torch.Tensor:
        params = [w0[0] * m1, w0[1] * m2]
        bufs: list[torch.Tensor] = []
        for x, y in batches[:-1]:
            p = [t.detach().requires_grad_(True) for t in params]
            loss = F.cross_entropy(x @ p[0].T @ p[1].T, y)
            grads = torch.autograd.grad(loss, p)
            bufs = list(grads) if not bufs else [b * momentum + g for b, g in
                                                 zip(bufs, grads, strict=True)]
            params = [t - lr * b for t, b in zip(params, bufs, strict=True)]
        x, y = batches[-1]
        return F.cross_entropy(x @ params[0].T @ params[1].T, y)

    # the inner gradients above are treated as functions of the mask by finite differences
    h = 1e-6
    ones = [torch.ones_like(w) for w in w0]
    fd = []
    for which in range(2):
        g = torch.zeros_like(w0[which])
        for idx in range(g.numel()):
            plus = [o.clone() for o in ones]
            minus = [o.clone() for o in ones]
            plus[which].view(-1)[idx] += h
            minus[which].view(-1)[idx] -= h
            g.view(-1)[idx] = (meta_loss(*plus) - meta_loss(*minus)) / (2 * h)
        fd.append(g.abs())
    s = prospr.scores(net, batches, lr=lr, momentum=momentum)
    assert torch.allclose(s["0"], fd[0], rtol=1e-5, atol=1e-9)
    assert torch.allclose(s["1"], fd[1], rtol=1e-5, atol=1e-9)


def test_prospr_cycles_a_short_loader() -> None:
    net = linear_net((3, 4, 2), seed=8)
    x, y = data(6, 3, 2)
    masks = prune(net, "prospr", 0.5, batches=[(x, y)])
    s = prospr.scores(net, [(x, y)] * 4)
    assert all(torch.equal(masks[n], m) for n, m in masks_from_scores(s, 10).items())


@pytest.mark.parametrize("name", ["snip", "grasp", "synflow", "prospr"])
def test_data_driven_on_resnet20(name: str) -> None:
    from mgedb.models import build_model

    torch.manual_seed(0)
    model = build_model("resnet20")
    g = torch.Generator().manual_seed(0)
    # 16×16 inputs keep it fast (the global average pool adapts to the feature-map size)
    bs = [(torch.randn(10, 3, 16, 16, generator=g), torch.arange(10) % 10) for _ in range(4)]
    masks = prune(model, name, 0.9, seed=0, batches=bs, synflow_iterations=3,
                  input_shape=(3, 16, 16), samples_per_class=1)
    kept = sum(int(m.sum()) for m in masks.values())
    assert kept == keep_count(270896, 0.9)
