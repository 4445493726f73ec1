"""Serving, round 5: the REST service's HTTP methods and URL decoding, a deterministic graph
export, strict JSON training histories, and zoned times on the Neo4j path.

- ``HEAD`` on a ``GET`` route answers as ``GET`` does, without the body (it was 405 on every
  route but ``/healthz``); ``OPTIONS`` answers 204 with an ``Allow`` header (it was 405), and
  a 405 lists ``HEAD`` and ``OPTIONS`` where they are allowed.
- A percent escape that is not UTF-8 (``%FF``) in an id or a query value is a 400 naming it:
  it was decoded to U+FFFD and looked up (``no product 'p\ufffd'``, 404).
- The export's edges are in one order whatever order the store keeps them in.
- ``TrainResult.to_dict`` holds no NaN (``json.dumps`` wrote a bare ``NaN``, which strict JSON
  readers refuse); :meth:`TrainResult.from_dict` reads it back.
- On Neo4j, an interaction time written by another tool as a zoned ``DateTime`` compared as
  null against the recency's local ``$latest``: the user looked as if he had never acted.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from fastapi.testclient import TestClient

from graphfusion import Engine
from graphfusion.features.behaviour import behaviour_features
from graphfusion.graph import to_heterodata
from graphfusion.service import create_app
from graphfusion.store import EmbeddedStore, Neo4jStore
from graphfusion.train import TrainConfig, TrainResult

try:
    from cypher_lint import cypher_lint_available, lint_cypher, unavailable_reason
    from neo4j_recorder import RecordingDriver
except ImportError:  # pragma: no cover - when tests/ is a package
    from tests.cypher_lint import cypher_lint_available, lint_cypher, unavailable_reason
    from tests.neo4j_recorder import RecordingDriver

TOKEN = "round5-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


# ============================================================================ HTTP methods
@pytest.fixture(scope="module")
def empty_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """An engine on an empty store: every read answers 404 or 409, enough for the routing."""
    with Engine(tmp_path_factory.mktemp("round5-empty") / "store") as engine:
        yield engine


@pytest.fixture(scope="module")
def client(empty_engine: Engine) -> TestClient:
    return TestClient(create_app(empty_engine, token=TOKEN))


@pytest.mark.parametrize(
    "path",
    ["/recommend/u0001?k=3", "/similar/p0001?modality=image", "/defects?level=batch", "/healthz"],
)
def test_head_answers_as_get_without_the_body(client: TestClient, path: str) -> None:
    """A client (a link checker, a monitor, ``curl -I``) asks with HEAD for what GET would
    answer; every route but /healthz said 405."""
    got = client.get(path, headers=AUTH)
    head = client.head(path, headers=AUTH)
    assert head.status_code == got.status_code, head.headers
    assert head.content == b""
    for name in ("content-type", "content-length", "cache-control"):
        assert head.headers.get(name) == got.headers.get(name), name


def test_head_is_guarded_and_checked_as_get(client: TestClient) -> None:
    assert client.head("/recommend/u0001").status_code == 401
    assert client.head("/recommend/u0001?max_prize=3", headers=AUTH).status_code == 422
    assert client.head("/openapi.json").status_code == 200


def test_head_answers_a_served_recommendation(trained_store: Path) -> None:
    with Engine(trained_store, read_only=True) as engine:
        served = TestClient(create_app(engine))
        got, head = served.get("/recommend/u0001?k=2"), served.head("/recommend/u0001?k=2")
    assert got.status_code == head.status_code == 200
    assert head.content == b"" and head.headers["content-length"] == str(len(got.content))


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/recommend/u0001", "GET, HEAD, OPTIONS"),
        ("/recommend/a%2Fb", "GET, HEAD, OPTIONS"),
        ("/similar/p0001", "GET, HEAD, OPTIONS"),
        ("/defects", "GET, HEAD, OPTIONS"),
        ("/healthz", "GET, HEAD, OPTIONS"),
        ("/ask", "OPTIONS, POST"),
        ("/events", "OPTIONS, POST"),
        ("/cypher", "OPTIONS, POST"),
    ],
)
def test_options_says_which_methods_a_route_takes(
    client: TestClient, path: str, allowed: str
) -> None:
    """OPTIONS was a 405 everywhere. It needs no token: the OpenAPI schema, which needs
    none either, lists every route and method already."""
    response = client.options(path)
    assert response.status_code == 204, response.text
    assert response.headers["allow"] == allowed
    assert response.content == b""
    assert response.headers["cache-control"] == "no-store"


def test_options_of_an_unknown_path_is_404(client: TestClient) -> None:
    assert client.options("/nowhere").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/ask", "OPTIONS, POST"),
        ("HEAD", "/events", "OPTIONS, POST"),
        ("POST", "/recommend/u0001", "GET, HEAD, OPTIONS"),
        ("DELETE", "/healthz", "GET, HEAD, OPTIONS"),
    ],
)
def test_a_405_lists_every_method_the_route_takes(
    client: TestClient, method: str, path: str, allowed: str
) -> None:
    response = client.request(method, path, headers=AUTH)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed


# ============================================================================ URL decoding
@pytest.mark.parametrize(
    ("target", "bad"),
    [
        ("/similar/p%FF", "%FF"),
        ("/recommend/u%C3%28x", "%C3"),
        ("/similar/p0001?modality=text&k=%FF", "%FF"),
        ("/recommend/u0001?category=%E2%82", "%E2%82"),
    ],
)
def test_a_percent_escape_that_is_not_utf8_is_a_400_naming_it(
    client: TestClient, target: str, bad: str
) -> None:
    """``%FF`` was decoded to U+FFFD and looked up: "no product 'p\ufffd'" (404), as if the
    client had asked for a product that does not exist."""
    response = client.get(target, headers=AUTH)
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert bad in detail and "UTF-8" in detail, detail
    assert "\ufffd" not in detail


def test_utf8_escapes_and_a_real_replacement_character_are_looked_up(client: TestClient) -> None:
    """Sound UTF-8 is an id like any other (``é`` as ``%C3%A9``; U+FFFD itself as
    ``%EF%BF%BD``): 404 for an unknown product, not 400."""
    for target in ("/similar/p%C3%A9", "/similar/p%EF%BF%BD", "/similar/a%2Fb"):
        response = client.get(target, headers=AUTH)
        assert response.status_code == 404, (target, response.text)


def test_a_bad_escape_needs_the_token_first(client: TestClient) -> None:
    assert client.get("/similar/p%FF").status_code == 401


# ============================================================================ the export
def _shop_in_order(folder: Path, reverse: bool) -> EmbeddedStore:
    """A small store whose relationships are written in one order or the other."""
    store = EmbeddedStore(folder)
    users = [f"u{i}" for i in range(6)]
    products = [f"p{i}" for i in range(5)]
    store.upsert_nodes("User", pd.DataFrame({"id": users}))
    store.upsert_nodes("Product", pd.DataFrame({"id": products}))
    pairs = [(u, p, 1.0 + i) for i, (u, p) in enumerate(
        (u, p) for u in users for p in products if (int(u[1:]) + int(p[1:])) % 3)]  # fmt: skip
    views = pd.DataFrame(pairs, columns=["src", "dst", "weight"])
    if reverse:
        views = views.iloc[::-1].reset_index(drop=True)
    for start in range(0, len(views), 4):  # several writes: the store keeps them apart
        store.upsert_relationships(
            "VIEWED", views.iloc[start : start + 4], start="User", end="Product"
        )
    return store


def test_the_export_is_in_one_order_whatever_order_the_store_keeps(tmp_path: Path) -> None:
    """The relationship query had no order: edges came in the store's storage order, and
    what is summed or seeded over them (a product's photos pooled, the fusion model's
    messages) with it."""
    with (
        _shop_in_order(tmp_path / "a", reverse=False) as first,
        _shop_in_order(tmp_path / "b", reverse=True) as second,
    ):
        one, two = to_heterodata(first), to_heterodata(second)
    for et in (("User", "VIEWED", "Product"), ("Product", "rev_VIEWED", "User")):
        assert torch.equal(one.data[et].edge_index, two.data[et].edge_index), et
        assert torch.equal(one.data[et].edge_weight, two.data[et].edge_weight), et
    edges = one.data["User", "VIEWED", "Product"].edge_index
    order = sorted(zip(edges[0].tolist(), edges[1].tolist(), strict=True))
    assert list(zip(edges[0].tolist(), edges[1].tolist(), strict=True)) == order


# ============================================================================ TrainResult
def _result() -> TrainResult:
    nan = math.nan
    return TrainResult(
        TrainConfig(model="mf", epochs=2),
        history=[
            {"epoch": 1, "loss": 0.7, "valid_recall@20": nan},
            {"epoch": 2, "loss": nan, "valid_recall@20": 0.25},
        ],
        best_epoch=2,
        test={"recall@10": 0.1, "ndcg@10": nan},
        light_search={"gain": nan, "standard error": math.inf, "users": [3, 4]},
        taste_history=[{"epoch": 1, "loss": 0.5, "valid": nan}],
        seconds_per_epoch=nan,
    )


def test_the_history_json_is_strict_json() -> None:
    """``json.dumps(result.to_dict())`` wrote ``NaN`` (Python's extension) into the
    ``-history.json`` file: ``JSON.parse``, ``jq`` and other strict readers refuse it."""
    text = json.dumps(_result().to_dict(), indent=2)
    assert "NaN" not in text and "Infinity" not in text
    data = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))
    assert data["history"][0]["valid_recall@20"] is None
    assert data["history"][1]["loss"] is None
    assert data["test"] == {"recall@10": 0.1, "ndcg@10": None}
    assert data["seconds_per_epoch"] is None
    assert data["light_search"]["users"] == [3, 4]


def test_a_history_read_back_has_its_nan_again() -> None:
    result = _result()
    back = TrainResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert back.config == result.config
    assert back.best_epoch == 2
    assert back.history[1]["epoch"] == 2 and math.isnan(back.history[1]["loss"])
    assert math.isnan(back.history[0]["valid_recall@20"])
    assert math.isnan(back.test["ndcg@10"]) and back.test["recall@10"] == 0.1
    assert math.isnan(back.taste_history[0]["valid"])
    assert math.isnan(back.seconds_per_epoch)
    assert back.summary().startswith("mf: best epoch 2 of 2")


def test_a_trained_history_file_reads_back(trained_store: Path) -> None:
    path = trained_store / "models" / "fusion-history.json"
    data = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in {path}"))
    back = TrainResult.from_dict(data)
    assert back.config.model == "fusion" and back.history and back.checkpoint is not None
    assert back.to_dict() == data


# ============================================================================ Neo4j recency
STAMPS = {"u1": dt.datetime(2024, 1, 1, 12), "u2": dt.datetime(2024, 1, 5), "u3": None}


def _zoned(value: dt.datetime) -> Any:
    """``value`` (naive UTC) as another tool may have stored it: a DateTime at +02:00."""
    import neo4j.time

    plus_two = dt.timezone(dt.timedelta(hours=2))
    return neo4j.time.DateTime.from_native(value.replace(tzinfo=dt.UTC).astimezone(plus_two))


def _recency_answer(zoned: bool) -> Any:
    """A responder that answers the recency queries as Neo4j does for a store whose VIEWED
    times are all DateTimes (``zoned``) or all LocalDateTimes: a time compares with a
    parameter of its own kind only (null with the other kind)."""

    def respond(query: str, params: dict[str, Any]) -> Any:
        if query.endswith("RETURN n.id AS id"):
            return [{"id": u} for u in STAMPS]
        if "last" not in query or "[e:VIEWED]" not in query or "u.id AS id" not in query:
            return ([], [])
        rows = []
        for user, stamp in STAMPS.items():
            row = {"id": user, "n": 1, "future": 0}
            for column in [c for c in ("last", "last_at") if f" AS {c}" in query]:
                # "last" compares with $latest (local); "last_at" with $latest_at (zoned)
                local_column = column == "last"
                fits = stamp is not None and zoned != local_column
                row[column] = (_zoned(stamp) if zoned else stamp) if fits else None
            rows.append(row)
        return rows

    return respond


def _neo4j_features(responder: Any) -> tuple[pd.DataFrame, RecordingDriver]:
    driver = RecordingDriver(responder)
    store = Neo4jStore(driver=driver, create_schema=False)
    return behaviour_features(store, "User", standardize=False), driver


def test_zoned_interaction_times_count_for_recency_on_neo4j() -> None:
    """With every stored time a zoned DateTime, ``e.ts <= $latest`` (a LocalDateTime) was null
    in Neo4j: no user had a last interaction, and every recency was the same."""
    local, _ = _neo4j_features(_recency_answer(zoned=False))
    zoned, driver = _neo4j_features(_recency_answer(zoned=True))
    days = zoned["recency_days"]
    assert days["u1"] > days["u2"] and days["u2"] == 0.0, days
    pd.testing.assert_series_equal(days, local["recency_days"])
    sent = [c.parameters for c in driver.calls if "latest" in c.parameters]
    assert sent and all(p["latest"].tzinfo is None for p in sent)
    assert all(p["latest_at"] == p["latest"].replace(tzinfo=dt.UTC) for p in sent)


def test_the_recency_query_is_the_same_on_both_stores(tmp_path: Path) -> None:
    """Embedded answers are as before: both references are the same instant there."""
    with EmbeddedStore(tmp_path / "s") as store:
        store.upsert_nodes("User", pd.DataFrame({"id": ["u1", "u2", "u3"]}))
        store.upsert_nodes("Product", pd.DataFrame({"id": ["p1"], "price": [2.0]}))
        views = pd.DataFrame({"src": ["u1", "u2"], "dst": ["p1", "p1"],
                              "ts": [STAMPS["u1"], STAMPS["u2"]]})  # fmt: skip
        store.upsert_relationships("VIEWED", views, start="User", end="Product")
        got = behaviour_features(store, "User", standardize=False)
    local, _ = _neo4j_features(_recency_answer(zoned=False))
    pd.testing.assert_series_equal(got["recency_days"], local["recency_days"])


@pytest.mark.skipif(not cypher_lint_available(), reason=unavailable_reason())
def test_the_recency_queries_pass_neo4j_parser() -> None:
    _, driver = _neo4j_features(_recency_answer(zoned=True))
    recency = [c.query for c in driver.calls if "latest_at" in c.parameters]
    assert recency
    failed = [r.describe() for r in lint_cypher(recency) if not r.ok]
    assert not failed, "\n\n".join(failed)
