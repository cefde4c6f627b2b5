"""A :class:`~mgedb.store.neo4j_store.QueryRunner` that records instead of talking to a server.

It keeps every statement with its query name, parameters, access mode and transaction number, and
answers from canned rows keyed by query name (a list of row dicts, or a function of the parameters
returning one). Unit tests of :class:`~mgedb.store.neo4j_store.Neo4jStore` assert the exact query
names, parameters, batching and transaction boundaries with it, without a database.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mgedb.store.neo4j_store import Statement
from mgedb.store.protocol import Rows

__all__ = ["Call", "RecordingRunner"]

Response = list[dict[str, Any]] | Callable[[dict[str, Any]], list[dict[str, Any]]]


@dataclass(frozen=True)
class Call:
    """One recorded statement."""

    tx: int  # transaction number; statements of one write transaction share it
    access: str  # "read", "write" or "autocommit"
    name: str
    params: dict[str, Any]
    text: str = field(repr=False, default="")


class RecordingRunner:
    """Records statements; returns ``responses[name]`` (default: no rows)."""

    def __init__(self, responses: Mapping[str, Response] | None = None,
                 errors: Mapping[str, Exception] | None = None) -> None:
        self.responses: dict[str, Response] = dict(responses or {})
        self.errors: dict[str, Exception] = dict(errors or {})
        self.calls: list[Call] = []
        self.closed = False
        self._tx = 0

    def _answer(self, st: Statement, access: str, tx: int) -> list[dict[str, Any]]:
        self.calls.append(Call(tx, access, st.name, copy.deepcopy(st.params), st.text))
        if st.name in self.errors:
            raise self.errors[st.name]
        r = self.responses.get(st.name, [])
        return [dict(row) for row in (r(dict(st.params)) if callable(r) else r)]

    def read(self, statement: Statement, *, timeout: float | None = None
             ) -> list[dict[str, Any]]:
        self._tx += 1
        return self._answer(statement, "read", self._tx)

    def write(self, statements: Sequence[Statement], *, timeout: float | None = None
              ) -> list[list[dict[str, Any]]]:
        self._tx += 1
        return [self._answer(st, "write", self._tx) for st in statements]

    def autocommit(self, statement: Statement, *, timeout: float | None = None
                   ) -> list[dict[str, Any]]:
        self._tx += 1
        return self._answer(statement, "autocommit", self._tx)

    @contextlib.contextmanager
    def stream(self, statement: Statement, *, write: bool = False, timeout: float | None = None
               ) -> Iterator[Rows]:
        self._tx += 1
        rows = self._answer(statement, "write" if write else "read", self._tx)
        columns = list(rows[0]) if rows else []
        yield Rows(columns, iter([tuple(r.get(c) for c in columns) for r in rows]))

    def close(self) -> None:
        self.closed = True

    # -- inspection ------------------------------------------------------------------------------
    def names(self, access: str | None = None) -> list[str]:
        """Query names in call order (optionally only one access mode)."""
        return [c.name for c in self.calls if access is None or c.access == access]

    def named(self, name: str) -> list[Call]:
        return [c for c in self.calls if c.name == name]

    def transactions(self) -> list[list[Call]]:
        """Calls grouped by transaction, in order."""
        out: dict[int, list[Call]] = {}
        for c in self.calls:
            out.setdefault(c.tx, []).append(c)
        return list(out.values())
