"""Live updates at their edges: what ``Engine.add_interactions``, ``Engine.add_products`` and
``POST /events`` store must be what the served model sees, and what they cannot read must
be said, not dropped (on a private copy of the tiny trained shop)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from graphfusion import Engine
from graphfusion.errors import ValidationError
from graphfusion.recommend import Recommender
from graphfusion.service import create_app


@pytest.fixture
def engine(trained_store: Path, private_copy: Callable[[Path], Engine]) -> Engine:
    """A private copy of the prepared store."""
    return private_copy(trained_store)


def _links(engine: Engine, rtype: str, users: list[str], products: list[str]) -> set[tuple]:
    rows = engine.cypher(
        f"MATCH (u:User)-[:{rtype}]->(p:Product) WHERE u.id IN $u AND p.id IN $p "
        "RETURN u.id AS u, p.id AS p",
        {"u": users, "p": products},
    )
    return set(zip(rows["u"], rows["p"], strict=True)) if len(rows) else set()


def _assert_served_as_stored(engine: Engine) -> None:
    """The served links and weights are those a fresh start on the store reads."""
    served, fresh = engine.recommender(), Recommender(engine.store)
    assert served.state.users == fresh.state.users
    order = [fresh.state.item_index[k] for k in served.state.items]
    assert sorted(order) == list(range(len(fresh.state.items)))
    for rtype, links in fresh.state.by_type.items():
        assert (served.state.by_type[rtype] != links[:, order]).nnz == 0, rtype
        assert (served.state.weights[rtype] != fresh.state.weights[rtype][:, order]).nnz == 0


def test_interactions_with_lists_of_ids_are_served_as_stored(engine: Engine) -> None:
    """The loader links every user of a list with every product of one; the served model
    saw none of those links (``_key`` gives no key for a list), so the store and the served
    state disagreed until a restart, and the users' vectors never moved."""
    engine.recommender()
    users, products = ["u0002", "u0003"], ["p0017", "p0018"]
    new = {(u, p) for u in users for p in products} - _links(engine, "FAVORITED", users, products)
    assert new, "the pairs must be new to show the served state moving"
    report = engine.add_interactions(
        pd.DataFrame({"user_id": [users], "product_id": [products], "type": ["FAVORITED"]})
    )
    assert not report.rejected
    assert _links(engine, "FAVORITED", users, products) == {(u, p) for u in users for p in products}
    _assert_served_as_stored(engine)
    rec = engine.recommender()
    for user in users:
        seen = set(engine.recommend(user, k=40, explain=False)["product_id"])
        assert not seen & set(products), "products of the list are seen, and left out"
    assert rec.state.seen[rec.state.user_index["u0002"], rec.state.item_index["p0018"]] > 0


def test_a_row_rejected_for_one_key_of_its_list_still_serves_the_links_it_wrote(
    engine: Engine,
) -> None:
    """A row whose list holds an unknown user is reported, but the loader writes the links of
    the users it knows: those reach the served model too."""
    engine.recommender()
    before = _links(engine, "FAVORITED", ["u0004"], ["p0021"])
    assert not before
    report = engine.add_interactions(pd.DataFrame({
        "user_id": [["u0004", "nobody"]], "product_id": ["p0021"], "type": ["FAVORITED"],
    }))  # fmt: skip
    assert [r.line for r in report.rejected] == [1]
    assert "nobody" in report.rejected[0].reason
    assert _links(engine, "FAVORITED", ["u0004"], ["p0021"]) == {("u0004", "p0021")}
    _assert_served_as_stored(engine)


def test_products_with_a_list_of_ids_are_each_served(engine: Engine) -> None:
    """A list of ids stores a product each; each must get its vector and be served (they
    were stored without a vector and unknown to the served model)."""
    rec = engine.recommender()
    report = engine.add_products(pd.DataFrame({
        "id": [["plist-a", "plist-b"]], "title": ["Zorblax listed lamp"], "price": [12.0],
    }))  # fmt: skip
    assert report.nodes["Product"] == 2 and not report.rejected
    for key in ("plist-a", "plist-b"):
        assert key in rec.state.item_index
        assert np.linalg.norm(rec.state.item_vecs[rec.state.item_index[key]]) > 0
        stored = engine.cypher("MATCH (p:Product {id: $k}) RETURN p.fused_vec AS v", {"k": key})
        assert stored["v"][0] is not None
    assert {"plist-a", "plist-b"} <= set(engine.recommend("u0001", k=50)["product_id"])


def test_a_categorical_type_column_takes_the_default_where_empty(engine: Engine) -> None:
    """A ``category`` dtype column (pandas' own choice for repeated labels) raised pandas'
    ``TypeError`` ("Cannot setitem on a Categorical with a new category") instead of storing
    the empty type as PURCHASED."""
    frame = pd.DataFrame({
        "user_id": ["u0005", "u0005"], "product_id": ["p0031", "p0032"],
        "type": pd.Categorical(["VIEWED", None]),
    })  # fmt: skip
    report = engine.add_interactions(frame)
    assert not report.rejected
    assert report.relationships["VIEWED"] == 1 and report.relationships["PURCHASED"] == 1
    assert _links(engine, "PURCHASED", ["u0005"], ["p0032"]) == {("u0005", "p0032")}
    _assert_served_as_stored(engine)


