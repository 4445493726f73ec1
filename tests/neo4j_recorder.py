"""A recording stand-in for the ``neo4j`` driver (as neo4j-graphrag's tests use).

It records every ``execute_query`` call (query, parameters, database) and answers from a
small responder, so unit tests can assert the exact Cypher the Neo4j store sends. Parameters
are packed as the real driver packs them for the wire (a value it cannot send fails here as
there). The real driver is exercised by ``test_store_neo4j.py::test_live_neo4j`` when
``NEO4J_URI`` is set.

:class:`EmbeddedResponder` answers from an embedded store instead: the applications then run
whole on a :class:`~graphfusion.store.Neo4jStore`, and every statement they send is recorded.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import neo4j
import neo4j.time

from graphfusion.cypher_recipes import recommend_query
from graphfusion.store import EmbeddedStore
from graphfusion.store.cypher import may_write
from graphfusion.store.dialect import LADYBUG, index_name


def FakeRecord(data: dict[str, Any]) -> neo4j.Record:
    """A record of the real driver's type (its ``data()`` turns a relationship into a tuple of
    its ends, as the driver does), holding ``data``."""
    return neo4j.Record(list(data.items()))


@dataclass
class FakeResult:
    records: list[neo4j.Record]
    summary: Any = None
    keys: list[str] = field(default_factory=list)


class FakeStream:
    """What a result transformer reads: the records one at a time, and the keys."""

    def __init__(self, records: list[neo4j.Record], keys: list[str]) -> None:
        self._records, self._keys, self.read = records, keys, 0

    def keys(self) -> list[str]:
        return list(self._keys)

    def __iter__(self) -> Iterator[neo4j.Record]:
        for record in self._records:
            self.read += 1
            yield record


@dataclass
class Call:
    query: str
    parameters: dict[str, Any]
    database: str | None
    kwargs: dict[str, Any]


def default_responder(query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Counts are 0; every key asked about exists."""
    if "count(" in query:
        return [{"count": 0}]
    if "AS key" in query:
        return [{"key": k} for k in params.get("keys", [])]
    return []


#: The rows of a result, or ``(its column names, its rows)``: a result without rows still has
#: its columns in Neo4j.
Response = list[dict[str, Any]] | tuple[list[str], list[dict[str, Any]]]


def pack_parameters(params: dict[str, Any]) -> None:
    """Pack ``params`` as the real driver packs a query's parameters (PackStream, with its
    hooks for temporal and numpy values); nothing when the driver's codec cannot be imported.

    Raises:
        ValueError, TypeError, OverflowError: A value the driver cannot send, as it raises.
    """
    try:
        from neo4j._codec.hydration.bolt.v3 import HydrationHandler
        from neo4j._codec.packstream.v1 import Packer
    except ImportError:  # pragma: no cover - another driver version
        return
    hooks = HydrationHandler().new_hydration_scope().dehydration_hooks
    Packer(Packer.new_packable_buffer()).pack(params, hooks)


_CREATE_VECTOR = re.compile(
    r"CREATE VECTOR INDEX (\w+) IF NOT EXISTS FOR \(n:(\w+)\) ON \(n\.(\w+)\) OPTIONS "
    r"\{indexConfig: \{`vector\.dimensions`: (\d+), `vector\.similarity_function`: '(\w+)'\}\}"
)
_CREATE_CONSTRAINT = re.compile(
    r"CREATE CONSTRAINT (\w+) IF NOT EXISTS FOR \(n:(\w+)\) REQUIRE n\.(\w+) IS UNIQUE"
)
#: The columns of ``SHOW INDEXES`` that the Neo4j store reads.
INDEX_COLUMNS = ["name", "type", "labelsOrTypes", "properties", "options"]


