"""Where a network comes from: what ``--model`` names, resolved to an ``nn.Module``.

* a zoo name (``resnet20``, ``conv6`` …, see :mod:`mgedb.models`), built for ``classes``;
* ``path/to/file.py:factory`` or ``package.module:factory``: a callable returning an ``nn.Module``,
  called with the ``--model-arg k=v`` keyword arguments (values read as Python literals, else
  strings);
* a ``torch.export`` archive (``.pt2``): structure and weights, no code to import;
* a TorchScript archive: its weights only, loaded into a factory or zoo model of the same structure
  (the TorchScript interpreter runs its ops out of the tracer's sight);
* a full pickled ``nn.Module`` (``torch.save(model)``), only with ``allow_pickle=True`` because
  unpickling runs code; it is used as the model itself.

Every problem is one line naming the source and the fix (:class:`~mgedb.errors.UnknownModel`).
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib
import importlib.util
import sys
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mgedb.errors import ModelRunError, UnknownModel

if TYPE_CHECKING:
    from torch import nn

__all__ = ["DEFAULT_INPUT_SHAPE", "SELF_CONTAINED", "ModelSpec", "archive_kind",
           "build", "check_runs", "exported_input", "parse_input_shape", "parse_model_args",
           "parse_model_spec", "reinitialise", "require_input", "resolve", "seeded",
           "set_training", "strip_prune_hooks", "unexport"]

#: the example input the encoder traces with unless told otherwise (CIFAR size)
DEFAULT_INPUT_SHAPE = (3, 32, 32)

Kind = Literal["zoo", "file", "module", "export", "torchscript", "pickle"]
#: sources that carry their own weights
SELF_CONTAINED = ("export", "pickle")


@dataclass(frozen=True)
class ModelSpec:
    """A parsed ``--model``: its kind, target (zoo key, file or module path) and factory."""

    kind: Kind
    target: str
    factory: str = ""
    args: tuple[tuple[str, Any], ...] = ()

    @property
    def label(self) -> str:
        """How the model is recorded (the store key, metadata): the spec as the user wrote it."""
        base = f"{self.target}:{self.factory}" if self.factory else self.target
        if self.args:
            base += "(" + ",".join(f"{k}={v!r}" for k, v in self.args) + ")"
        return base

    @property
    def is_zoo(self) -> bool:
        return self.kind == "zoo"


def parse_input_shape(text: str | Sequence[int]) -> tuple[int, int, int]:
    """``"3,32,32"`` (or a sequence) → ``(3, 32, 32)``; one line naming the value otherwise."""
    parts = [p.strip() for p in text.replace("x", ",").split(",")] if isinstance(text, str) \
        else [str(p) for p in text]
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        dims = ()
    if len(dims) != 3 or min(dims) < 1:
        raise UnknownModel(f"--input-shape {text!r}: expected C,H,W, three positive integers "
                           "(e.g. 3,32,32)")
    return (dims[0], dims[1], dims[2])


def set_training(model: nn.Module, training: bool) -> None:
    """``model.train(training)``; a ``torch.export`` program keeps the mode it was exported in."""
    with contextlib.suppress(NotImplementedError):
        model.train(training)


def parse_model_args(items: Sequence[str]) -> tuple[tuple[str, Any], ...]:
    """``["depth=18", "name=x"]`` → ``(("depth", 18), ("name", "x"))``."""
    out: list[tuple[str, Any]] = []
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise UnknownModel(f"--model-arg {item!r}: expected NAME=VALUE (e.g. num_classes=10)")
        try:
            value: Any = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        out.append((key, value))
    return tuple(out)


def archive_kind(path: Path) -> Literal["export", "torchscript", "torch"] | None:
    """What a zip archive written by torch holds (None: not a zip archive)."""
    if not zipfile.is_zipfile(path):
        return None
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    parts = [n.split("/", 1)[-1] for n in names]
    if any(p.startswith(("models/", "serialized_exported_program")) or p == "archive_format"
           for p in parts) and path.suffix == ".pt2":
        return "export"
    if any(p.startswith("code/") or p == "constants.pkl" for p in parts):
        return "torchscript"
    return "torch"


def parse_model_spec(text: str, model_args: Sequence[str] = ()) -> ModelSpec:
    """Parse what ``--model`` names (see the module docstring)."""
    args = parse_model_args(model_args)
    text = text.strip()
    if not text:
        raise UnknownModel("--model is empty; give a zoo name, file.py:factory, "
                           "package.module:factory or a .pt2 archive")
    if text.endswith(")") and ":" in text and "(" in text.rpartition(":")[2]:
        text, args = _split_label(text, args)  # a recorded label: module:factory(k=v, …)
    head, sep, factory = text.rpartition(":")
    if sep and factory.isidentifier() and head:
        kind: Kind = "file" if head.endswith(".py") or "/" in head or "\\" in head else "module"
        return ModelSpec(kind, head, factory, args)
    path = Path(text)
    if path.suffix == ".pt2" or (path.suffix and path.is_file()):
        if args:
            raise UnknownModel(f"--model-arg applies to a factory, not to the archive {text}")
        if not path.is_file():
            raise UnknownModel(f"{text}: no such model archive")
        kind_of = archive_kind(path)
        if path.suffix == ".pt2":
            if kind_of != "export":
                raise UnknownModel(f"{text}: not a torch.export archive (write it with "
                                   "torch.export.save(torch.export.export(model, (x,)), path))")
            return ModelSpec("export", str(path))
        return ModelSpec("torchscript" if kind_of == "torchscript" else "pickle", str(path))
    if args:
        raise UnknownModel(f"--model-arg applies to a factory (file.py:fn or module:fn), not to "
                           f"the zoo model {text!r}")
    from mgedb.models import canonical_name

    return ModelSpec("zoo", canonical_name(text))


def resolve(model: str | ModelSpec | None, model_args: Sequence[str] = (),
            checkpoint: Path | None = None) -> ModelSpec:
    """The model of a command: ``--model`` (+ ``--model-arg``), or — without ``--model`` — the
    checkpoint itself when it is a ``torch.export`` archive (structure and weights)."""
    if isinstance(model, ModelSpec):
        return model
    if model is not None:
        return parse_model_spec(model, model_args)
    if checkpoint is not None and checkpoint.suffix == ".pt2" and checkpoint.is_file():
        return parse_model_spec(str(checkpoint), model_args)
    where = f"{checkpoint}: " if checkpoint is not None else ""
    raise UnknownModel(f"{where}a checkpoint needs --model (a zoo name such as resnet20, "
                       "file.py:factory, package.module:factory or a .pt2 archive)")


def seeded(spec: ModelSpec, classes: int, seed: int, *, allow_pickle: bool = False
           ) -> tuple[nn.Module, Any]:
    """A fresh model initialised under ``seed`` and a generator continuing that random stream.

    Zoo models: :func:`mgedb.models.seeded_model`; factories: their own initialisation; an
    archive (``.pt2``, a pickled module): its structure, with any pruning hooks removed and
    re-initialised like the zoo (:func:`reinitialise`), since it carries no initialisation code.
    """
    import torch

    from mgedb.models import seeded_model

    if spec.kind == "zoo":
        return seeded_model(spec.target, classes, seed)
    if spec.kind == "torchscript":
        raise UnknownModel(f"--model {spec.label}: a TorchScript archive cannot be pruned or "
                           "encoded (its ops run out of the tracer's sight); give the "
                           "architecture as file.py:factory, module:factory or a .pt2 from "
                           "torch.export")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build(spec, classes=classes, allow_pickle=allow_pickle)
        if spec.kind not in ("file", "module"):
            reinitialise(net)
        gen = torch.Generator()
        gen.set_state(torch.get_rng_state())
    from torch import nn

    if not any(isinstance(m, nn.Conv2d | nn.Linear) for m in net.modules()):
        raise UnknownModel(f"--model {spec.label}: no Conv2d or Linear layer to prune")
    return net, gen


def reinitialise(model: nn.Module) -> None:
    """Drop ``torch.nn.utils.prune`` hooks (their masks are folded in) and re-initialise under
    the global RNG: conv/linear weights Kaiming-normal and biases zero (the zoo's
    :func:`mgedb.models.init_weights`), norm layers reset (weight 1, bias 0, fresh running
    statistics). Other parameters keep their values."""
    from torch import nn

    from mgedb.models import init_weights

    strip_prune_hooks(model)
    init_weights(model)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._NormBase | nn.LayerNorm | nn.GroupNorm):
            m.reset_parameters()


def strip_prune_hooks(model: nn.Module) -> nn.Module:
    """Fold every ``torch.nn.utils.prune`` hook into its weight (``weight = weight_orig *
    weight_mask``, a plain parameter again, registered before the bias); returns the model."""
    import torch.nn.utils.prune as tprune

    for m in model.modules():
        for hook in list(m._forward_pre_hooks.values()):
            if isinstance(hook, tprune.BasePruningMethod):
                name = hook._tensor_name
                tprune.remove(m, name)
                m._parameters = {name: m._parameters.pop(name), **m._parameters}
    return model


def exported_input(model: nn.Module) -> tuple[int | None, ...] | None:
    """The input shape a ``torch.export`` program was traced for, None where a dimension is
    dynamic (None for every other model: it runs at any shape its layers allow)."""
    import torch

    graph = getattr(model, "graph", None)
    for node in graph.nodes if graph is not None else ():
        if node.op == "placeholder":
            val = node.meta.get("val")
            if not isinstance(val, torch.Tensor):
                return None
            return tuple(d if isinstance(d, int) else None for d in val.shape)
    return None


def require_input(model: nn.Module, spec: ModelSpec, why: str,
                  shape: tuple[int, int, int] = DEFAULT_INPUT_SHAPE, *, batches: bool = True
                  ) -> None:
    """One line when an exported program cannot take what ``why`` feeds it: images of ``shape``
    and (``batches``) more than the one batch size it may have been traced with."""
    got = exported_input(model)
    if got is None:
        return
    fix = "torch.export.export(model, (x,), dynamic_shapes=({0: torch.export.Dim('batch')},))"
    if len(got) != 4 or any(g is not None and g != s for g, s in zip(got[1:], shape,
                                                                       strict=False)):
        dims = ",".join("?" if g is None else str(g) for g in got[1:])
        raise UnknownModel(f"--model {spec.label}: exported for inputs {dims}, but {why} feeds "
                           f"{','.join(map(str, shape))} images; re-export it with x of that "
                           f"shape: {fix}")
    if batches and got[0] is not None:
        raise UnknownModel(f"--model {spec.label}: exported with a fixed batch size of "
                           f"{got[0]}, but {why} feeds batches; re-export it with a dynamic "
                           f"batch: {fix} (x with batch size 2 or more)")


def check_runs(model: nn.Module, spec: ModelSpec, shape: tuple[int, int, int]) -> None:
    """One line naming the model, the shape and the layer that failed when ``model`` cannot run
    on a ``(1, *shape)`` input (eval mode, no grad; the mode is restored)."""
    import torch

    stack: list[str] = []
    failed: list[str] = []
    names = {id(m): n for n, m in model.named_modules()}

    def pre(m: nn.Module, args: Any) -> None:
        stack.append(names.get(id(m), type(m).__name__))

    def post(m: nn.Module, args: Any, out: Any) -> None:
        stack.pop()

    handles = [h for m in model.modules()
               for h in (m.register_forward_pre_hook(pre), m.register_forward_hook(post))]
    was_training = model.training
    set_training(model, False)
    try:
        with torch.no_grad():
            model(torch.zeros((1, *shape)))
    except Exception as e:  # any failure of the user's forward is reported
        failed = [s for s in stack if s] or ["<top level>"]
        lines = str(e).strip().splitlines()
        why = f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__
        raise ModelRunError(
            f"model {spec.label} cannot run on input shape {','.join(map(str, shape))}: layer "
            f"{failed[-1]!r} failed ({why}); give the input shape it expects "
            "(--input-shape C,H,W)") from None
    finally:
        for h in handles:
            h.remove()
        set_training(model, was_training)


def _split_label(text: str, args: tuple[tuple[str, Any], ...]
                 ) -> tuple[str, tuple[tuple[str, Any], ...]]:
    """``pkg.mod:fn(a=1, b='x')`` (as :attr:`ModelSpec.label` writes it) → text and arguments."""
    cut = text.index("(", text.rindex(":"))
    try:
        call = ast.parse(f"f{text[cut:]}", mode="eval").body
        assert isinstance(call, ast.Call) and not call.args
        inline = tuple((str(k.arg), ast.literal_eval(k.value)) for k in call.keywords)
    except (SyntaxError, ValueError, AssertionError):
        raise UnknownModel(f"--model {text!r}: expected module:factory(name=literal, …)") from None
    return text[:cut], inline + args


def _factory(spec: ModelSpec) -> Any:
    if spec.kind == "file":
        path = Path(spec.target)
        if not path.is_file():
            raise UnknownModel(f"--model {spec.label}: no such file {path}")
        name = "mgedb_user_model_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
        loader = importlib.util.spec_from_file_location(name, path)
        if loader is None or loader.loader is None:
            raise UnknownModel(f"--model {spec.label}: {path} is not a Python file")
        module = importlib.util.module_from_spec(loader)
        sys.modules[name] = module
        try:
            loader.loader.exec_module(module)
        except Exception as e:
            del sys.modules[name]
            raise UnknownModel(f"--model {spec.label}: importing {path} failed "
                               f"({type(e).__name__}: {e})") from None
    else:
        try:
            module = importlib.import_module(spec.target)
        except Exception as e:
            raise UnknownModel(f"--model {spec.label}: cannot import {spec.target!r} "
                               f"({type(e).__name__}: {e})") from None
    fn = getattr(module, spec.factory, None)
    if fn is None or not callable(fn):
        raise UnknownModel(f"--model {spec.label}: {spec.target} has no callable "
                           f"{spec.factory!r}")
    return fn


def build(spec: ModelSpec, *, classes: int | None = None, allow_pickle: bool = False
          ) -> nn.Module:
    """A model for ``spec``: fresh for zoo names and factories, as saved for archives.

    ``classes`` sizes a zoo model (default 10); a factory is called with exactly the
    ``--model-arg`` keywords (``--model-arg num_classes=10`` for torchvision's).
    """
    import torch
    from torch import nn

    if spec.kind == "zoo":
        from mgedb.models import build_model

        return build_model(spec.target, 10 if classes is None else classes)
    if spec.kind in ("file", "module"):
        fn = _factory(spec)
        kwargs = dict(spec.args)
        try:
            model = fn(**kwargs)
        except Exception as e:
            raise UnknownModel(f"--model {spec.label}: calling {spec.factory}(…) failed "
                               f"({type(e).__name__}: {e})") from None
        if not isinstance(model, nn.Module):
            raise UnknownModel(f"--model {spec.label}: {spec.factory}() returned a "
                               f"{type(model).__name__}, not an nn.Module")
        return model
    path = Path(spec.target)
    if spec.kind == "export":
        try:
            program = torch.export.load(path).module()
        except Exception as e:
            raise UnknownModel(f"{path}: cannot load the torch.export archive "
                               f"({type(e).__name__}: {e})") from None
        return unexport(program)
    if spec.kind == "torchscript":
        raise UnknownModel(
            f"{path}: a TorchScript archive runs in the TorchScript interpreter, out of the "
            "tracer's sight, so it cannot name the structure; give the architecture with --model "
            "(file.py:factory, module:factory or a .pt2 from torch.export) and the archive as the "
            "checkpoint (its weights are read)"
        )
    if not allow_pickle:
        raise UnknownModel(f"{path}: a pickled model; re-run with --allow-pickle only if you "
                           "trust the file, since unpickling runs code")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise UnknownModel(f"{path}: cannot unpickle ({type(e).__name__}: {e})") from None
    if not isinstance(obj, nn.Module):
        raise UnknownModel(f"{path}: holds a {type(obj).__name__}, not a pickled nn.Module; "
                           "give the architecture with --model and this file as the checkpoint")
    return obj


def unexport(program: Any) -> nn.Module:
    """A ``torch.export`` program (``ExportedProgram.module()``) with its layers as modules again.

    Every ``aten.conv2d`` / ``aten.linear`` / ``aten.batch_norm`` / ``aten.dropout`` call whose
    parameters are the program's own (``<path>.weight`` …, ``<path>.weight_orig`` times
    ``<path>.weight_mask`` for a model exported with ``torch.nn.utils.prune`` hooks) becomes a call
    of an ``nn.Conv2d`` / ``nn.Linear`` / ``nn.BatchNorm*d`` / ``nn.Dropout`` at ``<path>``, holding
    the very same tensors (the hooks are put back). So the program prunes, trains (``.train()``
    works, batch norm follows the mode) and loads checkpoints like the model it was exported
    from; every other op stays as exported. The forward computes exactly what the program did.
    """
    import torch
    import torch.nn.utils.prune as tprune
    from torch import fx, nn

    aten = torch.ops.aten
    graph: fx.Graph = program.graph
    # torch's own deprecation, raised on every copy of the program's pytree spec (the pruners
    # deep-copy the model): not the user's to act on
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)",
                            category=FutureWarning)

    def fetch(target: str) -> Any:
        obj = program
        for part in target.split("."):
            obj = getattr(obj, part)
        return obj

    def attr(node: Any) -> str | None:
        ok = isinstance(node, fx.Node) and node.op == "get_attr" and isinstance(node.target, str)
        return str(node.target) if ok else None

    def weight_of(node: Any) -> tuple[str, str | None] | None:
        """(``<path>.weight``-like target, mask target or None) of a layer's weight argument."""
        if (t := attr(node)) is not None:
            return t, None
        if isinstance(node, fx.Node) and node.op == "call_function" and \
                node.target is aten.mul.Tensor and len(node.args) == 2:
            def strip(n: Any) -> Any:
                return n.args[0] if isinstance(n, fx.Node) and n.op == "call_function" and \
                    n.target is aten.to.dtype else n
            a, b = node.args
            for orig, mask in ((attr(a), attr(strip(b))), (attr(b), attr(strip(a)))):
                if orig is not None and mask is not None and orig.endswith(".weight_orig") \
                        and mask == orig[: -len("_orig")] + "_mask":
                    return orig, mask
        return None

    modules: dict[str, nn.Module] = {}
    signature: dict[str, tuple[Any, ...]] = {}
    used_masks: set[str] = set()
    n_dropout = 0

    def claim(path: str, key: tuple[Any, ...]) -> bool:
        """Whether ``path`` may hold the module of this call (a repeated call must match)."""
        if path in signature:
            return signature[path] == key
        if not path or any(p == path or p.startswith(path + ".") or path.startswith(p + ".")
                           for p in signature):
            return False
        signature[path] = key
        return True

    def layer(node: fx.Node) -> nn.Module | None:
        nonlocal n_dropout
        args: tuple[Any, ...] = tuple(node.args)
        fn = node.target
        if fn in (aten.conv2d.default, aten.conv2d.padding, aten.linear.default):
            conv = fn is not aten.linear.default
            got = weight_of(args[1])
            bias = attr(args[2]) if len(args) > 2 and args[2] is not None else None
            if got is None or (len(args) > 2 and args[2] is not None and bias is None):
                return None
            wname, mname = got
            path = wname.removesuffix(".weight_orig").removesuffix(".weight")
            if path == wname or (bias is not None and bias != f"{path}.bias"):
                return None
            w = fetch(wname)
            if not isinstance(w, nn.Parameter):
                return None
            key = (fn, *(_plain(a) for a in args[3:]), bias is not None)
            if path in modules:
                return modules[path] if claim(path, key) else None
            m: nn.Module
            if conv:
                default: tuple[Any, ...] = (1, 0 if fn is aten.conv2d.default else "valid", 1, 1)
                given: tuple[Any, ...] = _plain(args[3:])
                stride, padding, dilation, groups = (*given, *default[len(given):])
                m = nn.Conv2d(w.shape[1] * groups, w.shape[0], _two(tuple(w.shape[2:])),
                              stride=_two(stride), padding=_two(padding),
                              dilation=_two(dilation), groups=groups, bias=bias is not None)
            else:
                m = nn.Linear(w.shape[1], w.shape[0], bias=bias is not None)
            if not claim(path, key):
                return None
            m._parameters.clear()  # the program's own tensors, in the module's order
            m.weight = w
            m.bias = fetch(bias) if bias is not None else None
            if mname is not None:
                tprune.custom_from_mask(m, "weight", fetch(mname))
                used_masks.add(mname)
            modules[path] = m
            return m
        if fn is aten.batch_norm.default:
            names = [attr(a) for a in args[1:5]]
            if any(n is None for n in names) or len(args) < 8:
                return None
            path = str(names[0]).removesuffix(".weight")
            if names != [f"{path}.{k}" for k in ("weight", "bias", "running_mean",
                                                 "running_var")]:
                return None
            val = args[0].meta.get("val") if isinstance(args[0], fx.Node) else None
            dims = val.dim() if isinstance(val, torch.Tensor) else 4
            cls = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}
            if dims not in cls or not claim(path, (fn, *_plain(args[6:8]))):
                return None
            weight = fetch(f"{path}.weight")
            bn = cls[dims](weight.shape[0], eps=float(args[7]), momentum=float(args[6]))
            for k, v in zip(("weight", "bias"), (weight, fetch(f"{path}.bias")), strict=True):
                delattr(bn, k)
                setattr(bn, k, v)
            for k in ("running_mean", "running_var", "num_batches_tracked"):
                with contextlib.suppress(AttributeError):
                    bn.register_buffer(k, fetch(f"{path}.{k}"))
            modules[path] = bn
            return bn
        if fn is aten.dropout.default and len(args) >= 2:
            path = f"dropout_{n_dropout}"
            n_dropout += 1
            modules[path] = nn.Dropout(float(args[1]))
            return modules[path]
        return None

    for node in list(graph.nodes):
        if node.op != "call_function":
            continue
        module = layer(node)
        if module is None:
            continue
        path = next(p for p, m in modules.items() if m is module)
        with graph.inserting_before(node):
            new = graph.create_node("call_module", path, (node.args[0],))
        new.meta = dict(node.meta)
        node.replace_all_uses_with(new)
        graph.erase_node(node)
    for node in reversed(list(graph.nodes)):  # what only the replaced calls read
        mask_check = node.op == "call_function" and attr(node.args[0]) in used_masks and \
            node.target is aten._assert_tensor_metadata.default
        if mask_check or (not node.users and (node.op == "get_attr" or (
                node.op == "call_function" and node.target in (aten.to.dtype, aten.mul.Tensor)))):
            graph.erase_node(node)
    root: dict[str, Any] = dict(modules)
    for node in graph.nodes:
        if node.op in ("get_attr", "call_module") and node.target not in root:
            root[node.target] = fetch(node.target)
    out = fx.GraphModule(root, graph, class_name=type(program).__name__.removesuffix("Impl"))
    rank = {k: i for i, k in enumerate(program.state_dict(keep_vars=True))}
    _reorder(out, "", rank)
    out.eval()
    return out


def _reorder(module: nn.Module, prefix: str, rank: dict[str, int]) -> float:
    """Register ``module``'s children in the order their tensors had in ``rank`` (the exported
    model's order, so layers are listed as in the model it was exported from); its first rank."""
    firsts = {name: _reorder(child, f"{prefix}{name}.", rank)
              for name, child in module._modules.items() if child is not None}
    order = sorted(module._modules, key=lambda n: firsts.get(n, float("inf")))
    module._modules = {n: module._modules[n] for n in order}
    own = [rank[f"{prefix}{n}"] for n in (*module._parameters, *module._buffers)
           if f"{prefix}{n}" in rank]
    return min([*own, *firsts.values()], default=float("inf"))


def _two(value: Any) -> Any:
    """A conv size as nn.Conv2d takes it: ``(a, b)`` from ``[a]``, ``[a, b]`` or ``a``; strings
    (``'same'``, ``'valid'``) as they are."""
    if isinstance(value, tuple | list):
        return (int(value[0]), int(value[-1]))
    return value


def _plain(value: Any) -> Any:
    """A call argument as a hashable plain value (lists → tuples)."""
    if isinstance(value, list | tuple):
        return tuple(_plain(v) for v in value)
    return value
