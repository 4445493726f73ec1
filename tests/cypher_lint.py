"""Offline Cypher checking with Neo4j's own parser (test helper).

Wraps ``tools/cypher-lint/lint.mjs``, a Node script around the npm package
``@neo4j-cypher/language-support`` (pinned in ``tools/cypher-lint/package.json``).
Install it once with::

    npm ci --prefix tools/cypher-lint --no-audit --no-fund

Then::

    results = lint_cypher(["MATCH (n) RETURN n", "MATCH (n RETURN n"])
    assert results[0].ok and not results[1].ok
    unknown_calls("RETURN label(r), list_contains($a, 1)")  # ['label', 'list_contains']

All queries go to one ``node`` process. Queries are checked as Neo4j 5 Cypher against an
empty schema: syntax and semantic errors (e.g. undefined variables) are reported, while
labels, property keys, functions and procedures are not checked against a database, and
"Parameter $x is not defined" is ignored. Diagnostics with LSP severity 1 (Error) are
``errors``; deprecation notices and other lower severities are ``warnings``.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphfusion.store.cypher import mask_cypher

REPO_ROOT = Path(__file__).resolve().parent.parent
LINT_DIR = REPO_ROOT / "tools" / "cypher-lint"
LINT_SCRIPT = LINT_DIR / "lint.mjs"
PACKAGE_DIR = LINT_DIR / "node_modules" / "@neo4j-cypher" / "language-support"
INSTALL_COMMAND = "npm ci --prefix tools/cypher-lint --no-audit --no-fund"

SEVERITY_ERROR = 1
SEVERITY_WARNING = 2


@dataclass(frozen=True)
class CypherDiagnostic:
    """One diagnostic; ``line`` and ``column`` are 1-based, ``severity`` is the LSP number."""

    message: str
    line: int
    column: int
    severity: int = SEVERITY_ERROR

    def __str__(self) -> str:
        return f"{self.line}:{self.column}: {self.message}"

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> CypherDiagnostic:
        return cls(
            message=str(item["message"]),
            line=int(item["line"]),
            column=int(item["column"]),
            severity=int(item.get("severity", SEVERITY_ERROR)),
        )


@dataclass(frozen=True)
class LintResult:
    query: str
    errors: list[CypherDiagnostic] = field(default_factory=list)
    warnings: list[CypherDiagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when Neo4j's parser found no error (warnings do not count)."""
        return not self.errors

    def describe(self) -> str:
        """Multi-line summary, handy as an assertion message."""
        lines = [self.query]
        lines += [f"  error {d}" for d in self.errors]
        lines += [f"  warning {d}" for d in self.warnings]
        return "\n".join(lines)


def _node_executable() -> str | None:
    return shutil.which("node")


def cypher_lint_available() -> bool:
    """True when ``node`` is on PATH and the npm package is installed under tools/cypher-lint."""
    return (
        _node_executable() is not None
        and LINT_SCRIPT.is_file()
        and (PACKAGE_DIR / "package.json").is_file()
    )


def unavailable_reason() -> str:
    """Why :func:`cypher_lint_available` is False (for ``pytest.skip`` messages)."""
    if _node_executable() is None:
        return "Cypher lint needs Node.js: `node` is not on PATH"
    if not LINT_SCRIPT.is_file():
        return f"Cypher lint script is missing: {LINT_SCRIPT}"
    if not (PACKAGE_DIR / "package.json").is_file():
        return f"@neo4j-cypher/language-support is not installed; run `{INSTALL_COMMAND}`"
    return ""