def index_row(
    name: str, kind: str, label: str, prop: str, options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A row of Neo4j 5's ``SHOW INDEXES`` (``kind``: ``RANGE``, ``VECTOR``...)."""
    return {"name": name, "type": kind, "labelsOrTypes": [label], "properties": [prop],
            "options": options or {"indexProvider": "range-1.0", "indexConfig": {}}}  # fmt: skip


def vector_index_row(name: str, label: str, prop: str, dim: int, similarity: str) -> dict[str, Any]:
    """A vector index as ``SHOW INDEXES`` lists it (the similarity in capitals, as Neo4j 5)."""
    config = {"vector.dimensions": dim, "vector.similarity_function": similarity.upper()}
    return index_row(name, "VECTOR", label, prop, {"indexProvider": "vector-2.0",
                                                   "indexConfig": config})  # fmt: skip


class RecordingDriver:
    """Records every statement; answers from ``responder``, but for the server's index
    catalogue: ``CREATE ... IF NOT EXISTS`` adds to :attr:`indexes` as Neo4j 5 does (nothing
    when an index of that name, or one of that kind on that label and property, is there) and
    ``SHOW INDEXES`` lists it.

    Attributes:
        indexes: The server's indexes, as ``SHOW INDEXES`` rows (:func:`index_row`); a test
            may put some there first, as a database that graphfusion did not make holds them.
    """

    def __init__(self, responder: Callable[[str, dict[str, Any]], Response] | None = None) -> None:
        self.calls: list[Call] = []
        self.closed = False
        self.records_read = 0
        self.responder = responder or default_responder
        self.indexes: list[dict[str, Any]] = []

    def _catalogue(self, query: str) -> Response | None:
        """The answer of a ``SHOW INDEXES``; a ``CREATE`` of an index or constraint is noted."""
        if query.startswith("SHOW INDEXES"):
            return INDEX_COLUMNS, [dict(row) for row in self.indexes]
        made = None
        if vector := _CREATE_VECTOR.fullmatch(query):
            name, label, prop, dim, sim = vector.groups()
            made = vector_index_row(name, label, prop, int(dim), sim)
        elif unique := _CREATE_CONSTRAINT.fullmatch(query):
            name, label, prop = unique.groups()
            made = index_row(name, "RANGE", label, prop)
        if made is not None and not any(
            row["name"] == made["name"]
            or (row["type"], row["labelsOrTypes"], row["properties"])
            == (made["type"], made["labelsOrTypes"], made["properties"])
            for row in self.indexes
        ):
            self.indexes.append(made)
        return None

    def execute_query(
        self, query: Any, parameters_: dict[str, Any] | None = None, database_: str | None = None,
        **kwargs: Any,
    ) -> Any:  # fmt: skip
        params = dict(parameters_ or {})
        pack_parameters(params)
        text = getattr(query, "text", query)  # a neo4j.Query carries its timeout
        if hasattr(query, "timeout"):
            kwargs["timeout"] = query.timeout
        transformer = kwargs.get("result_transformer_")
        self.calls.append(Call(text, params, database_, kwargs))
        responder: Any = self.responder
        if (shown := self._catalogue(text)) is not None:
            response: Response = shown
        elif isinstance(responder, EmbeddedResponder):
            response = responder.respond(text, params, read=_is_read(kwargs.get("routing_")))
        else:
            response = responder(text, params)
        if isinstance(response, tuple):
            keys, rows = response
        else:
            rows, keys = response, list(response[0]) if response else []
        records = [FakeRecord(r) for r in rows]
        if transformer is not None:
            stream = FakeStream(records, keys)
            out = transformer(stream)
            self.records_read = stream.read
            return out
        return FakeResult(records, keys=keys)

    def verify_connectivity(self) -> None:
        """The real driver's check that the server answers (the stand-in always does)."""

    def close(self) -> None:
        self.closed = True

    @property
    def queries(self) -> list[str]:
        return [c.query for c in self.calls]


def _is_read(routing: Any) -> bool:
    return str(getattr(routing, "value", routing)).lower() in ("r", "read")


def _arguments(text: str, start: int) -> tuple[list[str], int]:
    """The comma-separated arguments of the call whose ``(`` ends just before ``start``, and
    the position after its ``)``."""
    depth, args, current, i = 0, [], "", start
    while True:
        ch = text[i]
        if ch == "," and depth == 0:
            args.append(current.strip())
            current = ""
        elif ch in ")]}" and depth == 0:
            args.append(current.strip())
            return args, i + 1
        else:
            depth += (ch in "([{") - (ch in ")]}")
            current += ch
        i += 1


def _neo4j_value(value: Any) -> Any:
    """``value`` as the driver hands it over: temporal values as ``neo4j.time`` types."""
    if isinstance(value, dt.datetime):
        return neo4j.time.DateTime.from_native(value)
    if isinstance(value, dt.date):
        return neo4j.time.Date.from_native(value)
    if isinstance(value, list):
        return [_neo4j_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _neo4j_value(v) for k, v in value.items()}
    return value


def _index_call(label: str, prop: str) -> str:
    """How the Neo4j store asks the vector index of ``label.prop`` for ``$k`` nodes."""
    return f"CALL db.index.vector.queryNodes('{index_name(label, prop)}', $k, $vector) YIELD node"


def _exact_nearest(label: str, prop: str, dim: int) -> str:
    """The ``$k`` nodes of ``label`` most cosine-similar to ``$vector``, as LadybugDB finds
    them (the index's own candidates, exactly; what Neo4j scores them by is left to the rest
    of the statement)."""
    cosine = LADYBUG.cosine_similarity(f"node.{prop}", "$vector", dim)
    return (
        f"MATCH (node:{label}) WHERE node.{prop} IS NOT NULL "
        f"WITH node ORDER BY {cosine} DESC LIMIT $k"
    )


class ReadAccessError(Exception):
    """What Neo4j answers to a write sent in a read transaction."""

    code = "Neo.ClientError.Statement.AccessMode"


class EmbeddedResponder:
    """Answers the Neo4j store's statements from an embedded store, as Neo4j 5 would.

    Only what the dialects spell differently is rewritten before the statement runs on
    LadybugDB: the vector index search (``db.index.vector.queryNodes ... YIELD node``: the
    ``$k`` most cosine-similar nodes, exactly; the rest of the statement, its scoring
    included, runs as sent), ``vector.similarity.cosine`` (as Neo4j computes it: its cosine
    index's score ``(1 + cosine) / 2``, not the cosine), ``type(r)``, the list comprehension
    of ``merge: union`` lists, and the pure-Cypher recipe. Schema statements are answered
    with nothing (the :class:`RecordingDriver` keeps the index catalogue). Temporal values
    come back as ``neo4j.time`` types, and a statement that may write, sent in a read
    transaction, is refused as Neo4j refuses it.

    Attributes:
        store: The embedded store that answers.
        failures: ``(statement, error)`` of every statement that failed.
    """

    def __init__(self, store: EmbeddedStore) -> None:
        self.store = store
        self.failures: list[tuple[str, str]] = []
        self._dims = {p.name: p.type.dim or 0 for _, p in store.schema.vector_properties()}
        self._heads = {
            _index_call(label, p.name): _exact_nearest(label, p.name, p.type.dim or 0)
            for label, p in store.schema.vector_properties()
        }
        self._whole = {recommend_query("neo4j"): recommend_query("ladybug")}

    def translate(self, query: str, params: dict[str, Any]) -> str:
        """``query`` as LadybugDB spells it."""
        if query in self._whole:
            return self._whole[query]
        for head, lady in self._heads.items():
            query = query.replace(head, lady)
        query = re.sub(r"\btype\((\w+)\)", r"label(\1)", query)
        query = re.sub(
            r"(\w+\.\w+) \+ \[x IN (\w+\.\w+) WHERE NOT x IN (\w+\.\w+)\]",
            r"list_concat(\1, list_filter(\2, x -> NOT list_contains(\3, x)))",
            query,
        )
        call = "vector.similarity.cosine("
        while (i := query.find(call)) >= 0:
            args, end = _arguments(query, i + len(call))
            dim = 0
            for arg in args:
                prop = re.fullmatch(r"\w+\.(\w+)", arg)
                param = re.fullmatch(r"\$(\w+)", arg)
                if prop and prop.group(1) in self._dims:
                    dim = self._dims[prop.group(1)]
                elif param and isinstance(params.get(param.group(1)), list):
                    dim = len(params[param.group(1)])
            # Neo4j's function is its cosine index's score, (1 + cosine) / 2 (in [0, 1])
            neo4j_score = f"((1 + {LADYBUG.cosine_similarity(args[0], args[1], dim)}) / 2)"
            query = query[:i] + neo4j_score + query[end:]
        return query

    def respond(
        self, query: str, params: dict[str, Any], *, read: bool = False
    ) -> tuple[list[str], list[dict[str, Any]]]:
        """The result's columns and rows.

        Raises:
            ReadAccessError: A statement that may write, in a read transaction.
            QueryError: The embedded store failed the statement.
        """
        if query.startswith(("CREATE CONSTRAINT", "CREATE VECTOR INDEX")):
            return [], []
        if read and may_write(query):
            self.failures.append((query, "a write in a read transaction"))
            raise ReadAccessError("Writing in read access mode not allowed.")
        try:
            keys, rows = self.store._run_columns(self.translate(query, params), params)
        except Exception as exc:
            self.failures.append((query, str(exc)))
            raise
        return keys, [{k: _neo4j_value(v) for k, v in row.items()} for row in rows]

    def __call__(self, query: str, params: dict[str, Any]) -> Response:
        return self.respond(query, params)
