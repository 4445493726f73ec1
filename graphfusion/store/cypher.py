"""Cypher that both stores share, written once.

Labels, relationship types and property names reach these strings only after they were
looked up in the schema (:class:`graphfusion.schema.Schema`); every value is a parameter.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from graphfusion.errors import ValidationError
from graphfusion.schema import NodeType, RelType, union_properties

__all__ = [
    "count_nodes",
    "count_rels",
    "count_rels_between",
    "existing_keys",
    "merge_nodes",
    "merge_rels",
    "delete_nodes",
    "check_read_only",
    "may_write",
    "ReadOnlyViolation",
    "READ_ONLY_PROCEDURES",
    "WRITE_KEYWORDS",
]


def _sets(var: str, props: Sequence[str], union: Collection[str] = ()) -> str:
    # coalesce keeps what is stored when the new value is null: a source that lacks a
    # property never erases what another source wrote. A union list gains the new elements.
    if not props:
        return ""
    return " SET " + ", ".join(
        f"{var}.{p} = "
        + (_union_value(f"{var}.{p}", f"r.{p}") if p in union else f"coalesce(r.{p}, {var}.{p})")
        for p in props
    )


def _union_value(stored: str, new: str) -> str:
    """Expression for a ``merge: union`` list: ``stored`` with the elements of ``new`` that
    it lacks appended, in order (the one that is not null when the other is)."""
    return (
        f"CASE WHEN {new} IS NULL THEN {stored} WHEN {stored} IS NULL THEN {new} "
        f"ELSE {stored} + [x IN {new} WHERE NOT x IN {stored}] END"
    )


def count_nodes(node: NodeType) -> str:
    """Number of nodes of a label, as column ``count``."""
    return f"MATCH (n:{node.label}) RETURN count(n) AS count"


def count_rels(rel: RelType) -> str:
    """Number of relationships of a type, as column ``count``."""
    return f"MATCH ()-[r:{rel.type}]->() RETURN count(r) AS count"


def count_rels_between(rel: RelType, start: NodeType, end: NodeType) -> str:
    """Number of relationships of a type between two labels, as column ``count``."""
    return f"MATCH (:{start.label})-[r:{rel.type}]->(:{end.label}) RETURN count(r) AS count"


def existing_keys(node: NodeType) -> str:
    """Which of ``$keys`` exist as nodes of the label, as column ``key``."""
    return f"UNWIND $keys AS k MATCH (n:{node.label} {{{node.key}: k}}) RETURN n.{node.key} AS key"


def merge_nodes(node: NodeType, props: Sequence[str]) -> str:
    """Upsert ``$rows`` (maps with the key and ``props``) as nodes of the label."""
    return f"UNWIND $rows AS r MERGE (n:{node.label} {{{node.key}: r.{node.key}}})" + _sets(
        "n", props, union_properties(node.properties)
    )


def _match_ends(start: NodeType, end: NodeType) -> str:
    # Two MATCH clauses, never a comma-joined pattern: LadybugDB scans whole tables for the
    # latter (about 100x slower).
    return (
        f"UNWIND $rows AS r MATCH (a:{start.label} {{{start.key}: r.src}}) "
        f"MATCH (b:{end.label} {{{end.key}: r.dst}}) "
    )


def merge_rels(rel: RelType, start: NodeType, end: NodeType, props: Sequence[str]) -> str:
    """Upsert ``$rows`` (maps with ``src``, ``dst`` and ``props``) as relationships."""
    return (
        _match_ends(start, end)
        + f"MERGE (a)-[e:{rel.type}]->(b)"
        + _sets("e", props, union_properties(rel.properties))
    )


def delete_nodes(node: NodeType) -> str:
    """Delete every node of a label with its relationships."""
    return f"MATCH (n:{node.label}) DETACH DELETE n"


def mask_cypher(query: str) -> str:
    """``query`` with the inside of string literals and comments blanked out and quoted names
    as underscores, at the same positions, so that only the statement's own words remain.

    Raises:
        ValidationError: An unterminated string, quoted name or comment.
    """
    out: list[str] = []
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch in "'\"":
            j = i + 1
            while j < n and query[j] != ch:
                j += 2 if query[j] == "\\" else 1
            if j >= n:
                raise ValidationError("unterminated string literal")
            out.append(ch + " " * (j - i - 1) + ch)
            i = j + 1
        elif ch == "`":
            j = i + 1
            while True:
                j = query.find("`", j)
                if j < 0:
                    raise ValidationError("unterminated quoted name")
                if j + 1 < n and query[j + 1] == "`":  # `` is an escaped backtick
                    j += 2
                    continue
                break
            out.append("_" * (j - i + 1))
            i = j + 1
        elif query.startswith("//", i):
            j = query.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif query.startswith("/*", i):
            j = query.find("*/", i + 2)
            if j < 0:
                raise ValidationError("unterminated comment")
            out.append(" " * (j + 2 - i))
            i = j + 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


_PARAMETER = re.compile(r"\$([^\W\d]\w*|\d+)")


def parameter_names(query: str, masked: str) -> list[str]:
    """The ``$parameter`` names a statement uses, in order of first use: found in its
    :func:`mask_cypher` text (so a ``$`` inside a string or comment does not count), a
    backtick-quoted name (`` $`a b` ``) read from the query itself."""
    names = []
    for match in _PARAMETER.finditer(masked):
        start = match.start(1)
        if query[start] == "`":  # masked as underscores: the name is the quoted text
            end = start + len(match.group(1))
            names.append(query[start + 1 : end - 1].replace("``", "`"))
        else:
            names.append(match.group(1))
    return list(dict.fromkeys(names))


def single_statement(query: str) -> str:
    """:func:`mask_cypher` of a query that holds one statement (a trailing ``;`` is fine).

    Raises:
        ValidationError: Several statements, or an unterminated string, name or comment.
    """
    masked = mask_cypher(query).rstrip()
    if ";" in masked.rstrip(";") or masked.count(";") > 1:
        raise ValidationError("one statement at a time: the query has a ';' inside")
    return masked


#: Words that make :func:`check_read_only` refuse a query (outside strings, quoted names and
#: comments): clauses that write, administer, reach files or URLs, or control transactions, in
#: Neo4j or LadybugDB. A property or variable with such a name must be quoted: ``n.`set```.
WRITE_KEYWORDS = frozenset(
    {
        "CREATE", "MERGE", "DELETE", "DETACH", "SET", "REMOVE", "DROP", "COPY", "LOAD",
        "ALTER", "RENAME", "INSTALL", "ATTACH", "USE", "EXPORT", "IMPORT", "CHECKPOINT",
        "BEGIN", "COMMIT", "ROLLBACK", "TRANSACTION", "TRANSACTIONS", "FOREACH", "GRANT",
        "DENY", "REVOKE", "START", "STOP", "TERMINATE", "SHOW", "ENABLE", "DISABLE",
    }
)  # fmt: skip
#: The procedures a read-only query may ``CALL`` (lower case): Neo4j's schema listings and index
#: searches, LadybugDB's table listings. Every other ``CALL name`` is refused.
READ_ONLY_PROCEDURES = frozenset(
    {
        "db.labels",
        "db.relationshiptypes",
        "db.propertykeys",
        "db.schema.visualization",
        "db.schema.nodetypeproperties",
        "db.schema.reltypeproperties",
        "db.index.vector.querynodes",
        "db.index.fulltext.querynodes",
        "db.index.fulltext.queryrelationships",
        "show_tables",
        "table_info",
        "show_connection",
    }
)

_WORD = re.compile(r"\$?[A-Za-z_][A-Za-z0-9_]*")
_PROCEDURE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*(?:\s*\.\s*[A-Za-z_][A-Za-z0-9_]*)*)")


class ReadOnlyViolation(ValidationError):
    """A query that could write, or that the check cannot read safely (the REST service's
    ``/cypher`` refuses it)."""


def check_read_only(query: str) -> str:
    """Refuse a Cypher query that could write; return it ready to run.

    String literals, backtick-quoted names and comments are set aside first, so
    ``RETURN 'CREATE'`` passes and ``/* */ CREATE`` does not. Then the query is refused if a
    word of :data:`WRITE_KEYWORDS` remains (``$parameters`` do not count), if it holds more
    than one statement, or if it calls a procedure outside :data:`READ_ONLY_PROCEDURES`
    (``CALL {...}`` subqueries are checked like the rest).

    Args:
        query: The Cypher text.

    Returns:
        The query without a trailing ``;``.

    Raises:
        ReadOnlyViolation: What was refused, and why.
    """
    if not isinstance(query, str) or not query.strip():
        raise ReadOnlyViolation("the query is empty")
    try:
        masked = single_statement(query)
    except ValidationError as exc:
        raise ReadOnlyViolation(str(exc)) from None
    for match in _WORD.finditer(masked):
        word = match.group(0)
        if word.startswith("$"):
            continue
        upper = word.upper()
        if upper in WRITE_KEYWORDS:
            raise ReadOnlyViolation(
                f"{upper} is not allowed: this endpoint is read-only (quote a property or "
                f"variable of that name with backticks)"
            )
        if upper == "CALL":
            rest = masked[match.end() :]
            if rest.lstrip()[:1] in ("{", "("):
                continue  # a subquery: its clauses are checked like the rest
            name = _PROCEDURE.match(rest)
            proc = re.sub(r"\s+", "", name.group(1)).lower() if name else ""
            if proc.strip("_") == "":
                proc = "a backtick-quoted name" if proc else "(unreadable)"
            if proc not in READ_ONLY_PROCEDURES:
                allowed = ", ".join(sorted(READ_ONLY_PROCEDURES))
                raise ReadOnlyViolation(
                    f"CALL {proc} is not allowed; read-only procedures: {allowed}"
                )
    # the mask keeps positions: cut the query at its trailing ';', if any
    return query[: len(masked) - 1] if masked.endswith(";") else query


def may_write(query: str) -> bool:
    """Whether a Cypher query may write: :func:`check_read_only` refuses it."""
    try:
        check_read_only(query)
    except ReadOnlyViolation:
        return True
    return False
