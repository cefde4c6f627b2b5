"""The one atomic writer: all-or-nothing for files, through symlinks, streaming into devices."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mgedb.atomic import atomic_write, write_json


def test_a_failed_write_leaves_the_old_content_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_write(target) as fh:
        fh.write(b"half")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_a_new_file_gets_the_umask_mode_and_parents(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.json"
    write_json(target, {"x": 1, "p": Path("q")})
    assert target.read_text() == '{\n  "x": 1,\n  "p": "q"\n}'
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask


def test_a_symlink_is_written_through_and_stays_a_link(tmp_path: Path) -> None:
    real = tmp_path / "real.txt"
    real.write_text("old")
    real.chmod(0o640)
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    with atomic_write(link, "w") as fh:
        fh.write("new")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == "new" and real.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.txt", "real.txt"]


def test_a_stream_is_written_into_not_replaced(tmp_path: Path) -> None:
    code = ("from mgedb.atomic import atomic_write\n"
            "with atomic_write('/dev/stdout', 'w') as fh:\n    fh.write('streamed')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=tmp_path)
    assert out.stdout == "streamed"
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    with atomic_write(fifo) as fh:
        fh.write(b"through the pipe")
    assert reader.communicate(timeout=30)[0] == b"through the pipe"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]
