"""The REST service, on the real embedded store with a trained fusion model: every endpoint's
success and error cases, auth, limits, the read-only Cypher, live updates, and a real server."""

from __future__ import annotations

import asyncio
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from builders import ENDLESS_QUERY
from click.testing import CliRunner
from fastapi.testclient import TestClient

from graphfusion import Engine
from graphfusion.cli import main
from graphfusion.errors import QueryError, ValidationError
from graphfusion.ingest import load
from graphfusion.locks import ReadWriteLock
from graphfusion.service import (
    MAX_CYPHER_ROWS,
    MAX_EVENTS,
    MAX_K,
    MAX_QUESTION_CHARS,
    MAX_TOP,
    ReadOnlyViolation,
    _read_only_query,
    _Runtime,
    check_bind,
    check_read_only,
    create_app,
)

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
USER = "u0001"


@pytest.fixture(scope="module")
def shared(trained_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """An engine on a copy of the trained store, for the tests that only read."""
    folder = tmp_path_factory.mktemp("service-shared") / "store"
    shutil.copytree(trained_store, folder)
    with Engine(folder) as engine:
        yield engine


@pytest.fixture(scope="module")
def client(shared: Engine) -> TestClient:
    """The app with a token and the Cypher endpoint on, over the shared engine."""
    return TestClient(create_app(shared, token=TOKEN, allow_cypher=True))


@pytest.fixture
def writable(trained_store: Path, private_copy: Callable[[Path], Engine]) -> Engine:
    """A private copy of the trained store, for tests that write."""
    return private_copy(trained_store)


def _detail(response: Any) -> Any:
    body = response.json()
    assert "detail" in body, body
    return body["detail"]


# ----------------------------------------------------------------------------- service
def test_healthz_and_openapi(client: TestClient) -> None:
    health = client.get("/healthz")  # no token needed
    assert health.status_code == 200
    assert client.head("/healthz").status_code == 200  # for monitors that probe with HEAD
    assert health.json() == {
        "status": "ok",
        "version": "0.1.0",
        "store": "embedded",
        "read_only": False,
    }
    spec = client.get("/openapi.json").json()
    assert set(spec["paths"]) == {
        "/healthz",
        "/recommend/{user_id}",
        "/similar/{product_id}",
        "/ask",
        "/defects",
        "/events",
        "/cypher",
    }
    schemas = spec["components"]["schemas"]
    for model in (
        "AskRequest",
        "AskResponse",
        "EventsRequest",
        "EventsResponse",
        "RecommendResponse",
        "SimilarResponse",
        "DefectsResponse",
        "CypherRequest",
        "CypherResponse",
        "Health",
    ):
        assert model in schemas
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    k = next(
        p for p in spec["paths"]["/recommend/{user_id}"]["get"]["parameters"] if p["name"] == "k"
    )
    assert k["schema"]["maximum"] == MAX_K
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": "Bearer"},
    ],
)
def test_auth_refuses_missing_or_wrong_token(client: TestClient, headers: dict[str, str]) -> None:
    for response in (
        client.get(f"/recommend/{USER}", headers=headers),
        client.post("/ask", json={"question": "hi"}, headers=headers),
        client.post("/events", json={"interactions": []}, headers=headers),
        client.post("/cypher", json={"query": "RETURN 1"}, headers=headers),
    ):
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "Bearer"
        assert _detail(response) == "missing or wrong bearer token"
    assert client.get(f"/recommend/{USER}?k=1", headers=AUTH).status_code == 200


def test_no_token_means_open(shared: Engine) -> None:
    open_client = TestClient(create_app(shared))
    assert open_client.get(f"/recommend/{USER}?k=1").status_code == 200
    with pytest.raises(ValidationError, match="token"):
        create_app(shared, token="has space")
    with pytest.raises(ValidationError, match="max_body_bytes"):
        create_app(shared, max_body_bytes=0)


