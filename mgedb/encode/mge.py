"""Build the multipartite graph encoding (MGE) of a traced network, vectorised.

Two flavours share one code path:

``mge`` (correct)
    the input partition holds the real input pixels; every conv output position and every linear
    neuron is a node; each nonzero kernel tap joins every (input position, output position) pair the
    convolution reads with it (stride, padding, dilation, groups); pooling has no nodes: an edge
    leaving a pooled unit is replicated from every pixel of its window; a projection shortcut adds
    ``shortcut`` edges from the block input straight into the block output partition; an identity
    skip adds weight-1 ``skip`` edges. Where several paths give the same (source, target) pair (for
    example overlapping pooling windows), one edge is kept whose weight is the **sum** of the |w| of
    the collapsed edges (so node strength equals that of the multigraph) and whose kind is the
    smallest kind code among them.

``mge-reference``
    bit-identical to the published reference: padded input block, the reference's stride-2
    mis-wiring (positional identification after ``remove_padding``), no identity skips, |w| rounded
    to float16. Only the ops the reference handles (square kernels, dilation 1, groups 1, projection
    shortcuts without padding) are accepted; anything else raises :class:`ReferenceUnsupported`.

Both are derived from one rule: a conv with output ``(Ho, Wo)`` reads input element
``c·K² + r·K + q`` with ``r = s·y + a·d − p`` (``0 ≤ r < K``); the correct graph uses the real input
size ``K = H``, the reference uses the size of the grid left after its ``remove_padding``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from mgedb.encode.trace import Op, Trace
from mgedb.errors import MgedbError, ReferenceUnsupported, UnsupportedLayer
from mgedb.graph import EdgeKind, Graph, LayerSpec, NodeKind, Partition
from mgedb.vocab import Encoding

__all__ = ["build_mge"]

I64 = npt.NDArray[np.int64]


# ---------------------------------------------------------------------------------------------
# Contributor structures: which nodes each element of a traced value stands for
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ident:
    """Element ``i`` of the value is node ``base + i``."""

    base: int
    size: int


@dataclass(frozen=True)
class Gathered:
    """Element ``i`` stands for the nodes ``nodes[ptr[i]:ptr[i + 1]]`` (pooling windows, unions)."""

    ptr: I64
    nodes: I64
    overlapping: bool  # some node belongs to several elements

    @property
    def size(self) -> int:
        return len(self.ptr) - 1

    @property
    def counts(self) -> I64:
        return np.diff(self.ptr)


Struct = Ident | Gathered


def _gathered(ptr: I64, nodes: I64) -> Gathered:
    overlapping = len(nodes) != len(np.unique(nodes)) if len(nodes) else False
    return Gathered(ptr, nodes, overlapping)


def _expand(elem: I64, s: Struct) -> tuple[I64, I64]:
    """For each entry of ``elem``: the node ids it stands for and the entry index each came from."""
    if isinstance(s, Ident):
        return elem + s.base, np.arange(len(elem), dtype=np.int64)
    counts = s.counts[elem]
    owner = np.repeat(np.arange(len(elem), dtype=np.int64), counts)
    starts = np.repeat(s.ptr[elem] - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    return s.nodes[starts + np.arange(len(owner), dtype=np.int64)], owner


def _windows(h: int, w: int, ho: int, wo: int, params: dict[str, Any]
             ) -> tuple[npt.NDArray[np.bool_], I64, I64]:
    """Pooling windows as (valid mask (ho, wo, kh, kw), rows (ho, kh), cols (wo, kw))."""
    mode = params["mode"]
    if mode == "table":  # interpolation: the rows and columns each output row / column reads
        rows, vr = params["rows"], params["rvalid"]
        cols, vc = params["cols"], params["cvalid"]
    elif mode == "global":
        rows = np.broadcast_to(np.arange(h), (ho, h)).astype(np.int64)
        cols = np.broadcast_to(np.arange(w), (wo, w)).astype(np.int64)
        vr, vc = np.ones(rows.shape, bool), np.ones(cols.shape, bool)
    elif mode == "adaptive":
        def spans(n_in: int, n_out: int) -> tuple[I64, npt.NDArray[np.bool_]]:
            i = np.arange(n_out)
            start, end = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)
            k = int((end - start).max())
            idx = start[:, None] + np.arange(k)[None, :]
            return idx.astype(np.int64), idx < end[:, None]
        rows, vr = spans(h, ho)
        cols, vc = spans(w, wo)
    else:
        (kh, kw), (sh, sw) = params["kernel"], params["stride"]
        (ph, pw), (dh, dw) = params["padding"], params["dilation"]
        rows = (np.arange(ho)[:, None] * sh - ph + np.arange(kh)[None, :] * dh).astype(np.int64)
        cols = (np.arange(wo)[:, None] * sw - pw + np.arange(kw)[None, :] * dw).astype(np.int64)
        vr, vc = (rows >= 0) & (rows < h), (cols >= 0) & (cols < w)
    valid = vr[:, None, :, None] & vc[None, :, None, :]
    return valid, rows, cols


def _pool(s: Struct, in_shape: tuple[int, ...], out_shape: tuple[int, ...],
          params: dict[str, Any]) -> Gathered:
    c, h, w = in_shape
    if params["mode"] == "global":  # (C, 1, 1) with keepdim, (C,) without: one unit per channel
        ho = wo = 1
    else:
        _, ho, wo = out_shape
    valid, rows, cols = _windows(h, w, ho, wo, params)
    pos = rows[:, None, :, None] * w + cols[None, :, None, :]  # (ho, wo, kh, kw)
    per_pos = valid.reshape(ho * wo, -1).sum(1)
    flat = pos[valid]  # element offsets within one channel, grouped by output position
    elem = (np.arange(c, dtype=np.int64)[:, None] * (h * w) + flat[None, :]).ravel()
    counts = np.tile(per_pos, c)
    ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    if isinstance(s, Ident):
        return _gathered(ptr, elem + s.base)
    nodes, owner = _expand(elem, s)
    owner_elem = np.repeat(np.arange(len(counts), dtype=np.int64), counts)[owner]
    new_ptr = np.concatenate([[0], np.cumsum(np.bincount(owner_elem, minlength=len(counts)))])
    return _gathered(new_ptr.astype(np.int64), nodes)


def _union(a: Struct, b: Struct) -> Gathered:
    n = a.size
    elem = np.arange(n, dtype=np.int64)
    na, oa = _expand(elem, a)
    nb, ob = _expand(elem, b)
    owner = np.concatenate([oa, ob])
    order = np.argsort(owner, kind="stable")
    ptr = np.concatenate([[0], np.cumsum(np.bincount(owner, minlength=n))]).astype(np.int64)
    return _gathered(ptr, np.concatenate([na, nb])[order])


def _concat(structs: list[Struct]) -> Struct:
    """The structure of the concatenation of several values' elements."""
    if len(structs) == 1:
        return structs[0]
    ptrs: list[I64] = []
    nodes: list[I64] = []
    shift = 0
    for x in structs:
        g = x if isinstance(x, Gathered) else Gathered(
            np.arange(x.size + 1, dtype=np.int64), x.base + np.arange(x.size, dtype=np.int64),
            False)
        ptrs.append(g.ptr[:-1] + shift)
        nodes.append(g.nodes)
        shift += len(g.nodes)
    end = np.array([shift], dtype=np.int64)
    return _gathered(np.concatenate([*ptrs, end]).astype(np.int64), np.concatenate(nodes))


