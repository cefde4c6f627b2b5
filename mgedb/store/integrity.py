"""Integrity counts: what a network must hold, recorded at ingest and recounted on demand.

At ingest every network records :data:`~mgedb.store.tables.Counts` (unit nodes per partition, W
edges per partition pair) on its ``(:Network)`` node, as JSON in ``counts``. :func:`verify`
recounts them in the database, the edges from both ends (an engine stores both directions, and a
loss can show on one side only: Kùzu 0.11's delete bug did), and names every difference. A
network is marked complete only after this check passed (``BaseStore.ingest``), ``mgedb verify``
and ``mgedb ls --verify`` run it, and the study runs it for every network it reuses. Networks of
older stores without recorded counts are checked against their node and edge totals.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

import pandas as pd

from mgedb.store.tables import Counts

__all__ = ["compare_counts", "counts_json", "parse_counts", "recount", "verify"]


class _Reader(Protocol):
    def run_query(self, name: str, params: Mapping[str, Any] | None = None, *,
                  timeout: float | None = None) -> pd.DataFrame: ...


def _pairs(rows: pd.DataFrame) -> dict[str, int]:
    if rows.empty:
        return {}
    return {f"{int(a)}>{int(b)}": int(n)
            for a, b, n in zip(rows["src"], rows["dst"], rows["n"], strict=True)}


def recount(store: _Reader, key: str) -> dict[str, dict[str, int]]:
    """What the database holds of network ``key``: ``units`` per partition, ``edges`` per pair
    from the source side and ``edges_in`` per pair from the target side."""
    units = store.run_query("network/count_units", {"key": key})
    return {
        "units": {} if units.empty else {str(int(p)): int(n) for p, n in
                                         zip(units["partition"], units["n"], strict=True)},
        "edges": _pairs(store.run_query("network/count_edges_out", {"key": key})),
        "edges_in": _pairs(store.run_query("network/count_edges_in", {"key": key})),
    }


def parse_counts(raw: Any) -> Counts | None:
    """The recorded counts of a network (``None``: none recorded, an older store)."""
    if not isinstance(raw, str) or not raw:
        return None
    data = json.loads(raw)
    return {"units": {str(k): int(v) for k, v in data.get("units", {}).items()},
            "edges": {str(k): int(v) for k, v in data.get("edges", {}).items()}}


def _diff(what: str, expected: Mapping[str, int], found: Mapping[str, int]) -> list[str]:
    out = []
    for k in sorted(set(expected) | set(found), key=lambda s: [int(x) for x in s.split(">")]):
        e, f = expected.get(k, 0), found.get(k, 0)
        if e != f:
            out.append(f"{what} {k}: {f:,} stored, {e:,} recorded")
    return out


def compare_counts(expected: Counts, found: Mapping[str, Mapping[str, int]]) -> list[str]:
    """Every difference between recorded and recounted counts, one line each (empty: equal)."""
    return (_diff("units of partition", expected["units"], found["units"])
            + _diff("edges", expected["edges"], found["edges"])
            + _diff("edges (from the target side)", expected["edges"], found["edges_in"]))


def verify(store: _Reader, key: str, info: Mapping[str, Any]) -> list[str]:
    """The differences between what network ``key`` (its ``network/get`` row ``info``) recorded
    and what the database holds; empty when it is intact. Networks without a stored graph
    (metrics only, records) have nothing to count."""
    if info.get("kind") not in ("mge", "bge"):
        return []
    expected = parse_counts(info.get("counts"))
    found = recount(store, key)
    if expected is not None:
        return compare_counts(expected, found)
    problems = []  # an older store: only the totals were recorded
    totals = {"units": info.get("n_nodes"), "edges": info.get("n_edges"),
              "edges_in": info.get("n_edges")}
    for what, want in totals.items():
        got = sum(found[what].values())
        if want is not None and int(want) != got:
            label = "edges (from the target side)" if what == "edges_in" else what
            problems.append(f"{label}: {got:,} stored, {int(want):,} recorded")
    return problems


def counts_json(counts: Counts) -> str:
    """The ``counts`` property of a network."""
    return json.dumps(counts, separators=(",", ":"))