# ----------------------------------------------------------------------------- recommend
def test_recommend_matches_the_engine_with_reasons(client: TestClient, shared: Engine) -> None:
    response = client.get(f"/recommend/{USER}?k=5", headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user_id"] == USER and body["method"] == "model"
    direct = shared.recommend(USER, 5)
    assert [i["product_id"] for i in body["items"]] == list(direct["product_id"])
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    for item in body["items"]:
        assert item["reasons"], "every recommendation carries a reason"
        for reason in item["reasons"]:
            assert reason["path"][0] == {"label": "User", "key": USER}
            assert reason["path"][-1] == {"label": "Product", "key": item["product_id"]}
            assert reason["text"]


def test_recommend_filters(client: TestClient, shared: Engine) -> None:
    cheap = client.get(f"/recommend/{USER}?k=40&max_price=20", headers=AUTH).json()["items"]
    assert cheap and all(i["price"] is not None and i["price"] <= 20 for i in cheap)
    category = cheap[0]["category"]
    same = client.get(
        f"/recommend/{USER}", params={"k": 40, "category": category}, headers=AUTH
    ).json()["items"]
    assert same and {i["category"] for i in same} == {category}
    seen = set(
        shared.cypher(
            "MATCH (u:User {id: $u})-[:VIEWED|PURCHASED|FAVORITED]->(p:Product) RETURN p.id AS id",
            {"u": USER},
        )["id"]
    )
    unseen = client.get(f"/recommend/{USER}?k=40", headers=AUTH).json()["items"]
    assert not {i["product_id"] for i in unseen} & seen
    every = client.get(f"/recommend/{USER}?k=40&exclude_seen=false", headers=AUTH).json()
    assert {i["product_id"] for i in every["items"]} & seen
    diverse = client.get(f"/recommend/{USER}?k=5&diversity=0.9", headers=AUTH).json()["items"]
    assert len(diverse) == 5
    for query in ("brand=no-such-brand", "category=Headphonez"):  # a typo is no empty list
        unknown = client.get(f"/recommend/{USER}?{query}", headers=AUTH)
        assert unknown.status_code == 400 and "no " in _detail(unknown), query
    bare = client.get(f"/recommend/{USER}?k=5&explain=false", headers=AUTH).json()["items"]
    assert [i["product_id"] for i in bare] == [i["product_id"] for i in unseen[:5]]
    assert all(i["reasons"] == [] for i in bare) and all(i["reasons"] for i in unseen[:5])


def test_recommend_unknown_user_is_404(client: TestClient) -> None:
    response = client.get("/recommend/nobody", headers=AUTH)
    assert response.status_code == 404
    assert _detail(response) == "no user 'nobody' in the store"


@pytest.mark.parametrize(
    "query",
    [
        "k=0",
        f"k={MAX_K + 1}",
        "k=abc",
        "k=1.5",
        "diversity=2",
        "diversity=-0.1",
        "max_price=-1",
        "max_price=nan",
        "max_price=inf",
        "exclude_seen=maybe",
        "category=",
    ],
)
def test_recommend_bad_query_is_422(client: TestClient, query: str) -> None:
    response = client.get(f"/recommend/{USER}?{query}", headers=AUTH)
    assert response.status_code == 422, response.text
    assert _detail(response)[0]["loc"][0] == "query"


def test_unknown_or_repeated_query_parameters_are_422(client: TestClient, shared: Engine) -> None:
    """A typo in a query parameter is refused, not ignored (an unfiltered answer)."""
    cheap = client.get(f"/recommend/{USER}?k=40&max_price=20", headers=AUTH)
    assert cheap.status_code == 200 and len(cheap.json()["items"]) < 40
    for path, name in (
        (f"/recommend/{USER}?k=40&max_prize=20", "max_prize"),
        ("/similar/p0001?modalty=image", "modalty"),
        ("/defects?levle=product", "levle"),
    ):
        response = client.get(path, headers=AUTH)
        assert response.status_code == 422, (path, response.text)
        [error] = _detail(response)
        assert error["loc"] == ["query", name] and "unknown query parameter" in error["msg"]
    twice = client.get(f"/recommend/{USER}?k=3&k=40", headers=AUTH)
    assert twice.status_code == 422 and _detail(twice)[0]["loc"] == ["query", "k"]
    on_post = client.post("/ask?k=3", json={"question": "mug?"}, headers=AUTH)
    assert on_post.status_code == 422 and "takes no query parameters" in str(_detail(on_post))
    # the token is checked first; /healthz takes anything (monitors add cache busters)
    assert client.get(f"/recommend/{USER}?max_prize=1").status_code == 401
    assert client.get("/healthz?_=123").status_code == 200
    assert [i["product_id"] for i in cheap.json()["items"]] == list(
        shared.recommend(USER, 40, max_price=20)["product_id"]
    )


# ----------------------------------------------------------------------------- similar
def test_similar(client: TestClient, shared: Engine) -> None:
    response = client.get("/similar/p0001?modality=image&k=3", headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["product_id"] == "p0001" and body["modality"] == "image"
    direct = shared.similar("p0001", "image", 3)
    assert [i["id"] for i in body["items"]] == list(direct["id"])
    assert "p0001" not in {i["id"] for i in body["items"]}
    text = client.get("/similar/p0001", headers=AUTH).json()  # default: text, k=10
    assert text["modality"] == "text" and len(text["items"]) == 10
    missing = client.get("/similar/nope", headers=AUTH)
    assert missing.status_code == 404 and "nope" in _detail(missing)
    for query in ("modality=smell", "k=0", f"k={MAX_K + 1}"):
        assert client.get(f"/similar/p0001?{query}", headers=AUTH).status_code == 422


# ----------------------------------------------------------------------------- ask
def test_ask(client: TestClient) -> None:
    response = client.post(
        "/ask", json={"question": "Is the mug dishwasher safe?", "k": 3}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"products", "answers", "passages"}
    assert all(len(body[name]) == 3 for name in body)
    assert all(hit["evidence"] is not None for hit in body["answers"])
    on_page = client.post(
        "/ask",
        json={"question": "What is it made of?", "product_id": "p0003", "k": 2, "method": "bm25"},
        headers=AUTH,
    ).json()
    assert on_page["products"][0]["product_id"] == "p0003"
    assert "the product the question was asked on" in on_page["products"][0]["evidence"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"question": "Is it safe?", "product_id": "nope"}, 404),
        ({"question": "   "}, 422),
        ({"question": ""}, 422),
        ({"question": "x" * (MAX_QUESTION_CHARS + 1)}, 422),
        ({"question": "ok?", "method": "magic"}, 422),
        ({"question": "ok?", "k": 0}, 422),
        ({"question": "ok?", "k": MAX_K + 1}, 422),
        ({"question": "ok?", "k": True}, 422),  # strict: no booleans or text for numbers
        ({"question": "ok?", "k": "3"}, 422),
        ({"question": "ok?", "extra": 1}, 422),
        ({"question": 5}, 422),
        ({}, 422),
        (["ok?"], 422),
    ],
)
def test_ask_bad_requests(client: TestClient, body: Any, status: int) -> None:
    response = client.post("/ask", json=body, headers=AUTH)
    assert response.status_code == status, response.text
    assert _detail(response)


