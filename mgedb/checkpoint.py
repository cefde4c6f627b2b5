"""Reading and writing checkpoints of any model ``--model`` names (:mod:`mgedb.model_source`).

Accepted formats:

* a plain state dict whose pruned weights are exactly zero (the reference format), read with
  ``torch.load(weights_only=True)``; the mask of a layer is ``weight != 0``;
* ``torch.nn.utils.prune`` state (``<layer>.weight_orig`` + ``<layer>.weight_mask``): the mask is
  the explicit one and the weight is ``weight_orig * weight_mask``;
* a dict with a ``state_dict`` (and optional ``masks`` / ``meta``) as written by
  :func:`save_checkpoint`;
* a full pickled ``nn.Module`` — only with ``allow_pickle=True``, because unpickling runs code;
* a TorchScript or ``torch.export`` archive (its state dict).

Keys with a ``module.`` (DataParallel) or ``_orig_mod.`` (``torch.compile``) prefix the model lacks
are accepted; masks must hold 0/1 only, and integer weights where the model has floats are refused.

Every problem is a :class:`CheckpointError` naming the file, the key and the expected shape.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mgedb.atomic import atomic_write, write_json
from mgedb.errors import CheckpointError, UnknownModel
from mgedb.model_source import ModelSpec

__all__ = ["LoadedCheckpoint", "file_digest", "load_checkpoint", "prunable_layers",
           "save_checkpoint"]


@dataclass
class LoadedCheckpoint:
    """A model with its weights loaded and one boolean mask per Conv2d/Linear weight."""

    model: nn.Module
    masks: dict[str, torch.Tensor]  # module path -> bool mask of its weight
    path: Path
    digest: str
    meta: dict[str, Any] = field(default_factory=dict)
    source: ModelSpec | None = None  # the --model it was loaded into


def prunable_layers(model: nn.Module) -> dict[str, nn.Conv2d | nn.Linear]:
    """Conv2d and Linear modules by path, in registration order (shortcut convs included)."""
    return {n: m for n, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)}


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _first_line(e: BaseException) -> str:
    """``Type: first line of the message`` (some errors, e.g. a bare EOFError, have no message)."""
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__


def _looks_like_torch_file(path: Path) -> bool:
    """A zip archive (``torch.save``'s format) or a pickle stream (its legacy format)."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    return head.startswith(b"PK") or head.startswith(b"\x80")


def _not_readable(path: Path) -> CheckpointError:
    return CheckpointError(
        f"{path}: not a readable torch checkpoint (neither a zip archive nor a pickle stream); "
        "expected a file written by torch.save(model.state_dict(), path): re-save the checkpoint"
    )


def _read(path: Path, allow_pickle: bool) -> Any:
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file (0 bytes), not a checkpoint; re-save the "
                              "checkpoint with torch.save(model.state_dict(), path)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if not _looks_like_torch_file(path):
            raise _not_readable(path) from None
        if not allow_pickle:
            raise CheckpointError(
                f"{path}: not a plain state dict (it holds pickled objects: {_first_line(e)}); "
                "re-run with --allow-pickle only if you trust the file, since unpickling runs code"
            ) from None
    except Exception as e:  # torch.load on damaged bytes fails in many ways (EOF, zip, index, …)
        raise CheckpointError(
            f"{path}: unreadable checkpoint ({_first_line(e)}); expected a torch.save'd state dict"
        ) from None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # unpickling arbitrary objects can fail in any way
        raise CheckpointError(f"{path}: cannot unpickle ({_first_line(e)})") from None


def _state_dict(obj: Any, path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    meta: dict[str, Any] = {}
    if isinstance(obj, nn.Module):
        return dict(obj.state_dict()), meta
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        meta = dict(obj.get("meta") or {})
        sd = dict(obj["state_dict"])
        for name, mask in (obj.get("masks") or {}).items():
            sd.setdefault(f"{name}.weight_mask", mask)
        return sd, meta
    if isinstance(obj, dict) and all(isinstance(k, str) for k in obj):
        bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
        if bad:
            raise CheckpointError(
                f"{path}: key {bad[0]!r} is not a tensor; expected a state dict of tensors"
            )
        return dict(obj), meta
    raise CheckpointError(
        f"{path}: holds a {type(obj).__name__}, not a state dict; save with "
        "torch.save(model.state_dict(), path)"
    )


def _read_state(path: Path, allow_pickle: bool) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The state dict (and metadata) of a checkpoint in any accepted format."""
    from mgedb.model_source import archive_kind

    if path.is_file() and archive_kind(path) == "torchscript":
        try:
            return dict(torch.jit.load(str(path), map_location="cpu").state_dict()), {}
        except Exception as e:  # a damaged archive fails in many ways
            raise CheckpointError(f"{path}: unreadable TorchScript archive "
                                  f"({_first_line(e)})") from None
    if path.is_file() and path.suffix == ".pt2" and archive_kind(path) == "export":
        try:
            return dict(torch.export.load(path).module().state_dict()), {}
        except Exception as e:
            raise CheckpointError(f"{path}: unreadable torch.export archive "
                                  f"({_first_line(e)})") from None
    return _state_dict(_read(path, allow_pickle), path)


_PREFIXES = ("module.", "_orig_mod.")


def _strip_prefixes(sd: dict[str, torch.Tensor], expected: Any) -> dict[str, torch.Tensor]:
    """Drop the ``module.`` (DataParallel) / ``_orig_mod.`` (torch.compile) prefix the model
    does not have."""
    for prefix in _PREFIXES:
        if sd and all(k.startswith(prefix) for k in sd) and not any(
                k.startswith(prefix) for k in expected):
            sd = {k[len(prefix):]: v for k, v in sd.items()}
    return sd


def _check_mask(path: Path, key: str, m: Any) -> torch.Tensor:
    if not isinstance(m, torch.Tensor):
        raise CheckpointError(f"{path}: key {key!r} is not a tensor; expected a 0/1 mask")
    if m.dtype != torch.bool and not bool(((m == 0) | (m == 1)).all()):
        bad = m[(m != 0) & (m != 1)].flatten()[0].item()
        raise CheckpointError(f"{path}: mask {key} holds values other than 0 and 1 (e.g. "
                              f"{bad!r}); a mask marks each weight kept (1) or pruned (0)")
    return m


def prunable_weights(model: nn.Module) -> list[str]:
    """Layer names whose ``<name>.weight`` is pruned: Conv2d/Linear modules, or (a model with no
    such modules, e.g. a ``torch.export`` program) every 2-d/4-d ``weight`` / ``weight_orig``."""
    layers = list(prunable_layers(model))
    if layers:
        return layers
    names = []
    for k, v in model.state_dict().items():
        for suffix in (".weight", ".weight_orig"):
            if k.endswith(suffix) and v.dim() in (2, 4):
                names.append(k[: -len(suffix)])
    return names


def load_checkpoint(path: str | Path, model_name: str | ModelSpec, *, classes: int = 10,
                    allow_pickle: bool = False) -> LoadedCheckpoint:
    """Load ``path`` into a fresh model of ``model_name`` (any ``--model`` source) and derive the
    masks. A self-contained source (a ``.pt2`` or pickled model) given as its own checkpoint is
    used as saved."""
    from mgedb.model_source import SELF_CONTAINED, build, parse_model_spec, set_training

    path = Path(path)
    spec = model_name if isinstance(model_name, ModelSpec) else parse_model_spec(model_name)
    own = spec.kind in SELF_CONTAINED and path.is_file() and Path(spec.target).is_file() and \
        Path(spec.target).resolve() == path.resolve()
    if own:
        try:
            model = build(spec, allow_pickle=allow_pickle)
        except UnknownModel as e:
            raise CheckpointError(str(e)) from None
        sd, meta = dict(model.state_dict()), dict[str, Any]()
    else:
        sd, meta = _read_state(path, allow_pickle)
        try:
            model = build(spec, classes=classes, allow_pickle=allow_pickle)
        except UnknownModel as e:
            raise UnknownModel(f"{e} (loading {path})") from None
    label = spec.label
    expected = model.state_dict()
    sd = _strip_prefixes(sd, expected)
    layers = prunable_weights(model)

    # the checkpoint's view: <layer>.weight (= weight_orig * weight_mask) and explicit masks
    explicit: dict[str, torch.Tensor] = {}
    for name in layers:
        orig, mask = f"{name}.weight_orig", f"{name}.weight_mask"
        if mask in sd:
            m = _check_mask(path, mask, sd.pop(mask))
            if orig in sd:
                w = sd.pop(orig)
                if not w.is_floating_point():
                    raise CheckpointError(
                        f"{path}: key {orig!r} holds {w.dtype} values where the model has "
                        "floating-point ones; save the floating-point weights"
                    )
                if tuple(m.shape) != tuple(w.shape):
                    raise CheckpointError(
                        f"{path}: mask {mask} has shape {list(m.shape)}, expected "
                        f"{list(w.shape)} (the shape of {orig})"
                    )
                sd[f"{name}.weight"] = w * m
            explicit[name] = m
    # the model's view: a pruned model (torch.nn.utils.prune hooks, or a .pt2 exported from one)
    # holds weight_orig + weight_mask where a plain one holds weight
    want: dict[str, torch.Tensor] = {}
    hooked: set[str] = set()
    for k, v in expected.items():
        if k.endswith(".weight_orig") and k[: -len("_orig")] + "_mask" in expected:
            want[k[: -len("_orig")]] = v
            hooked.add(k[: -len(".weight_orig")])
        elif not (k.endswith(".weight_mask") and k[: -len("_mask")] + "_orig" in expected):
            want[k] = v
    missing = [k for k in want if k not in sd]
    extra = [k for k in sd if k not in want]
    if missing:
        k = missing[0]
        raise CheckpointError(
            f"{path}: missing key {k!r} (expected shape {list(want[k].shape)}) for model "
            f"{label!r} with {classes} classes ({len(missing)} missing); check --model"
        )
    if extra:
        raise CheckpointError(
            f"{path}: unexpected key {extra[0]!r} ({len(extra)} extra) for model {label!r}; "
            "check --model"
        )
    for k, v in want.items():
        if tuple(sd[k].shape) != tuple(v.shape):
            hint = " (check --classes)" if k.endswith(("linear.weight", "linear.bias", "fc.weight",
                                                       "fc.bias")) or ".6." in k else ""
            raise CheckpointError(
                f"{path}: key {k!r} has shape {list(sd[k].shape)}, expected {list(v.shape)}{hint}"
            )
        if v.is_floating_point() and not sd[k].is_floating_point():
            raise CheckpointError(
                f"{path}: key {k!r} holds {sd[k].dtype} values where the model has {v.dtype} "
                "ones; save the floating-point weights (not quantised or integer ones)"
            )
        if sd[k].is_floating_point() and not bool(torch.isfinite(sd[k]).all()):
            raise CheckpointError(f"{path}: key {k!r} holds non-finite values (NaN or inf)")
    masks: dict[str, torch.Tensor] = {}
    for name in layers:
        w = sd[f"{name}.weight"]
        if name in explicit:
            m = explicit[name]
            if tuple(m.shape) != tuple(w.shape):
                raise CheckpointError(
                    f"{path}: mask {name}.weight_mask has shape {list(m.shape)}, expected "
                    f"{list(w.shape)}"
                )
            masks[name] = m.bool()
            sd[f"{name}.weight"] = w * masks[name]
        else:
            masks[name] = w.detach() != 0
    final = dict(sd)
    for name in hooked:
        w = final.pop(f"{name}.weight")
        final[f"{name}.weight_orig"] = w
        final[f"{name}.weight_mask"] = masks[name].to(expected[f"{name}.weight_mask"].dtype)
    if not own:
        model.load_state_dict(final)
    set_training(model, False)
    return LoadedCheckpoint(model=model, masks=masks, path=path, digest=file_digest(path),
                            meta=meta, source=spec)


def save_checkpoint(path: str | Path, model: nn.Module, *, meta: dict[str, Any] | None = None
                    ) -> Path:
    """Save a model's state dict in the reference format (pruned weights are zero).

    Metadata (pruner, sparsity, seed, densities, …) goes to a ``<path>.json`` sidecar so that the
    checkpoint itself stays a plain state dict that any tool (and the reference) can read.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as fh:
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, fh)
    if meta is not None:
        write_json(path.with_name(path.name + ".json"), meta)
    return path


def read_sidecar(path: str | Path) -> dict[str, Any]:
    """The metadata written next to a checkpoint by :func:`save_checkpoint` (empty if none)."""
    side = Path(str(path) + ".json")
    if not side.is_file():
        return {}
    try:
        data = json.loads(side.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{side}: malformed metadata JSON ({e})") from None
    return data if isinstance(data, dict) else {}
