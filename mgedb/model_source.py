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
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mgedb.errors import UnknownModel

if TYPE_CHECKING:
    from torch import nn

__all__ = ["DEFAULT_INPUT_SHAPE", "SELF_CONTAINED", "ModelSpec", "archive_kind", "build",
           "parse_input_shape", "parse_model_args", "parse_model_spec", "resolve", "seeded",
           "set_training"]

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


def seeded(spec: ModelSpec, classes: int, seed: int) -> tuple[nn.Module, Any]:
    """A fresh model initialised under ``seed`` and a generator continuing that random stream
    (zoo models: :func:`mgedb.models.seeded_model`; factories: their own initialisation)."""
    import torch

    from mgedb.models import seeded_model

    if spec.kind == "zoo":
        return seeded_model(spec.target, classes, seed)
    if spec.kind not in ("file", "module"):
        raise UnknownModel(f"--model {spec.label}: pruning at initialisation needs a fresh model; "
                           "give its factory (file.py:factory or package.module:factory)")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build(spec, classes=classes)
        gen = torch.Generator()
        gen.set_state(torch.get_rng_state())
    return net, gen


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
            return torch.export.load(path).module()
        except Exception as e:
            raise UnknownModel(f"{path}: cannot load the torch.export archive "
                               f"({type(e).__name__}: {e})") from None
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
