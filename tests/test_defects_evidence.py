"""Every piece of defect evidence shown can be traced back to the store, and says what it is."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from graphfusion import Engine
from graphfusion.defects import LEVELS, analyse
from graphfusion.features.embed import embed
from graphfusion.ingest import load
from graphfusion.store import EmbeddedStore


@pytest.fixture(scope="module")
def engine(tiny_shop: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The tiny shop with its text and image vectors (read only by the tests)."""
    with Engine(tmp_path_factory.mktemp("evidence") / "store") as engine:
        load(engine.store, "synthetic", {"shop": tiny_shop})
        engine.embed(only=("text", "image"))
        yield engine


def _members(engine: Engine, level: str, key: str) -> set[str]:
    """The products of a node, read from the store."""
    if level == "product":
        return {key}
    if level == "batch":
        query = "MATCH (p:Product)-[:FROM_BATCH]->(:Batch {id: $k}) RETURN p.id AS id"
        return set(engine.cypher(query, {"k": key})["id"])
    supplied = "MATCH (:Supplier {id: $k})-[:SUPPLIES]->(p:Product) RETURN p.id AS id"
    made = (
        "MATCH (:Supplier {id: $k})-[:PRODUCED]->(:Batch)<-[:FROM_BATCH]-(p:Product) "
        "RETURN p.id AS id"
    )
    return set(engine.cypher(supplied, {"k": key})["id"]) | set(
        engine.cypher(made, {"k": key})["id"]
    )


def test_evidence_and_counts_are_those_of_the_store(engine: Engine) -> None:
    """The top nodes' evidence lines name reviews of the node's products, quoting their text,
    their counts add up, and their products at risk are theirs and without defect reviews."""
    analysis = engine.defect_analysis()
    scores = analysis.reviews.set_index("review_id")
    reviews = engine.cypher(
        "MATCH (r:Review)-[:ABOUT]->(p:Product) "
        "RETURN r.id AS id, p.id AS product, r.text AS text, r.rating AS rating"
    ).set_index("id")
    shown = 0
    for level in LEVELS:
        for row in engine.defects(level, top=5).to_dict("records"):
            key = row[f"{level}_id"]
            members = _members(engine, level, key)
            ours = reviews[reviews["product"].isin(members)]
            assert row["reviews"] == len(ours)
            if level != "product":
                assert row["products"] == len(members)
                quiet = set(row["at_risk_products"])
                assert quiet <= members
                flagged = scores[(scores["score"] > 0.5) & scores["product_id"].isin(quiet)]
                assert flagged.empty
            for item in row["evidence"]:
                assert item["kind"] == "review"  # the tiny shop scores no photo
                stored = reviews.loc[item["key"]]
                assert item["product_id"] == stored["product"] and stored["product"] in members
                assert item["text"] == stored["text"][:160]
                assert scores.at[item["key"], "rating"] == stored["rating"]
                assert item["score"] == pytest.approx(scores.at[item["key"], "score"], abs=1e-3)
                assert item["score"] > 0.5
                shown += 1
    assert shown > 10


def test_a_review_without_text_shows_its_title(tmp_path: Path) -> None:
    """A review with a blank text was scored on its title but shown as evidence with an
    empty text: a defect report nobody could read."""
    with EmbeddedStore(tmp_path / "store") as store:
        store.write_node_table("Product", pa.table({"id": ["mug"], "title": ["Mug"]}))
        store.write_node_table("Review", pa.table({
            "id": ["r1", "r2"], "title": ["It cracked after a few days", "Broke in a week"],
            "text": ["", "   "], "rating": pa.array([1.0, 2.0]),
        }))  # fmt: skip
        store.write_rel_table("ABOUT", pa.table({"src": ["r1", "r2"], "dst": ["mug", "mug"]}),
                              start="Review", end="Product")  # fmt: skip
        embed(store, only=("text",))
        analysis = analyse(store)
    evidence = analysis.ranking("product", 1)["evidence"].iloc[0]
    assert {e["key"]: e["text"] for e in evidence} == {
        "r1": "It cracked after a few days",
        "r2": "Broke in a week",
    }
    assert analysis.reviews["text_score"].notna().all()  # scored on the title
