"""Model sources: zoo names, factories (file and module), torch.export, TorchScript, pickles, and
every checkpoint form loaded into them."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.utils.prune as prune
from torch import nn

from mgedb.checkpoint import load_checkpoint, prunable_layers
from mgedb.encode import encode_checkpoint, encode_model
from mgedb.errors import CheckpointError, ModelRunError, UnknownModel
from mgedb.graph import Graph
from mgedb.model_source import (
    ModelSpec,
    build,
    exported_input,
    parse_model_args,
    parse_model_spec,
    require_input,
    seeded,
)

FACTORY = textwrap.dedent('''
    import torch.nn.functional as F
    from torch import nn


    class Small(nn.Module):
        def __init__(self, width=4, num_classes=3):
            super().__init__()
            self.conv = nn.Conv2d(3, width, 3, padding=1)
            self.bn = nn.BatchNorm2d(width)
            self.down = nn.Conv2d(width, width, 3, stride=2, padding=1)
            self.fc = nn.Linear(width * 4 * 4, num_classes)

        def forward(self, x):
            h = F.relu(self.bn(self.conv(x)))
            return self.fc(F.relu(self.down(h) + F.avg_pool2d(h, 2)).flatten(1))


    def small(width=4, num_classes=3):
        return Small(width, num_classes)


    def not_a_model():
        return 42
''')


@pytest.fixture
def factory_file(tmp_path: Path) -> Path:
    path = tmp_path / "my_nets.py"
    path.write_text(FACTORY)
    return path


def _pruned(model: nn.Module, amount: float = 0.7) -> nn.Module:
    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            prune.l1_unstructured(m, "weight", amount=amount)
    return model.eval()


def _same_graph(a: Graph, b: Graph) -> None:
    a, b = a.sorted(), b.sorted()
    for name in ("src", "dst", "weight", "kind"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert [p.name for p in a.partitions] == [p.name for p in b.partitions]


def test_parse_specs(factory_file: Path) -> None:
    assert parse_model_spec("Resnet-20") == ModelSpec("zoo", "resnet20")
    spec = parse_model_spec(f"{factory_file}:small", ["width=6", "name=abc", "flag=True"])
    assert spec.kind == "file" and spec.target == str(factory_file) and spec.factory == "small"
    assert spec.args == (("width", 6), ("name", "abc"), ("flag", True))
    assert parse_model_spec("torchvision.models:resnet18").kind == "module"
    assert parse_model_args(["x=1.5", "s='q'"]) == (("x", 1.5), ("s", "q"))


@pytest.mark.parametrize(("text", "args", "match"), [
    ("resnet21", [], "unknown model 'resnet21'"),
    ("resnet20", ["width=2"], "applies to a factory"),
    ("nope.pt2", [], "no such model archive"),
    ("m:fn", ["=3"], "NAME=VALUE"),
])
def test_bad_specs(text: str, args: list[str], match: str) -> None:
    with pytest.raises(UnknownModel, match=match):
        parse_model_spec(text, args)


def test_file_factory_with_args(factory_file: Path) -> None:
    model = build(parse_model_spec(f"{factory_file}:small", ["width=6", "num_classes=5"]),
                  classes=7)  # --classes sizes zoo models only
    assert model.conv.out_channels == 6 and model.fc.out_features == 5
    g = encode_model(model, input_shape=(3, 8, 8))
    assert isinstance(g, Graph)
    assert [p.name for p in g.partitions] == ["input", "conv", "down", "fc"]


@pytest.mark.parametrize(("spec", "match"), [
    ("{f}:missing", "no callable 'missing'"),
    ("{f}:not_a_model", "returned a int, not an nn.Module"),
    ("{d}/absent.py:small", "no such file"),
    ("mgedb_no_such_package.sub:fn", "cannot import"),
])
def test_bad_factories(spec: str, match: str, factory_file: Path) -> None:
    text = spec.format(f=factory_file, d=factory_file.parent)
    with pytest.raises(UnknownModel, match=match) as e:
        build(parse_model_spec(text))
    assert "\n" not in str(e.value)


def test_factory_call_error_is_one_line(factory_file: Path) -> None:
    with pytest.raises(UnknownModel, match=r"calling small\(…\) failed \(TypeError"):
        build(parse_model_spec(f"{factory_file}:small", ["depth=3"]))


def test_module_factory_torchvision() -> None:
    pytest.importorskip("torchvision")
    model = build(parse_model_spec("torchvision.models:resnet18", ["num_classes=10"]))
    assert model.fc.out_features == 10


EXPORT_WARNING = "ignore:The tensor attribute"  # exporting a prune-hooked model


@pytest.mark.filterwarnings(EXPORT_WARNING)
def test_export_archive_is_the_model(tmp_path: Path, factory_file: Path) -> None:
    """A .pt2 of a pruned model encodes to the graph of the model it was exported from."""
    model = _pruned(build(parse_model_spec(f"{factory_file}:small")))
    path = tmp_path / "small.pt2"
    torch.export.save(torch.export.export(model, (torch.zeros(1, 3, 8, 8),)), path)
    spec = parse_model_spec(str(path))
    assert spec.kind == "export"
    g = encode_model(build(spec), input_shape=(3, 8, 8))
    ref = encode_model(model, input_shape=(3, 8, 8))
    assert isinstance(g, Graph) and isinstance(ref, Graph)
    _same_graph(g, ref)
    ck = load_checkpoint(path, spec)  # its own checkpoint: used as saved, masks explicit
    assert set(ck.masks) == {"conv", "down", "fc"}
    assert int(ck.masks["conv"].sum()) == int((model.conv.weight != 0).sum())
    g2 = encode_checkpoint(path, spec, input_shape=(3, 8, 8))
    assert isinstance(g2, Graph)
    _same_graph(g2, ref)
    assert g2.meta["model"] == str(path)


def test_export_archive_at_another_shape_is_a_model_run_error(tmp_path: Path,
                                                              factory_file: Path) -> None:
    model = build(parse_model_spec(f"{factory_file}:small")).eval()
    path = tmp_path / "small.pt2"
    torch.export.save(torch.export.export(model, (torch.zeros(1, 3, 8, 8),)), path)
    with pytest.raises(ModelRunError, match=r"input shape 3,16,16"):
        encode_model(build(parse_model_spec(str(path))), input_shape=(3, 16, 16))


@pytest.mark.filterwarnings("ignore:`torch.jit")
@pytest.mark.parametrize("form", ["plain", "torch-prune", "dataparallel", "torchscript",
                                  "compiled-prefix"])
def test_checkpoint_forms_load_into_a_factory(form: str, tmp_path: Path,
                                              factory_file: Path) -> None:
    spec = parse_model_spec(f"{factory_file}:small")
    model = _pruned(build(spec))
    ref = encode_model(model, input_shape=(3, 8, 8))
    path = tmp_path / "ck.pt"
    sd = model.state_dict()  # weight_orig + weight_mask
    if form == "plain":
        prune.remove(model.conv, "weight")
        for m in (model.down, model.fc):
            prune.remove(m, "weight")
        torch.save(model.state_dict(), path)
    elif form == "torch-prune":
        torch.save(sd, path)
    elif form in ("dataparallel", "compiled-prefix"):
        prefix = "module." if form == "dataparallel" else "_orig_mod."
        torch.save({prefix + k: v for k, v in sd.items()}, path)
    else:
        for m in (model.conv, model.down, model.fc):
            prune.remove(m, "weight")
        torch.jit.save(torch.jit.trace(model, torch.zeros(1, 3, 8, 8)), path)
    g = encode_checkpoint(path, spec, input_shape=(3, 8, 8))
    assert isinstance(g, Graph) and isinstance(ref, Graph)
    _same_graph(g, ref)
    assert g.meta["model"] == f"{factory_file}:small"


@pytest.mark.filterwarnings("ignore:`torch.jit")
def test_torchscript_as_a_model_is_a_clear_error(tmp_path: Path, factory_file: Path) -> None:
    model = build(parse_model_spec(f"{factory_file}:small")).eval()
    path = tmp_path / "small.ts"
    torch.jit.save(torch.jit.script(model), path)
    spec = parse_model_spec(str(path))
    assert spec.kind == "torchscript"
    with pytest.raises(UnknownModel, match=r"TorchScript interpreter.*checkpoint"):
        build(spec)


def test_pickled_module_is_used_as_the_model(tmp_path: Path) -> None:
    model = _pruned(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(),
                                  nn.Linear(4 * 6 * 6, 2)))
    path = tmp_path / "full.pt"
    torch.save(model, path)
    spec = parse_model_spec(str(path))
    assert spec.kind == "pickle"
    with pytest.raises(UnknownModel, match="allow-pickle"):
        build(spec)
    with pytest.raises(CheckpointError, match="allow-pickle"):
        encode_checkpoint(path, spec, input_shape=(3, 8, 8))
    g = encode_checkpoint(path, spec, allow_pickle=True, input_shape=(3, 8, 8))
    ref = encode_model(model, input_shape=(3, 8, 8))
    assert isinstance(g, Graph) and isinstance(ref, Graph)
    _same_graph(g, ref)


@pytest.mark.parametrize(("corrupt", "match"), [
    ("int-weights", "holds torch.int64 values"),
    ("mask-half", "other than 0 and 1"),
    ("mask-signed", "other than 0 and 1"),
    ("missing", "missing key 'fc.bias'"),
])
def test_bad_checkpoints_for_a_factory(corrupt: str, match: str, tmp_path: Path,
                                       factory_file: Path) -> None:
    spec = parse_model_spec(f"{factory_file}:small")
    sd = _pruned(build(spec)).state_dict()
    if corrupt == "int-weights":
        sd["conv.weight_orig"] = (sd["conv.weight_orig"] * 100).long()
    elif corrupt == "mask-half":
        sd["conv.weight_mask"] = sd["conv.weight_mask"] * 0.5
    elif corrupt == "mask-signed":
        sd["conv.weight_mask"] = sd["conv.weight_mask"] * 2 - 1
    else:
        del sd["fc.bias"]
    path = tmp_path / "bad.pt"
    torch.save(sd, path)
    with pytest.raises(CheckpointError, match=match) as e:
        load_checkpoint(path, spec)
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)


def test_alexnet_at_32_names_model_shape_and_layer() -> None:
    tv = pytest.importorskip("torchvision")
    with pytest.raises(ModelRunError) as e:
        encode_model(tv.models.alexnet(num_classes=10), input_shape=(3, 32, 32))
    msg = str(e.value)
    assert "AlexNet" in msg and "3,32,32" in msg and "'features.12'" in msg


def test_prune_hooked_module_keeps_module_names() -> None:
    net = _pruned(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(),
                                nn.Linear(4 * 6 * 6, 2)))
    g = encode_model(net, input_shape=(3, 8, 8))
    assert isinstance(g, Graph)
    assert [p.name for p in g.partitions] == ["input", "0", "3"]


class WithNorms(nn.Module):
    """Conv (prune-hooked), batch norm, dropout and a linear layer: what unexport rebuilds."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.same = nn.Conv2d(4, 4, 3, padding="same", groups=2)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.same(torch.relu(self.bn(self.conv(x))))
        return self.fc(self.drop(h.flatten(1)))


