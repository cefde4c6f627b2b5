"""Bad input that used to get through (issue #11, item 4): unwritable output paths, a NaN weight
reaching the eigensolvers, an absurd ``--classes`` — each one line ``Error: …``, exit code 2,
nothing written — and writes through a symlink / into a stream (item 6)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from store_fixtures import TINY_EDGES, TINY_PARTS, tiny_graph
from typer.testing import CliRunner

from mgedb.atomic import atomic_write
from mgedb.cli import app
from mgedb.errors import MetricError, OutputPathError
from mgedb.graph import Graph, save_graph
from mgedb.metrics import compute_mge_metrics

runner = CliRunner()


@pytest.fixture
def graph_file(tmp_path: Path) -> Path:
    return save_graph(tmp_path / "g.npz", tiny_graph())


def _one_line_exit_2(res: object, starts: str) -> None:
    out = res.output  # type: ignore[attr-defined]
    assert res.exit_code == 2, out  # type: ignore[attr-defined]
    assert out.startswith(f"Error: {starts}"), out
    assert out.count("\n") == 1, out


def _bad_paths(root: Path) -> dict[str, tuple[Path, str]]:
    return {
        "under a file": (root / "g.npz" / "x", "is a file, not a folder"),
        "a directory": (root, "is a directory; give a file name"),
    }


@pytest.mark.parametrize("case", ["under a file", "a directory"])
@pytest.mark.parametrize("command", ["encode", "export", "prune", "predict-train"])
def test_an_unwritable_output_file_is_refused_before_any_work(graph_file: Path, command: str,
                                                             case: str) -> None:
    root = graph_file.parent
    out, message = _bad_paths(root)[case]
    args = {
        "encode": ["encode", str(root / "missing.pt"), "-m", "resnet20", "-o", str(out)],
        "export": ["export", str(graph_file), "--edges", str(out)],
        "prune": ["prune", "-m", "resnet20", "--pruner", "er", "--sparsity", "0.9", "-o",
                  str(out)],
        "predict-train": ["predict", "train", "--out", str(out)],
    }[command]
    flag = {"encode": "--out", "export": "--edges", "prune": "--out",
            "predict-train": "--out"}[command]
    res = runner.invoke(app, args)
    _one_line_exit_2(res, f"{flag} {out}")
    assert message in res.output
    assert sorted(p.name for p in root.iterdir()) == ["g.npz"]  # nothing written


def test_a_study_folder_under_a_file_is_refused_before_any_work(graph_file: Path) -> None:
    out, db = graph_file / "study", graph_file.parent / "db"
    res = runner.invoke(app, ["study", "--quick", "--out", str(out), "--db", str(db)])
    _one_line_exit_2(res, f"--out {out}: {graph_file} is a file, not a folder")
    assert not db.exists()


def test_a_write_that_fails_late_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    try:
        target = Path("/proc/mgedb-test.npz") if os.geteuid() == 0 else ro / "x.npz"
        with pytest.raises(OutputPathError, match=r"cannot write there .*choose another"), \
                atomic_write(target) as fh:
            fh.write(b"never")
        assert not target.exists() and list(ro.iterdir()) == []
    finally:
        os.chmod(ro, 0o700)


def test_edges_to_dev_stdout_stream_and_a_symlink_is_written_through(graph_file: Path,
                                                                    tmp_path: Path) -> None:
    code = "import sys; from mgedb.cli import app; app(sys.argv[1:], prog_name='mgedb')"
    done = subprocess.run([sys.executable, "-c", code, "export", str(graph_file), "--edges",
                           "/dev/stdout"], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout[:2] == b"PK"  # the .npz (a zip) came down the pipe
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "edges.npz"
    target.write_bytes(b"old")
    link = tmp_path / "link.npz"
    link.symlink_to(target)
    res = runner.invoke(app, ["export", str(graph_file), "--edges", str(link)])
    assert res.exit_code == 0, res.output
    assert link.is_symlink() and link.resolve() == target.resolve()
    with np.load(target) as z:
        assert z["src"].tolist() == tiny_graph().src.tolist()


def _nan_graph() -> Graph:
    s, d, w, k = zip(*TINY_EDGES, strict=True)
    w = list(w)
    w[3] = float("nan")
    return Graph.from_edges(s, d, w, [4, 3, 2], kind=k, encoding="mge", partitions=TINY_PARTS)


def test_a_nan_weight_never_reaches_the_eigensolver(tmp_path: Path) -> None:
    g = _nan_graph()
    with pytest.raises(MetricError, match=r"1 edges have a NaN or infinite weight .*spectral_gap"):
        compute_mge_metrics(g)
    unweighted = compute_mge_metrics(g, only=["n_components", "cut_edges"])
    assert unweighted["n_components"] == 3 and unweighted["cut_edges"] == 4
    path = save_graph(tmp_path / "nan.npz", g)
    res = runner.invoke(app, ["metrics", str(path)])
    _one_line_exit_2(res, "1 edges have a NaN or infinite weight (the first: node ")
    assert "--only" in res.output


def test_the_spectral_functions_refuse_a_nan_matrix_too() -> None:
    import scipy.sparse as sp

    from mgedb.metrics import spectral

    a = sp.csr_matrix(np.array([[0, np.nan], [np.nan, 0]], dtype=np.float32))
    for f in (spectral.spectral_gap, spectral.spectral_radius):
        with pytest.raises(MetricError, match="NaN or infinite weights"):
            f(a)


@pytest.mark.parametrize("command", [
    ["encode", "missing.pt", "-m", "resnet20", "-o", "x.npz"],
    ["prune", "-m", "resnet20", "--pruner", "er", "--sparsity", "0.9", "-o", "x.pt"],
])
@pytest.mark.parametrize("classes", ["0", "1000000000"])
def test_absurd_classes_are_refused_before_anything_is_built(tmp_path: Path, command: list[str],
                                                             classes: str,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, [*command, "--classes", classes])
    _one_line_exit_2(res, f"--classes {classes}: give the number of classes of the dataset, "
                          "from 1 to 100,000")
    assert list(tmp_path.iterdir()) == []
