"""The CLI's background child (mgedb.cli._background): values, errors, kills and the fallback,
and ``mgedb metrics CKPT`` giving the same numbers whether it encodes in a child or inline."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mgedb.cli import app
from mgedb.cli._background import start
from mgedb.errors import CheckpointError, MgedbError, UnsupportedLayer

FORK = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


@FORK
def test_a_forked_value_comes_back_bit_identical_and_read_only() -> None:
    rng = np.random.default_rng(0)
    big = rng.integers(0, 2**31 - 1, size=3_000_000, dtype=np.int32)
    small = rng.random(7, dtype=np.float32)
    pending = start(lambda: {"pid": os.getpid(), "big": big, "small": small, "t": ("x", 1)},
                    unless_loaded=())
    out: dict[str, Any] = pending.result()
    assert out["pid"] != os.getpid()  # computed in the child
    assert out["t"] == ("x", 1)
    for name, want in (("big", big), ("small", small)):
        assert out[name].dtype == want.dtype and np.array_equal(out[name], want)
        assert not out[name].flags.writeable


@FORK
def test_errors_cross_with_their_type_or_as_a_one_line_mgedb_error() -> None:
    def raise_(exc: BaseException) -> None:
        raise exc

    with pytest.raises(CheckpointError, match=r"^bad checkpoint$"):
        start(lambda: raise_(CheckpointError("bad checkpoint")), unless_loaded=()).result()
    with pytest.raises(ValueError, match="plain bug"):
        start(lambda: raise_(ValueError("plain bug")), unless_loaded=()).result()
    # UnsupportedLayer's __init__ takes (module, op, why): it cannot be unpickled, its message can
    want = str(UnsupportedLayer("features.3", "sort", "returns several tensors"))
    with pytest.raises(MgedbError) as info:
        start(lambda: raise_(UnsupportedLayer("features.3", "sort", "returns several tensors")),
              unless_loaded=()).result()
    assert str(info.value) == want and info.value.exit_code == 2


@FORK
def test_a_killed_child_is_a_clear_error() -> None:
    pending = start(lambda: os.kill(os.getpid(), signal.SIGKILL), unless_loaded=())
    with pytest.raises(MgedbError, match="killed by signal 9"):
        pending.result()


@FORK
def test_cancel_stops_the_child_and_reaps_it() -> None:
    pending = start(lambda: time.sleep(60), unless_loaded=())
    pid = pending._pid
    assert pid is not None
    t = time.perf_counter()
    pending.cancel()
    assert time.perf_counter() - t < 5
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # already reaped: no zombie left


def test_without_a_fork_it_runs_here_when_asked() -> None:
    # torch is imported in this process, and a forked child could not use its OpenMP threads
    assert "torch" in sys.modules
    calls: list[int] = []

    def work() -> int:
        calls.append(os.getpid())
        return 5

    pending = start(work)
    assert calls == [] and pending._pid is None
    assert pending.result() == 5 and calls == [os.getpid()]


MODEL = '''
from torch import nn


def make():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 8, 3, stride=2), nn.ReLU(), nn.Flatten(),
                         nn.Linear(8 * 7 * 7, 10))
'''


@FORK
def test_metrics_of_a_checkpoint_are_the_same_encoded_in_a_child_or_here(tmp_path: Path) -> None:
    (tmp_path / "tiny.py").write_text(MODEL)
    sys.path.insert(0, str(tmp_path))
    try:
        import tiny
    finally:
        sys.path.remove(str(tmp_path))
    torch.manual_seed(0)
    net = tiny.make()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_((torch.rand_like(p) > 0.6).float())
    ckpt = tmp_path / "tiny.pt"
    torch.save(net.state_dict(), ckpt)
    args = ["metrics", str(ckpt), "-m", f"{tmp_path / 'tiny.py'}:make", "-e", "mge", "-f", "json"]
    here = CliRunner().invoke(app, args)  # torch is loaded here: encoded inline
    assert here.exit_code == 0, here.output
    child = subprocess.run([sys.executable, "-c", "from mgedb.cli import app; app()", *args],
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr
    a, b = json.loads(here.stdout), json.loads(child.stdout)
    assert a == b and a["n_edges"] > 0


def test_the_cli_starts_without_the_heavy_libraries() -> None:
    """`mgedb --help` and the fork in `mgedb metrics CKPT` happen before torch, numba, SciPy,
    igraph or pandas are imported (each costs a fraction of a second to seconds)."""
    code = ("import sys; import mgedb.cli, mgedb.model_source, mgedb.metrics.registry; "
            "print(sorted(m for m in ('torch', 'numba', 'scipy', 'igraph', 'pandas', 'sklearn') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
