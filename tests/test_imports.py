"""The package's layers import downward only, and no module imports itself round a cycle.

Every ``import`` / ``from … import`` in ``mgedb/`` counts, at module level or inside a function
(a function-level import is a dependency all the same). The layers, bottom first:

0. ``mgedb`` (the version), ``errors``, ``vocab``, ``atomic``, ``data`` — shared by everything;
1. ``graph`` — the graph value (pure NumPy) that the encoders produce and everything above reads;
2. the torch side: ``encode``, ``models``, ``model_source``, ``checkpoint``, ``prune``,
   ``datasets``, ``train``;
3. ``metrics`` — pure NumPy/SciPy/igraph, no database, no torch;
4. ``store`` (and the ``cypher`` query files);
5. ``predict``;
6. ``study``;
7. ``cli``.

So the data flow encode → graph → metrics → store → predict → study → cli, with the graph value
sitting under the encoders that build it. The pure layers (metrics, store, predict) never import
the torch side.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "mgedb"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("mgedb", "mgedb.errors", "mgedb.vocab", "mgedb.atomic", "mgedb.data"),
    ("mgedb.graph",),
    ("mgedb.encode", "mgedb.models", "mgedb.model_source", "mgedb.checkpoint", "mgedb.prune",
     "mgedb.datasets", "mgedb.train"),
    ("mgedb.metrics",),
    ("mgedb.store", "mgedb.cypher"),
    ("mgedb.predict",),
    ("mgedb.study",),
    ("mgedb.cli",),
)
TORCH_SIDE = LAYERS[2]
PURE = ("mgedb.metrics", "mgedb.store", "mgedb.predict")


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _imports(path: Path, name: str, known: set[str]) -> Iterator[tuple[str, int]]:
    """The mgedb modules ``path`` imports (``from pkg import submodule`` → the submodule)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "mgedb":
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target.split(".")[0] != "mgedb":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield (sub if sub in known else target), node.lineno


def _layer(module: str) -> int:
    best, rank = "", -1
    for i, names in enumerate(LAYERS):
        for prefix in names:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
                best, rank = prefix, i
    assert rank >= 0, f"{module}: in no layer; add it to LAYERS in {__file__}"
    return rank


def _graph() -> dict[str, dict[str, int]]:
    mods = _modules()
    known = set(mods)
    return {m: {t: line for t, line in _imports(p, m, known) if t != m}
            for m, p in mods.items()}


def _in(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_every_module_is_in_a_layer() -> None:
    for m in _modules():
        _layer(m)


def test_no_upward_import() -> None:
    bad = []
    for src, targets in _graph().items():
        for dst, line in targets.items():
            if _layer(dst) > _layer(src):
                bad.append(f"{src}:{line} imports {dst} (layer {_layer(dst)} > {_layer(src)})")
            elif _in(src, PURE) and _in(dst, TORCH_SIDE):
                bad.append(f"{src}:{line} imports {dst} (the torch side) from a pure layer")
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_no_import_cycle() -> None:
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, "import cycles: " + "; ".join(" ↔ ".join(c) for c in cycles)


def test_the_checker_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "mgedb" / "pkg"
    pkg.mkdir(parents=True)
    f = pkg / "mod.py"
    f.write_text("def g():\n    from mgedb.cli import app\n    from . import other\n")
    found = {t for t, _ in _imports(f, "mgedb.pkg.mod", {"mgedb.pkg.other"})}
    assert found == {"mgedb.cli", "mgedb.pkg.other"}
