"""The one way mgedb writes an output file: :func:`atomic_write` (and :func:`write_json` on it).

A reader never sees a half-written file: a regular file (or a path that does not exist yet) is
written to a temporary file in the same directory and renamed over the target only when the
``with`` block succeeds; on any error (Ctrl-C included) the temporary file is removed and the old
content stays. A symlink is written *through*: its target is replaced, the link stays a link.
Anything that is not a regular file (``/dev/stdout``, a named pipe, a character device) cannot be
renamed over, so it is opened and streamed into directly.

Part of the bottom layer with :mod:`mgedb.errors` and :mod:`mgedb.vocab`.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Literal, overload

__all__ = ["atomic_write", "write_json"]


def _target(path: Path) -> Path:
    """The file a write to ``path`` must change: a symlink's (final) target, else ``path``."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


@overload
def atomic_write(path: str | os.PathLike[str], mode: Literal["wb"] = "wb"
                 ) -> contextlib.AbstractContextManager[IO[bytes]]: ...
@overload
def atomic_write(path: str | os.PathLike[str], mode: Literal["w"]
                 ) -> contextlib.AbstractContextManager[IO[str]]: ...
def atomic_write(path: str | os.PathLike[str], mode: Literal["w", "wb"] = "wb"
                 ) -> contextlib.AbstractContextManager[IO[Any]]:
    """A context manager yielding a handle (``"wb"``: binary, ``"w"``: UTF-8 text) whose content
    replaces ``path`` atomically when the block exits cleanly (see the module docstring). Parent
    directories are created."""
    return _atomic_write(Path(path), mode)


@contextlib.contextmanager
def _atomic_write(path: Path, mode: str) -> Iterator[IO[Any]]:
    encoding = None if "b" in mode else "utf-8"
    try:
        st = path.stat()  # follows symlinks: what a write would reach
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):  # a stream or device: write into it
        with open(path, mode, encoding=encoding) as fh:
            yield fh
        return
    target = _target(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, encoding=encoding) as fh:
            yield fh
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, (st.st_mode & 0o7777) if st is not None else 0o666 & ~mask)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_json(path: str | os.PathLike[str], data: Any, *, indent: int | None = 2) -> None:
    """``data`` as JSON (non-JSON values as ``str``), written with :func:`atomic_write`."""
    with atomic_write(path, "w") as fh:
        json.dump(data, fh, indent=indent, default=str)
