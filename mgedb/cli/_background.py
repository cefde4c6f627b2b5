"""Run one function in a forked child while this process does other work (the CLI's start-up).

``mgedb metrics CKPT`` needs torch to load and encode the checkpoint and numba/SciPy for the
metrics; each costs seconds of single-threaded importing and loading. :func:`start` forks before
either is imported: the child imports torch and encodes while this process loads the metric
kernels, and the child's result comes back through a pipe — the pickle with its large arrays sent
out of band (pickle protocol 5), read straight into their final buffers, no second copy.

Where ``fork`` is unavailable, one CPU is all there is, or a module the child would need is
already loaded here (torch: a forked child cannot use the OpenMP threads its parent started), the
function runs in this process when its result is asked for: the same result, only later.
"""

from __future__ import annotations

import os
import pickle
import struct
import sys
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from mgedb.errors import MgedbError

__all__ = ["Pending", "start"]

T = TypeVar("T")
_HEADER = struct.Struct("<?QQ")  # ok?, pickle length, number of out-of-band buffers
_LENGTH = struct.Struct("<Q")


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data):]


def _read_into(fd: int, buf: memoryview) -> None:
    while buf:
        n = os.readv(fd, [buf])
        if n == 0:
            raise EOFError
        buf = buf[n:]


def _read(fd: int, n: int) -> bytearray:
    out = bytearray(n)
    _read_into(fd, memoryview(out))
    return out


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a :class:`MgedbError` with its message (an error
    class whose ``__init__`` takes other arguments than its message cannot be unpickled)."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # any failure to round-trip: send the message instead
        err = MgedbError(str(exc))
        err.exit_code = getattr(exc, "exit_code", MgedbError.exit_code)
        return err


def _child(fd: int, fn: Callable[[], Any]) -> None:
    ok, value = True, None
    try:
        value = fn()
    except BaseException as exc:
        ok, value = False, _portable(exc)
    buffers: list[pickle.PickleBuffer] = []
    try:
        data = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    except Exception as exc:
        ok, buffers = False, []
        data = pickle.dumps(RuntimeError(f"background result cannot be pickled: {exc}"))
    raws = [b.raw() for b in buffers]
    _write_all(fd, memoryview(_HEADER.pack(ok, len(data), len(raws))))
    _write_all(fd, memoryview(b"".join(_LENGTH.pack(r.nbytes) for r in raws)))
    _write_all(fd, memoryview(data))
    for r in raws:
        _write_all(fd, r)


class Pending(Generic[T]):
    """A result being computed in a child process (or, without one, on demand)."""

    def __init__(self, fn: Callable[[], T]) -> None:
        self._fn: Callable[[], T] | None = fn
        self._pid: int | None = None
        self._fd: int | None = None

    def _fork(self) -> None:
        assert self._fn is not None
        read, write = os.pipe()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        pid = os.fork()
        if pid == 0:  # the child: compute, send, leave without running the parent's exit hooks
            os.close(read)
            code = 0
            try:
                _child(write, self._fn)
            except BaseException:
                code = 1
            finally:
                for stream in (sys.stdout, sys.stderr):
                    stream.flush()
                os._exit(code)
        os.close(write)
        self._pid, self._fd, self._fn = pid, read, None

    def result(self) -> T:
        """The function's value, or its exception raised here."""
        if self._fn is not None:  # never forked
            fn, self._fn = self._fn, None
            return fn()
        assert self._fd is not None and self._pid is not None
        try:
            ok, size, count = _HEADER.unpack(_read(self._fd, _HEADER.size))
            lengths = [_LENGTH.unpack_from(_read(self._fd, _LENGTH.size))[0]
                       for _ in range(count)]
            data = _read(self._fd, size)
            buffers = [_read(self._fd, n) for n in lengths]
        except EOFError:
            status = self._close()
            raise MgedbError(f"the background process ended without a result ({status}); run "
                             "again, and check free memory if it was killed") from None
        finally:
            self._close()
        # read-only, as the arrays were in the child (a Graph's arrays are; numba compiles
        # read-only and writable arrays as different signatures)
        value = pickle.loads(data, buffers=[memoryview(b).toreadonly() for b in buffers])
        if not ok:
            raise value
        return value

    def _close(self) -> str:
        """Close the pipe, reap the child; how it ended."""
        how = "no child"
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._pid is not None:
            _, status = os.waitpid(self._pid, 0)
            self._pid = None
            how = (f"killed by signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
                   else f"exit status {os.WEXITSTATUS(status)}")
        return how

    def cancel(self) -> None:
        """Stop the child (if any) and forget the result."""
        if self._pid is not None:
            import signal

            os.kill(self._pid, signal.SIGKILL)
        self._close()
        self._fn = None


def start(fn: Callable[[], T], *, unless_loaded: tuple[str, ...] = ("torch",)) -> Pending[T]:
    """Begin ``fn()`` in a forked child when this machine offers ``fork`` and two CPUs and none
    of ``unless_loaded`` is imported yet; else ``fn`` runs at :meth:`Pending.result`."""
    pending = Pending(fn)
    if (hasattr(os, "fork") and _usable_cpus() > 1
            and not any(m in sys.modules for m in unless_loaded)):
        pending._fork()
    return pending
