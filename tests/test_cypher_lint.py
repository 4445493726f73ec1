"""Neo4j's own Cypher parser, run offline, accepts valid Neo4j 5 Cypher and rejects bad Cypher.

Needs Node.js and ``npm ci --prefix tools/cypher-lint --no-audit --no-fund``; skipped otherwise.
"""

from __future__ import annotations

import pytest

try:
    from cypher_lint import (
        SEVERITY_ERROR,
        SEVERITY_WARNING,
        LintResult,
        cypher_lint_available,
        lint_cypher,
        unavailable_reason,
    )
except ImportError:  # tests/ imported as a package
    from tests.cypher_lint import (
        SEVERITY_ERROR,
        SEVERITY_WARNING,
        LintResult,
        cypher_lint_available,
        lint_cypher,
        unavailable_reason,
    )

pytestmark = pytest.mark.skipif(
    not cypher_lint_available(),
    reason=unavailable_reason() or "Cypher lint is not available",
)

# The kinds of statements the Neo4j store emits, plus a few more Neo4j 5 forms.
VALID_QUERIES = [
    "CREATE CONSTRAINT product_id IF NOT EXISTS FOR (n:Product) REQUIRE n.id IS UNIQUE",
    "CREATE VECTOR INDEX product_text_vec IF NOT EXISTS FOR (n:Product) ON (n.text_vec) "
    "OPTIONS {indexConfig: {`vector.dimensions`: 384, `vector.similarity_function`: 'cosine'}}",
    "UNWIND $rows AS r MERGE (n:Product {id: r.id}) SET n.title = coalesce(r.title, n.title)",
    "UNWIND $rows AS r MATCH (a:User {id: r.src}) MATCH (b:Product {id: r.dst}) "
    "MERGE (a)-[e:VIEWED]->(b) SET e.ts = coalesce(datetime(r.ts), e.ts)",
    "CALL db.index.vector.queryNodes('product_text_vec', $k, $vector) YIELD node, score "
    "RETURN node.id AS id, score",
    "MATCH (n) DETACH DELETE n",
    "MATCH (n) RETURN labels(n)[0] AS label, count(*) AS count",
    "MATCH ()-[r]->() RETURN type(r) AS type, count(*) AS count",
    "CREATE INDEX product_title IF NOT EXISTS FOR (n:Product) ON (n.title)",
    "UNWIND $rows AS r\nMERGE (n:`Product Variant` {id: r.id})\nSET n += r.props",
    "MATCH (n:Product) WHERE n.id IN $ids RETURN n.id AS id, properties(n) AS props",
]

# (query, a fragment of the expected error message)
BROKEN_QUERIES = [
    ("MATCH (n RETURN n", "Invalid input 'RETURN'"),
    ("UNWIND $rows r MERGE", "Invalid input 'r'"),
    # LadybugDB (Kùzu) DDL / DML that Neo4j does not understand.
    ("CREATE NODE TABLE A(id STRING PRIMARY KEY)", "Invalid input 'TABLE'"),
    ("CREATE REL TABLE VIEWED(FROM User TO Product, ts TIMESTAMP)", "Invalid input"),
    ("COPY Product FROM 'products.parquet'", "Invalid input 'COPY'"),
    ("MATCH (n) RETURN m", "Variable `m` not defined"),
    ("MATCH (n) RETURN n; MATCH (m) RETURN m", "exactly one statement"),
    ("", "empty"),
]


EXTRA_QUERIES = [
    "MATCH (n)\nRETURN m",  # error on line 2
    "MATCH (n) WHERE id(n) = 1 RETURN n",  # deprecated function: a warning only
    "MATCH (n) RETURN n",  # a duplicate of the next-but-one, to check order is kept
    "MATCH (n RETURN n",
    "MATCH (n) RETURN n",
]
ALL_QUERIES = VALID_QUERIES + [q for q, _ in BROKEN_QUERIES] + EXTRA_QUERIES


@pytest.fixture(scope="module")
def results() -> list[LintResult]:
    """Lint every query of this module in one node run (the parser takes seconds to load)."""
    return lint_cypher(ALL_QUERIES)


@pytest.fixture(scope="module")
def by_query(results: list[LintResult]) -> dict[str, LintResult]:
    return {r.query: r for r in results}


@pytest.mark.parametrize("query", VALID_QUERIES)
def test_valid_cypher_passes(by_query: dict[str, LintResult], query: str) -> None:
    result = by_query[query]
    assert result.ok, result.describe()
    assert not result.warnings, result.describe()


@pytest.mark.parametrize(("query", "expected"), BROKEN_QUERIES)
def test_broken_cypher_is_an_error(
    by_query: dict[str, LintResult], query: str, expected: str
) -> None:
    result = by_query[query]
    assert not result.ok, f"not flagged: {query!r}"
    assert all(d.severity == SEVERITY_ERROR for d in result.errors)
    messages = "\n".join(d.message for d in result.errors)
    assert expected in messages, result.describe()


def test_error_position_is_one_based(by_query: dict[str, LintResult]) -> None:
    result = by_query["MATCH (n)\nRETURN m"]
    (error,) = result.errors
    assert (error.line, error.column) == (2, 8), result.describe()


def test_deprecation_is_a_warning_not_an_error(by_query: dict[str, LintResult]) -> None:
    result = by_query["MATCH (n) WHERE id(n) = 1 RETURN n"]
    assert result.ok, result.describe()
    assert [w.severity for w in result.warnings] == [SEVERITY_WARNING], result.describe()
    assert "deprecated" in result.warnings[0].message


def test_results_keep_order_and_duplicates(results: list[LintResult]) -> None:
    assert [r.query for r in results] == ALL_QUERIES
    assert [r.ok for r in results[-3:]] == [True, False, True]


def test_no_queries_means_no_node_run() -> None:
    assert lint_cypher([]) == []


def test_rejects_a_single_string() -> None:
    with pytest.raises(TypeError):
        lint_cypher("MATCH (n) RETURN n")
