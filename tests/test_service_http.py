"""The REST service's HTTP surface: what a client that forgets the JSON content type
is told, and the cache headers of answers that change with each live update."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from graphfusion import Engine
from graphfusion.errors import QueryError
from graphfusion.service import create_app


@pytest.fixture(scope="module")
def empty_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """An engine on an empty store: enough for the checks made before any store work."""
    with Engine(tmp_path_factory.mktemp("probe2-empty") / "store") as engine:
        yield engine


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "text/plain; charset=utf-8"]
)
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/ask", '{"question": "Is the mug dishwasher safe?"}'),
        ("/events", '{"interactions": [{"user_id": "u0001", "product_id": "p0002"}]}'),
    ],
)
def test_a_json_body_sent_as_another_type_says_to_send_json(
    empty_engine: Engine, path: str, body: str, content_type: str
) -> None:
    """``curl -d '{...}'`` without ``-H 'content-type: application/json'`` sends a form body;
    FastAPI then reads the bytes, not the JSON, and the client was told only "Input should be
    a valid dictionary or object to extract fields from", about a body that is one."""
    client = TestClient(create_app(empty_engine))
    response = client.post(path, content=body, headers={"content-type": content_type})
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body"]
    assert "content-type: application/json" in error["msg"], error
    assert content_type.split(";")[0] in error["msg"]


def test_a_body_that_is_not_an_object_keeps_its_message(empty_engine: Engine) -> None:
    client = TestClient(create_app(empty_engine))
    response = client.post("/ask", json=["Is the mug dishwasher safe?"])
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["msg"] == "Input should be a valid dictionary or object to extract fields from"


def test_answers_that_change_with_live_updates_are_never_cached(
    trained_store: Path, private_copy: Callable[[Path], Engine]
) -> None:
    """Recommendations, similar products, answers and risks change with every ``/events``
    (and are a user's own); no answer said so, leaving a cache between client and server
    free to store them: a 404 for a product not added yet stayed a 404 after it was."""
    client = TestClient(create_app(private_copy(trained_store)))
    missing = client.get("/similar/probe2-new?modality=text&k=2")
    assert missing.status_code == 404
    added = client.post("/events", json={"products": [{"id": "probe2-new", "title": "Lamp"}]})
    answers = [
        missing,
        added,
        client.get("/similar/probe2-new?modality=text&k=2"),
        client.get("/recommend/u0001?k=2"),
        client.post("/ask", json={"question": "Is the lamp bright?", "k": 1, "method": "bm25"}),
        client.get("/defects?top=1"),
        client.get("/recommend/u0001?k=0"),  # 422
        client.get("/healthz"),
    ]
    for response in answers:
        assert response.headers.get("cache-control") == "no-store", (
            response.request.url,
            response.status_code,
        )
    assert [r.status_code for r in answers[1:]] == [200, 200, 200, 200, 200, 422, 200]


def test_a_body_over_the_limit_is_not_cached_either(empty_engine: Engine) -> None:
    client = TestClient(create_app(empty_engine, max_body_bytes=64))
    response = client.post("/ask", json={"question": "x" * 100})
    assert response.status_code == 413
    assert response.headers.get("cache-control") == "no-store"


def test_openapi_lists_the_500_the_service_answers(
    empty_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed store query (:class:`~graphfusion.errors.QueryError`) and any unexpected error
    are a 500 with an ``ErrorResponse`` body; the schema listed 503 and never 500."""
    client = TestClient(create_app(empty_engine), raise_server_exceptions=False)

    def broken(*args: object) -> None:
        raise QueryError("Binder exception: the secret table")

    monkeypatch.setattr(empty_engine, "similar", broken)
    response = client.get("/similar/p0001")
    assert response.status_code == 500
    assert response.json() == {"detail": "the store failed a query"}  # no store message leaks
    spec = client.get("/openapi.json").json()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if path == "/healthz":
                continue
            answer = op["responses"].get("500")
            assert answer is not None, (path, method)
            ref = answer["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/ErrorResponse")