def _gather(s: Struct, ptr: I64, idx: I64) -> Gathered:
    """Output element ``i`` stands for the nodes of elements ``idx[ptr[i]:ptr[i+1]]`` of ``s``."""
    n = len(ptr) - 1
    if isinstance(s, Ident):
        return _gathered(ptr, idx + s.base)
    nodes, owner = _expand(idx, s)
    owner_elem = np.repeat(np.arange(n, dtype=np.int64), np.diff(ptr))[owner]
    new_ptr = np.concatenate([[0], np.cumsum(np.bincount(owner_elem, minlength=n))])
    return _gathered(new_ptr.astype(np.int64), nodes)


# ---------------------------------------------------------------------------------------------
# Planning: which ops create partitions, which merge, where skip edges go
# ---------------------------------------------------------------------------------------------
@dataclass
class _PartPlan:
    name: str
    kind: NodeKind
    shape: tuple[int, int, int]
    level: int  # newest partition feeding the op that created it
    alive: bool = True


@dataclass
class _Plan:
    parts: list[_PartPlan]
    target: dict[int, int] = field(default_factory=dict)  # weighted op index -> partition
    role: dict[int, str] = field(default_factory=dict)
    #: op -> (mode, src, part)
    add_mode: dict[int, tuple[str, int, int]] = field(default_factory=dict)


