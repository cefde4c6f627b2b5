"""Rendering of result rows as a table, JSON or CSV, and a progress bar factory."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

err_console = Console(stderr=True)


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v


def _cell(v: Any) -> str:
    v = _plain(v)
    if isinstance(v, float):
        return f"{v:.6g}"
    if v is None:
        return ""
    return str(v)


def render(rows: Sequence[Mapping[str, Any]], fmt: Format | str, *, title: str | None = None,
           single: bool = False) -> None:
    """Print rows: a rich table, JSON (one object when ``single`` and one row, else a list) or
    CSV."""
    fmt = Format(fmt)
    rows = [_plain(r) for r in rows]
    if fmt is Format.json:
        payload: Any = rows[0] if single and len(rows) == 1 else rows
        sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
        return
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    if fmt is Format.csv:
        w = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k) for k in columns})
        return
    table = Table(title=title)
    for c in columns:
        table.add_column(c, overflow="fold")
    for r in rows:
        table.add_row(*(_cell(r.get(c)) for c in columns))
    Console().print(table)


def render_mapping(d: Mapping[str, Any], fmt: Format | str, *, title: str | None = None) -> None:
    """Print one record: key/value table, JSON object, or a one-row CSV."""
    fmt = Format(fmt)
    if fmt is Format.table:
        render([{"key": k, "value": _cell(v)} for k, v in d.items()], fmt, title=title)
    else:
        render([d], fmt, single=True)


def progress(transient: bool = True) -> Progress:
    """A progress bar on stderr with ETA."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=transient,
    )
