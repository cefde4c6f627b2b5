"""Every closed set of names is mgedb.vocab's: the implementations and the CLI choices follow it."""

from __future__ import annotations

from typing import Any

import typer

from mgedb.cli import app
from mgedb.datasets import DATASETS
from mgedb.graph import ENCODINGS
from mgedb.prune import PRUNERS
from mgedb.store import STORE_KINDS
from mgedb.study.config import ALL_PRUNERS, DATA_PRUNERS
from mgedb.vocab import Dataset, Encoding, Engine, Flavour, Pruner, StoreKind


def test_members_are_their_values() -> None:
    assert Encoding.MGE_REFERENCE == "mge-reference" and f"{Encoding.MGE}" == "mge"
    assert str(Pruner.SNIP) == "snip" and {Pruner.SNIP: 1}["snip"] == 1
    assert Encoding("mge-reference").flavour is Flavour.MGE_REFERENCE
    assert Encoding.ROLLED.flavour is Flavour.MGE and Encoding.ROLLED_CHANNEL.bge


def test_every_name_has_its_implementation() -> None:
    assert tuple(PRUNERS) == Pruner.values() == ALL_PRUNERS
    assert all(PRUNERS[p].needs_data == Pruner(p).needs_data for p in PRUNERS)
    assert DATA_PRUNERS == ("snip", "grasp", "prospr")
    assert tuple(DATASETS) == Dataset.values()
    assert Encoding.values() == ENCODINGS and StoreKind.values() == STORE_KINDS


def _choices(command: str, option: str) -> list[str]:
    cmd = typer.main.get_command(app)
    assert isinstance(cmd, typer.core.TyperGroup)
    sub = cmd.commands[command]
    param: Any = next(p for p in sub.params if option in p.opts)
    kind = getattr(param, "type", None)  # click's Choice; typer ≥ 0.25 keeps the annotation
    if kind is not None and hasattr(kind, "choices"):
        return [str(c) for c in kind.choices]
    return [str(m.value) for m in param.type_descriptor.annotation]


def test_the_cli_choices_come_from_the_vocabulary() -> None:
    for command in ("encode", "ingest", "metrics"):
        assert _choices(command, "--encoding") == list(Encoding.values())
    assert _choices("prune", "--pruner") == list(Pruner.values())
    assert _choices("prune", "--dataset") == _choices("study", "--dataset") == list(
        Dataset.values())
    assert _choices("metrics", "--engine") == list(Engine.values())
    assert _choices("study", "--engine") == ["array", "both"]
    assert _choices("study", "--encoding") == ["mge-reference", "mge"]
    assert _choices("ingest", "--store") == _choices("metrics", "--store") == list(
        StoreKind.values())
