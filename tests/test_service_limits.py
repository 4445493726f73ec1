"""The REST service: hostile bodies and concurrent reads beside /cypher."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from graphfusion import Engine
from graphfusion.service import create_app

JSON = {"content-type": "application/json"}
# interruptible (no huge list is built first) and far longer than any time limit below
SLOW = (
    "UNWIND range(1, 100000) AS x UNWIND range(1, 100000) AS y "
    "WITH x * y AS z WHERE z % 7 = 3 RETURN count(*) AS n"
)


@pytest.fixture(scope="module")
def empty_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """An engine on an empty store: enough for the checks made before any store work."""
    with Engine(tmp_path_factory.mktemp("probe-empty") / "store") as engine:
        yield engine


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_a_body_nested_too_deeply_is_422_like_other_bad_json(
    empty_engine: Engine, depth: int
) -> None:
    """Python's JSON parser gives up on deep nesting; FastAPI answered 400 "There was an error
    parsing the body" where every other body that is not JSON gets a 422."""
    client = TestClient(create_app(empty_engine, allow_cypher=True))
    nested = "[" * depth + "]" * depth
    bodies = {
        "/cypher": '{"query": "RETURN $a AS a", "params": {"a": ' + nested + "}}",
        "/ask": '{"question": ' + nested + "}",
    }
    for path, body in bodies.items():
        response = client.post(path, content=body, headers=JSON)
        assert response.status_code == 422, (path, response.text)
        (error,) = response.json()["detail"]
        assert error["type"] == "json_invalid" and error["loc"] == ["body"]
        assert "nested" in error["msg"]


def test_other_http_errors_keep_their_status_and_headers(empty_engine: Engine) -> None:
    client = TestClient(create_app(empty_engine, token="probe-token-0123456789"))
    response = client.get("/defects")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"detail": "missing or wrong bearer token"}
    assert client.get("/nowhere").status_code == 404


@pytest.fixture(scope="module")
def trained_engine(
    trained_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    folder = tmp_path_factory.mktemp("probe-trained") / "store"
    shutil.copytree(trained_store, folder)
    with Engine(folder) as engine:
        yield engine


def test_a_slow_cypher_query_does_not_hold_back_served_reads(trained_engine: Engine) -> None:
    """A /cypher query runs in a read-only transaction that the store's own lock keeps whole;
    the service held every other request back as well, for as long as the query ran."""
    client = TestClient(create_app(trained_engine, allow_cypher=True, cypher_timeout_s=4))
    paths = ["/recommend/u0001?k=3", "/defects?top=2"]
    for path in paths:  # the serving state is built before the query starts
        assert client.get(path).status_code == 200
    answers: list[int] = []
    slow = threading.Thread(
        target=lambda: answers.append(client.post("/cypher", json={"query": SLOW}).status_code)
    )
    slow.start()
    time.sleep(0.5)
    try:
        for path in paths:  # answered while the query still runs: not held back by it
            assert client.get(path).status_code == 200
            assert slow.is_alive(), f"{path} was answered only once the slow query ended"
    finally:
        slow.join()
    assert answers == [400]  # stopped at its time limit
