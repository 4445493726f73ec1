"""A recording stand-in for the ``neo4j`` driver (as neo4j-graphrag's tests use).

It records every ``execute_query`` call (query, parameters, database) and answers from a
small responder, so unit tests can assert the exact Cypher the Neo4j store sends. The real
driver is exercised by ``test_store_neo4j.py::test_live_neo4j`` when ``NEO4J_URI`` is set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any


class FakeRecord:
    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def data(self) -> dict[str, Any]:
        return dict(self._data)


@dataclass
class FakeResult:
    records: list[FakeRecord]
    summary: Any = None
    keys: list[str] = field(default_factory=list)


class FakeStream:
    """What a result transformer reads: the records one at a time, and the keys."""

    def __init__(self, records: list[FakeRecord], keys: list[str]) -> None:
        self._records, self._keys, self.read = records, keys, 0

    def keys(self) -> list[str]:
        return list(self._keys)

    def __iter__(self) -> Iterator[FakeRecord]:
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
        text = getattr(query, "text", query)  # a neo4j.Query carries its timeout
        if hasattr(query, "timeout"):
            kwargs["timeout"] = query.timeout
        transformer = kwargs.get("result_transformer_")
        self.calls.append(Call(text, params, database_, kwargs))
        response = self.responder(text, params)
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

    def close(self) -> None:
        self.closed = True

    @property
    def queries(self) -> list[str]:
        return [c.query for c in self.calls]
