"""Serving a store opened read-only: ``graphfusion serve --read-only`` and ``create_app`` over
``Engine(folder, read_only=True)``, on the real embedded store with a trained fusion model."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from graphfusion import Engine
from graphfusion.service import create_app

try:
    from served import serve as _serve
    from served import stop as _stop
except ImportError:  # pragma: no cover - when tests/ is a package
    from tests.served import serve as _serve
    from tests.served import stop as _stop

EVENT = {"interactions": [{"user_id": "u0001", "product_id": "p0002", "type": "VIEWED"}]}
COUNT = "MATCH (:User)-[r:VIEWED]->(:Product) RETURN count(r) AS n"


@pytest.fixture
def folder(trained_store: Path, tmp_path: Path) -> Path:
    """A private copy of the trained store (the servers of a test hold it)."""
    target = tmp_path / "served"
    shutil.copytree(trained_store, target)
    return target


@pytest.fixture
def read_only_engine(folder: Path) -> Iterator[Engine]:
    with Engine(folder, read_only=True) as engine:
        yield engine


def test_a_read_only_app_refuses_live_updates_with_403_and_serves_the_rest(
    read_only_engine: Engine,
) -> None:
    """Live updates on a read-only store came back as a 400 ("refused argument") although
    the request was sound: the server, not the client, cannot write."""
    client = TestClient(create_app(read_only_engine))
    before = read_only_engine.cypher(COUNT)["n"].iloc[0]
    refused = client.post("/events", json=EVENT)
    assert refused.status_code == 403
    assert "read-only" in refused.json()["detail"]
    assert "--read-only" in refused.json()["detail"]
    assert read_only_engine.cypher(COUNT)["n"].iloc[0] == before  # nothing written
    assert client.get("/healthz").json()["read_only"] is True
    assert client.get("/recommend/u0001?k=3").status_code == 200
    assert client.get("/similar/p0001?k=3").status_code == 200
    assert client.post("/ask", json={"question": "Is it waterproof?", "k": 2}).status_code == 200
    assert client.get("/defects?top=2").status_code == 200
    events = client.get("/openapi.json").json()["paths"]["/events"]["post"]["responses"]
    assert "403" in events


def test_a_writable_app_says_it_is_not_read_only(folder: Path) -> None:
    with Engine(folder) as engine:
        client = TestClient(create_app(engine))
        assert client.get("/healthz").json()["read_only"] is False
        assert client.post("/events", json=EVENT).status_code == 200


def test_two_read_only_servers_share_one_store_folder(folder: Path) -> None:
    """`graphfusion serve` had no --read-only: one server held the store folder, so a second
    server could not be started on it."""
    first, url1, _ = _serve(folder, "--read-only")
    try:
        second, url2, _ = _serve(folder, "--read-only")
        try:
            for url in (url1, url2):
                with httpx.Client(base_url=url, timeout=60) as http:
                    assert http.get("/healthz").json()["read_only"] is True
                    assert http.get("/recommend/u0001?k=2").status_code == 200
                    assert http.post("/events", json=EVENT).status_code == 403
            with Engine(folder) as writer:  # readers keep no writer out (LadybugDB's locks)
                assert not writer.store.read_only
        finally:
            assert _stop(second) == 0
    finally:
        assert _stop(first) == 0
