"""Defect analysis at the size of a real shop: rankings and charts build their lookups once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from graphfusion import defects
from graphfusion.defects import DefectAnalysis, analyse
from graphfusion.store import EmbeddedStore

PRODUCTS, BATCHES, SUPPLIERS, REVIEWS = 6_000, 1_200, 60, 12_000


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> DefectAnalysis:
    """6,000 products in 1,200 batches of 60 suppliers, 12,000 reviews scored by their
    ratings (no text vectors, so no encoder), a third of them one-star."""
    rng = np.random.default_rng(0)
    products = [f"p{i:05d}" for i in range(PRODUCTS)]
    batches = [f"b{i:04d}" for i in range(BATCHES)]
    suppliers = [f"s{i:02d}" for i in range(SUPPLIERS)]
    reviews = [f"r{i:05d}" for i in range(REVIEWS)]
    ratings = rng.choice([1.0, 4.0, 5.0], REVIEWS)
    folder = tmp_path_factory.mktemp("big") / "store"
    with EmbeddedStore(folder) as store:
        store.write_node_table("Supplier", pa.table({"id": suppliers, "name": suppliers}))
        store.write_node_table("Batch", pa.table({"id": batches}))
        store.write_node_table("Product", pa.table({"id": products, "title": products}))
        store.write_node_table("Review", pa.table({
            "id": reviews, "text": ["It broke."] * REVIEWS, "rating": pa.array(ratings),
        }))  # fmt: skip
        rels = {
            "PRODUCED": ("Supplier", "Batch",
                         [suppliers[i % SUPPLIERS] for i in range(BATCHES)], batches),
            "FROM_BATCH": ("Product", "Batch",
                           products, [batches[i % BATCHES] for i in range(PRODUCTS)]),
            "ABOUT": ("Review", "Product",
                      reviews, [products[i % PRODUCTS] for i in range(REVIEWS)]),
        }  # fmt: skip
        for rel, (start, end, src, dst) in rels.items():
            store.write_rel_table(rel, pa.table({"src": src, "dst": dst}), start=start, end=end)
        return analyse(store, sources=("review",))


def test_rankings_of_many_nodes_look_up_the_store_once(
    big: DefectAnalysis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each node's evidence and products at risk were found by scanning every product and
    every review again (a batch: a Python loop over all products): the 1,200 batches of this
    shop took about a minute to rank, ``--top 10000`` products minutes. Now each ranking
    builds its lookups once (speed is not timed here: the defects benchmark measures it)."""
    built = []
    index = DefectAnalysis._index

    def counted(self: DefectAnalysis) -> object:
        built.append(1)
        return index(self)

    monkeypatch.setattr(DefectAnalysis, "_index", counted)
    batches = big.ranking("batch", BATCHES)
    products = big.ranking("product", PRODUCTS)
    suppliers = big.ranking("supplier", SUPPLIERS)
    assert len(built) == 3
    assert len(batches) == BATCHES and len(products) == PRODUCTS and len(suppliers) == SUPPLIERS
    # the lookups give what the scans gave: a batch's five products, reviews of its products
    top = batches.iloc[0]
    members = {p for p, bs in big.extra["product_batches"].items() if top["batch_id"] in bs}
    assert len(members) == 5
    assert {e["product_id"] for e in top["evidence"]} <= members
    assert set(top["at_risk_products"]) <= members
    reviews = big.reviews.set_index("review_id")
    for row in (batches.iloc[0], suppliers.iloc[0], products.iloc[0]):
        for item in row["evidence"]:
            assert reviews.at[item["key"], "product_id"] == item["product_id"]
            assert item["score"] == pytest.approx(reviews.at[item["key"], "score"], abs=1e-3)


def test_a_chart_of_a_long_ranking_finds_no_evidence(
    big: DefectAnalysis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chart draws risks only: it found the evidence of every node it was asked for
    (``plot(top=10000)`` of 10,000 products took two minutes for 50 bars)."""

    def no_evidence(*args: object, **kwargs: object) -> list[object]:
        raise AssertionError("the chart looked up evidence")

    monkeypatch.setattr(DefectAnalysis, "_evidence", no_evidence)
    monkeypatch.setattr(DefectAnalysis, "_at_risk", no_evidence)
    out = big.plot(tmp_path / "risk.png", "product", top=PRODUCTS)
    assert out.stat().st_size > 1000
    assert defects.MAX_PLOT_BARS == 50


def test_rankings_read_the_frames_as_they_are(big: DefectAnalysis) -> None:
    """The lookups behind the rankings are not kept between calls: an edited frame shows."""
    ranking = big.ranking("batch", BATCHES).set_index("batch_id")["at_risk_products"]
    batch, quiet = next((b, q) for b, q in ranking.items() if len(q) >= 2)
    products = big.products.copy()
    try:
        last = products.index[products["product_id"] == quiet[-1]][0]
        big.products.loc[last, "risk"] = 2.0
        again = big.ranking("batch", BATCHES).set_index("batch_id")["at_risk_products"]
        assert again[batch][0] == quiet[-1] != quiet[0]
    finally:
        big.products = products