@pytest.mark.filterwarnings(EXPORT_WARNING)
def test_unexported_program_is_the_model_it_was_exported_from(tmp_path: Path) -> None:
    """A .pt2 comes back with its layers as modules (in the model's order, hooks and all): the
    same outputs, the same state dict keys, and it trains (batch norm follows .train())."""
    torch.manual_seed(0)
    model = WithNorms()
    prune.l1_unstructured(model.conv, "weight", amount=0.5)
    model.eval()
    path = tmp_path / "n.pt2"
    batch = torch.export.Dim("batch")
    torch.export.save(torch.export.export(model, (torch.randn(2, 3, 8, 8),),
                                          dynamic_shapes=({0: batch},)), path)
    net = build(parse_model_spec(str(path)))
    assert {n: type(m) for n, m in net.named_children() if n in ("conv", "bn", "same", "fc")} \
        == {"conv": nn.Conv2d, "bn": nn.BatchNorm2d, "same": nn.Conv2d, "fc": nn.Linear}
    assert list(prunable_layers(net)) == ["conv", "same", "fc"]
    assert list(net.state_dict()) == list(model.state_dict())
    assert net.same.padding == "same" and net.same.groups == 2 and net.conv.stride == (2, 2)
    x = torch.randn(5, 3, 8, 8)
    assert torch.equal(net(x), model(x))
    assert torch.equal(net.conv.weight, model.conv.weight)  # the hook recomputes weight
    net.train()
    net(x).sum().backward()
    assert int(net.bn.num_batches_tracked) == 1 and net.conv.weight_orig.grad is not None
    assert exported_input(net) == (None, 3, 8, 8)


