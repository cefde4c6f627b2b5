"""Discover a network's layer graph by running it once under a ``TorchFunctionMode``.

Every torch function call made during one forward pass on an example input is seen with its real
arguments, so structure comes from what the network *does* (functional pooling, residual adds,
concatenation, slicing) and never from module names. The result is a flat list of :class:`Op` over
value ids (value 0 is the input); element-wise ops (BatchNorm, ReLU, Dropout, …) become aliases.

The tracer accounts for every tensor that can reach the output. A tensor is *traced* if it was
computed from the input; every other tensor (parameters, buffers, ``torch.zeros(…)``) is a constant
and contributes no nodes. Each op with a traced argument is either modelled exactly or rejected with
:class:`~mgedb.errors.UnsupportedLayer` naming the module, the op and why:

* ops that only move elements (``cat``, ``stack``, ``permute``, slicing, ``chunk``, ``F.pad``,
  slice assignment, ``copy_``, …) are modelled by running the op itself on a tensor of element ids,
  which gives, for every output element, the one input element it holds (or none);
* ops that mix elements (interpolation, reductions, LayerNorm/GroupNorm, softmax) list, for every
  output element, the input elements it reads;
* element-wise ops of several traced tensors (``a * s``, ``clamp(a, max=b)``, ``where``) read, for
  every output element, the broadcast element of each operand;
* a traced value that leaves torch (``item()``, ``tolist()``, ``numpy()``, ``bool()``), an in-place
  write into memory another tensor shares, pooling indices, and any op not listed here are refused.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode, resolve_name

from mgedb.errors import MgedbError, ModelRunError, UnsupportedLayer
from mgedb.model_source import set_training

__all__ = ["Op", "Trace", "trace_model"]

CONV = {"conv2d"}
LINEAR = {"linear"}
MAX_POOL = {"max_pool2d", "max_pool2d_with_indices"}
AVG_POOL = {"avg_pool2d"}
ADAPTIVE_POOL = {"adaptive_avg_pool2d", "adaptive_max_pool2d", "adaptive_max_pool2d_with_indices"}
#: pooling ops that return ``(values, indices)`` with ``return_indices=True``
POOL_TUPLES = MAX_POOL | {"adaptive_max_pool2d", "adaptive_max_pool2d_with_indices"}
REDUCE = {"mean", "sum", "amax", "amin", "logsumexp", "nansum", "nanmean", "std", "var", "prod"}
#: reshapes that keep the elements in order (C order): the value keeps its structure
RESHAPE = {"view", "reshape", "_unsafe_view", "flatten", "unflatten", "squeeze", "unsqueeze",
           "view_as", "reshape_as"}
#: ops that only move elements: modelled by running them on a tensor of element ids
REARRANGE = {
    "permute", "transpose", "transpose_", "swapaxes", "swapdims", "movedim", "moveaxis", "t",
    "T.__get__", "mT.__get__", "cat", "concat", "concatenate", "stack", "hstack", "vstack",
    "chunk", "split", "split_with_sizes", "tensor_split", "unbind", "narrow", "select", "slice",
    "__getitem__", "index_select", "gather", "take", "take_along_dim", "masked_select", "expand",
    "expand_as", "broadcast_to", "repeat", "tile", "repeat_interleave", "flip", "fliplr", "flipud",
    "roll", "rot90", "pad", "constant_pad_nd", "reflection_pad2d", "replication_pad2d",
    "pixel_shuffle", "pixel_unshuffle", "channel_shuffle", "native_channel_shuffle", "unfold",
    "diagonal", "tril", "triu", "index_copy", "index_fill", "masked_fill", "scatter", "index_put",
    "masked_scatter", "narrow_copy", "alias", "lift_fresh_copy",
}
#: in-place writes into their first argument, modelled like REARRANGE
WRITES = {"__setitem__", "copy_", "index_copy_", "index_fill_", "masked_fill_", "scatter_",
          "index_put_", "masked_scatter_", "fill_", "zero_"}
#: writes that accumulate several elements into one: refused
ACCUMULATE = {"index_add", "index_add_", "scatter_add", "scatter_add_", "scatter_reduce",
              "scatter_reduce_", "index_reduce", "index_reduce_", "put_", "put", "index_put_acc"}
#: ops whose output element ``i`` reads all input elements of its group (see ``_groups``)
NORMALIZE = {"layer_norm", "group_norm", "instance_norm", "softmax", "log_softmax", "_softmax",
             "_log_softmax", "normalize", "softmin"}
INTERPOLATE = {"interpolate", "upsample", "upsample_nearest", "upsample_bilinear",
               "upsample_nearest2d", "upsample_bilinear2d", "upsample_bicubic2d",
               "_upsample_nearest_exact2d", "_upsample_bilinear2d_aa", "_upsample_bicubic2d_aa"}
ADD = {"add", "__add__", "__radd__", "__iadd__", "add_"}
#: element-wise in their first argument; any other tensor argument is a parameter (BN statistics,
#: PReLU slopes) and must be a constant
UNARY = {
    "batch_norm", "relu", "relu_", "relu6", "hardtanh", "hardtanh_", "leaky_relu", "leaky_relu_",
    "gelu", "silu", "silu_", "mish", "mish_", "elu", "elu_", "selu", "selu_", "celu", "celu_",
    "softplus", "sigmoid", "sigmoid_", "tanh", "tanh_", "hardswish", "hardswish_", "hardsigmoid",
    "hardsigmoid_", "dropout", "dropout_", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
    "feature_alpha_dropout", "feature_dropout", "prelu", "_prelu_kernel", "threshold",
    "threshold_", "contiguous", "clone", "detach", "to", "float", "double", "half", "bfloat16",
    "type", "type_as", "cpu", "requires_grad_", "__neg__", "neg", "negative", "abs", "abs_", "exp",
    "exp_", "log", "log1p", "sqrt", "rsqrt", "square", "reciprocal", "sign", "erf", "logsigmoid",
    "hardshrink", "softshrink", "tanhshrink", "relu6_", "expm1", "sin", "cos", "special.expit",
    "nan_to_num", "positive", "sinh", "cosh", "log2", "log10", "exp2", "sgn", "round", "floor",
    "ceil", "trunc", "frac", "softsign",
}
#: element-wise with broadcasting over *all* tensor arguments
NARY = ADD | {
    "sub", "__sub__", "__rsub__", "__isub__", "sub_", "rsub", "mul", "__mul__", "__rmul__",
    "__imul__", "mul_", "div", "__truediv__", "__rtruediv__", "__itruediv__", "div_",
    "true_divide", "divide", "multiply", "subtract", "maximum", "minimum", "fmax", "fmin",
    "where", "clamp", "clamp_", "clip", "clip_", "clamp_min", "clamp_max", "clamp_min_",
    "clamp_max_", "pow", "__pow__", "__rpow__", "pow_", "eq", "ne", "lt", "le", "gt", "ge",
    "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "logical_and", "logical_or",
    "logical_not", "__and__", "__or__", "__invert__", "addcmul", "addcdiv", "lerp", "hypot",
    "atan2", "remainder", "fmod", "copysign", "__mod__", "xlogy", "float_power", "square_",
    "bitwise_and", "bitwise_or",
}
#: the output is a constant (a new tensor of the input's shape / dtype)
CONSTANT = {"zeros_like", "ones_like", "full_like", "empty_like", "rand_like", "randn_like",
            "randint_like", "new_zeros", "new_ones", "new_full", "new_empty", "new_tensor",
            "empty_strided_like"}
#: ops whose non-first tensor arguments only give a shape or a dtype
SHAPE_ARGS = {"view_as", "reshape_as", "expand_as", "type_as", "to", "new_zeros", "new_ones",
              "new_full", "new_empty"}
#: ops with a traced argument that return metadata, not values
METADATA = {
    "size", "dim", "ndimension", "numel", "nelement", "element_size", "stride", "storage_offset",
    "is_contiguous", "is_floating_point", "is_complex", "is_signed", "get_device", "__len__",
    "data_ptr", "__format__", "__repr__", "__str__", "__hash__", "_assert", "shape.__get__",
    "ndim.__get__", "dtype.__get__", "device.__get__", "is_cuda.__get__", "requires_grad.__get__",
    "layout.__get__", "grad_fn.__get__", "is_sparse.__get__", "names.__get__",
    "is_quantized.__get__", "is_meta.__get__", "is_nested.__get__", "itemsize.__get__",
    "nbytes.__get__", "is_leaf.__get__", "_version.__get__", "output_nr.__get__",
    "is_mkldnn.__get__", "is_mps.__get__", "is_xpu.__get__", "is_inference", "has_names",
    "is_set_to", "sym_size", "_assert_async", "is_same_size",
}
#: the scalar argument (position, keyword) of ops that write a constant into some elements
VALUE_ARG = {"pad": (3, "value"), "constant_pad_nd": (2, "value"), "__setitem__": (2, "value"),
             "masked_fill": (2, "value"), "masked_fill_": (2, "value"),
             "index_fill": (3, "value"), "index_fill_": (3, "value"), "scatter": (3, "value"),
             "scatter_": (3, "value"), "fill_": (1, "value")}
#: the most (output element, input element) pairs one op may list
MAX_ENTRIES = 50_000_000

_PREFIXES = ("torch.nn.functional.", "torch.Tensor.", "torch._C._nn.", "torch._C._special.",
             "torch._C._VariableFunctions.", "torch._C._TensorBase.", "torch._C.TensorBase.",
             "torch.")


@dataclass(frozen=True)
class Op:
    """One structural operation: ``out = kind(inputs…)`` over value ids.

    Kinds: ``conv``, ``linear``, ``pool`` (window, adaptive, global or an explicit ``table`` of
    rows and columns), ``reshape`` (same elements, same order), ``add`` (two values of one shape)
    and ``gather``: output element ``i`` reads the elements ``idx[ptr[i]:ptr[i+1]]`` of the
    concatenation of the inputs' elements (each input flattened in C order).
    """

    kind: str
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


def op_name(func: Any) -> str:
    """The short, overload-free name of a torch function, method, property or ``aten`` op."""
    if type(func).__name__ == "OpOverload":  # torch.ops.aten.<name>.<overload> (torch.export)
        return str(func.name()).split("::", 1)[-1].split(".", 1)[0]
    name = resolve_name(func) or getattr(func, "__name__", repr(func))
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


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


def _map_args(obj: Any, fn: Callable[[Any], Any]) -> Any:
    """``obj`` with every leaf replaced by ``fn(leaf)`` (lists, tuples and dicts rebuilt)."""
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, list):
        return [_map_args(x, fn) for x in obj]
    if isinstance(obj, tuple) and not isinstance(obj, torch.Size):
        items = [_map_args(x, fn) for x in obj]
        return type(obj)(*items) if hasattr(obj, "_fields") else tuple(items)
    if isinstance(obj, dict):
        return {k: _map_args(v, fn) for k, v in obj.items()}
    return obj


def _csr_single(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSR of a map where output element ``i`` reads element ``ids[i]`` (none when -1)."""
    valid = ids >= 0
    ptr = np.concatenate([[0], np.cumsum(valid)]).astype(np.int64)
    return ptr, ids[valid].astype(np.int64)