def test_a_blank_type_is_a_purchase(engine: Engine) -> None:
    """The live mapping says PURCHASED when the type is empty: a blank one was rejected as
    "type (empty) matches none"."""
    frame = pd.DataFrame({"user_id": ["u0007", "u0007"], "product_id": ["p0034", "p0035"],
                          "type": ["", "  "]})  # fmt: skip
    report = engine.add_interactions(frame)
    assert not report.rejected and report.relationships["PURCHASED"] == 2
    _assert_served_as_stored(engine)


@pytest.mark.parametrize(
    ("method", "frame", "column"),
    [
        ("add_interactions",
         {"user_id": ["u0006"], "product_id": ["p0033"], "timestamp": ["2024-01-01"]},
         "timestamp"),
        ("add_interactions",
         {"user_id": ["u0006"], "product_id": ["p0033"], "wieght": [3.0]}, "wieght"),
        ("add_products", {"id": ["p0033"], "category": ["c07"]}, "category"),
        ("add_products", {"id": ["pnew-typo"], "title": ["Lamp"], "prize": [9.5]}, "prize"),
    ],
)  # fmt: skip
def test_a_column_live_updates_do_not_read_is_refused_before_anything_is_written(
    engine: Engine, method: str, frame: dict[str, list[object]], column: str
) -> None:
    """``timestamp`` for ``ts`` or ``category`` for ``category_id`` was dropped without a word
    (the row stored without it); ``POST /events`` refuses an unknown field (422)."""
    before = engine.stats().to_dict()
    with pytest.raises(ValidationError, match=column) as info:
        getattr(engine, method)(pd.DataFrame(frame))
    assert "id" in str(info.value)  # it names the columns it reads
    assert engine.stats().to_dict() == before


def test_a_batch_with_bad_rows_writes_the_good_ones_and_serves_them(
    engine: Engine, tiny_shop: Path
) -> None:
    """README (Live updates): a row the store refuses is listed with its line, the others are
    written and served; an interaction with a product added in the same request is taken."""
    client = TestClient(create_app(engine, image_root=tiny_shop))
    body = {
        "products": [
            {"id": "live-lamp", "title": "Live Zorblax lamp", "price": 7.5, "category_id": "c07"},
            {"id": "live-bad", "title": "Bad", "category_id": "no-such-category"},
        ],
        "interactions": [
            {"user_id": "u0007", "product_id": "live-lamp", "type": "VIEWED"},
            {"user_id": "nobody", "product_id": "p0001"},
            {"user_id": "u0007", "product_id": "p0002", "type": "CLICKED"},
            {"user_id": "u0007", "product_id": "p0003", "ts": "not a date"},
            {"user_id": "u0008", "product_id": "p0004", "type": "favorited"},
        ],
    }
    response = client.post("/events", json=body)
    assert response.status_code == 200, response.text
    report = response.json()
    assert [r["line"] for r in report["products"]["rejected"]] == [2]
    assert [r["line"] for r in report["interactions"]["rejected"]] == [2, 3, 4]
    assert report["interactions"]["relationships"]["VIEWED"] == 1
    assert report["interactions"]["relationships"]["FAVORITED"] == 1
    _assert_served_as_stored(engine)
    served = client.get("/recommend/u0007?k=40&explain=false").json()["items"]
    assert "live-lamp" not in {item["product_id"] for item in served}  # seen now
    reasons = engine.explain("u0007", "live-lamp")
    assert reasons[0].kind == "yours" and reasons[0].text == "you viewed this"


def test_a_product_changed_live_is_filtered_by_what_it_is_now(engine: Engine) -> None:
    """A product's new category, brand and price decide the filters at once."""
    cats = engine.cypher("MATCH (c:Category) RETURN c.id AS id, c.name AS name ORDER BY id")
    brands = engine.cypher("MATCH (b:Brand) RETURN b.id AS id, b.name AS name ORDER BY id")
    first = {"id": ["pchange"], "title": ["Zorblax shifting lamp"], "price": [10.0],
             "category_id": [cats["id"][6]], "brand_id": [brands["id"][0]]}  # fmt: skip
    assert not engine.add_products(pd.DataFrame(first)).rejected

    def listed(**filters: object) -> bool:
        frame = engine.recommend("u0001", k=100, explain=False, **filters)  # type: ignore[arg-type]
        return "pchange" in set(frame["product_id"])

    assert listed(category=cats["name"][6]) and listed(brand=brands["name"][0])
    assert listed(max_price=10.0)
    change = {"id": ["pchange"], "price": [99.0], "category_id": [cats["id"][7]],
              "brand_id": [brands["id"][1]]}  # fmt: skip
    assert not engine.add_products(pd.DataFrame(change)).rejected
    assert not listed(category=cats["name"][6]) and listed(category=cats["name"][7])
    assert not listed(brand=brands["name"][0]) and listed(brand=brands["name"][1])
    assert not listed(max_price=10.0) and listed(max_price=99.0)
    row = engine.recommend("u0001", k=100).set_index("product_id").loc["pchange"]
    assert (row["category"], row["brand"], row["price"]) == (
        cats["name"][7], brands["name"][1], 99.0,
    )  # fmt: skip
    # a restart reads the same
    fresh = Recommender(engine.store)
    i = fresh.state.item_index["pchange"]
    assert fresh.catalogue.price[i] == 99.0
    assert fresh.catalogue.categories[i] == frozenset({cats["id"][7]})
    assert fresh.catalogue.brands[i] == frozenset({brands["id"][1]})
