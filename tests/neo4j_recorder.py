"""A recording stand-in for the ``neo4j`` driver (as neo4j-graphrag's tests use).

It records every ``execute_query`` call (query, parameters, database) and answers from a
small responder, so unit tests can assert the exact Cypher the Neo4j store sends. The real
driver is exercised by ``test_store_neo4j.py::test_live_neo4j`` when ``NEO4J_URI`` is set.
"""

from __future__ import annotations

from collections.abc import Callable
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
        self.responder = responder or default_responder

    def execute_query(
        self, query: str, parameters_: dict[str, Any] | None = None, database_: str | None = None,
        **kwargs: Any,
    ) -> FakeResult:  # fmt: skip
        params = dict(parameters_ or {})
        self.calls.append(Call(query, params, database_, kwargs))
        response = self.responder(query, params)
        if isinstance(response, tuple):
            keys, rows = response
        else:
            rows, keys = response, list(response[0]) if response else []
        return FakeResult([FakeRecord(r) for r in rows], keys=keys)

    def close(self) -> None:
        self.closed = True

    @property
    def queries(self) -> list[str]:
        return [c.query for c in self.calls]