def _groups(shape: tuple[int, ...], dims: Sequence[int]) -> np.ndarray:
    """Element ids of a C-order tensor of ``shape`` as rows (kept dims) × columns (``dims``)."""
    nd = len(shape)
    red = sorted({d % nd for d in dims})
    keep = [d for d in range(nd) if d not in red]
    ids = np.arange(math.prod(shape), dtype=np.int64).reshape(shape)
    size = math.prod(shape[d] for d in red)
    return ids.transpose(keep + red).reshape(-1, size)


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
        self.keep_named: list[torch.Tensor] = []  # computed weights, kept so ids stay unique
        for n, b in model.named_buffers():
            self.param_names.setdefault(id(b), n)
        self.weighted_modules = {
            id(m) for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)
        }
        self.current_weighted: list[nn.Module] = []
        self.weights: dict[int, torch.Tensor] = {}  # op index -> weight tensor
        self.names_used: dict[str, int] = {}
        self.storages: dict[int, list[weakref.ref[torch.Tensor]]] = {}  # storage ptr -> tensors
        self.poisoned: dict[int, weakref.ref[torch.Tensor]] = {}  # data-dependent indices
        self.failed_in: str | None = None
        self.func: Callable[..., Any] = lambda *a, **k: None  # the op being recorded

    # -- bookkeeping ------------------------------------------------------------------------
    def new_value(self, t: torch.Tensor) -> int:
        v = len(self.shapes)
        if t.dim() < 1 or t.shape[0] != 1:
            raise UnsupportedLayer(self.where, "batch", "an op changed the batch dimension")
        self.shapes[v] = tuple(int(s) for s in t.shape[1:])
        self.values[id(t)] = v
        self.keep.append(t)
        return v

    def value_for(self, t: torch.Tensor) -> int:
        """A new value held by tensor ``t`` (an in-place op: the same object, a new value)."""
        self.values.pop(id(t), None)
        return self.new_value(t)

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

    def layer_name(self, weight: torch.Tensor, kind: str) -> tuple[str, str]:
        """(unique name of this call, the layer it belongs to): ``b#1`` is layer ``b`` again."""
        if self.current_weighted:
            name = self.module_names[id(self.current_weighted[-1])]
        else:
            pname = self.param_names.get(id(weight))
            name = pname.rsplit(".", 1)[0] if pname else f"{self.where or 'fn'}.{kind}"
        n = self.names_used.get(name, 0)
        self.names_used[name] = n + 1
        return (name if n == 0 else f"{name}#{n}"), name

    def name_computed(self, args: Any, kwargs: Any, out: Any) -> None:
        """A tensor computed from a named parameter (``weight_orig * weight_mask`` in a pruned or
        exported model) is named after it, so its layer keeps the module's name."""
        if not isinstance(out, torch.Tensor) or id(out) in self.param_names:
            return
        for t in _tensors((args, kwargs)):
            pname = self.param_names.get(id(t))
            if pname is not None:
                for suffix in ("_orig", "_mask"):
                    pname = pname.removesuffix(suffix)
                self.param_names[id(out)] = pname
                self.keep_named.append(out)
                return

    def register(self, out: Any) -> None:
        """Remember which tensors share memory, to catch writes that change another tensor."""
        for t in _tensors(out):
            if t.numel():
                refs = self.storages.setdefault(t.untyped_storage().data_ptr(), [])
                refs[:] = [r for r in refs if r() is not None]
                if all(r() is not t for r in refs):
                    refs.append(weakref.ref(t))

    def shares_memory(self, t: torch.Tensor) -> bool:
        if t._base is not None:
            return True
        refs = self.storages.get(t.untyped_storage().data_ptr(), [])
        return any(r() is not None and r() is not t for r in refs)

    # -- the hook ------------------------------------------------------------------------------
    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        ins = self.tracked(args, kwargs)
        name = op_name(func) if ins or self.poisoned else ""
        for t in _tensors((args, kwargs)):
            ref = self.poisoned.get(id(t))
            if ref is not None and ref() is t and name not in METADATA:
                raise UnsupportedLayer(self.where, name, "it uses pooling indices, which depend "
                                       "on the input's values; the graph cannot encode that")
        try:
            out = func(*args, **kwargs)
        except MgedbError:
            raise
        except Exception:
            if self.failed_in is None:
                self.failed_in = self.where
            raise
        self.register(out)
        if not ins:
            self.name_computed(args, kwargs, out)
            return out
        self.func = func
        if name in WRITES:
            self.record_write(name, args, kwargs, ins)
            return out
        if isinstance(out, tuple | list) and any(True for _ in _tensors(out)):
            if name in POOL_TUPLES:
                for extra in list(_tensors(out))[1:]:
                    self.poisoned[id(extra)] = weakref.ref(extra)
                self.record(name, args, kwargs, ins, out[0])
            elif name in REARRANGE:
                self.record_rearrange(name, args, kwargs, ins, list(out))
            else:
                raise UnsupportedLayer(
                    self.where, name, "it returns several tensors (like max/min with dim=, sort, "
                    "topk, LSTM/GRU), which the graph cannot encode; rewrite the forward without it"
                )
            return out
        if not isinstance(out, torch.Tensor):
            if name not in METADATA:
                raise UnsupportedLayer(
                    self.where, name, "a traced value leaves torch here (item, tolist, numpy, "
                    "bool, …), so what depends on it cannot be followed; keep the computation in "
                    "torch tensor ops"
                )
            return out
        self.record(name, args, kwargs, ins, out)
        return out

    def record(self, name: str, args: Any, kwargs: dict[str, Any],
               ins: list[tuple[torch.Tensor, int]], out: torch.Tensor) -> None:
        if "out" in kwargs and kwargs["out"] is not None:
            raise UnsupportedLayer(self.where, name, "out= arguments are not supported")
        if name in SHAPE_ARGS:
            ins = [p for p in ins if p[0] is _arg(args, kwargs, 0, "input", None)] or ins[:1]
        first_t, first = ins[0]
        self_arg = _arg(args, kwargs, 0, "input", None)
        inplace = out is self_arg  # an in-place op returns its first argument
        if name in CONSTANT:
            return
        if name in ACCUMULATE:
            raise UnsupportedLayer(self.where, name, "it accumulates several elements into one "
                                   "in place; write it as an explicit sum")
        if name in UNARY or (name in NARY and len(ins) == 1 and out.shape == first_t.shape):
            if len(ins) > 1 or (name in UNARY and first_t is not self_arg):
                raise UnsupportedLayer(self.where, name, "a traced tensor is passed as a "
                                       "parameter (weight, statistics) of an element-wise op")
            if out.shape != first_t.shape:
                raise UnsupportedLayer(self.where, name, "element-wise op changed the shape")
            if inplace and out is not first_t and self.shares_memory(out):
                raise UnsupportedLayer(self.where, name, "an in-place op into a tensor that "
                                       "shares memory with another one (a view or slice of it)")
            v = self.value_for(out) if inplace else self.new_value(out)
            self.alias[v] = first
            return
        if name in NARY:
            self.record_broadcast(name, args, kwargs, ins, out, inplace)
            return
        if name in CONV:
            self.record_conv(name, args, kwargs, first, out)
            return
        if name in LINEAR:
            w = _arg(args, kwargs, 1, "weight", None)
            self.check_params(name, ins, first_t)
            unique, layer = self.layer_name(w, "linear")
            self.add_op("linear", (first,), out,
                        {"weight_shape": tuple(w.shape), "name": unique, "layer": layer}, w)
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
        if name in REDUCE:
            self.record_reduce(name, args, kwargs, first_t, first, out)
            return
        if name in RESHAPE:
            if out.shape[0] != first_t.shape[0]:
                raise UnsupportedLayer(self.where, name, "reshape across the batch dimension")
            if inplace:
                raise UnsupportedLayer(self.where, name, "in-place reshape")
            self.add_op("reshape", (first,), out, {})
            return
        if name in REARRANGE:
            self.record_rearrange(name, args, kwargs, ins, [out])
            return
        if name in NORMALIZE:
            self.record_normalize(name, args, kwargs, ins, out)
            return
        if name in INTERPOLATE:
            self.record_interpolate(name, args, kwargs, ins, out)
            return
        raise UnsupportedLayer(self.where, name)

    # -- weighted layers ----------------------------------------------------------------------
    def check_params(self, name: str, ins: list[tuple[torch.Tensor, int]],
                     first_t: torch.Tensor) -> None:
        if len(ins) > 1:
            raise UnsupportedLayer(self.where, name, "its weight or bias is computed from the "
                                   "input (a dynamic weight), which the graph cannot encode")
        if not first_t.is_floating_point():
            raise UnsupportedLayer(self.where, name, f"input of dtype {first_t.dtype}")

    def record_conv(self, name: str, args: Any, kwargs: dict[str, Any], first: int,
                    out: torch.Tensor) -> None:
        x, w = _arg(args, kwargs, 0, "input", None), _arg(args, kwargs, 1, "weight", None)
        self.check_params(name, self.tracked(args, kwargs), x)
        groups = int(_arg(args, kwargs, 6, "groups", 1))
        stride = _pair(_arg(args, kwargs, 3, "stride", 1))
        dilation = _pair(_arg(args, kwargs, 5, "dilation", 1))
        padding_arg = _arg(args, kwargs, 4, "padding", 0)
        if isinstance(padding_arg, str):
            if padding_arg == "valid":
                padding = (0, 0)
            elif padding_arg == "same":
                # PyTorch pads d·(k−1) in total per dim, the smaller half before: the row read by
                # output y with tap a is y − ⌊d·(k−1)/2⌋ + a·d, exactly as with that int padding
                kh, kw = w.shape[2:]
                padding = ((dilation[0] * (kh - 1)) // 2, (dilation[1] * (kw - 1)) // 2)
            else:
                raise UnsupportedLayer(self.where, name, f"string padding {padding_arg!r}")
        else:
            padding = _pair(padding_arg)
        unique, layer = self.layer_name(w, "conv")
        params = {"weight_shape": tuple(w.shape), "stride": stride, "padding": padding,
                  "dilation": dilation, "groups": groups, "name": unique, "layer": layer}
        self.add_op("conv", (first,), out, params, w)

    # -- reductions and mixing ----------------------------------------------------------------
    def record_reduce(self, name: str, args: Any, kwargs: dict[str, Any], first_t: torch.Tensor,
                      first: int, out: torch.Tensor) -> None:
        dims = _arg(args, kwargs, 1, "dim", None)
        nd = first_t.dim()
        if dims is None or isinstance(dims, torch.dtype) or (
                isinstance(dims, list | tuple) and not dims):
            dims = tuple(range(nd))
        dims = (dims,) if isinstance(dims, int) else tuple(int(d) for d in dims)
        red = sorted({d % nd for d in dims})
        if 0 in red:
            raise UnsupportedLayer(self.where, name, "a reduction over the batch dimension")
        if nd == 4 and red == [2, 3]:
            self.add_op("pool", (first,), out, {"mode": "global"})
            return
        groups = _groups(tuple(first_t.shape), red)
        if groups.shape[0] != out.numel():
            raise UnsupportedLayer(self.where, name, "unexpected reduction output")
        ptr = np.arange(groups.shape[0] + 1, dtype=np.int64) * groups.shape[1]
        self.add_gather((first,), out, ptr, groups.ravel(), name)

    def record_normalize(self, name: str, args: Any, kwargs: dict[str, Any],
                         ins: list[tuple[torch.Tensor, int]], out: torch.Tensor) -> None:
        x_t, x = ins[0]
        if len(ins) > 1 or out.shape != x_t.shape:
            raise UnsupportedLayer(self.where, name, "a traced tensor as a normalisation "
                                   "parameter" if len(ins) > 1 else "it changed the shape")
        shape, nd = tuple(x_t.shape), x_t.dim()
        if name == "layer_norm":
            ns = _arg(args, kwargs, 1, "normalized_shape", None)
            k = 1 if isinstance(ns, int) else len(ns)
            groups = _groups(shape, range(nd - k, nd))
        elif name in ("group_norm", "instance_norm"):
            g = int(_arg(args, kwargs, 1, "num_groups", 1)) if name == "group_norm" else shape[1]
            ids = np.arange(x_t.numel(), dtype=np.int64)
            groups = ids.reshape(g, -1)  # batch 1: channel groups are contiguous blocks
        else:
            dim = (_arg(args, kwargs, 2, "dim", 1) if name == "normalize"
                   else _arg(args, kwargs, 1, "dim", None))
            if dim is None:
                raise UnsupportedLayer(self.where, name, "give dim= explicitly")
            if int(dim) % nd == 0:
                raise UnsupportedLayer(self.where, name, "normalising over the batch dimension")
            groups = _groups(shape, [int(dim)])
        n, size = groups.shape
        if n * size * size > MAX_ENTRIES:
            raise UnsupportedLayer(self.where, name, f"every output reads {size} inputs: "
                                   f"{n * size * size:,} entries, too many to encode")
        row_of = np.empty(x_t.numel(), dtype=np.int64)
        row_of[groups.ravel()] = np.repeat(np.arange(n, dtype=np.int64), size)
        ptr = np.arange(x_t.numel() + 1, dtype=np.int64) * size
        self.add_gather((x,), out, ptr, groups[row_of].ravel(), name)

    def record_interpolate(self, name: str, args: Any, kwargs: dict[str, Any],
                           ins: list[tuple[torch.Tensor, int]], out: torch.Tensor) -> None:
        """Interpolation is separable: the rows it reads × the columns it reads, per pixel.

        Both are found by running the op itself on probes (a one-hot row or column per channel),
        so every mode, ``align_corners`` and ``scale_factor`` rounding is exactly PyTorch's.
        """
        x_t, x = ins[0]
        if len(ins) > 1 or x_t.dim() != 4:
            raise UnsupportedLayer(self.where, name, "only 2-d interpolation of one traced value")
        _, c, h, w = x_t.shape
        ho, wo = out.shape[2:]
        rows = torch.zeros(1, h, h, w)
        rows[0, torch.arange(h), torch.arange(h), :] = 1.0
        cols = torch.zeros(1, w, h, w)
        cols[0, torch.arange(w), :, torch.arange(w)] = 1.0
        rest = args[1:]
        r_out = self.func(rows, *rest, **kwargs)[0, :, :, 0] != 0  # (h, ho)
        c_out = self.func(cols, *rest, **kwargs)[0, :, 0, :] != 0  # (w, wo)

        def table(m: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
            a = m.T.numpy()  # (out, in)
            k = max(int(a.sum(1).max()), 1)
            order = np.argsort(~a, axis=1, kind="stable")[:, :k]
            return order.astype(np.int64), np.take_along_axis(a, order, 1)

        (rr, rv), (cc, cv) = table(r_out), table(c_out)
        assert rr.shape[0] == ho and cc.shape[0] == wo and c == out.shape[1]
        self.add_op("pool", (x,), out, {"mode": "table", "rows": rr, "rvalid": rv, "cols": cc,
                                        "cvalid": cv})

    # -- moves, writes, broadcasts ------------------------------------------------------------
    def id_args(self, name: str, args: Any, kwargs: dict[str, Any],
                ins: list[tuple[torch.Tensor, int]]) -> tuple[Any, dict[str, Any]]:
        """``args`` with each traced tensor replaced by its element ids + 1 (offset per input)
        and each floating constant by zeros: running the op on them tells who moved where."""
        offsets, total = {}, 0
        for t, _ in ins:
            offsets[id(t)] = total
            total += t.numel()
        if total >= 2**52:
            raise UnsupportedLayer(self.where, name, "too many elements")

        def swap(t: torch.Tensor) -> torch.Tensor:
            if id(t) in offsets:
                if not t.is_floating_point():
                    raise UnsupportedLayer(self.where, name, f"a traced {t.dtype} tensor as an "
                                           "argument (data-dependent indexing or masking)")
                return (torch.arange(t.numel(), dtype=torch.float64) + (offsets[id(t)] + 1)
                        ).reshape(t.shape)
            if t.is_floating_point():
                return torch.zeros(t.shape, dtype=torch.float64)
            return t

        new_args = list(_map_args(tuple(args), swap))
        new_kwargs = _map_args(dict(kwargs), swap)
        if name in WRITES and id(args[0]) not in offsets:  # a constant target: no contributors
            new_args[0] = torch.zeros(args[0].shape, dtype=torch.float64)
        if name in VALUE_ARG:
            pos, key = VALUE_ARG[name]
            if key in new_kwargs:
                if not isinstance(new_kwargs[key], torch.Tensor):
                    new_kwargs[key] = 0.0 if new_kwargs[key] is not None else None
            elif len(new_args) > pos and not isinstance(new_args[pos], torch.Tensor):
                new_args[pos] = 0.0
        return tuple(new_args), new_kwargs

    def run_ids(self, name: str, args: Any, kwargs: dict[str, Any],
                ins: list[tuple[torch.Tensor, int]]) -> tuple[Any, Any]:
        id_args, id_kwargs = self.id_args(name, args, kwargs, ins)
        func = self.func
        try:
            res = func(*id_args, **id_kwargs)
        except Exception as e:  # pragma: no cover - the real op just ran with these arguments
            raise UnsupportedLayer(self.where, name, f"cannot follow its elements ({e})") from None
        return id_args, res

    def record_rearrange(self, name: str, args: Any, kwargs: dict[str, Any],
                         ins: list[tuple[torch.Tensor, int]], outs: list[torch.Tensor]) -> None:
        if name == "scatter" and _arg(args, kwargs, 4, "reduce", None) is not None:
            raise UnsupportedLayer(self.where, name, "scatter with reduce=")
        if name == "index_put" and _arg(args, kwargs, 3, "accumulate", False):
            raise UnsupportedLayer(self.where, name, "index_put with accumulate=True")
        if name in SHAPE_ARGS:
            ins = ins[:1]
        _, res = self.run_ids(name, args, kwargs, ins)
        id_outs = list(_tensors(res))
        if len(id_outs) != len(outs):  # pragma: no cover - same op, same arguments
            raise UnsupportedLayer(self.where, name, "cannot follow its elements")
        for t, ids in zip(outs, id_outs, strict=True):
            if any(t is s for s, _ in ins):
                raise UnsupportedLayer(self.where, name, "an in-place move")
            self.add_moved(name, ins, t, ids)

    def record_write(self, name: str, args: Any, kwargs: dict[str, Any],
                     ins: list[tuple[torch.Tensor, int]]) -> None:
        target = args[0]
        if name == "scatter_" and _arg(args, kwargs, 4, "reduce", None) is not None:
            raise UnsupportedLayer(self.where, name, "scatter_ with reduce=")
        if name == "index_put_" and _arg(args, kwargs, 3, "accumulate", False):
            raise UnsupportedLayer(self.where, name, "index_put_ with accumulate=True")
        if self.shares_memory(target):
            raise UnsupportedLayer(
                self.where, name, "an in-place write into a tensor that shares memory with "
                "another one (a view, slice or reshape of it), which would change both; write "
                "into a fresh tensor or use torch.cat"
            )
        id_args, _ = self.run_ids(name, args, kwargs, ins)
        self.add_moved(name, ins, target, id_args[0], replace=True)

    def add_moved(self, name: str, ins: list[tuple[torch.Tensor, int]], out: torch.Tensor,
                  ids_t: torch.Tensor, replace: bool = False) -> None:
        ids_f = ids_t.detach().reshape(-1).numpy()
        ids = ids_f.astype(np.int64) - 1
        if not np.array_equal(ids + 1, ids_f) or ids.max(initial=-1) >= sum(
                t.numel() for t, _ in ins):  # pragma: no cover - a move keeps the ids
            raise UnsupportedLayer(self.where, name, "it computes new values")
        if len(ins) == 1 and len(ids) == ins[0][0].numel() and np.array_equal(
                ids, np.arange(len(ids))):
            v = self.value_for(out) if replace else self.new_value(out)
            self.ops.append(Op("reshape", (ins[0][1],), v, self.where, {}))
            return
        ptr, idx = _csr_single(ids)
        if len(idx) == 0:  # every element overwritten by constants: a constant again
            self.values.pop(id(out), None)
            return
        self.add_gather(tuple(v for _, v in ins), out, ptr, idx, name, replace)

    def record_broadcast(self, name: str, args: Any, kwargs: dict[str, Any],
                         ins: list[tuple[torch.Tensor, int]], out: torch.Tensor,
                         inplace: bool) -> None:
        """Element ``i`` of an element-wise op of several traced tensors reads element ``i`` of
        each operand after broadcasting (``a * s`` with ``s`` of shape (C, 1, 1): all of s[c])."""
        if inplace and self.shares_memory(out):
            raise UnsupportedLayer(self.where, name, "an in-place op into a tensor that shares "
                                   "memory with another one (a view or slice of it)")
        if len(ins) == 2 and name in ADD and ins[0][0].shape == ins[1][0].shape == out.shape:
            (_, a), (_, b) = ins
            if _arg(args, kwargs, 2, "alpha", 1) != 1:
                raise UnsupportedLayer(self.where, name, "add with alpha != 1")
            self.add_op("add", (a, b), out, {}, replace=inplace)
            return
        shape = tuple(out.shape)
        cols, offset = [], 0
        for t, _ in ins:
            ids = np.arange(t.numel(), dtype=np.int64).reshape(tuple(t.shape))
            try:
                cols.append(np.broadcast_to(ids, shape).ravel() + offset)
            except ValueError:
                raise UnsupportedLayer(self.where, name, "operands do not broadcast to its "
                                       "output") from None
            offset += t.numel()
        idx = np.stack(cols, axis=1).ravel()
        ptr = np.arange(len(cols[0]) + 1, dtype=np.int64) * len(cols)
        self.add_gather(tuple(v for _, v in ins), out, ptr, idx, name, inplace)

    def add_gather(self, inputs: tuple[int, ...], out: torch.Tensor, ptr: np.ndarray,
                   idx: np.ndarray, name: str, replace: bool = False) -> None:
        if len(idx) > MAX_ENTRIES:
            raise UnsupportedLayer(self.where, name, f"it mixes {len(idx):,} (output, input) "
                                   "pairs, too many to encode")
        v = self.value_for(out) if replace else self.new_value(out)
        self.ops.append(Op("gather", inputs, v, self.where, {"ptr": ptr, "idx": idx, "op": name}))

    def add_op(self, kind: str, inputs: tuple[int, ...], out: torch.Tensor,
               params: dict[str, Any], weight: torch.Tensor | None = None,
               replace: bool = False) -> None:
        v = self.value_for(out) if replace else self.new_value(out)
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


def trace_model(model: nn.Module, input_shape: tuple[int, ...] = (3, 32, 32)
                ) -> tuple[Trace, dict[int, np.ndarray]]:
    """Run ``model`` once (eval mode, no grad): its trace and each weighted op's weight."""
    tracer = _Tracer(model)
    handles = []
    for m in model.modules():
        handles.append(m.register_forward_pre_hook(tracer.pre_hook))
        handles.append(m.register_forward_hook(tracer.post_hook))
    was_training = model.training
    set_training(model, False)
    x = torch.zeros((1, *input_shape))
    try:
        tracer.new_value(x)
        with torch.no_grad(), tracer:
            y = model(x)
    except MgedbError:
        raise
    except Exception as e:
        where = tracer.failed_in if tracer.failed_in is not None else tracer.where
        lines = str(e).strip().splitlines()
        why = f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__
        shape = ",".join(str(s) for s in input_shape)
        raise ModelRunError(
            f"model {type(model).__name__} cannot run on input shape {shape}: layer "
            f"{where or '<top level>'!r} failed ({why}); give the input shape it expects "
            "(--input-shape C,H,W)"
        ) from None
    finally:
        for h in handles:
            h.remove()
        set_training(model, was_training)
    if not isinstance(y, torch.Tensor) or id(y) not in tracer.values:
        raise UnsupportedLayer("", "output", "the model must return one traced tensor")
    for i, w in tracer.weights.items():
        if not w.is_floating_point():
            name = tracer.ops[i].params["name"]
            raise MgedbError(f"layer {name!r} has {w.dtype} weights; the encoder needs floating "
                             "point weights (load the checkpoint into a float model)")
    weights = {i: w.float().numpy() for i, w in tracer.weights.items()}
    trace = Trace(shapes=tracer.shapes, ops=tracer.ops, output=tracer.values[id(y)],
                  alias=tracer.alias)
    return trace, weights