def _as_chw(shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(shape) == 3:
        return (shape[0], shape[1], shape[2])
    return (int(np.prod(shape)), 1, 1)


def _plan(trace: Trace, input_kind: NodeKind = NodeKind.INPUT) -> _Plan:
    root = trace.root
    consumers = Counter(root(v) for op in trace.ops for v in op.inputs)
    plan = _Plan(parts=[_PartPlan("input", input_kind, _as_chw(trace.shapes[0]), -1)])
    part_of: dict[int, int] = {0: 0}  # root value -> partition (identity values only)
    level: dict[int, int] = {0: 0}
    fresh: set[int] = set()
    for i, op in enumerate(trace.ops):
        ins = [root(v) for v in op.inputs]
        lv = max(level[v] for v in ins)
        if op.kind in ("conv", "linear"):
            p = len(plan.parts)
            kind = NodeKind.CONV if op.kind == "conv" else NodeKind.NEURON
            plan.parts.append(_PartPlan(op.params["name"], kind, _as_chw(trace.shapes[op.out]), lv))
            plan.target[i], plan.role[i] = p, "main"
            part_of[op.out], level[op.out] = p, p
            fresh.add(p)
        elif op.kind == "reshape":
            level[op.out] = lv
            if ins[0] in part_of:
                part_of[op.out] = part_of[ins[0]]
        elif op.kind in ("pool", "gather"):
            level[op.out] = lv
        elif op.kind == "add":
            a, b = ins
            absorb = [
                v in part_of and part_of[v] in fresh and consumers[v] == 1 for v in (a, b)
            ]
            if absorb[0] and absorb[1]:
                pa, pb = part_of[a], part_of[b]
                main, short = (pa, pb) if plan.parts[pa].level >= plan.parts[pb].level else (pb, pa)
                plan.parts[short].alive = False
                for j, t in plan.target.items():
                    if t == short:
                        plan.target[j], plan.role[j] = main, "shortcut"
                for j, (mode, src, t) in plan.add_mode.items():
                    if t == short:
                        plan.add_mode[j] = (mode, src, main)
                plan.add_mode[i] = ("merge", -1, main)
                part_of[op.out] = main
            elif absorb[0] or absorb[1]:
                dst_v, src_v = (a, b) if absorb[0] else (b, a)
                plan.add_mode[i] = ("skip", src_v, part_of[dst_v])
                part_of[op.out] = part_of[dst_v]
            else:
                plan.add_mode[i] = ("union", -1, -1)
            level[op.out] = lv
            if op.out in part_of:
                fresh.add(part_of[op.out])
        else:  # pragma: no cover - the tracer only emits the kinds above
            raise UnsupportedLayer(op.module, op.kind)
    return plan


# ---------------------------------------------------------------------------------------------
# Edge emission
# ---------------------------------------------------------------------------------------------
@dataclass
class _Emitter:
    """A block of edges: counted first, then written into the preallocated arrays."""

    count: int
    fill: Any  # Callable[[slice-views], None]
    dst_part: int
    src_parts: frozenset[int]
    may_duplicate: bool
    #: () -> (key, weight): the block's edges with its own repeated pairs already merged, never
    #: materialising the repeats (key = src·n + dst, unique; weight = the float64 sum in emission
    #: order, as float32), all of kind ``kind``; None where the block has no such path
    merged: Any = None
    kind: int = 0


class _Builder:
    def __init__(self, trace: Trace, weights: dict[int, np.ndarray], reference: bool,
                 premerge: bool = True) -> None:
        self.trace, self.weights, self.reference = trace, weights, reference
        self.premerge = premerge
        self.plan = _plan(trace)
        if reference:
            self._reference_input()
        alive = [i for i, p in enumerate(self.plan.parts) if p.alive]
        self.index = {old: new for new, old in enumerate(alive)}
        self.partitions = tuple(
            Partition(self.plan.parts[i].name, self.plan.parts[i].kind, self.plan.parts[i].shape)
            for i in alive
        )
        sizes = [p.size for p in self.partitions]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.n = int(self.offsets[-1])
        self.structs: dict[int, Struct] = {}
        self.emitters: list[_Emitter] = []
        self.layers: list[LayerSpec] = []

    # -- reference flavour: the first conv's padded input grid is the input partition ------------
    def _reference_input(self) -> None:
        first = [op for op in self.trace.ops if self.trace.root(op.inputs[0]) == 0]
        if len(first) != 1 or first[0].kind != "conv":
            raise ReferenceUnsupported(
                "mge-reference needs a network whose input feeds exactly one Conv2d (as CONV-6, "
                "ResNet-20/32 and WRN-28-2 do); use --encoding mge"
            )
        op = first[0]
        c, h, _ = _as_chw(self.trace.shapes[0])
        p, k, s = self._square(op)
        out = self.trace.shapes[op.out][1]
        size = h + 2 * p
        if (size - k) % s:
            size = (out - 1) * s + k
        self.plan.parts[0].shape = (c, size, size)
        self.ref_input_pad = (size - h) // 2 if size - h >= 0 else 0

    def _square(self, op: Op) -> tuple[int, int, int]:
        prm = op.params
        (kh, kw), (sh, sw), (ph, pw) = prm["weight_shape"][2:], prm["stride"], prm["padding"]
        if kh != kw or sh != sw or ph != pw or prm["dilation"] != (1, 1) or prm["groups"] != 1:
            raise ReferenceUnsupported(
                f"layer {prm['name']!r}: the reference supports only square kernels, strides and "
                "paddings, dilation 1 and groups 1 (MobileNetV2's code was never published); use "
                "--encoding mge"
            )
        h, w = self.trace.shapes[op.inputs[0]][1:]
        if h != w:
            raise ReferenceUnsupported(f"layer {prm['name']!r}: non-square feature map {h}×{w}")
        return int(ph), int(kh), int(sh)

    # -- structures -----------------------------------------------------------------------------
    def struct(self, v: int) -> Struct:
        return self.structs[self.trace.root(v)]

    def base(self, part: int) -> int:
        return int(self.offsets[self.index[part]])

    def run(self) -> Graph:
        self.structs[0] = Ident(0, self.partitions[0].size)
        for i, op in enumerate(self.trace.ops):
            getattr(self, f"_op_{op.kind}")(i, op)
        self._check_output()
        return self.assemble()

    def _check_output(self) -> None:
        """The model's output must be units of the last layer: anything that reaches the output
        around it (``fc(h) * g``, ``fc(h) + x``) would be missing from the graph."""
        if len(self.partitions) < 2:
            raise UnsupportedLayer("", "output", "the model has no Conv2d or Linear layer")
        s = self.struct(self.trace.output)
        lo, hi = int(self.offsets[-2]), int(self.offsets[-1])
        nodes = (np.array([s.base, s.base + s.size - 1]) if isinstance(s, Ident) else s.nodes)
        if len(nodes) and (nodes.min() < lo or nodes.max() >= hi):
            last = self.partitions[-1].name
            raise UnsupportedLayer(
                "", "output", f"the output depends on units other than those of the last layer "
                f"{last!r} (an op after it mixes in another branch); end the network with the "
                "layer that joins them"
            )

    def _op_reshape(self, i: int, op: Op) -> None:
        self.structs[op.out] = self.struct(op.inputs[0])

    def _op_gather(self, i: int, op: Op) -> None:
        if self.reference:
            raise ReferenceUnsupported(
                f"{op.params['op']!r} in {op.module or 'the model'!r} is not an op the reference "
                "encodes; use --encoding mge"
            )
        s = _concat([self.struct(v) for v in op.inputs])
        self.structs[op.out] = _gather(s, op.params["ptr"], op.params["idx"])

    def _op_pool(self, i: int, op: Op) -> None:
        in_shape, out_shape = self.trace.shapes[op.inputs[0]], self.trace.shapes[op.out]
        if len(in_shape) != 3:
            raise UnsupportedLayer(op.module, "pool", "pooling needs a (C, H, W) input")
        if self.reference:
            prm = op.params
            h = in_shape[1]
            ok = prm["mode"] == "global" or (
                prm["mode"] == "window" and prm["padding"] == (0, 0)
                and prm["dilation"] == (1, 1) and -(-h // prm["stride"][0]) == out_shape[1]
            )
            if not ok:
                raise ReferenceUnsupported(
                    f"pooling in {op.module or 'the model'!r} is not one the reference wires the "
                    "same way (padding, dilation or partial windows); use --encoding mge"
                )
        self.structs[op.out] = _pool(self.struct(op.inputs[0]), in_shape, out_shape, op.params)

    def _op_add(self, i: int, op: Op) -> None:
        mode, src, part = self.plan.add_mode[i]
        if mode == "union":
            if self.reference:
                raise ReferenceUnsupported(
                    f"residual add in {op.module or 'the model'!r} joins two existing values; "
                    "the reference cannot encode it; use --encoding mge"
                )
            a, b = (self.struct(v) for v in op.inputs)
            self.structs[op.out] = _union(a, b)
            return
        self.structs[op.out] = Ident(self.base(part), self.partitions[self.index[part]].size)
        if mode == "skip" and not self.reference:
            self._emit_skip(self.struct(src), part)

    def _emit_skip(self, s: Struct, part: int) -> None:
        base = self.base(part)
        elem = np.arange(s.size, dtype=np.int64)

        def fill(src: Any, dst: Any, w: Any, k: Any) -> None:
            nodes, owner = _expand(elem, s)
            src[:] = nodes
            dst[:] = base + owner
            w[:] = 1.0
            k[:] = EdgeKind.SKIP

        def merged() -> tuple[I64, np.ndarray]:
            """Elements a block at a time (a pair's edges all come from one element)."""
            keys, ws = [], []
            step = max(1, _CHUNK // max(1, count // max(s.size, 1)))
            for e0 in range(0, s.size, step):
                nodes, owner = _expand(elem[e0:e0 + step], s)
                key = nodes * self.n
                key += owner
                key += base + e0
                uniq, inv = np.unique(key, return_inverse=True)
                keys.append(uniq)
                ws.append(np.bincount(inv, minlength=len(uniq)).astype(np.float32))
            return _cat(keys, np.int64), _cat(ws, np.float32)

        count = s.size if isinstance(s, Ident) else len(s.nodes)
        dup = s.overlapping if isinstance(s, Gathered) else False
        self._add_emitter(count, fill, part, s, dup)
        if dup:
            self.emitters[-1].merged, self.emitters[-1].kind = merged, int(EdgeKind.SKIP)

    def _add_emitter(self, count: int, fill: Any, part: int, s: Struct, dup: bool) -> None:
        if isinstance(s, Ident):
            parts = frozenset({int(np.searchsorted(self.offsets, s.base, side="right") - 1)})
        else:
            uniq = np.unique(np.searchsorted(self.offsets, s.nodes, side="right") - 1)
            parts = frozenset(int(x) for x in uniq)
        self.emitters.append(_Emitter(count, fill, self.index[part], parts, dup))

    def _abs(self, weight: np.ndarray, at: tuple[np.ndarray, ...]) -> np.ndarray:
        """|w| at the kept positions ``at`` (never a copy of the whole weight)."""
        w = np.abs(weight[at])
        return w.astype(np.float16).astype(np.float32) if self.reference else w

    def _spec(self, i: int, op: Op, nnz: int) -> None:
        prm = op.params
        self.layers.append(LayerSpec(
            name=prm["name"], op=op.kind, role=self.plan.role[i],
            weight_shape=tuple(int(x) for x in prm["weight_shape"]),
            in_shape=self.trace.shapes[op.inputs[0]], out_shape=self.trace.shapes[op.out],
            stride=prm.get("stride", (1, 1)), padding=prm.get("padding", (0, 0)),
            dilation=prm.get("dilation", (1, 1)), groups=prm.get("groups", 1), nnz=nnz,
            partition=self.index[self.plan.target[i]],
        ))

    def _op_linear(self, i: int, op: Op) -> None:
        w_full = self.weights[i]
        per_col = _column_nonzeros(w_full)
        self._spec(i, op, int(per_col.sum()))
        s = self.struct(op.inputs[0])
        part = self.plan.target[i]
        dst_base = self.base(part)
        if self.reference and isinstance(s, Ident):
            dst_base = s.base + s.size  # positional concatenation onto the previous block
        n_out, n_in = w_full.shape
        positions = s.size // n_in  # Linear over the last dim of an N-d value: once per position
        if positions > 1 and self.reference:
            raise ReferenceUnsupported(f"layer {op.params['name']!r}: Linear on a non-flat "
                                       "input; use --encoding mge")
        if isinstance(s, Ident):
            per_pos = np.full(positions, int(per_col.sum()), np.int64)
        else:
            cnt = s.counts
            per_pos = np.array([int(per_col @ cnt[p * n_in:(p + 1) * n_in])
                                for p in range(positions)], np.int64)
        # row blocks of about _CHUNK edges each: the nonzeros of a block, in emission order
        step = max(1, int(_CHUNK * n_out // max(int(per_pos.max(initial=0)), 1)))

        def blocks() -> Any:
            """(p, o, f, |w|) per row block: position outer, row-major nonzeros inner."""
            for p in range(positions):
                for r0 in range(0, n_out, step):
                    rows = w_full[r0:r0 + step]
                    o, f = np.nonzero(rows)
                    wv = self._abs(rows, (o, f))
                    o += r0 + p * n_out
                    f += p * n_in
                    yield o, f, wv

        def fill(src: Any, dst: Any, w: Any, k: Any) -> None:
            pos = 0
            for o, f, wv in blocks():
                if isinstance(s, Ident):
                    sl = slice(pos, pos + len(o))
                    np.add(f, s.base, out=src[sl], casting="unsafe")
                    np.add(o, dst_base, out=dst[sl], casting="unsafe")
                    w[sl] = wv
                else:
                    nodes, owner = _expand(f, s)
                    sl = slice(pos, pos + len(nodes))
                    src[sl] = nodes
                    np.add(o[owner], dst_base, out=dst[sl], casting="unsafe")
                    w[sl] = wv[owner]
                pos = sl.stop
            k[:] = EdgeKind.LINEAR

        def merged() -> tuple[I64, np.ndarray]:
            keys, ws = [], []
            for o, f, wv in blocks():  # a (src, dst) pair's edges all lie in one row block
                nodes, owner = _expand(f, s)
                key = nodes * self.n
                key += o[owner]
                key += dst_base
                uniq, inv = np.unique(key, return_inverse=True)
                del key, nodes
                keys.append(uniq)
                ws.append(np.bincount(inv, weights=wv[owner], minlength=len(uniq))
                          .astype(np.float32))
            return _cat(keys, np.int64), _cat(ws, np.float32)

        dup = isinstance(s, Gathered) and s.overlapping
        self._add_emitter(int(per_pos.sum()), fill, part, s, dup)
        if dup:
            self.emitters[-1].merged, self.emitters[-1].kind = merged, int(EdgeKind.LINEAR)
        self._set_output(op, part)

    def _set_output(self, op: Op, part: int) -> None:
        self.structs[op.out] = Ident(self.base(part), self.partitions[self.index[part]].size)

    def _op_conv(self, i: int, op: Op) -> None:
        prm = op.params
        w_full = self.weights[i]
        cout, cin_g, kh, kw = w_full.shape
        groups = prm["groups"]
        (sh, sw), (ph, pw), (dh, dw) = prm["stride"], prm["padding"], prm["dilation"]
        cin, h, w = self.trace.shapes[op.inputs[0]]
        _, ho, wo = self.trace.shapes[op.out]
        s = self.struct(op.inputs[0])
        part = self.plan.target[i]
        role = self.plan.role[i]
        dst_base = self.base(part)
        grid_h, grid_w = h, w
        if self.reference:
            p, k, st = self._square(op)
            if role == "shortcut":
                if p:
                    raise ReferenceUnsupported(
                        f"shortcut {prm['name']!r} has padding {p}; the reference ignores it"
                    )
            elif isinstance(s, Ident) and s.base == 0:
                grid_h = grid_w = self.partitions[0].shape[1]
                ph = pw = 0
            else:
                size = h + 2 * p
                if (size - k) % st:
                    size = (ho - 1) * st + k
                grid_h = grid_w = size - 2 * p
                if isinstance(s, Ident):
                    dst_base = s.base + cin * grid_h * grid_w
        o, ci, ka, kb = (x.astype(np.int64) for x in np.nonzero(w_full))
        self._spec(i, op, len(o))
        c = (o // (cout // groups)) * cin_g + ci
        wv = self._abs(w_full, (o, ci, ka, kb))
        kind = EdgeKind.SHORTCUT if role == "shortcut" else EdgeKind.CONV
        # valid output rows / cols for each kernel row / col
        ys = [np.arange(ho)[(r >= 0) & (r < grid_h)]
              for r in (np.arange(ho) * sh - ph + a * dh for a in range(kh))]
        xs = [np.arange(wo)[(q >= 0) & (q < grid_w)]
              for q in (np.arange(wo) * sw - pw + b * dw for b in range(kw))]
        groups_ab = ka * kw + kb
        order = np.argsort(groups_ab, kind="stable")
        bounds = np.searchsorted(groups_ab[order], np.arange(kh * kw + 1))
        per_tap = np.array([len(ys[a]) * len(xs[b]) for a in range(kh) for b in range(kw)])

        def positions(a: int, b: int) -> tuple[I64, I64]:
            y, x = ys[a], xs[b]
            rel_src = ((y * sh - ph + a * dh)[:, None] * grid_w + (x * sw - pw + b * dw)[None, :])
            rel_dst = y[:, None] * wo + x[None, :]
            return rel_src.ravel().astype(np.int64), rel_dst.ravel().astype(np.int64)

        plane_in, plane_out = grid_h * grid_w, ho * wo
        if isinstance(s, Ident):
            count = int(per_tap[groups_ab].sum())
        else:
            cnt = s.counts
            if len(cnt) != cin * plane_in and not self.reference:
                raise UnsupportedLayer(op.module, "conv2d", "input size mismatch")
            count = 0
            per_out = np.zeros(cout, np.int64)  # edges into each output channel
            for g in range(kh * kw):
                a, b = divmod(g, kw)
                sel = order[bounds[g]:bounds[g + 1]]
                if len(sel) == 0 or per_tap[g] == 0:
                    continue
                rel_src, _ = positions(a, b)
                per_channel = cnt[(np.arange(cin)[:, None] * plane_in + rel_src[None, :])].sum(1)
                count += int(per_channel[c[sel]].sum())
                per_out += np.bincount(o[sel], weights=per_channel[c[sel]],
                                       minlength=cout).astype(np.int64)

        def fill(src: Any, dst: Any, w: Any, k: Any) -> None:
            pos = 0
            for g in range(kh * kw):
                sel = order[bounds[g]:bounds[g + 1]]
                if len(sel) == 0 or per_tap[g] == 0:
                    continue
                a, b = divmod(g, kw)
                rel_src, rel_dst = positions(a, b)
                m = len(sel) * len(rel_src)
                if isinstance(s, Ident):
                    sl = slice(pos, pos + m)
                    np.add((s.base + c[sel] * plane_in)[:, None], rel_src[None, :],
                           out=src[sl].reshape(len(sel), -1), casting="unsafe")
                    np.add((dst_base + o[sel] * plane_out)[:, None], rel_dst[None, :],
                           out=dst[sl].reshape(len(sel), -1), casting="unsafe")
                    w[sl].reshape(len(sel), -1)[:] = wv[sel][:, None]
                else:
                    elem = ((c[sel] * plane_in)[:, None] + rel_src[None, :]).ravel()
                    nodes, owner = _expand(elem, s)
                    tgt = ((dst_base + o[sel] * plane_out)[:, None] + rel_dst[None, :]).ravel()
                    m = len(nodes)
                    sl = slice(pos, pos + m)
                    src[sl] = nodes
                    dst[sl] = tgt[owner]
                    w[sl] = np.repeat(wv[sel], len(rel_src))[owner]
                pos += m
            k[:] = kind

        def merged() -> tuple[I64, np.ndarray]:
            """Output channels a block at a time (a (src, dst) pair's edges all lie in one block),
            every tap of the block in emission order."""
            assert isinstance(s, Gathered)
            cum = np.concatenate([[0], np.cumsum(per_out)])
            keys, ws = [], []
            o0 = 0
            while o0 < cout:
                o1 = min(cout, max(o0 + 1, int(np.searchsorted(cum, cum[o0] + _CHUNK,
                                                               side="right")) - 1))
                parts_k, parts_w = [], []
                for g in range(kh * kw):
                    sel = order[bounds[g]:bounds[g + 1]]
                    if len(sel) == 0 or per_tap[g] == 0:
                        continue
                    sel = sel[(o[sel] >= o0) & (o[sel] < o1)]
                    if len(sel) == 0:
                        continue
                    a, b = divmod(g, kw)
                    rel_src, rel_dst = positions(a, b)
                    elem = ((c[sel] * plane_in)[:, None] + rel_src[None, :]).ravel()
                    nodes, owner = _expand(elem, s)
                    tgt = ((dst_base + o[sel] * plane_out)[:, None] + rel_dst[None, :]).ravel()
                    key = nodes * self.n
                    key += tgt[owner]
                    parts_k.append(key)
                    parts_w.append(np.repeat(wv[sel], len(rel_src))[owner])
                    del nodes, owner, tgt, elem
                if parts_k:
                    key = np.concatenate(parts_k)
                    del parts_k
                    uniq, inv = np.unique(key, return_inverse=True)
                    del key
                    keys.append(uniq)
                    ws.append(np.bincount(inv, weights=np.concatenate(parts_w),
                                          minlength=len(uniq)).astype(np.float32))
                    del inv, parts_w
                o0 = o1
            return _cat(keys, np.int64), _cat(ws, np.float32)

        dup = isinstance(s, Gathered) and s.overlapping
        self._add_emitter(count, fill, part, s, dup)
        if dup:
            self.emitters[-1].merged, self.emitters[-1].kind = merged, int(kind)
        self._set_output(op, part)

    # -- assembly -------------------------------------------------------------------------------
    def _classify(self) -> tuple[list[int], list[int], list[int]]:
        """Emitter indices: blocks kept as they are, blocks whose repeated pairs merge after
        filling, blocks merged while they are generated (their pairs meet no other block's)."""
        if self.reference:
            return list(range(len(self.emitters))), [], []
        by_dst: dict[int, list[int]] = {}
        for j, e in enumerate(self.emitters):
            by_dst.setdefault(e.dst_part, []).append(j)
        plain: list[int] = []
        raw: list[int] = []
        pre: list[int] = []
        for js in by_dst.values():
            alone = {x: not any(self.emitters[x].src_parts & self.emitters[y].src_parts
                                for y in js if y != x) for x in js}
            shared = not all(alone.values())
            for j in js:
                e = self.emitters[j]
                if not (shared or e.may_duplicate):
                    plain.append(j)
                elif alone[j] and e.merged is not None and self.premerge:
                    pre.append(j)
                else:
                    raw.append(j)
        return sorted(plain), sorted(raw), sorted(pre)

    def assemble(self) -> Graph:
        plain, raw, pre = self._classify()
        merged = []
        for j in pre:
            merged.append(self.emitters[j].merged())
            self.emitters[j].fill = self.emitters[j].merged = None  # free what it holds
        n_pre = sum(len(key) for key, _ in merged)
        fills = [self.emitters[j] for j in plain + raw]
        total = sum(e.count for e in fills) + n_pre
        idt = np.int32 if self.n < 2**31 - 1 else np.int64
        need = total * (2 * np.dtype(idt).itemsize + 5)
        free = _available_memory()
        if free is not None and need > free:
            big = max(self.emitters, key=lambda e: e.count)
            raise MgedbError(
                f"the graph needs {total:,} edges before repeated pairs merge ({need / 2**30:.1f} "
                f"GiB, {free / 2**30:.1f} GiB free; {big.count:,} of them into partition "
                f"{self.partitions[big.dst_part].name!r}); encode at a smaller --input-shape or "
                "a sparser model"
            )
        src: Any = np.empty(total, idt)
        dst: Any = np.empty(total, idt)
        weight = np.empty(total, np.float32)
        kind = np.empty(total, np.uint8)
        pos = 0
        for e in fills:  # kept blocks first, in order, then the blocks that merge after
            sl = slice(pos, pos + e.count)
            e.fill(src[sl], dst[sl], weight[sl], kind[sl])
            e.fill = None
            pos += e.count
        start = pos - sum(self.emitters[j].count for j in raw)
        for j, (key, w) in zip(pre, merged, strict=True):
            sl = slice(pos, pos + len(key))
            np.floor_divide(key, self.n, out=src[sl], casting="unsafe")
            np.remainder(key, self.n, out=dst[sl], casting="unsafe")
            weight[sl] = w
            kind[sl] = self.emitters[j].kind
            pos = sl.stop
        del merged
        if pos > start:
            src, dst, weight, kind = self._merge(src, dst, weight, kind, start, unique=not raw)
        return Graph(src=src, dst=dst, weight=weight, kind=kind, partitions=self.partitions,
                     encoding=(Encoding.MGE_REFERENCE if self.reference else Encoding.MGE).value,
                     layers=tuple(self.layers))

    def _merge(self, src: Any, dst: Any, weight: Any, kind: Any, start: int, *,
               unique: bool) -> tuple[Any, Any, Any, Any]:
        """Collapse repeated (src, dst) pairs of ``[start:]`` into one edge each (see the module
        docstring), sorted by (src, dst) after the kept blocks; ``unique``: none repeat."""
        key = src[start:].astype(np.int64)
        key *= self.n
        key += dst[start:]
        order = np.argsort(key, kind="stable")  # the order lexsort((dst, src)) gives
        if unique:
            for arr in (weight, kind):
                arr[start:] = arr[start:][order]
            del order
            key.sort()
            np.floor_divide(key, self.n, out=src[start:], casting="unsafe")
            np.remainder(key, self.n, out=dst[start:], casting="unsafe")
            return src, dst, weight, kind
        w = weight[start:][order]
        k = kind[start:][order]
        key = key[order]
        del order
        first = np.empty(len(key), bool)
        first[:1] = True
        np.not_equal(key[1:], key[:-1], out=first[1:])
        group: np.ndarray = np.cumsum(first, dtype=np.int32 if len(key) < 2**31 else np.int64)
        np.subtract(group, 1, out=group)
        w_sum = np.bincount(group, weights=w).astype(np.float32)  # in order, as before
        del group, w
        heads = np.flatnonzero(first)
        k_min = np.minimum.reduceat(k, heads) if len(heads) else k[:0]
        del k, first
        key = key[heads]
        del heads
        end = start + len(key)
        np.floor_divide(key, self.n, out=src[start:end], casting="unsafe")
        np.remainder(key, self.n, out=dst[start:end], casting="unsafe")
        weight[start:end] = w_sum
        kind[start:end] = k_min
        for arr in (src, dst, weight, kind):
            arr.resize(end, refcheck=False)
        return src, dst, weight, kind


_CHUNK = 1 << 20  # edges generated at a time where a block is generated in pieces


def _cat(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
    return np.concatenate(parts) if parts else np.empty(0, dtype)


def _column_nonzeros(w: np.ndarray) -> I64:
    """Nonzeros per column of a 2-d weight, a few rows at a time (no full-size mask)."""
    out = np.zeros(w.shape[1], np.int64)
    step = max(1, _CHUNK // max(w.shape[1], 1))
    for r in range(0, w.shape[0], step):
        out += np.count_nonzero(w[r:r + step], axis=0)
    return out


def _available_memory() -> int | None:
    """MemAvailable from /proc/meminfo in bytes (None where unknown)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def build_mge(trace: Trace, weights: dict[int, np.ndarray], *, reference: bool = False) -> Graph:
    """The MGE (``reference=False``) or the reference-identical graph of a traced network."""
    return _Builder(trace, weights, reference).run()
