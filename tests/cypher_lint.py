"""Offline Cypher checking with Neo4j's own parser (test helper).

Wraps ``tools/cypher-lint/lint.mjs``, a Node script around the npm package
``@neo4j-cypher/language-support`` (pinned in ``tools/cypher-lint/package.json``).
Install it once with::

    npm ci --prefix tools/cypher-lint --no-audit --no-fund

Then::

    results = lint_cypher(["MATCH (n) RETURN n", "MATCH (n RETURN n"])
    assert results[0].ok and not results[1].ok

All queries go to one ``node`` process. Queries are checked as Neo4j 5 Cypher against an
empty schema: syntax and semantic errors (e.g. undefined variables) are reported, while
labels, property keys, functions and procedures are not checked against a database, and
"Parameter $x is not defined" is ignored. Diagnostics with LSP severity 1 (Error) are
``errors``; deprecation notices and other lower severities are ``warnings``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
