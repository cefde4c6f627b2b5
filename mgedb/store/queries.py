"""The registry of Cypher query files shipped in :mod:`mgedb.cypher`.

Every query lives in its own ``.cypher`` file under ``cypher/`` (the package ``mgedb.cypher``),
named by intent (``metrics/sink_nodes``). A file opens with ``//`` header lines::

    // Nodes with in-edges but no out-edges, below an id bound, minus an offset.
    // params: $key, $below, $offset
    // returns: value
    // mode: read

``params`` lists every ``$name`` the body uses (``none`` when there are none) and ``mode`` is
``read`` (default), ``write`` or ``schema``. A file under ``cypher/<dialect>/`` (``kuzu/``,
``neo4j/``) overrides, for that dialect only, the shared file with the same name outside it (or is
a query only that dialect has); every dialect falls back to the shared file. Files under
``cypher/gds/`` call Neo4j Graph Data Science procedures (Neo4j only). A broken file fails at
load time with :class:`QueryFileError` naming it; an unknown name is :class:`UnknownQuery` and
wrong parameters are :class:`QueryParameterError`, both raised before any database is touched.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

from mgedb.errors import QueryFileError, QueryParameterError, ReadOnlyViolation, UnknownQuery

__all__ = ["DIALECTS", "Query", "QueryRegistry", "check_adhoc_parameters",
           "check_adhoc_statement", "cypher_parameters", "registry", "split_statements",
           "strip_comments_and_strings"]

#: Every dialect prefers its ``<dialect>/<name>`` override, else the shared file.
DIALECTS = ("neo4j", "kuzu")
#: Query namespaces only one dialect runs (``gds/``: Neo4j Graph Data Science procedures).
_ONLY = {"gds/": "neo4j"}
MODES = ("read", "write", "schema")
_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_HEADER = re.compile(r"^//\s*(params|returns|mode)\s*:\s*(.*?)\s*$", re.IGNORECASE)
# one alternation: comments and quoted strings/identifiers, scanned left to right
_LEXEME = re.compile(
    r"//[^\n]*|/\*.*?\*/|'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`[^`]*`", re.DOTALL
)


def strip_comments_and_strings(text: str) -> str:
    """The text with comments removed and string literals / quoted names blanked."""

    def repl(m: re.Match[str]) -> str:
        s = m.group(0)
        if s.startswith(("//", "/*")):
            return " "
        return s[0] + s[-1]

    return _LEXEME.sub(repl, text)


def cypher_parameters(text: str) -> frozenset[str]:
    """The ``$names`` a Cypher text uses, ignoring comments and string literals."""
    return frozenset(_PARAM.findall(strip_comments_and_strings(text)))


_INT64 = (-(2**63), 2**63 - 1)


def _unbindable(value: Any) -> str | None:
    """Why a parameter value cannot be bound by every backend (None: it can)."""
    if isinstance(value, bool) or value is None or isinstance(value, (float, str)):
        return None
    if isinstance(value, int):
        return None if _INT64[0] <= value <= _INT64[1] else "an integer beyond 64 bits"
    if isinstance(value, list):
        kinds = {type(v).__name__ for v in value if v is not None}
        if len(kinds) > 1 and not kinds <= {"int", "float"}:
            return f"a list mixing {' and '.join(sorted(kinds))} values"
        return next((why for v in value if (why := _unbindable(v))), None)
    if isinstance(value, dict):
        return next((why for v in value.values() if (why := _unbindable(v))), None)
    return f"a {type(value).__name__}"


def check_adhoc_parameters(text: str, params: Mapping[str, Any]) -> None:
    """Refuse, naming the parameter, an ad-hoc query's unbound ``$name`` (a database would read
    it as null) and values a backend cannot bind (mixed-type lists, integers beyond 64 bits)."""
    unbound = sorted(cypher_parameters(text) - set(params))
    if unbound:
        raise QueryParameterError(f"the query uses ${unbound[0]} but no value is given; pass "
                                  f"--param {unbound[0]}=VALUE")
    for name, value in params.items():
        why = _unbindable(value)
        if why:
            raise QueryParameterError(f"--param {name}: {why} cannot be bound; give one type "
                                      "per list, numbers within 64 bits, or a JSON string")


#: Statements that write files, read files or reach the network (Kùzu/Ladybug: EXPORT/IMPORT
#: DATABASE, INSTALL/LOAD EXTENSION, COPY … TO/FROM, LOAD FROM, ATTACH; Neo4j: LOAD CSV, APOC's
#: export/load/import procedures): refused without ``write``.
_OUTSIDE = re.compile(
    r"(?<![.\w$])(?:EXPORT|IMPORT|INSTALL|COPY|ATTACH|LOAD)\b"
    r"|(?<![\w$])apoc\.(?:export|load|import|cypher\.run(?:File|Schema)?)\b",
    re.IGNORECASE)


def check_adhoc_statement(text: str, *, write: bool) -> None:
    """Refuse, unless ``write``, an ad-hoc query that would write or read files or reach the
    network (``EXPORT DATABASE``, ``INSTALL``, ``LOAD EXTENSION``, ``COPY``, ``LOAD CSV`` …): a
    read-only transaction does not stop them on every backend."""
    if write:
        return
    m = _OUTSIDE.search(strip_comments_and_strings(text))
    if m:
        words = m.string[m.start():].split()[:2]
        keep = 2 if len(words) == 2 and words[1].isalpha() and "." not in words[0] else 1
        word = m.group(0) if "." in m.group(0) else " ".join(words[:keep])
        raise ReadOnlyViolation(f"{word!r} reads or writes files or reaches the network; such "
                                "statements run only with --write")


def split_statements(text: str) -> tuple[str, ...]:
    """The ``;``-separated statements of a text, ignoring ``;`` inside strings and comments."""
    return _statements(text)


@dataclass(frozen=True)
class Query:
    """One query file: its name, dialect, statements and declared interface."""

    name: str  # e.g. "metrics/sink_nodes" (no dialect prefix)
    dialect: str  # the dialect it is written in: "neo4j" (shared files, GDS) or "kuzu"
    path: str  # relative to the cypher package, e.g. "kuzu/metrics/sink_nodes.cypher"
    text: str  # the file's text, header included
    statements: tuple[str, ...]
    params: frozenset[str]
    returns: tuple[str, ...]
    mode: str
    description: str

    @property
    def body(self) -> str:
        """The single statement of the query (files with several are schema scripts)."""
        if len(self.statements) != 1:
            raise QueryFileError(f"{self.path}: has {len(self.statements)} statements; run them "
                                 "one by one through `statements`")
        return self.statements[0]

    @property
    def gds(self) -> bool:
        return self.name.startswith("gds/")

    @property
    def override(self) -> bool:
        """Whether the file lives under ``cypher/<dialect>/`` (not a shared file)."""
        return self.path.startswith(f"{self.dialect}/")


def _parse(path: str, text: str) -> Query:
    rel = path[:-len(".cypher")]
    head, _, rest = rel.partition("/")
    dialect, name = (head, rest) if head in DIALECTS and rest else ("neo4j", rel)
    header: dict[str, str] = {}
    description: list[str] = []
    for line in text.splitlines():
        s = line.strip()
        if not s:
            continue
        if not s.startswith("//"):
            break
        m = _HEADER.match(s)
        if m:
            header[m.group(1).lower()] = m.group(2)
        else:
            description.append(s[2:].strip())
    if "params" not in header or "returns" not in header:
        raise QueryFileError(f"{path}: missing `// params:` or `// returns:` header line; "
                             "start the file with both (use `none` when empty)")
    declared_raw = header["params"]
    declared: set[str] = set()
    if declared_raw.lower() != "none":
        for tok in (t.strip() for t in declared_raw.split(",")):
            if not re.fullmatch(r"\$[A-Za-z_][A-Za-z0-9_]*", tok):
                raise QueryFileError(f"{path}: bad parameter {tok!r} in `// params:`; write "
                                     "`$name, $other`")
            declared.add(tok[1:])
    returns_raw = header["returns"]
    returns = () if returns_raw.lower() == "none" else tuple(
        r.strip() for r in returns_raw.split(",") if r.strip())
    mode = header.get("mode", "read").lower()
    if mode not in MODES:
        raise QueryFileError(f"{path}: unknown mode {mode!r}; use one of {', '.join(MODES)}")
    statements = _statements(text)
    if not statements:
        raise QueryFileError(f"{path}: no query body after the header")
    used = cypher_parameters(text)
    if used != declared:
        undeclared = sorted(used - declared)
        unused = sorted(declared - used)
        parts = []
        if undeclared:
            parts.append("uses undeclared " + ", ".join(f"${p}" for p in undeclared))
        if unused:
            parts.append("declares unused " + ", ".join(f"${p}" for p in unused))
        raise QueryFileError(f"{path}: {'; '.join(parts)}; make `// params:` list exactly the "
                             "parameters of the body")
    return Query(name=name, dialect=dialect, path=path, text=text, statements=statements,
                 params=frozenset(declared), returns=returns, mode=mode,
                 description=" ".join(description))


def _statements(text: str) -> tuple[str, ...]:
    """Split on ``;`` outside comments/strings; keep the original text of every statement."""
    out: list[str] = []
    start = 0
    pos = 0
    for m in _LEXEME.finditer(text):
        out_chunk = text[pos:m.start()]
        for i, ch in enumerate(out_chunk):
            if ch == ";":
                out.append(text[start:pos + i])
                start = pos + i + 1
        pos = m.end()
    for i, ch in enumerate(text[pos:]):
        if ch == ";":
            out.append(text[start:pos + i])
            start = pos + i + 1
    out.append(text[start:])
    cleaned = []
    for s in out:
        if strip_comments_and_strings(s).strip():
            cleaned.append(_drop_comment_lines(s))
    return tuple(cleaned)


def _drop_comment_lines(s: str) -> str:
    lines = [ln for ln in s.strip().splitlines() if not ln.strip().startswith("//")]
    return "\n".join(lines).strip()


def _walk(root: Traversable, prefix: str = "") -> Iterator[tuple[str, Traversable]]:
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            if entry.name.startswith(("_", ".")):
                continue
            yield from _walk(entry, f"{prefix}{entry.name}/")
        elif entry.name.endswith(".cypher"):
            yield f"{prefix}{entry.name}", entry


class QueryRegistry:
    """All query files of a directory tree (by default the installed ``mgedb.cypher`` package)."""

    def __init__(self, root: Traversable | None = None) -> None:
        self.root = root if root is not None else files("mgedb.cypher")
        self._shared: dict[str, Query] = {}
        self._overrides: dict[tuple[str, str], Query] = {}
        for path, entry in _walk(self.root):
            try:
                text = entry.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise QueryFileError(f"{path}: cannot read ({e})") from None
            q = _parse(path, text)
            if q.override:
                self._overrides[(q.dialect, q.name)] = q
            else:
                self._shared[q.name] = q

    def __iter__(self) -> Iterator[Query]:
        return iter([*self._shared.values(), *self._overrides.values()])

    def __len__(self) -> int:
        return len(self._shared) + len(self._overrides)

    @staticmethod
    def _visible(name: str, dialect: str) -> bool:
        return all(dialect == only for prefix, only in _ONLY.items() if name.startswith(prefix))

    def names(self, dialect: str = "neo4j") -> list[str]:
        """The query names visible in a dialect: its overrides and the shared files it runs."""
        self._check_dialect(dialect)
        own = {n for d, n in self._overrides if d == dialect}
        own |= {n for n in self._shared if self._visible(n, dialect)}
        return sorted(own)

    def get(self, name: str, dialect: str = "neo4j") -> Query:
        """The query ``name`` as the given backend dialect runs it: the dialect's override, else
        the shared file."""
        self._check_dialect(dialect)
        q = self._overrides.get((dialect, name))
        if q is not None:
            return q
        if name.startswith("gds/") and not self._visible(name, dialect):
            raise UnknownQuery(f"query {name!r} needs Neo4j GDS; the embedded store has no "
                               "GDS procedures (use --store neo4j)")
        q = self._shared.get(name)
        if q is None:
            known = ", ".join(self.names(dialect))
            raise UnknownQuery(f"no query named {name!r} for {dialect}; known: {known}")
        return q

    def bind(self, name: str, params: Mapping[str, Any] | None = None,
             dialect: str = "neo4j") -> tuple[Query, dict[str, Any]]:
        """The query and its parameters, checked against the declared ``// params:``."""
        q = self.get(name, dialect)
        given = dict(params or {})
        missing = sorted(q.params - given.keys())
        extra = sorted(given.keys() - q.params)
        if missing or extra:
            parts = []
            if missing:
                parts.append("missing " + ", ".join(f"${p}" for p in missing))
            if extra:
                parts.append("unexpected " + ", ".join(f"${p}" for p in extra))
            declared = ", ".join(f"${p}" for p in sorted(q.params)) or "none"
            raise QueryParameterError(f"query {name!r} ({q.path}): {'; '.join(parts)}; it takes "
                                      f"{declared}")
        return q, given

    @staticmethod
    def _check_dialect(dialect: str) -> None:
        if dialect not in DIALECTS:
            raise UnknownQuery(f"unknown Cypher dialect {dialect!r}; use one of "
                               f"{', '.join(DIALECTS)}")


@cache
def registry() -> QueryRegistry:
    """The registry of the installed query files (loaded once)."""
    return QueryRegistry()
