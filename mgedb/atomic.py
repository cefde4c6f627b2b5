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

from mgedb.errors import OutputPathError

__all__ = ["atomic_write", "check_writable", "write_json"]


def _refused(label: str, e: OSError) -> OutputPathError:
    return OutputPathError(f"{label}: cannot write there ({e.strerror or type(e).__name__}); "
                           "choose another output path")


def check_writable(path: str | os.PathLike[str], *, directory: bool = False,
                   option: str = "") -> Path:
    """Refuse, before any work is done, an output ``path`` that cannot be written: a directory
    where a file is wanted (or the other way round), a path under a file, a folder without write
    permission. Missing parent folders are fine (they are created). Returns ``path``."""
    p = Path(path)
    label = f"{option} {p}" if option else str(p)
    if p.is_dir() and not directory:
        raise OutputPathError(f"{label} is a directory; give a file name")
    if p.exists() and directory and not p.is_dir():
        raise OutputPathError(f"{label} exists and is not a directory; give a folder")
    if p.exists() and not p.is_dir():  # an existing file or stream: it must be writable itself
        if not os.access(p, os.W_OK):
            raise OutputPathError(f"{label}: no permission to write it; choose another path")
        return p
    probe = Path(os.path.abspath(p))
    while not probe.exists():  # the nearest existing ancestor is where the folders are created
        probe = probe.parent
    if not probe.is_dir():
        raise OutputPathError(f"{label}: {probe} is a file, not a folder; choose another path")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputPathError(f"{label}: no permission to write in {probe}; choose another path")
    return p


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
    label = str(path)
    try:
        st = path.stat()  # follows symlinks: what a write would reach
    except FileNotFoundError:
        st = None
    except OSError as e:  # e.g. a parent that is a file
        raise _refused(label, e) from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise OutputPathError(f"{label} is a directory; give a file name")
    if st is not None and not stat.S_ISREG(st.st_mode):  # a stream or device: write into it
        try:
            stream = open(path, mode, encoding=encoding)  # noqa: SIM115 (closed by `with`)
        except OSError as e:
            raise _refused(label, e) from None
        with stream as fh:
            yield fh
        return
    target = _target(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as e:
        raise _refused(label, e) from None
    try:
        with os.fdopen(fd, mode, encoding=encoding) as fh:
            yield fh
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, (st.st_mode & 0o7777) if st is not None else 0o666 & ~mask)
        try:
            os.replace(tmp, target)
        except OSError as e:
            raise _refused(label, e) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_json(path: str | os.PathLike[str], data: Any, *, indent: int | None = 2) -> None:
    """``data`` as JSON (non-JSON values as ``str``), written with :func:`atomic_write`."""
    with atomic_write(path, "w") as fh:
        json.dump(data, fh, indent=indent, default=str)
