"""Rendering of result rows as a table, JSON or CSV, and a progress bar factory."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
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
    jsonl = "jsonl"


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
    if fmt is Format.jsonl:
        for r in rows:
            sys.stdout.write(json.dumps(r, default=str) + "\n")
        return
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


#: Rows a table shows when no ``--limit`` is given (CSV and JSON stream every row).
TABLE_ROWS = 100


def render_stream(columns: Sequence[str], rows: Iterator[tuple[Any, ...]], fmt: Format | str, *,
                  limit: int | None = None) -> int:
    """Print rows as they arrive: CSV and JSON lines row by row, JSON as one array written
    incrementally, a table of the first ``limit`` rows (default :data:`TABLE_ROWS`). ``limit``:
    at most that many rows (0 or None: all, except for a table). Returns how many rows were
    held back by the limit (counted by reading on, so a table can say so; 0 when none)."""
    fmt = Format(fmt)
    if limit == 0:
        cap: int | None = None
    else:
        cap = limit if limit is not None else (TABLE_ROWS if fmt is Format.table else None)
    names = [str(c) for c in columns]
    shown = 0
    out = sys.stdout
    table = Table() if fmt is Format.table else None
    writer = csv.writer(out, lineterminator="\n") if fmt is Format.csv else None
    if table is not None:
        for c in names:
            table.add_column(c, overflow="fold")
    elif writer is not None:
        writer.writerow(names)
    elif fmt is Format.json:
        out.write("[")
    for row in rows:
        if cap is not None and shown >= cap:
            more = 1 + sum(1 for _ in rows)
            break
        values = [_plain(v) for v in row]
        if table is not None:
            table.add_row(*(_cell(v) for v in values))
        elif writer is not None:
            writer.writerow(values)
        else:
            text = json.dumps(dict(zip(names, values, strict=True)), default=str)
            if fmt is Format.jsonl:
                out.write(text + "\n")
            else:
                out.write((",\n  " if shown else "\n  ") + text)
        shown += 1
    else:
        more = 0
    if table is not None:
        Console().print(table)
    elif fmt is Format.json:
        out.write("\n]\n" if shown else "]\n")
    return more


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