@pytest.mark.filterwarnings(EXPORT_WARNING)
def test_archives_are_reinitialised_under_the_seed(tmp_path: Path) -> None:
    """Pruning at initialisation of a .pt2: its structure, hooks dropped, re-initialised like
    the zoo under the seed (the same seed, the same weights); a static batch is named."""
    torch.manual_seed(0)
    model = WithNorms()
    prune.l1_unstructured(model.conv, "weight", amount=0.5)
    path = tmp_path / "n.pt2"
    torch.export.save(torch.export.export(model.eval(), (torch.randn(1, 3, 8, 8),)), path)
    spec = parse_model_spec(str(path))
    a, _ = seeded(spec, 3, 7)
    b, _ = seeded(spec, 3, 7)
    c, _ = seeded(spec, 3, 8)
    assert "conv.weight_orig" not in a.state_dict() and bool((a.conv.weight != 0).all())
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    assert not torch.equal(a.conv.weight, c.conv.weight)
    assert not torch.equal(a.conv.weight, model.conv.weight_orig)
    assert torch.equal(a.bn.weight, torch.ones(4)) and not a.fc.bias.any()
    assert exported_input(a) == (1, 3, 8, 8)
    with pytest.raises(UnknownModel, match=r"fixed batch size of 1, but training feeds .*"
                                           r"dynamic_shapes"):
        require_input(a, spec, "training", (3, 8, 8))
    with pytest.raises(UnknownModel, match=r"exported for inputs 3,8,8, but training feeds "
                                           r"3,32,32 images"):
        require_input(a, spec, "training")