def lint_cypher(queries: Sequence[str], *, timeout: float = 600.0) -> list[LintResult]:
    """Check each Cypher string with Neo4j's parser; one result per query, in order.

    Raises RuntimeError when the checker is not installed, or when node fails or
    returns something unexpected.
    """
    if isinstance(queries, str):
        raise TypeError("lint_cypher expects a sequence of query strings, not one string")
    queries = list(queries)
    if not queries:
        return []
    if not cypher_lint_available():
        raise RuntimeError(unavailable_reason())
    node = _node_executable()
    assert node is not None
    try:
        proc = subprocess.run(
            [node, str(LINT_SCRIPT)],
            input=json.dumps(queries),
            capture_output=True,
            text=True,
            encoding="utf-8",
            cwd=REPO_ROOT,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"cypher lint (node {LINT_SCRIPT}) failed to run: {exc}") from exc
    if proc.returncode != 0:
        raise RuntimeError(
            f"cypher lint (node {LINT_SCRIPT}) exited with status {proc.returncode}:\n"
            f"{proc.stderr.strip()}"
        )
    try:
        items = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise RuntimeError(
            f"cypher lint printed invalid JSON ({exc}); stdout starts with {proc.stdout[:200]!r};"
            f" stderr: {proc.stderr.strip()}"
        ) from exc
    if not isinstance(items, list) or len(items) != len(queries):
        raise RuntimeError(
            f"cypher lint returned {len(items) if isinstance(items, list) else type(items)}"
            f" results for {len(queries)} queries"
        )
    return [
        LintResult(
            query=query,
            errors=[CypherDiagnostic.from_json(d) for d in item["errors"]],
            warnings=[CypherDiagnostic.from_json(d) for d in item["warnings"]],
        )
        for query, item in zip(queries, items, strict=True)
    ]


# Prints the names of Neo4j 5's built-in functions and procedures, as the package's own test
# schema lists them (taken from a Neo4j 5 server; APOC and other plugins left out).
_BUILTINS_SCRIPT = """
import { testData } from '@neo4j-cypher/language-support';
const pick = (all) => Object.values(all['CYPHER 5']);
const schema = testData.mockSchema;
console.log(JSON.stringify({
  functions: pick(schema.functions).filter((f) => f.isBuiltIn).map((f) => f.name),
  procedures: pick(schema.procedures).filter((p) => !/^(apoc|gds|genai)\\./.test(p.name))
    .map((p) => p.name),
}));
"""

#: Words that a ``(`` may follow in Cypher without making a call.
_CLAUSE_WORDS = frozenset(
    """MATCH OPTIONAL MERGE CREATE WHERE AND OR XOR NOT IN RETURN WITH ON FOR DISTINCT UNWIND
    THEN ELSE WHEN CASE AS BY LIMIT SKIP DELETE DETACH SET REMOVE YIELD IS UNION""".split()  # noqa: SIM905
)
_CALLED = re.compile(r"(?<![\w.$])([A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*)*)\s*\(")


@functools.cache
def neo4j_builtins() -> tuple[frozenset[str], frozenset[str]]:
    """Neo4j 5's built-in function and procedure names, lower case (functions' names are not
    case sensitive), from ``@neo4j-cypher/language-support``'s test schema.

    Raises:
        RuntimeError: When the checker is not installed or node fails.
    """
    if not cypher_lint_available():
        raise RuntimeError(unavailable_reason())
    node = _node_executable()
    assert node is not None
    proc = subprocess.run(
        [node, "--input-type=module", "-e", _BUILTINS_SCRIPT],
        capture_output=True,
        text=True,
        cwd=LINT_DIR,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"listing Neo4j's functions failed: {proc.stderr.strip()}")
    names = json.loads(proc.stdout)
    return (
        frozenset(n.lower() for n in names["functions"]),
        frozenset(n.lower() for n in names["procedures"]),
    )


def unknown_calls(query: str) -> list[str]:
    """The functions and procedures ``query`` calls that Neo4j 5 does not have built in (e.g.
    LadybugDB's ``label``, ``list_contains``, ``array_cosine_similarity``, ``CAST``, or
    ``timestamp`` given an argument), in order; string literals and comments do not count.

    Raises:
        RuntimeError: When the checker is not installed or node fails.
    """
    functions, procedures = neo4j_builtins()
    masked = mask_cypher(query)
    unknown = []
    for match in _CALLED.finditer(masked):
        name = re.sub(r"\s+", "", match.group(1))
        if name.upper() in _CLAUSE_WORDS:
            continue
        before = masked[: match.start()].rstrip()
        known = procedures if re.search(r"\bCALL$", before, flags=re.I) else functions
        # Neo4j's timestamp() takes no argument; LadybugDB's timestamp('...') parses text
        takes_text = name.lower() == "timestamp" and masked[match.end() :].lstrip()[:1] != ")"
        if name.lower() not in known or takes_text:
            unknown.append(name)
    return unknown
