"""The CLI with a researcher's own network: --model file.py:factory / module:factory with
--model-arg, a .pt2 archive, --input-shape; one ``Error:`` line for every bad input."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.utils.prune as prune
from typer.testing import CliRunner

from mgedb.cli import app
from mgedb.graph import load_graph
from mgedb.model_source import build, parse_model_spec

NET = textwrap.dedent('''
    import torch.nn.functional as F
    from torch import nn


    class Net(nn.Module):
        def __init__(self, width=4, num_classes=10):
            super().__init__()
            self.a = nn.Conv2d(3, width, 3, padding=1)
            self.b = nn.Conv2d(3, width, 1)
            self.c = nn.Conv2d(2 * width, width, 3, stride=2, padding=1)
            self.fc = nn.Linear(width, num_classes)

        def forward(self, x):
            h = torch_cat([F.relu(self.a(x)), self.b(x)])
            h = F.relu(self.c(h))
            return self.fc(F.adaptive_avg_pool2d(h, 1).flatten(1))


    def torch_cat(xs):
        import torch
        return torch.cat(xs, 1)


    def net(width=4, num_classes=10):
        return Net(width, num_classes)
''')


@pytest.fixture
def nets(tmp_path: Path) -> Path:
    path = tmp_path / "nets.py"
    path.write_text(NET)
    return path


pytestmark = pytest.mark.filterwarnings("ignore:The tensor attributes")  # export of a pruned net


def _pruned_checkpoint(nets: Path, tmp_path: Path, width: int = 4, export: bool = True
                       ) -> tuple[Path, Path]:
    torch.manual_seed(0)
    model = build(parse_model_spec(f"{nets}:net", [f"width={width}"])).eval()
    for m in (model.a, model.b, model.c, model.fc):
        prune.l1_unstructured(m, "weight", amount=0.6)
    ck = tmp_path / "net.pt"
    torch.save(model.state_dict(), ck)
    pt2 = tmp_path / "net.pt2"
    if export:
        torch.export.save(torch.export.export(model, (torch.zeros(1, 3, 16, 16),)), pt2)
    return ck, pt2


def run(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, list(args))
    return res.exit_code, res.stdout, res.stderr


def test_encode_metrics_ingest_a_factory_and_a_pt2(nets: Path, tmp_path: Path) -> None:
    ck, pt2 = _pruned_checkpoint(nets, tmp_path, width=6)
    g1, g2 = tmp_path / "g1.npz", tmp_path / "g2.npz"
    code, _, err = run("encode", str(ck), "-m", f"{nets}:net", "--model-arg", "width=6",
                       "--input-shape", "3,16,16", "-o", str(g1))
    assert code == 0, err
    code, _, err = run("encode", str(pt2), "--input-shape", "3,16,16", "-o", str(g2))
    assert code == 0, err
    a, b = load_graph(g1), load_graph(g2)
    assert (a.n_nodes, a.n_edges) == (b.n_nodes, b.n_edges)
    assert [p.name for p in a.partitions] == ["input", "a", "b", "c", "fc"]
    assert a.meta["model"] == f"{nets}:net(width=6)" and a.meta["input_shape"] == [3, 16, 16]
    code, out, err = run("metrics", str(pt2), "--input-shape", "3,16,16", "--only",
                         "sink_nodes", "-f", "json")
    assert code == 0, err
    assert json.loads(out)["n_edges"] == a.n_edges
    db = tmp_path / "db"
    for extra in (["-m", f"{nets}:net", "--model-arg", "width=6", str(ck)], [str(pt2)]):
        code, out, err = run("ingest", *extra, "--input-shape", "3,16,16", "--db", str(db),
                             "-f", "json")
        assert code == 0, err
        assert json.loads(out)["n_edges"] == a.n_edges



def _assert_one_line_error(code: int, err: str, words: list[str]) -> None:
    """Exit code 2 and one ``Error:`` line on stderr holding every one of ``words``."""
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    for w in words:
        assert w in lines[0]

@pytest.mark.parametrize(("args", "words"), [
    (["-m", "{nets}:missing"], ["no callable 'missing'"]),
    (["-m", "{nets}:net", "--model-arg", "width"], ["NAME=VALUE"]),
    (["-m", "{nets}:net", "--input-shape", "3,16"], ["--input-shape", "C,H,W"]),
    (["-m", "{nets}:net", "--input-shape", "2,16,16"], ["cannot run on input shape 2,16,16",
                                                         "layer 'a'"]),
    ([], ["needs --model"]),
    (["-m", "resnet18"], ["unknown model 'resnet18'"]),
])
def test_bad_model_inputs_are_one_line(args: list[str], words: list[str], nets: Path,
                                       tmp_path: Path) -> None:
    ck, _ = _pruned_checkpoint(nets, tmp_path, export=False)
    out = tmp_path / "g.npz"
    code, _, err = run("encode", str(ck), *[a.format(nets=nets) for a in args],
                            "-o", str(out))
    _assert_one_line_error(code, err, words)
    assert not out.exists()


def test_prune_then_train_a_factory_model(nets: Path, tmp_path: Path) -> None:
    ck = tmp_path / "p.pt"
    code, _, err = run("prune", "-m", f"{nets}:net", "--model-arg", "width=3", "-p", "uniform",
                       "-s", "0.5", "-o", str(ck))
    assert code == 0, err
    side = json.loads((tmp_path / "p.pt.json").read_text())
    assert side["model"] == f"{nets}:net(width=3)"
    code, _, err = run("train", str(ck), "--synthetic", "--synthetic-samples", "16",
                       "--epochs", "1", "--device", "cpu")
    assert code == 0, err
    code, _, err = run("encode", str(ck), "-m", side["model"], "-o", str(tmp_path / "g.npz"))
    assert code == 0, err


def _export(nets: Path, tmp_path: Path, *, dynamic: bool) -> Path:
    """The prune-hooked factory model as a .pt2 (batch dynamic or fixed at 2)."""
    torch.manual_seed(0)
    model = build(parse_model_spec(f"{nets}:net", ["width=3"])).eval()
    for m in (model.a, model.b, model.c, model.fc):
        prune.l1_unstructured(m, "weight", amount=0.6)
    pt2 = tmp_path / ("dyn.pt2" if dynamic else "static.pt2")
    shapes = ({0: torch.export.Dim("batch")},) if dynamic else None
    torch.export.save(torch.export.export(model, (torch.zeros(2, 3, 32, 32),),
                                          dynamic_shapes=shapes), pt2)
    return pt2


def test_prune_train_a_pt2(nets: Path, tmp_path: Path) -> None:
    """A .pt2 is a model source for prune and train: its structure, re-initialised under --seed
    (the same seed, the same checkpoint), pruned by a data-driven pruner, trained with the masks
    fixed (its prune hooks folded), encoded with the pruned checkpoint."""
    pt2 = _export(nets, tmp_path, dynamic=True)
    cks = [tmp_path / f"p{i}.pt" for i in range(2)]
    for ck in cks:
        code, _, err = run("prune", "-m", str(pt2), "-p", "snip", "-s", "0.5", "--synthetic",
                           "--synthetic-samples", "16", "-o", str(ck))
        assert code == 0, err
    a, b = (torch.load(ck) for ck in cks)
    assert list(a) == ["a.weight", "a.bias", "b.weight", "b.bias", "c.weight", "c.bias",
                       "fc.weight", "fc.bias"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    side = json.loads((tmp_path / "p0.pt.json").read_text())
    assert side["model"] == str(pt2) and side["realised_sparsity"] == pytest.approx(0.5, abs=1e-2)
    assert "re-initialised" in side["init"]
    code, _, err = run("train", str(cks[0]), "--synthetic", "--synthetic-samples", "16",
                       "--epochs", "1", "--device", "cpu")
    assert code == 0, err
    trained = torch.load(tmp_path / "p0.trained.pt")
    for k in ("a.weight", "c.weight", "fc.weight"):
        assert torch.equal(trained[k] != 0, a[k] != 0)  # masks fixed
        assert not torch.equal(trained[k], a[k])  # and trained
    code, _, err = run("encode", str(cks[0]), "-m", str(pt2), "-o", str(tmp_path / "g.npz"))
    assert code == 0, err
    assert load_graph(tmp_path / "g.npz").n_edges > 0


@pytest.mark.slow  # a two-network study: ~40 s on the shared machine
def test_study_a_pt2(nets: Path, tmp_path: Path) -> None:
    pt2 = _export(nets, tmp_path, dynamic=True)
    code, out, err = run("study", "-m", str(pt2), "-p", "uniform,snip", "-s", "0.9",
                         "--synthetic-samples", "64", "-e", "mge", "-o", str(tmp_path / "st"),
                         "--db", str(tmp_path / "db"))
    assert code == 0, err
    assert (tmp_path / "st" / "report.md").is_file()
    assert "snip" in out and "uniform" in out


@pytest.mark.filterwarnings("ignore:`torch.jit")
@pytest.mark.parametrize(("args", "words"), [
    (["prune", "-m", "{static}", "-p", "snip", "-s", "0.5", "--synthetic"],
     ["fixed batch size of 2", "pruner 'snip'", "dynamic_shapes"]),
    (["study", "-m", "{static}", "-p", "snip", "-s", "0.9"],
     ["fixed batch size of 2", "pruner 'snip'"]),
    (["prune", "-m", "{dyn16}", "-p", "uniform", "-s", "0.5"],
     ["exported for inputs 3,16,16", "feeds 3,32,32 images"]),
    (["prune", "-m", "{ts}", "-p", "uniform", "-s", "0.5"], ["TorchScript", "cannot be pruned"]),
    (["study", "-m", "{ts}", "-p", "uniform", "-s", "0.9"], ["TorchScript", "cannot be pruned"]),
    (["study", "-m", "{pickle}", "-p", "uniform", "-s", "0.9"], ["does not unpickle"]),
])
def test_sources_prune_and_study_refuse_are_one_line(args: list[str], words: list[str],
                                                     nets: Path, tmp_path: Path) -> None:
    model = build(parse_model_spec(f"{nets}:net", ["width=3"])).eval()
    ts, pickle = tmp_path / "net.ts", tmp_path / "net.pkl"
    made = {"static": lambda: _export(nets, tmp_path, dynamic=False),
            "dyn16": lambda: _pruned_checkpoint(nets, tmp_path)[1],
            "ts": lambda: torch.jit.trace(model, torch.zeros(1, 3, 16, 16)).save(str(ts)) or ts,
            "pickle": lambda: torch.save(model, pickle) or pickle}
    source = {k: make() for k, make in made.items() if "{" + k + "}" in args}
    out = tmp_path / "out"
    code, _, err = run(*[a.format(**source) for a in args], "-o", str(out))
    _assert_one_line_error(code, err, words)
    assert not out.exists()


FLAT = textwrap.dedent('''
    from torch import nn


    def flat(side=16):
        """Runs only at 3×side×side: the Linear is sized for it."""
        return nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), nn.ReLU(), nn.Flatten(),
                             nn.Linear(2 * side * side, 10))
''')


def test_input_shape_on_prune_train_study(tmp_path: Path) -> None:
    """prune, train and study take --input-shape: the synthetic images follow it (a model that
    runs only at 3×16×16 prunes with snip on them and trains), synflow's input follows it, the
    sidecar records it, and train refuses a checkpoint pruned at another shape."""
    (tmp_path / "flat.py").write_text(FLAT)
    spec = f"{tmp_path / 'flat.py'}:flat"
    shape = ["--input-shape", "3,16,16"]
    for pruner in ("snip", "synflow"):
        ck = tmp_path / f"{pruner}.pt"
        code, _, err = run("prune", "-m", spec, *shape, "-p", pruner, "-s", "0.5", "--synthetic",
                           "--synthetic-samples", "16", "--synflow-iterations", "2", "-o", str(ck))
        assert code == 0, err
        side = json.loads((tmp_path / f"{pruner}.pt.json").read_text())
        assert side["input_shape"] == [3, 16, 16]
        assert side["realised_sparsity"] == pytest.approx(0.5, abs=1e-2)
    ck = tmp_path / "snip.pt"
    code, _, err = run("train", str(ck), *shape, "--synthetic", "--synthetic-samples", "16",
                       "--epochs", "1", "--device", "cpu")
    assert code == 0, err
    assert (tmp_path / "snip.trained.pt").is_file()
    code, _, err = run("train", str(ck), "--synthetic", "--epochs", "1")
    _assert_one_line_error(code, err, ["pruned at --input-shape 3,16,16", "not 3,32,32"])
    code, _, err = run("encode", str(ck), "-m", spec, *shape, "-o", str(tmp_path / "g.npz"))
    assert code == 0, err
    assert load_graph(tmp_path / "g.npz").partitions[0].shape == (3, 16, 16)


@pytest.mark.parametrize(("args", "words"), [
    (["prune", "-p", "uniform", "-s", "0.5"],
     ["model {flat} cannot run on input shape 3,32,32", "layer '3' failed"]),
    (["study", "-p", "uniform", "-s", "0.9"],
     ["model {flat} cannot run on input shape 3,32,32", "layer '3' failed"]),
    (["prune", "--input-shape", "3,16,16", "-p", "snip", "-s", "0.5", "--data-dir", "{tmp}"],
     ["--input-shape 3,16,16", "cifar10 images are 3,32,32", "synthetic"]),
    (["train", "--dense", "--input-shape", "3,16,16", "--data-dir", "{tmp}",
      "--dataset", "tinyimagenet"], ["--input-shape 3,16,16", "tinyimagenet images are 3,32,32"]),
    (["study", "--input-shape", "3,16,16", "-p", "uniform", "-s", "0.9", "--data-dir", "{tmp}"],
     ["--input-shape 3,16,16", "cifar10 images are 3,32,32"]),
    (["train", "--dense", "--input-shape", "3,8,8", "--synthetic"],
     ["cannot run on input shape 3,8,8", "layer '3' failed"]),
])
def test_input_shape_refusals_are_one_line(args: list[str], words: list[str],
                                           tmp_path: Path) -> None:
    (tmp_path / "flat.py").write_text(FLAT)
    flat = f"{tmp_path / 'flat.py'}:flat"
    out = tmp_path / "out"
    fmt = {"flat": flat, "tmp": str(tmp_path)}
    code, _, err = run(*[a.format(**fmt) for a in args], "-m", flat, "-o", str(out))
    _assert_one_line_error(code, err, [w.format(**fmt) for w in words])
    assert not out.exists()
