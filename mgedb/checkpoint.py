"""Reading and writing checkpoints of zoo models.

Accepted formats:

* a plain state dict whose pruned weights are exactly zero (the reference format), read with
  ``torch.load(weights_only=True)``; the mask of a layer is ``weight != 0``;
* ``torch.nn.utils.prune`` state (``<layer>.weight_orig`` + ``<layer>.weight_mask``): the mask is
  the explicit one and the weight is ``weight_orig * weight_mask``;
* a dict with a ``state_dict`` (and optional ``masks`` / ``meta``) as written by
  :func:`save_checkpoint`;
* a full pickled ``nn.Module`` — only with ``allow_pickle=True``, because unpickling runs code.

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
from mgedb.models import build_model

__all__ = ["LoadedCheckpoint", "file_digest", "load_checkpoint", "prunable_layers",
           "save_checkpoint"]


@dataclass
class LoadedCheckpoint:
    """A zoo model with its weights loaded and one boolean mask per Conv2d/Linear weight."""

    model: nn.Module
    masks: dict[str, torch.Tensor]  # module path -> bool mask of its weight
    path: Path
    digest: str
    meta: dict[str, Any] = field(default_factory=dict)


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


def load_checkpoint(path: str | Path, model_name: str, *, classes: int = 10,
                    allow_pickle: bool = False) -> LoadedCheckpoint:
    """Load ``path`` into a fresh zoo model ``model_name`` and derive the masks."""
    path = Path(path)
    sd, meta = _state_dict(_read(path, allow_pickle), path)
    try:
        model = build_model(model_name, classes)
    except UnknownModel as e:
        raise UnknownModel(f"{e} (loading {path})") from None
    layers = prunable_layers(model)

    explicit: dict[str, torch.Tensor] = {}
    for name in layers:
        orig, mask = f"{name}.weight_orig", f"{name}.weight_mask"
        if mask in sd:
            m = sd.pop(mask)
            if not isinstance(m, torch.Tensor):
                raise CheckpointError(f"{path}: key {mask!r} is not a tensor; expected a 0/1 mask")
            if orig in sd:
                w = sd.pop(orig)
                if tuple(m.shape) != tuple(w.shape):
                    raise CheckpointError(
                        f"{path}: mask {mask} has shape {list(m.shape)}, expected "
                        f"{list(w.shape)} (the shape of {orig})"
                    )
                sd[f"{name}.weight"] = w * m
            explicit[name] = m
    expected = model.state_dict()
    missing = [k for k in expected if k not in sd]
    extra = [k for k in sd if k not in expected]
    if missing:
        k = missing[0]
        raise CheckpointError(
            f"{path}: missing key {k!r} (expected shape {list(expected[k].shape)}) for model "
            f"{model_name!r} with {classes} classes ({len(missing)} missing); check --model"
        )
    if extra:
        raise CheckpointError(
            f"{path}: unexpected key {extra[0]!r} ({len(extra)} extra) for model {model_name!r}; "
            "check --model"
        )
    for k, v in expected.items():
        if tuple(sd[k].shape) != tuple(v.shape):
            hint = " (check --classes)" if k.endswith(("linear.weight", "linear.bias", "fc.weight",
                                                       "fc.bias")) or ".6." in k else ""
            raise CheckpointError(
                f"{path}: key {k!r} has shape {list(sd[k].shape)}, expected {list(v.shape)}{hint}"
            )
        if sd[k].is_floating_point() and not bool(torch.isfinite(sd[k]).all()):
            raise CheckpointError(f"{path}: key {k!r} holds non-finite values (NaN or inf)")
    model.load_state_dict(sd)
    masks: dict[str, torch.Tensor] = {}
    for name, module in layers.items():
        if name in explicit:
            m = explicit[name]
            if tuple(m.shape) != tuple(module.weight.shape):
                raise CheckpointError(
                    f"{path}: mask {name}.weight_mask has shape {list(m.shape)}, expected "
                    f"{list(module.weight.shape)}"
                )
            masks[name] = m.bool()
            with torch.no_grad():
                module.weight.mul_(masks[name])
        else:
            masks[name] = module.weight.detach() != 0
    model.eval()
    return LoadedCheckpoint(model=model, masks=masks, path=path, digest=file_digest(path),
                            meta=meta)


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
