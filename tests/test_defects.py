"""Defect propagation on the real embedded store with the tiny shop and its ground truth."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from click.testing import CliRunner

from graphfusion import Engine
from graphfusion.cli import main
from graphfusion.defects import PRIOR_WEIGHT, analyse
from graphfusion.errors import ValidationError
from graphfusion.ingest import load


@pytest.fixture(scope="module")
def embedded(tiny_shop: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("defects") / "store"
    with Engine(folder) as engine:
        load(engine.store, "synthetic", {"shop": tiny_shop})
        engine.embed(only=("text", "image"))
    return folder


@pytest.fixture
def engine(embedded: Path, private_copy: Callable[[Path], Engine]) -> Engine:
    """A private copy of the prepared store."""
    return private_copy(embedded)


def test_planted_supplier_ranks_first(engine: Engine, tiny_shop: Path) -> None:
    truth = json.loads((tiny_shop / "ground_truth.json").read_text())
    ranking = engine.defects("supplier", top=10)
    assert ranking["supplier_id"].iloc[0] in truth["defective_suppliers"]
    analysis = engine.defect_analysis()
    for frame in (analysis.products, analysis.batches, analysis.suppliers):
        assert frame["risk"].between(0, 1).all()
    for col in ("score", "text_score"):
        assert analysis.reviews[col].dropna().between(0, 1).all()
    assert analysis.products[["rate", "image", "evidence"]].stack().between(0, 1).all()
    bad = analysis.reviews["review_id"].isin(truth["complaint_reviews"])
    assert analysis.reviews.loc[bad, "score"].mean() > analysis.reviews.loc[~bad, "score"].mean()
    top = ranking.iloc[0]
    assert top["evidence"] and top["evidence"][0]["kind"] in ("review", "image")
    assert set(top["at_risk_products"]) <= set(analysis.products["product_id"])
    batches = engine.defects("batch", top=3)
    assert batches["batch_id"].iloc[0] in truth["defective_batches"]


def test_one_bad_review_does_not_outrank_a_bad_supplier(engine: Engine) -> None:
    analysis = engine.defect_analysis()
    worst_supplier = analysis.suppliers["risk"].max()
    one = analysis.products[analysis.products["reviews"] == 1]
    # a product with a single defect review is pulled toward the prior
    rate_of_one_bad = (1 + PRIOR_WEIGHT * analysis.reviews["score"].gt(0.5).mean()) / (
        1 + PRIOR_WEIGHT
    )
    assert rate_of_one_bad < 0.5
    if len(one):
        assert one["rate"].max() <= rate_of_one_bad + 1e-9
    assert analysis.products["evidence"].max() <= 1.0 and worst_supplier <= 1.0


def test_evidence_paths_and_plots(engine: Engine, tmp_path: Path) -> None:
    supplier = engine.defects("supplier", top=1)["supplier_id"].iloc[0]
    paths = engine.defect_evidence(supplier)
    assert paths and all(p["path"][0] == ("Supplier", supplier) for p in paths)
    assert [p["score"] for p in paths] == sorted((p["score"] for p in paths), reverse=True)
    assert {p["path"][-1][0] for p in paths} <= {"Review", "Image"}
    analysis = engine.defect_analysis()
    bars = analysis.plot(tmp_path / "risk.png")
    graph = analysis.plot_subgraph(supplier, tmp_path / "sub.png")
    assert bars.stat().st_size > 1000 and graph.stat().st_size > 1000
    with pytest.raises(ValidationError, match="no supplier, batch or product"):
        engine.defect_evidence("nope")
    with pytest.raises(ValidationError, match="unknown level"):
        engine.defects("warehouse")
    with pytest.raises(ValidationError, match="top must"):
        engine.defects("batch", top=0)


def test_odd_supply_graphs_get_the_prior(engine: Engine) -> None:
    store = engine.store
    store.write_node_table("Supplier", pa.table({"id": ["lonely", "loop-a"], "name": ["L", "A"]}))
    store.write_node_table("Product", pa.table({"id": ["unreviewed"], "title": ["Quiet"]}))
    store.write_node_table("Review", pa.table({"id": ["norating"], "text": ["It broke."]}))
    store.write_rel_table("ABOUT", pa.table({"src": ["norating"], "dst": ["unreviewed"]}),
                          start="Review", end="Product")  # fmt: skip
    # a cycle: loop-a supplies a product of a batch it also produced
    batch = engine.cypher("MATCH (b:Batch) RETURN b.id AS id LIMIT 1")["id"][0]
    store.write_rel_table("PRODUCED", pa.table({"src": ["loop-a"], "dst": [batch]}),
                          start="Supplier", end="Batch")  # fmt: skip
    product = engine.cypher(
        "MATCH (p:Product)-[:FROM_BATCH]->(b:Batch {id: $b}) RETURN p.id AS id LIMIT 1",
        {"b": batch},
    )["id"][0]
    store.write_rel_table("SUPPLIES", pa.table({"src": ["loop-a"], "dst": [product]}),
                          start="Supplier", end="Product")  # fmt: skip
    analysis = analyse(store)
    sup = analysis.suppliers.set_index("supplier_id")
    assert sup.at["lonely", "products"] == 0
    assert sup.at["lonely", "risk"] == pytest.approx(analysis.extra["prior"])
    assert 0 <= sup.at["loop-a", "risk"] <= 1
    prod = analysis.products.set_index("product_id")
    assert prod.at["unreviewed", "reviews"] == 1  # the review without a rating counts
    row = analysis.reviews.set_index("review_id").loc["norating"]
    assert pd.isna(row["rating"]) and 0 <= row["score"] <= 1


def test_cli(embedded: Path, tmp_path: Path) -> None:
    folder = tmp_path / "store"
    shutil.copytree(embedded, folder)
    runner = CliRunner()
    res = runner.invoke(main, ["defects", "--top", "3", "--json", "--store", str(folder)])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert len(rows) == 3 and rows[0]["risk"] >= rows[1]["risk"]
    res = runner.invoke(main, ["defects", "--level", "batch", "--plot", str(tmp_path / "p"),
                               "--store", str(folder)])  # fmt: skip
    assert res.exit_code == 0 and "risk" in res.output
    assert (tmp_path / "p" / "defects-batch.png").exists()
    assert runner.invoke(main, ["defects", "--level", "shop"]).exit_code == 2
