"""Every Neo4j-dialect ``.cypher`` file passes Neo4j's own Cypher tooling.

tools/cypher-lint/lint.mjs runs ``lintCypherQuery`` of ``@neo4j-cypher/language-support`` (Neo4j 5
grammar + semantic analysis) under Node.js, offline, with each file's declared parameters, mgedb's
labels and relationship types, Neo4j's built-in functions/procedures and — for ``cypher/gds/``
only — the GDS procedure signatures. Any diagnostic fails. Files under ``cypher/kuzu/`` are Kùzu
dialect and exempt (Neo4j's grammar rejects label unions and Kùzu's algorithm calls by design).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mgedb.store.queries import registry

pytestmark = pytest.mark.lint

TOOL = Path(__file__).resolve().parent.parent / "tools" / "cypher-lint"
LABELS = ["Network", "Layer", "Channel", "Unit", "InputPixel", "ConvUnit", "Neuron", "BgeNode",
          "Metric", "LayerMetrics"]
REL_TYPES = ["W", "IN_CHANNEL", "IN_LAYER", "OF", "HAS_METRIC", "HAS_LAYER_METRICS"]


@pytest.fixture(scope="module")
def lint() -> Any:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js/npm not installed: the Neo4j Cypher linter needs them")
    if not (TOOL / "node_modules" / "@neo4j-cypher" / "language-support").is_dir():
        pytest.skip(f"the Cypher linter is not installed: `make test` installs it (npm ci in "
                    f"{TOOL})")

    def run(files: list[dict[str, Any]]) -> list[dict[str, Any]]:
        payload = {"labels": LABELS, "relationshipTypes": REL_TYPES, "files": files}
        r = subprocess.run([node, str(TOOL / "lint.mjs")], input=json.dumps(payload),
                           capture_output=True, text=True, timeout=300, check=True)
        out: list[dict[str, Any]] = json.loads(r.stdout)
        return out

    return run


def _files() -> list[dict[str, Any]]:
    return [{"path": q.path, "statements": list(q.statements), "parameters": sorted(q.params),
             "gds": q.gds} for q in registry() if q.dialect == "neo4j"]


def test_every_neo4j_query_file_is_clean(lint: Any) -> None:
    files = _files()
    assert len(files) >= 45 and any(f["gds"] for f in files)
    problems = lint(files)
    assert problems == [], "\n".join(
        f"cypher/{p['path']}:{p['line']}:{p['character']} [{p['severity']}] {p['message']}"
        for p in problems)


def test_the_linter_catches_real_mistakes(lint: Any) -> None:
    bad = [
        {"path": "syntax", "statements": ["MATCH (n:Unit {network: $key} RETURN n"],
         "parameters": ["key"], "gds": False},
        {"path": "param", "statements": ["MATCH (n:Unit) WHERE n.idx < $below RETURN n"],
         "parameters": [], "gds": False},
        {"path": "label", "statements": ["MATCH (n:Units) RETURN count(n)"], "parameters": [],
         "gds": False},
        {"path": "gds-outside", "statements": ["CALL gds.wcc.stats($g) YIELD componentCount "
                                               "RETURN componentCount"],
         "parameters": ["g"], "gds": False},
        {"path": "type", "statements": ["MATCH (n:Unit) RETURN n.idx - 'a' AS x"],
         "parameters": [], "gds": False},
        {"path": "gds-ok", "statements": ["CALL gds.wcc.stats($g) YIELD componentCount "
                                          "RETURN componentCount"],
         "parameters": ["g"], "gds": True},
    ]
    flagged = {p["path"] for p in lint(bad)}
    assert flagged == {"syntax", "param", "label", "gds-outside", "type"}


def test_portable_example_queries_in_the_docs_are_clean(lint: Any) -> None:
    """docs/schema.md's ```cypher examples (except the Kùzu-only one) are valid Neo4j 5 Cypher."""
    doc = (TOOL.parent.parent / "docs" / "schema.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```cypher\n(.*?)```", doc, flags=re.S)
    chunks = [c.strip() for b in blocks for c in re.split(r"\n\s*\n", b) if c.strip()]
    statements = [c for c in chunks if "Kùzu only" not in c]
    assert len(statements) >= 5
    files = [{"path": f"docs/schema.md#{i}", "statements": [s], "parameters": ["key"],
              "gds": False} for i, s in enumerate(statements)]
    problems = lint(files)
    assert problems == [], problems