def test_bad_json_and_lone_surrogates_are_422(client: TestClient) -> None:
    headers = {**AUTH, "content-type": "application/json"}
    for raw in (b'{"question": "x"', b"\xff\xfe", b'{"question": "\\ud800 ok?"}'):
        response = client.post("/ask", content=raw, headers=headers)
        assert response.status_code == 422, response.text


# ----------------------------------------------------------------------------- defects
@pytest.mark.parametrize("level", ["supplier", "batch", "product"])
def test_defects(client: TestClient, shared: Engine, level: str) -> None:
    response = client.get(f"/defects?level={level}&top=3", headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["level"] == level and len(body["items"]) == 3
    direct = shared.defects(level, 3)
    assert [i["key"] for i in body["items"]] == [str(k) for k in direct.iloc[:, 0]]
    risks = [i["risk"] for i in body["items"]]
    assert risks == sorted(risks, reverse=True)
    assert all(e["kind"] in ("review", "image") for i in body["items"] for e in i["evidence"])
    if level == "supplier":
        assert body["items"][0]["name"]
    if level == "product":
        assert body["items"][0]["title"] and body["items"][0]["at_risk_products"] == []


def test_defects_keep_the_counts_behind_the_risk(client: TestClient, shared: Engine) -> None:
    """Every number the ranking holds reaches the client (recalls, reports, observations)."""
    for level in ("supplier", "batch", "product"):
        body = client.get(f"/defects?level={level}&top=2", headers=AUTH).json()
        direct = shared.defects(level, 2)
        for item, row in zip(body["items"], direct.to_dict(orient="records"), strict=True):
            assert item["reports"] == pytest.approx(row["reports"])
            assert item["observations"] == pytest.approx(row["observations"])
            if level == "product":
                assert item["recalls"] == row["recalls"] and item["image_id"] == row["image_id"]


def test_defects_bad_query(client: TestClient) -> None:
    for query in ("level=galaxy", "top=0", f"top={MAX_TOP + 1}", "top=x"):
        response = client.get(f"/defects?{query}", headers=AUTH)
        assert response.status_code == 422, query


# ----------------------------------------------------------------------------- cypher
def test_cypher_reads_with_parameters(client: TestClient) -> None:
    response = client.post(
        "/cypher",
        json={
            "query": "MATCH (p:Product) WHERE p.price < $max RETURN p.id AS id, "
            "p.created_at AS made ORDER BY id LIMIT 2;",
            "params": {"max": 1000},
        },
        headers=AUTH,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["columns"] == ["id", "made"] and not body["truncated"]
    assert [r["id"] for r in body["rows"]] == ["p0001", "p0002"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", body["rows"][0]["made"])
    # a value is a parameter, never pasted into the query
    sneaky = "x' RETURN 1 AS one //"
    echo = client.post(
        "/cypher", json={"query": "RETURN $v AS v", "params": {"v": sneaky}}, headers=AUTH
    ).json()
    assert echo["rows"] == [{"v": sneaky}]
    quoted = client.post(
        "/cypher", json={"query": "RETURN 'CREATE' AS w // SET"}, headers=AUTH
    ).json()
    assert quoted["rows"] == [{"w": "CREATE"}]
    many = client.post(
        "/cypher", json={"query": "UNWIND range(1, 5000) AS i RETURN i"}, headers=AUTH
    ).json()
    assert many["truncated"] and len(many["rows"]) == MAX_CYPHER_ROWS
    tables = client.post("/cypher", json={"query": "CALL show_tables() RETURN *"}, headers=AUTH)
    assert tables.status_code == 200 and "Product" in {r["name"] for r in tables.json()["rows"]}


WRITES = [
    "CREATE (p:Product {id: 'evil'})",
    "MERGE (p:Product {id: 'evil'})",
    "MATCH (p:Product {id: 'p0001'}) DELETE p",
    "MATCH (p:Product {id: 'p0001'}) DETACH DELETE p",
    "MATCH (p:Product) SET p.title = 'evil'",
    "MATCH (p:Product) REMOVE p.title",
    "DROP TABLE Product",
    "COPY Product FROM 'products.csv'",
    "LOAD FROM 'products.csv' RETURN *",
    "LOAD CSV FROM 'file:///etc/passwd' AS line RETURN line",
    "ALTER TABLE Product DROP title",
    "/* harmless */ CREATE (p:Product {id: 'evil'})",
    "RETURN 1 // ok\nCREATE (p:Product {id: 'evil'})",
    "MATCH (p:Product) RETURN p; CREATE (q:Product {id: 'evil'})",
    "MATCH (p:Product) WITH p LIMIT 1 FOREACH (x IN [1] | SET p.title = 'evil')",
    "create (p:Product {id: 'evil'})",
    "CALL threads=1",
    "CALL apoc.create.node(['Product'], {id: 'evil'})",
    "CALL dbms.security.createUser('evil', 'evil')",
    "CALL `db.labels`()",
    "CALL { CREATE (p:Product {id: 'evil'}) }",
    "BEGIN TRANSACTION",
    "INSTALL vector",
    "RETURN 'unterminated",
]


@pytest.mark.parametrize("query", WRITES)
def test_cypher_refuses_writes(client: TestClient, shared: Engine, query: str) -> None:
    before = shared.stats()
    response = client.post("/cypher", json={"query": query}, headers=AUTH)
    assert response.status_code == 403, response.text
    assert _detail(response).startswith("refused: ")
    assert shared.stats() == before
    with pytest.raises(ReadOnlyViolation):
        check_read_only(query)


@pytest.mark.parametrize(
    "query",
    [
        "RETURN 'CREATE' AS x",
        'RETURN "a; DELETE b" AS x',
        "MATCH (n:Product) RETURN n.`set`",
        "RETURN $set AS x",
        "RETURN 1 // CREATE",
        "RETURN 1 /* DROP */ AS x",
        "CALL db.labels()",
        "CALL table_info('Product') RETURN *",
        "CALL { MATCH (n) RETURN n } RETURN n",
        "MATCH (u:User)-[:PURCHASED]->(p) RETURN p.id, count(*) AS n;",
    ],
)
def test_read_only_check_allows_reads(query: str) -> None:
    assert check_read_only(query) == query.removesuffix(";")


def test_cypher_bad_requests(client: TestClient) -> None:
    syntax = client.post("/cypher", json={"query": "MATCH (p:Product RETURN p"}, headers=AUTH)
    assert syntax.status_code == 400 and "Parser exception" in _detail(syntax)
    bad_bodies: list[Any] = [
        {"query": ""},
        {"query": "RETURN 1", "params": {"bad name": 1}},
        {},
        {"query": "RETURN 1", "params": [1]},
        {"query": "RETURN 1", "limit": 3},
    ]
    for body in bad_bodies:
        assert client.post("/cypher", json=body, headers=AUTH).status_code == 422, body
    odd = client.post(
        "/cypher", json={"query": "RETURN $v AS v", "params": {"v": {"a": [1, "x"]}}}, headers=AUTH
    )
    assert odd.status_code == 400, odd.text


def test_cypher_parameters_must_be_finite(client: TestClient) -> None:
    """NaN and Infinity are no JSON numbers (Python's json writes them): refused, not read as
    a value every comparison fails on."""
    headers = {**AUTH, "content-type": "application/json"}
    query = b'{"query": "MATCH (p:Product) WHERE p.price < $max RETURN p.id AS id", '
    for value in (b"NaN", b"Infinity", b"-Infinity", b"1e999", b"[1.0, NaN]", b'{"a": NaN}'):
        response = client.post("/cypher", content=query + b'"params": {"max": ' + value + b"}}",
                               headers=headers)  # fmt: skip
        assert response.status_code == 422, (value, response.text)
        assert "finite" in str(_detail(response)) and "max" in str(_detail(response))
    fine = client.post("/cypher", content=query + b'"params": {"max": 1e3}}', headers=headers)
    assert fine.status_code == 200 and fine.json()["rows"]


def test_cypher_limits_rows_and_time_and_needs_every_parameter(
    client: TestClient, shared: Engine
) -> None:
    many = client.post(
        "/cypher", json={"query": "UNWIND range(1, 5000000) AS n RETURN n"}, headers=AUTH
    ).json()
    assert many["truncated"] and len(many["rows"]) == MAX_CYPHER_ROWS
    none = client.post(
        "/cypher",
        json={"query": "MATCH (u:User) WHERE u.id = $u RETURN u.id AS id, u.name AS name",
              "params": {"u": "nobody"}},
        headers=AUTH,
    ).json()  # fmt: skip
    assert none == {"columns": ["id", "name"], "rows": [], "truncated": False}
    for params in ({}, {"v": 1}):  # $u missing, with or without other parameters
        missing = client.post(
            "/cypher", json={"query": "RETURN $u AS u", "params": params}, headers=AUTH
        )
        assert missing.status_code == 400 and "$u" in _detail(missing)
    quick = TestClient(create_app(shared, token=TOKEN, allow_cypher=True, cypher_timeout_s=0.5))
    stopped = quick.post("/cypher", json={"query": ENDLESS_QUERY}, headers=AUTH)
    assert stopped.status_code == 400 and "0.5 s" in _detail(stopped)
    # the service goes on serving
    assert quick.get(f"/recommend/{USER}?k=2", headers=AUTH).status_code == 200
    with pytest.raises(ValidationError, match="cypher_timeout_s"):
        create_app(shared, cypher_timeout_s=0)


def test_cypher_is_off_unless_enabled(shared: Engine) -> None:
    off = TestClient(create_app(shared, token=TOKEN))
    response = off.post("/cypher", json={"query": "RETURN 1 AS one"}, headers=AUTH)
    assert response.status_code == 403
    assert "--allow-cypher" in _detail(response)
    assert off.post("/cypher", json={"query": "RETURN 1 AS one"}).status_code == 401


def test_read_only_transaction_refuses_a_write_by_itself(writable: Engine) -> None:
    """Behind the keyword check, LadybugDB's read-only transaction refuses writes too."""
    rt = _Runtime(writable, None)
    before = writable.stats().nodes["Product"]
    with pytest.raises(QueryError, match="read-only transaction"):
        _read_only_query(rt, "CREATE (p:Product {id: 'evil'})", {})
    assert writable.stats().nodes["Product"] == before
    assert _read_only_query(rt, "RETURN $x AS x", {"x": 2}).rows == [{"x": 2}]
    # the transaction ended: the store still takes writes
    writable.cypher("CREATE (p:Product {id: 'fine'})")
    assert writable.stats().nodes["Product"] == before + 1


# ----------------------------------------------------------------------------- limits
def test_body_too_large_is_413(shared: Engine) -> None:
    small = TestClient(create_app(shared, max_body_bytes=2048))
    big = {"question": "x" * 2000, "product_id": "p0001" * 30}  # fits its model
    announced = small.post("/ask", json=big)
    assert announced.status_code == 413
    assert "2048 bytes" in _detail(announced)

    def chunks() -> Iterator[bytes]:  # streamed without a Content-Length
        yield b'{"question": "'
        for _ in range(10):
            yield b"y" * 500
        yield b'"}'

    streamed = small.post("/ask", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    assert small.post("/ask", json={"question": "fits?", "k": 1}).status_code == 200


def test_events_limits(client: TestClient) -> None:
    many = [{"user_id": USER, "product_id": "p0001"}] * (MAX_EVENTS + 1)
    response = client.post("/events", json={"interactions": many}, headers=AUTH)
    assert response.status_code == 422 and "at most" in str(_detail(response))
    half = [{"user_id": USER, "product_id": "p0001"}] * (MAX_EVENTS // 2 + 1)
    products = [{"id": f"x{i}"} for i in range(MAX_EVENTS // 2 + 1)]
    both = client.post("/events", json={"interactions": half, "products": products}, headers=AUTH)
    assert both.status_code == 422 and "at most" in str(_detail(both))
    bad_bodies: list[Any] = [
        {},
        {"interactions": []},
        {"interactions": [{"user_id": USER}]},
        {"interactions": [{"user_id": "", "product_id": "p0001"}]},
        {"products": [{"id": "x", "price": -1}]},
        {"products": [{"id": "x", "colour": 1}]},
        {"interactions": [{"user_id": USER, "product_id": "p0001", "weight": "heavy"}]},
        {"interactions": [{"user_id": USER, "product_id": "p0001", "weight": "2"}]},
        {"products": [{"id": "x", "price": "12"}]},
        {"products": [{"id": 12}]},
    ]
    for body in bad_bodies:
        assert client.post("/events", json=body, headers=AUTH).status_code == 422, body


def test_unknown_routes_and_methods_are_json_4xx(client: TestClient) -> None:
    assert client.get("/nowhere", headers=AUTH).status_code == 404
    wrong = client.get("/ask", headers=AUTH)
    assert wrong.status_code == 405 and _detail(wrong)
    long_id = client.get("/recommend/" + "u" * 201, headers=AUTH)
    assert long_id.status_code == 422


# ----------------------------------------------------------------------------- live updates
def test_events_update_what_recommend_serves(writable: Engine, tiny_shop: Path) -> None:
    client = TestClient(create_app(writable, token=TOKEN, image_root=tiny_shop))
    before = client.get(f"/recommend/{USER}?k=5", headers=AUTH).json()["items"]
    target = before[0]["product_id"]
    twin = writable.cypher(
        "MATCH (p:Product {id: 'p0005'})-[:IN_CATEGORY]->(c:Category) "
        "MATCH (p)-[:OF_BRAND]->(b:Brand) "
        "RETURN p.title AS title, p.price AS price, c.id AS cat, c.name AS name, b.id AS brand"
    ).iloc[0]
    asked = {"question": "Is the svc kettle any good?", "method": "bm25", "k": 1}
    # bm25 lists only products sharing a word with the question: none yet
    assert client.post("/ask", json=asked, headers=AUTH).json()["products"] == []
    body = {
        "products": [
            {
                "id": "svc-new",
                "title": f"{twin['title']} II",
                "description": "The same, newer.",
                "price": float(twin["price"]),
                "category_id": twin["cat"],
                "brand_id": twin["brand"],
                "image": "images/p0005.png",
            },
            {"id": "svc-bad", "title": "Broken", "category_id": "no-such-category"},
        ],
        "interactions": [
            {"user_id": USER, "product_id": target, "type": "VIEWED", "ts": "2026-01-02T10:00:00"},
            {"user_id": "nobody", "product_id": "p0001", "type": "VIEWED"},
            {"user_id": USER, "product_id": "p0002", "type": "clicked"},
            {"user_id": "u0002", "product_id": "svc-new", "type": "purchased"},
        ],
    }
    response = client.post("/events", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["products"]["nodes"] == {"Product": 2, "Image": 1}
    assert report["products"]["relationships"]["IN_CATEGORY"] == 1
    assert [(r["line"], r["field"]) for r in report["products"]["rejected"]] == [(2, "to")]
    inter = report["interactions"]
    assert inter["relationships"]["VIEWED"] == 1 and inter["relationships"]["PURCHASED"] == 1
    reasons = {r["line"]: r["reason"] for r in inter["rejected"]}
    assert set(reasons) == {2, 3} and len(inter["rejected"]) == 2  # each row once
    assert "User 'nobody' does not exist" in reasons[2]
    assert "type 'CLICKED' matches none of 'VIEWED', 'PURCHASED', 'FAVORITED'" in reasons[3]
    # later calls see the new interaction and the new product
    after = client.get(f"/recommend/{USER}?k=5", headers=AUTH).json()["items"]
    assert target not in {i["product_id"] for i in after}
    in_category = client.get(
        f"/recommend/{USER}", params={"k": 100, "category": twin["name"]}, headers=AUTH
    ).json()["items"]
    assert "svc-new" in {i["product_id"] for i in in_category}
    bought = client.get("/recommend/u0002?k=100", headers=AUTH).json()["items"]
    assert "svc-new" not in {i["product_id"] for i in bought}
    similar = client.get("/similar/svc-new?modality=fused&k=3", headers=AUTH)
    assert similar.status_code == 200 and len(similar.json()["items"]) == 3
    # the next /ask rebuilds the QA index with the new products
    kettle = {"products": [{"id": "svc-kettle", "title": "Svc kettle", "price": 9.0}]}
    assert client.post("/events", json=kettle, headers=AUTH).status_code == 200
    now = client.post("/ask", json=asked, headers=AUTH).json()["products"][0]["product_id"]
    assert now == "svc-kettle"
    # images only from under the image root
    # (a 422 located like the request model's own errors)
    odd = ("../../etc/passwd", "/etc/passwd", "images/none.png", "images/p0005.png\x00x", "a" * 300)
    for image in odd:
        refused = client.post(
            "/events",
            json={"products": [{"id": "svc-y"}, {"id": "svc-x", "image": image}]},
            headers=AUTH,
        )
        assert refused.status_code == 422, refused.text
        [error] = _detail(refused)
        assert error["loc"] == ["body", "products", 1, "image"] and "image root" in error["msg"]
    no_root = TestClient(create_app(writable))
    refused = no_root.post("/events", json={"products": [{"id": "svc-x", "image": "a.png"}]})
    assert refused.status_code == 422 and "--image-root" in _detail(refused)[0]["msg"]
    assert writable.cypher("MATCH (p:Product {id: 'svc-x'}) RETURN p.id AS id").empty


def test_ids_with_a_slash_are_reachable(writable: Engine) -> None:
    """A key may hold '/' (a SKU such as AB/123): sent encoded, it names the product or user,
    not another route."""
    client = TestClient(create_app(writable))
    body = {"products": [{"id": "AB/123", "title": "Slash lamp", "price": 20.0}]}
    assert client.post("/events", json=body).status_code == 200
    similar = client.get("/similar/AB%2F123?modality=fused&k=2")
    assert similar.status_code == 200, similar.text
    assert similar.json()["product_id"] == "AB/123"
    assert [i["id"] for i in similar.json()["items"]] == list(
        writable.similar("AB/123", "fused", 2)["id"]
    )
    user = client.get("/recommend/a%2Fb")
    assert user.status_code == 404 and _detail(user) == "no user 'a/b' in the store"
    spec = client.get("/openapi.json").json()
    assert {"/recommend/{user_id}", "/similar/{product_id}"} <= set(spec["paths"])


def test_no_trained_model_is_409_and_reads_still_work(tiny_shop: Path, tmp_path: Path) -> None:
    with Engine(tmp_path / "plain") as engine:
        load(engine.store, "synthetic", {"shop": tiny_shop})
        client = TestClient(create_app(engine))
        response = client.get(f"/recommend/{USER}")
        assert response.status_code == 409 and "no trained model" in _detail(response)
        events = client.post(
            "/events", json={"interactions": [{"user_id": USER, "product_id": "p0001"}]}
        )
        assert events.status_code == 409
        no_vectors = client.get("/similar/p0001")
        assert no_vectors.status_code == 409 and "no text vector yet" in _detail(no_vectors)
        assert client.get("/defects?top=2").status_code == 200


def test_openapi_lists_the_statuses_each_endpoint_answers(tiny_shop: Path, tmp_path: Path) -> None:
    """What the schema promises: each status the endpoints answer, with the body they send."""
    with Engine(tmp_path / "plain") as engine:
        load(engine.store, "synthetic", {"shop": tiny_shop})
        client = TestClient(create_app(engine, allow_cypher=True))
        spec = client.get("/openapi.json").json()
        answered = {
            ("/recommend/{user_id}", "get"): client.get(f"/recommend/{USER}"),
            ("/similar/{product_id}", "get"): client.get("/similar/p0001"),
            ("/ask", "post"): client.post("/ask", json={"question": "mug?"}),
            ("/events", "post"): client.post(
                "/events", json={"interactions": [{"user_id": USER, "product_id": "p0001"}]}
            ),
        }
    for (path, method), response in answered.items():
        assert response.status_code == 409, (path, response.text)
        assert "409" in spec["paths"][path][method]["responses"], path
    error = spec["components"]["schemas"]["ErrorResponse"]
    assert error["required"] == ["detail"]
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if path == "/healthz":
                continue
            for status in ("400", "401", "413", "503"):
                assert status in op["responses"], (path, method, status)
            for status, answer in op["responses"].items():
                if status not in ("200", "422"):
                    ref = answer["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/ErrorResponse"), (path, status)


def test_read_write_lock() -> None:
    lock = ReadWriteLock()
    order: list[str] = []
    inside = threading.Barrier(2, timeout=5)

    def reader(name: str) -> None:
        with lock.read():
            inside.wait()  # both readers are in at once
            time.sleep(0.05)
            order.append(name)

    readers = [threading.Thread(target=reader, args=(n,)) for n in ("r1", "r2")]
    for t in readers:
        t.start()
    time.sleep(0.01)

    def writer() -> None:
        with lock.write():
            order.append("w")

    w = threading.Thread(target=writer)
    w.start()
    for t in [*readers, w]:
        t.join(5)
    assert sorted(order[:2]) == ["r1", "r2"] and order[2] == "w"


# ----------------------------------------------------------------------------- serving
@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2", "[::1]"])
def test_loopback_needs_no_token(host: str) -> None:
    check_bind(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "example.com", ""])
def test_other_hosts_need_a_long_token(host: str) -> None:
    with pytest.raises(ValidationError, match="needs a bearer token"):
        check_bind(host, None)
    with pytest.raises(ValidationError, match="at least 16"):
        check_bind(host, "short")
    check_bind(host, TOKEN)


def test_cli_refuses_a_public_host_without_token(tmp_path: Path) -> None:
    runner = CliRunner()
    folder = tmp_path / "never-opened"
    res = runner.invoke(
        main, ["serve", "--host", "0.0.0.0", "--store", str(folder)], env={"GRAPHFUSION_TOKEN": ""}
    )
    assert res.exit_code == 2, res.output
    assert "needs a bearer token" in res.output and "--token" in res.output
    assert not folder.exists()  # refused before the store was opened
    res = runner.invoke(
        main, ["serve", "--host", "0.0.0.0", "--token", "short", "--store", str(folder)]
    )
    assert res.exit_code == 2 and "at least 16" in res.output
    res = runner.invoke(main, ["serve", "--token", "a b", "--store", str(folder)])
    assert res.exit_code == 2 and "token must be" in res.output
    res = runner.invoke(main, ["serve", "--port", "70000", "--store", str(folder)])
    assert res.exit_code == 2
    assert not folder.exists()


def _read_lines(stream: Any, into: queue.Queue[str]) -> None:
    for line in iter(stream.readline, ""):
        into.put(line)


def test_real_server_over_http(trained_store: Path, tmp_path: Path) -> None:
    folder = tmp_path / "served"
    shutil.copytree(trained_store, folder)
    env = {**os.environ, "GRAPHFUSION_TOKEN": TOKEN, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [
        sys.executable,
        "-m",
        "graphfusion.cli",
        "serve",
        "--store",
        str(folder),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--allow-cypher",
    ]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True).start()
    seen: list[str] = []
    try:
        url = None
        deadline = time.monotonic() + 90
        while url is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            seen.append(line)
            found = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", line)
            url = found.group(1) if found else None
        assert url, "".join(seen)

        with httpx.Client(base_url=url, timeout=60) as http:
            assert http.get("/healthz").json()["status"] == "ok"
            assert http.get(f"/recommend/{USER}").status_code == 401
            first = http.get(f"/recommend/{USER}?k=3", headers=AUTH)
            assert first.status_code == 200 and len(first.json()["items"]) == 3
            target = first.json()["items"][0]["product_id"]

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=60) as http:
                calls = [http.get(f"/recommend/u{i:04d}?k=5") for i in range(1, 21)]
                calls += [http.get("/similar/p0002?k=3") for _ in range(5)]
                calls.append(
                    http.post(
                        "/events",
                        json={
                            "interactions": [
                                {"user_id": USER, "product_id": target, "type": "VIEWED"}
                            ]
                        },
                    )
                )
                calls.append(http.post("/cypher", json={"query": "MERGE (n:Product {id: 'x'})"}))
                return list(await asyncio.gather(*calls))

        responses = asyncio.run(burst())
        assert [r.status_code for r in responses[:-1]] == [200] * (len(responses) - 1)
        assert responses[-1].status_code == 403
        with httpx.Client(base_url=url, timeout=60, headers=AUTH) as http:
            after = http.get(f"/recommend/{USER}?k=3").json()["items"]
            assert target not in {i["product_id"] for i in after}
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait(10)
    assert code == 0, "".join(seen)
