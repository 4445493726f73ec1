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
from graphfusion.store.dialect import LADYBUG, NEO4J


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


class RecordingDriver:
    def __init__(self, responder: Callable[[str, dict[str, Any]], Response] | None = None) -> None:
        self.calls: list[Call] = []
        self.closed = False
        self.records_read = 0
        self.responder = responder or default_responder

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
        if isinstance(responder, EmbeddedResponder):
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


class ReadAccessError(Exception):
    """What Neo4j answers to a write sent in a read transaction."""

    code = "Neo.ClientError.Statement.AccessMode"


class EmbeddedResponder:
    """Answers the Neo4j store's statements from an embedded store, as Neo4j 5 would.

    Only what the dialects spell differently is rewritten before the statement runs on
    LadybugDB: the vector index search (``db.index.vector.queryNodes``, kept to its ``$k``
    best as the index gives them), ``vector.similarity.cosine``, ``type(r)``, the list
    comprehension of ``merge: union`` lists, and the pure-Cypher recipe. Schema statements
    are answered with nothing. Temporal values come back as ``neo4j.time`` types, and a
    statement that may write, sent in a read transaction, is refused as Neo4j refuses it.

    Attributes:
        store: The embedded store that answers.
        failures: ``(statement, error)`` of every statement that failed.
    """

    def __init__(self, store: EmbeddedStore) -> None:
        self.store = store
        self.failures: list[tuple[str, str]] = []
        self._dims = {p.name: p.type.dim or 0 for _, p in store.schema.vector_properties()}
        self._heads = {
            NEO4J.nearest(label, p.name, p.type.dim or 0): LADYBUG.nearest(
                label, p.name, p.type.dim or 0
            )
            + " ORDER BY score DESC LIMIT $k"
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
            query = query[:i] + LADYBUG.cosine_similarity(args[0], args[1], dim) + query[end:]
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
