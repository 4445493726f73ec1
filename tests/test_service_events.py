"""``POST /events`` from a client that times out and sends its batch again: the README
promises that a retry is the same links and nodes, not a second copy."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from graphfusion import Engine
from graphfusion.service import create_app


def test_a_resent_batch_changes_nothing_more(
    trained_store: Path, tiny_shop: Path, private_copy: Callable[[Path], Engine]
) -> None:
    engine = private_copy(trained_store)
    client = TestClient(create_app(engine, image_root=tiny_shop))
    batch = {
        "products": [
            {"id": "retry-1", "title": "Retry lamp", "price": 12.0, "image": "images/p0005.png"}
        ],
        "interactions": [
            {"user_id": "u0001", "product_id": "retry-1", "type": "VIEWED"},
            {"user_id": "u0002", "product_id": "p0003", "type": "FAVORITED"},
            {"user_id": "nobody", "product_id": "p0003"},  # rejected both times, same line
        ],
    }
    first = client.post("/events", json=batch)
    assert first.status_code == 200, first.text
    served = client.get("/recommend/u0002?k=10&explain=false").json()["items"]
    again = client.post("/events", json=batch)
    assert again.status_code == 200, again.text
    for report in (first.json(), again.json()):
        assert [r["line"] for r in report["interactions"]["rejected"]] == [3]
    counts = engine.cypher(
        "MATCH (p:Product {id: 'retry-1'}) "
        "OPTIONAL MATCH (p)-[:HAS_IMAGE]->(i:Image) "
        "OPTIONAL MATCH (u:User)-[v:VIEWED]->(p) "
        "RETURN count(DISTINCT p) AS products, count(DISTINCT i) AS images, "
        "count(DISTINCT v) AS views"
    ).iloc[0]
    assert (counts["products"], counts["images"], counts["views"]) == (1, 1, 1)
    favourites = engine.cypher(
        "MATCH (:User {id: 'u0002'})-[f:FAVORITED]->(:Product {id: 'p0003'}) RETURN count(f) AS n"
    )
    assert int(favourites["n"].iloc[0]) == 1
    # the served model saw the same rows once: the answer is the one before the retry
    after = client.get("/recommend/u0002?k=10&explain=false").json()["items"]
    assert [i["product_id"] for i in after] == [i["product_id"] for i in served]
