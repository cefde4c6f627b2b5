"""Discover a network's layer graph by running it once under a ``TorchFunctionMode``.

Every torch function call made during one forward pass on an example input is seen with its real
arguments, so structure comes from what the network *does* (functional pooling, residual adds,
flatten) and never from module names. The result is a flat list of :class:`Op` over value ids
(value 0 is the input); element-wise ops (BatchNorm, ReLU, Dropout, …) become aliases.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode, resolve_name

from mgedb.errors import UnsupportedLayer

__all__ = ["Op", "Trace", "trace_model"]

_F = "torch.nn.functional."
CONV = {_F + "conv2d", "torch.conv2d"}
LINEAR = {_F + "linear", "torch._C._nn.linear"}
MAX_POOL = {_F + "max_pool2d", "torch.max_pool2d", _F + "max_pool2d_with_indices",
            "torch._C._nn.max_pool2d_with_indices"}
AVG_POOL = {_F + "avg_pool2d", "torch._C._nn.avg_pool2d"}
ADAPTIVE_POOL = {_F + "adaptive_avg_pool2d", "torch._C._nn.adaptive_avg_pool2d",
                 _F + "adaptive_max_pool2d", _F + "adaptive_max_pool2d_with_indices",
                 "torch.adaptive_avg_pool2d", "torch._C._nn.adaptive_max_pool2d"}
MEAN = {"torch.mean", "torch.Tensor.mean", "torch.Tensor.sum", "torch.sum", "torch.amax",
        "torch.Tensor.amax"}
RESHAPE = {"torch.Tensor.view", "torch.Tensor.reshape", "torch.reshape", "torch.flatten",
           "torch.Tensor.flatten", "torch.Tensor.squeeze", "torch.squeeze"}
ADD = {"torch.add", "torch.Tensor.add", "torch.Tensor.__add__", "torch.Tensor.__radd__",
       "torch.Tensor.__iadd__", "torch.Tensor.add_"}
SCALAR_OPS = {"torch.Tensor.__mul__", "torch.Tensor.__rmul__", "torch.Tensor.__imul__",
              "torch.Tensor.mul", "torch.Tensor.mul_", "torch.mul", "torch.Tensor.__truediv__",
              "torch.Tensor.div", "torch.Tensor.div_", "torch.div", "torch.Tensor.__sub__",
              "torch.Tensor.sub", "torch.sub", "torch.Tensor.__rsub__"}
ELEMENTWISE = {
    _F + n for n in (
        "batch_norm", "relu", "relu_", "relu6", "hardtanh", "hardtanh_", "leaky_relu",
        "leaky_relu_", "gelu", "silu", "mish", "elu", "elu_", "selu", "celu", "softplus",
        "sigmoid", "tanh", "hardswish", "hardsigmoid", "dropout", "dropout2d", "dropout1d",
        "alpha_dropout", "feature_alpha_dropout", "prelu", "threshold", "threshold_",
    )
} | {
    "torch.relu", "torch.relu_", "torch.Tensor.relu", "torch.Tensor.relu_", "torch.sigmoid",
    "torch.Tensor.sigmoid", "torch.tanh", "torch.Tensor.tanh", "torch.clamp", "torch.Tensor.clamp",
    "torch.Tensor.clamp_", "torch.Tensor.contiguous", "torch.Tensor.clone", "torch.Tensor.detach",
    "torch.Tensor.to", "torch.Tensor.float", "torch.Tensor.double", "torch.Tensor.half",
    "torch.batch_norm", "torch.dropout", "torch.Tensor.__neg__", "torch.neg", "torch.abs",
    "torch.Tensor.abs", "torch.nn.functional.hardtanh_",
}
INPLACE = {"torch.Tensor.__iadd__", "torch.Tensor.add_", "torch.Tensor.__imul__",
           "torch.Tensor.mul_", "torch.Tensor.div_", "torch.Tensor.relu_", "torch.relu_",
           "torch.Tensor.clamp_"}


@dataclass(frozen=True)
class Op:
    """One structural operation: ``out = kind(inputs…)`` over value ids."""

    kind: str  # "conv" | "linear" | "pool" | "reshape" | "add"
    inputs: tuple[int, ...]
    out: int
    module: str  # the module path that ran it ("" at top level)
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Trace:
    """The traced layer graph: value shapes (batch dim dropped) and ops in execution order."""

    shapes: dict[int, tuple[int, ...]]
    ops: list[Op]
    output: int
    alias: dict[int, int]  # value id -> the value it is an element-wise image of

    def root(self, v: int) -> int:
        while v in self.alias:
            v = self.alias[v]
        return v

    def weighted(self) -> Iterator[Op]:
        return (op for op in self.ops if op.kind in ("conv", "linear"))


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    t = tuple(int(x) for x in v)
    return (t[0], t[0]) if len(t) == 1 else (t[0], t[1])


def _tensors(obj: Any) -> Iterator[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, list | tuple):
        for x in obj:
            yield from _tensors(x)
    elif isinstance(obj, dict):
        for x in obj.values():
            yield from _tensors(x)


def _arg(args: Sequence[Any], kwargs: dict[str, Any], i: int, name: str, default: Any) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[i] if len(args) > i else default


class _Tracer(TorchFunctionMode):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.values: dict[int, int] = {}  # id(tensor) -> value id
        self.keep: list[torch.Tensor] = []  # keeps traced tensors alive so ids stay unique
        self.shapes: dict[int, tuple[int, ...]] = {}
        self.alias: dict[int, int] = {}
        self.ops: list[Op] = []
        self.stack: list[str] = []
        self.module_names = {id(m): n for n, m in model.named_modules()}
        self.param_names = {id(p): n for n, p in model.named_parameters()}
        self.weighted_modules = {
            id(m) for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)
        }
        self.current_weighted: list[nn.Module] = []
        self.weights: dict[int, torch.Tensor] = {}  # op index -> weight tensor
        self.names_used: dict[str, int] = {}

    # -- bookkeeping ------------------------------------------------------------------------
    def new_value(self, t: torch.Tensor) -> int:
        v = len(self.shapes)
        if t.dim() < 1 or t.shape[0] != 1:
            raise UnsupportedLayer(self.where, "batch", "an op changed the batch dimension")
        self.shapes[v] = tuple(int(s) for s in t.shape[1:])
        self.values[id(t)] = v
        self.keep.append(t)
        return v

    @property
    def where(self) -> str:
        return self.stack[-1] if self.stack else ""

    def tracked(self, args: Any, kwargs: Any) -> list[tuple[torch.Tensor, int]]:
        seen: list[tuple[torch.Tensor, int]] = []
        for t in _tensors((args, kwargs)):
            v = self.values.get(id(t))
            if v is not None and all(t is not s for s, _ in seen):
                seen.append((t, v))
        return seen

    def layer_name(self, weight: torch.Tensor, kind: str) -> str:
        if self.current_weighted:
            name = self.module_names[id(self.current_weighted[-1])]
        else:
            pname = self.param_names.get(id(weight))
            name = pname.rsplit(".", 1)[0] if pname else f"{self.where or 'fn'}.{kind}"
        n = self.names_used.get(name, 0)
        self.names_used[name] = n + 1
        return name if n == 0 else f"{name}#{n}"

    # -- the hook ------------------------------------------------------------------------------
    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        ins = self.tracked(args, kwargs)
        out = func(*args, **kwargs)
        if not ins:
            return out
        name = resolve_name(func) or getattr(func, "__name__", repr(func))
        pooled = name in MAX_POOL | ADAPTIVE_POOL
        if isinstance(out, tuple | list) and not pooled and any(True for _ in _tensors(out)):
            raise UnsupportedLayer(
                self.where, name, "it returns several tensors (like chunk, split, unbind, "
                "max/min with dim=, sort, topk, LSTM/GRU), which the graph cannot encode; rewrite "
                "the forward without it"
            )
        result = out[0] if isinstance(out, tuple) and pooled else out
        if not isinstance(result, torch.Tensor):
            return out  # size(), dim(), shape, …
        self.record(name, args, kwargs, ins, result)
        return out

    def record(self, name: str, args: Any, kwargs: dict[str, Any],
               ins: list[tuple[torch.Tensor, int]], out: torch.Tensor) -> None:
        first_t, first = ins[0]
        if name in ELEMENTWISE or (name in SCALAR_OPS and len(ins) == 1):
            if tuple(out.shape) != tuple(first_t.shape):
                raise UnsupportedLayer(self.where, name, "element-wise op changed the shape")
            v = (self.new_value_replacing(out) if id(out) == id(first_t)
                 else self.new_value(out))
            self.alias[v] = first
            return
        if name in CONV:
            w = _arg(args, kwargs, 1, "weight", None)
            groups = int(_arg(args, kwargs, 6, "groups", 1))
            stride = _pair(_arg(args, kwargs, 3, "stride", 1))
            padding_arg = _arg(args, kwargs, 4, "padding", 0)
            if isinstance(padding_arg, str):
                raise UnsupportedLayer(self.where, name,
                                       f"string padding {padding_arg!r}; use ints")
            params = {
                "weight_shape": tuple(w.shape), "stride": stride, "padding": _pair(padding_arg),
                "dilation": _pair(_arg(args, kwargs, 5, "dilation", 1)), "groups": groups,
                "name": self.layer_name(w, "conv"),
            }
            self.add_op("conv", (first,), out, params, w)
            return
        if name in LINEAR:
            w = _arg(args, kwargs, 1, "weight", None)
            if first_t.dim() != 2:
                raise UnsupportedLayer(self.where, name, "Linear on a non-flat input")
            self.add_op("linear", (first,), out,
                        {"weight_shape": tuple(w.shape), "name": self.layer_name(w, "linear")}, w)
            return
        if name in MAX_POOL | AVG_POOL:
            k = _pair(_arg(args, kwargs, 1, "kernel_size", None))
            s_arg = _arg(args, kwargs, 2, "stride", None)
            stride = k if s_arg is None or (isinstance(s_arg, list | tuple) and not s_arg) \
                else _pair(s_arg)
            dil = _pair(_arg(args, kwargs, 4, "dilation", 1)) if name in MAX_POOL else (1, 1)
            params = {"mode": "window", "kernel": k, "stride": stride,
                      "padding": _pair(_arg(args, kwargs, 3, "padding", 0)), "dilation": dil}
            self.add_op("pool", (first,), out, params)
            return
        if name in ADAPTIVE_POOL:
            self.add_op("pool", (first,), out, {"mode": "adaptive"})
            return
        if name in MEAN:
            dims = _arg(args, kwargs, 1, "dim", None)
            dims = (dims,) if isinstance(dims, int) else tuple(dims or ())
            nd = first_t.dim()
            if first_t.dim() != 4 or sorted(d % nd for d in dims) != [2, 3]:
                raise UnsupportedLayer(self.where, name, "only a mean over both spatial dims")
            self.add_op("pool", (first,), out, {"mode": "global"})
            return
        if name in RESHAPE:
            if out.shape[0] != first_t.shape[0]:
                raise UnsupportedLayer(self.where, name, "reshape across the batch dimension")
            self.add_op("reshape", (first,), out, {})
            return
        if name in ADD:
            if len(ins) == 1:  # adding a constant or an untracked tensor: element-wise
                v = self.new_value_replacing(out) if id(out) == id(first_t) else self.new_value(out)
                self.alias[v] = first
                return
            (a_t, a), (b_t, b) = ins[0], ins[1]
            if tuple(a_t.shape) != tuple(b_t.shape):
                raise UnsupportedLayer(self.where, name, "broadcasting add")
            alpha = _arg(args, kwargs, 2, "alpha", 1)
            if alpha != 1:
                raise UnsupportedLayer(self.where, name, "add with alpha != 1")
            self.add_op("add", (a, b), out, {}, replace=id(out) == id(a_t))
            return
        raise UnsupportedLayer(self.where, name)

    def new_value_replacing(self, t: torch.Tensor) -> int:
        """An in-place op: the same tensor object now holds a new value."""
        del self.values[id(t)]
        return self.new_value(t)

    def add_op(self, kind: str, inputs: tuple[int, ...], out: torch.Tensor,
               params: dict[str, Any], weight: torch.Tensor | None = None,
               replace: bool = False) -> None:
        if replace:
            del self.values[id(out)]
        v = self.new_value(out)
        if weight is not None:
            self.weights[len(self.ops)] = weight.detach()
        self.ops.append(Op(kind, inputs, v, self.where, params))

    # -- module context ------------------------------------------------------------------------
    def pre_hook(self, module: nn.Module, args: Any) -> None:
        self.stack.append(self.module_names.get(id(module), ""))
        if id(module) in self.weighted_modules:
            self.current_weighted.append(module)

    def post_hook(self, module: nn.Module, args: Any, out: Any) -> None:
        self.stack.pop()
        if id(module) in self.weighted_modules:
            self.current_weighted.pop()


def trace_model(model: nn.Module, input_shape: tuple[int, int, int] = (3, 32, 32)
                ) -> tuple[Trace, dict[int, np.ndarray]]:
    """Run ``model`` once (eval mode, no grad): its trace and each weighted op's weight."""
    tracer = _Tracer(model)
    handles = []
    for m in model.modules():
        handles.append(m.register_forward_pre_hook(tracer.pre_hook))
        handles.append(m.register_forward_hook(tracer.post_hook, always_call=True))
    was_training = model.training
    model.eval()
    x = torch.zeros((1, *input_shape))
    try:
        tracer.new_value(x)
        with torch.no_grad(), tracer:
            y = model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if not isinstance(y, torch.Tensor) or id(y) not in tracer.values:
        raise UnsupportedLayer("", "output", "the model must return one traced tensor")
    weights = {i: w.float().numpy() for i, w in tracer.weights.items()}
    trace = Trace(shapes=tracer.shapes, ops=tracer.ops, output=tracer.values[id(y)],
                  alias=tracer.alias)
    return trace, weights
