"""The options the commands share, declared once as ``Annotated`` types (choices from
:mod:`mgedb.vocab`).

A command takes ``model: Model`` (or ``OptionalModel`` / ``Model = "resnet20"``) and gets the one
``--model/-m`` option every command that builds or reads a network uses: encode, metrics, ingest,
prune, train, study. What ``--model`` accepts is decided in :func:`parse_model` only. Likewise
``--encoding``, ``--store``, ``--db``, ``--uri``/``--user``/``--database``, ``--format``,
``--classes``, ``--allow-pickle``, ``--input-shape`` (encode, metrics, ingest, prune, train, study)
and the dataset options.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mgedb.cli._render import Format
from mgedb.vocab import Dataset, Encoding, Engine, StoreKind, Vocab

__all__ = [
    "AllowPickle",
    "Classes",
    "DataDir",
    "DatabaseName",
    "DatasetChoice",
    "DbPath",
    "Download",
    "EncodingChoice",
    "EngineChoice",
    "FormatChoice",
    "InputShape",
    "Model",
    "ModelArgs",
    "OptionalEncoding",
    "OptionalModel",
    "StoreChoice",
    "StudyEncoding",
    "StudyEngine",
    "Synthetic",
    "SyntheticSamples",
    "Uri",
    "User",
    "check_classes",
    "output_dir",
    "output_file",
    "parse_input",
    "parse_model",
]

MODEL_HELP = ("Model: a zoo name (conv6, resnet20, resnet32, wrn28_2, mobilenet_v2), "
              "path/file.py:factory or package.module:factory (a callable returning an "
              "nn.Module; arguments with --model-arg), a torch.export .pt2 archive, or a "
              "pickled nn.Module (with --allow-pickle).")


def parse_model(text: str) -> str:
    """What ``--model`` accepts (:func:`mgedb.model_source.parse_model_spec`); resolved with the
    ``--model-arg`` values where the model is built (:func:`mgedb.model_source.resolve`)."""
    return text


def parse_input(text: str) -> str:
    """``--input-shape``: checked here (one line on a bad value), parsed where it is used."""
    from mgedb.model_source import parse_input_shape

    parse_input_shape(text)
    return text


_MODEL = typer.Option("--model", "-m", help=MODEL_HELP, parser=parse_model, metavar="MODEL")
#: ``--model/-m``: required unless the parameter has a default.
Model = Annotated[str, _MODEL]
#: ``--model/-m`` where a command can do without (graph files, sidecars name the model).
OptionalModel = Annotated[str | None, _MODEL]

ModelArgs = Annotated[list[str] | None, typer.Option(
    "--model-arg", metavar="K=V",
    help="Keyword argument of a --model factory (repeatable; values as Python literals), e.g. "
         "--model-arg num_classes=10.")]
InputShape = Annotated[str, typer.Option(
    "--input-shape", parser=parse_input, metavar="C,H,W",
    help="Shape of the example input the network is traced with.")]

EncodingChoice = Annotated[Encoding, typer.Option("--encoding", "-e", help="Graph encoding.")]
OptionalEncoding = Annotated[Encoding | None, typer.Option(
    "--encoding", "-e", help="Encoding of a checkpoint (default mge); for a graph file, a check.")]


class StudyEncoding(Vocab):
    """The encodings a study can measure (:data:`mgedb.study.config.ENCODINGS`)."""

    MGE_REFERENCE = Encoding.MGE_REFERENCE.value
    MGE = Encoding.MGE.value


class StudyEngine(Vocab):
    """The engines a study can use (:data:`mgedb.study.config.ENGINES`)."""

    ARRAY = Engine.ARRAY.value
    BOTH = Engine.BOTH.value


EngineChoice = Annotated[Engine, typer.Option(
    "--engine",
    help="MGE: array (in-process), db (Cypher/graph algorithms in the store; the input is "
         "ingested first, idempotently) or both (compare them; exit 1 if they disagree). "
         "SOURCE may also be the key of a stored network.")]

StoreChoice = Annotated[StoreKind | None, typer.Option(
    "--store", envvar="MGEDB_STORE", case_sensitive=False,
    help="Graph store: embedded (Kùzu, default) or neo4j.")]
DbPath = Annotated[Path | None, typer.Option(
    "--db", envvar="MGEDB_DB", help="Directory of the embedded store (default: user data dir).")]
Uri = Annotated[str | None, typer.Option("--uri", envvar="NEO4J_URI", help="Neo4j Bolt URI.")]
User = Annotated[str | None, typer.Option("--user", envvar="NEO4J_USER", help="Neo4j user.")]
DatabaseName = Annotated[str | None, typer.Option(
    "--database", envvar="NEO4J_DATABASE", help="Neo4j database name.")]

FormatChoice = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
def check_classes(value: int | None) -> int | None:
    """``--classes``: a sane class count, checked before any model or data is built."""
    from mgedb.models import check_classes as check

    return value if value is None else check(value)


def output_file(ctx: typer.Context, param: typer.CallbackParam, value: Path | None
                ) -> Path | None:
    """An output file option: refused before any work when it cannot be written."""
    from mgedb.atomic import check_writable

    return None if value is None else check_writable(value, option=_flag(param))


def output_dir(ctx: typer.Context, param: typer.CallbackParam, value: Path | None
               ) -> Path | None:
    """An output folder option: refused before any work when it cannot be created or written."""
    from mgedb.atomic import check_writable

    return None if value is None else check_writable(value, directory=True, option=_flag(param))


def _flag(param: typer.CallbackParam) -> str:
    return max(param.opts, key=len) if param.opts else str(param.name)


Classes = Annotated[int, typer.Option("--classes", callback=check_classes,
                                      help="Number of classes of the classifier.")]
AllowPickle = Annotated[bool, typer.Option(
    "--allow-pickle",
    help="Accept a full pickled model (unpickling runs code: trusted files only).")]

DatasetChoice = Annotated[Dataset, typer.Option("--dataset", help="Dataset.")]
DataDir = Annotated[Path | None, typer.Option(
    "--data-dir", help="Directory holding the dataset (torchvision layout: cifar-10-batches-py/, "
                       "cifar-100-python/, tiny-imagenet-200/).")]
Synthetic = Annotated[bool, typer.Option(
    "--synthetic", help="Use the built-in synthetic image set instead of --data-dir.")]
SyntheticSamples = Annotated[int, typer.Option(
    "--synthetic-samples", min=2, help="--synthetic: training images (test: a quarter).")]
Download = Annotated[bool, typer.Option(
    "--download", help="Download CIFAR-10/100 into --data-dir if absent (needs internet).")]
