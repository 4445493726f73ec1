"""Defect propagation on the real embedded store with the tiny shop and its ground truth."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from click.testing import CliRunner
from PIL import Image

from graphfusion import Engine, defects
from graphfusion.cli import main
from graphfusion.defects import LEVELS, analyse
from graphfusion.errors import NotFoundError, ValidationError
from graphfusion.features.embed import embed
from graphfusion.ingest import load
from graphfusion.plots import new_figure, save_figure
from graphfusion.store import EmbeddedStore

try:
    import formats
except ImportError:  # tests/ imported as a package
    from tests import formats


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
    bad = analysis.reviews["review_id"].isin(truth["complaint_reviews"])
    assert analysis.reviews.loc[bad, "score"].mean() > analysis.reviews.loc[~bad, "score"].mean()
    products = analysis.products
    defective = products["product_id"].isin(truth["defective_products"])
    assert products.loc[defective, "risk"].mean() > products.loc[~defective, "risk"].mean()
    top = ranking.iloc[0]
    assert top["evidence"] and top["evidence"][0]["kind"] in ("review", "image")
    own = analysis.extra["supplier_products"][top["supplier_id"]]
    quiet = products.set_index("product_id").loc[top["at_risk_products"]]
    assert len(quiet) and set(quiet.index) <= own and (quiet["defect_reviews"] == 0).all()
    assert quiet["risk"].is_monotonic_decreasing  # riskiest first
    batches = engine.defects("batch", top=3)
    assert batches["batch_id"].iloc[0] in truth["defective_batches"]


def _write_supply_graph(
    store: EmbeddedStore,
    suppliers: dict[str, dict[str, list[tuple[float, str]]]],
) -> None:
    """Write suppliers, one batch each (``<supplier>-lot``), their products and the products'
    reviews (``(rating, text)``) into ``store``."""
    products = [(s, p) for s, ps in suppliers.items() for p in ps]
    reviews = [(p, i, rating, text) for s, ps in suppliers.items()
               for p, rs in ps.items() for i, (rating, text) in enumerate(rs)]  # fmt: skip
    ids = [f"{p}-r{i}" for p, i, _, _ in reviews]
    store.write_node_table("Supplier", pa.table({"id": list(suppliers), "name": list(suppliers)}))
    store.write_node_table("Batch", pa.table({"id": [f"{s}-lot" for s in suppliers]}))
    store.write_node_table("Product", pa.table({"id": [p for _, p in products],
                                                "title": [p for _, p in products]}))  # fmt: skip
    store.write_node_table("Review", pa.table({
        "id": ids, "title": [""] * len(ids), "text": [t for _, _, _, t in reviews],
        "rating": pa.array([r for _, _, r, _ in reviews], pa.float64()),
    }))  # fmt: skip
    rels = {
        "PRODUCED": ("Supplier", "Batch", list(suppliers), [f"{s}-lot" for s in suppliers]),
        "FROM_BATCH": ("Product", "Batch", [p for _, p in products],
                       [f"{s}-lot" for s, _ in products]),
        "SUPPLIES": ("Supplier", "Product", [s for s, _ in products], [p for _, p in products]),
        "ABOUT": ("Review", "Product", ids, [p for p, _, _, _ in reviews]),
    }  # fmt: skip
    for rel, (start, end, src, dst) in rels.items():
        store.write_rel_table(rel, pa.table({"src": src, "dst": dst}), start=start, end=end)


BROKE = "It broke after a week, poor quality, it fell apart."
FINE = "Works great, excellent quality, very happy with it."


def test_one_bad_review_does_not_outrank_a_bad_supplier(tmp_path: Path) -> None:
    # "bad": 6 products with 10 reviews each, 4 of them one-star defect reports (40% of 60);
    # "one": a single product with ONE one-star defect review; "good": only fine reviews.
    bad = {f"bad-{i}": [(1.0, BROKE)] * 4 + [(5.0, FINE)] * 6 for i in range(6)}
    good = {f"good-{i}": [(5.0, FINE)] * 10 for i in range(6)}
    graph = {"bad": bad, "one": {"lonely": [(1.0, BROKE)]}, "good": good}
    with EmbeddedStore(tmp_path / "store") as store:
        _write_supply_graph(store, graph)
        embed(store, only=("text",))
        analysis = analyse(store)
    reviews = analysis.reviews.set_index("review_id")
    assert (reviews.loc[reviews["text"] == BROKE, "score"] > 0.9).all()
    assert (reviews.loc[reviews["text"] == FINE, "score"] < 0.1).all()
    # the raw share of defect reviews puts the single review first: 100% against 40%
    products = analysis.products.set_index("product_id")
    raw = products["defect_reviews"] / products["reviews"]
    assert raw.idxmax() == "lonely" and raw["lonely"] == 1.0 and raw["bad-0"] == 0.4
    # weighed by the number of reviews, the bad supplier and its products rank first
    suppliers = analysis.ranking("supplier", 3)
    assert suppliers["supplier_id"].tolist() == ["bad", "one", "good"]
    top = analysis.ranking("product", 7)["product_id"].tolist()
    assert sorted(top[:6]) == sorted(bad) and top[6] == "lonely"
    assert products.at["lonely", "risk"] < products.loc[list(bad), "risk"].min()
    # ... while the one bad review still counts against its product
    assert products.at["lonely", "risk"] > products.loc[list(good), "risk"].max()
    batches = analysis.batches.set_index("batch_id")
    assert (
        batches.at["bad-lot", "risk"]
        > batches.at["one-lot", "risk"]
        > batches.at["good-lot", "risk"]
    )


def test_a_bad_batch_warns_about_its_quiet_products(tmp_path: Path) -> None:
    # the same supplier makes a batch with complaints and one without; "quiet" has no review
    graph = {"maker": {f"p{i}": [(1.0, BROKE)] * 3 + [(4.0, FINE)] * 2 for i in range(4)}}
    graph["maker"]["quiet"] = []
    graph["calm"] = {f"c{i}": [(5.0, FINE)] * 5 for i in range(4)}
    graph["calm"]["calm-quiet"] = []
    with EmbeddedStore(tmp_path / "store") as store:
        _write_supply_graph(store, graph)
        embed(store, only=("text",))
        analysis = analyse(store)
    products = analysis.products.set_index("product_id")
    assert products.at["quiet", "reviews"] == 0 and products.at["calm-quiet", "reviews"] == 0
    # a product without evidence inherits its batch's risk, not the shop's
    assert products.at["quiet", "risk"] > 2 * products.at["calm-quiet", "risk"]
    assert (
        products.at["quiet", "risk"] > analysis.extra["prior"] > products.at["calm-quiet", "risk"]
    )
    ranking = analysis.ranking("batch", 2)
    assert ranking["batch_id"].tolist() == ["maker-lot", "calm-lot"]
    assert ranking["at_risk_products"].iloc[0] == ["quiet"]


def test_recalls_rank_their_suppliers(tmp_path: Path) -> None:
    # the CPSC recall fixture, next to a shop whose products have only fine reviews
    with EmbeddedStore(tmp_path / "store") as store:
        load(store, "cpsc_recalls", formats.write_cpsc_recalls(tmp_path / "cpsc"))
        _unrecalled_product_of(store, "acme", "acme-kettle")
        calm = {f"calm-{i}": [(5.0, FINE)] * 5 + [(2.0, FINE)] for i in range(5)}
        _write_supply_graph(store, {"calm": calm, "steady": {"steady-0": [(4.0, FINE)] * 8}})
        analysis = analyse(store)
        without = analyse(store, sources=("review", "image"))
        with pytest.raises(ValidationError, match="sources must be"):
            analyse(store, sources=("rumour",))
    recalled = ["cpsc:02-002", "cpsc:10-238", "cpsc:24-100", "cpsc:25-191"]
    assert sorted(analysis.recalls["product_id"]) == recalled
    sup = analysis.suppliers.set_index("supplier_id")
    named = ["acme", "bestbuy", "costco", "gadget", "widget", "qvc", "walmart", "beta"]
    assert sup.loc[named, "risk"].min() > 0.5
    assert sup.loc[named, "risk"].min() > sup.loc[["calm", "steady"], "risk"].max()
    # without the recalls the same suppliers have no evidence and sit at the prior
    before = without.suppliers.set_index("supplier_id")
    assert before.loc[named, "risk"].tolist() == pytest.approx([without.extra["prior"]] * 8)
    assert without.extra["prior"] < 0.2
    # the recall is the evidence, with its hazard text
    top = analysis.ranking("supplier", 20).set_index("supplier_id")
    evidence = top.at["acme", "evidence"]
    assert {"kind": "recall", "key": "25-191", "product_id": "cpsc:25-191", "score": 1.0,
            "text": "The handle can eject, posing a burn hazard."} in evidence  # fmt: skip
    # a product of a recalled firm without a recall of its own is at risk
    assert top.at["acme", "at_risk_products"] == ["acme-kettle"]
    products = analysis.products.set_index("product_id")
    assert products.loc[recalled, "recalls"].tolist() == [1, 1, 1, 1]
    assert products.at["acme-kettle", "risk"] > products.loc[list(calm), "risk"].max()
    paths = analysis.evidence_paths("acme")
    assert paths[0]["path"] in (
        [("Supplier", "acme"), ("Product", "cpsc:24-100"), ("Recall", "24-100")],
        [("Supplier", "acme"), ("Product", "cpsc:25-191"), ("Recall", "25-191")],
    )


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
    with pytest.raises(NotFoundError, match="no supplier, batch or product"):
        engine.defect_evidence("nope")
    with pytest.raises(ValidationError, match="unknown level"):
        engine.defects("warehouse")
    with pytest.raises(ValidationError, match="top must"):
        engine.defects("batch", top=0)


def test_the_risk_chart_draws_at_most_its_bars(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long ranking is drawn as its top MAX_PLOT_BARS bars (a chart of 10,000 bars was a
    PNG 296,627 pixels high), the same size as a chart of that many."""
    from PIL import Image

    analysis = engine.defect_analysis()
    monkeypatch.setattr(defects, "MAX_PLOT_BARS", 5)
    cut = analysis.plot(tmp_path / "cut.png", "product", top=40)
    five = analysis.plot(tmp_path / "five.png", "product", top=5)
    with Image.open(cut) as a, Image.open(five) as b:
        assert abs(a.height - b.height) <= 2
    monkeypatch.setattr(defects, "MAX_PLOT_BARS", 50)
    whole = analysis.plot(tmp_path / "whole.png", "product", top=40)
    with Image.open(whole) as c, Image.open(five) as b:
        assert c.height > 4 * b.height


def test_an_odd_photo_is_evidence_with_its_image_key(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    photos = engine.cypher(
        "MATCH (p:Product)-[:HAS_IMAGE]->(i:Image) MATCH (p)-[:IN_CATEGORY]->(c:Category) "
        "RETURN p.id AS product, i.id AS image, c.id AS category ORDER BY category, product"
    )
    category = photos["category"].value_counts().index[0]
    group = photos[photos["category"] == category]
    assert len(group) >= 4
    # the category's photos alike but one, which points the other way
    rng = np.random.default_rng(0)
    base = rng.normal(size=1280)
    vectors = base + 0.01 * rng.normal(size=(len(group), 1280))
    vectors[0] = -base
    written, errors = engine.add_vectors("Image", "image_vec", group["image"].tolist(), vectors)
    assert (written, errors) == (len(group), [])
    monkeypatch.setattr(defects, "IMAGE_MIN", 3)  # the tiny shop has few photos per category
    analysis = defects.analyse(engine.store)
    odd = analysis.products.set_index("product_id").loc[group["product"].iloc[0]]
    assert odd["image"] > 0.5 and odd["image_id"] == group["image"].iloc[0]
    paths = analysis.evidence_paths(group["product"].iloc[0])
    photo = [p for p in paths if p["kind"] == "image"]
    assert photo and photo[0]["path"][-1] == ("Image", group["image"].iloc[0])
    others = analysis.products.set_index("product_id").loc[group["product"].iloc[1:]]
    assert (others["image"] < 0.5).all()


def test_odd_supply_graphs_get_the_prior(engine: Engine) -> None:
    store = engine.store
    batch = engine.cypher("MATCH (b:Batch) RETURN b.id AS id ORDER BY id LIMIT 1")["id"][0]
    maker = engine.cypher(
        "MATCH (s:Supplier)-[:PRODUCED]->(b:Batch {id: $b}) RETURN s.id AS id", {"b": batch}
    )["id"][0]
    members = engine.cypher(
        "MATCH (p:Product)-[:FROM_BATCH]->(b:Batch {id: $b}) RETURN p.id AS id ORDER BY id",
        {"b": batch},
    )["id"].tolist()
    before = analyse(store).suppliers.set_index("supplier_id").at[maker, "products"]
    store.write_node_table("Supplier", pa.table({"id": ["lonely", "loop-a"], "name": ["L", "A"]}))
    store.write_node_table("Product", pa.table({"id": ["unreviewed"], "title": ["Quiet"]}))
    store.write_node_table("Review", pa.table({"id": ["norating"], "text": ["It broke."]}))
    store.write_rel_table("ABOUT", pa.table({"src": ["norating"], "dst": ["unreviewed"]}),
                          start="Review", end="Product")  # fmt: skip
    # a cycle: loop-a supplies a product of a batch it also produced (with its first maker)
    store.write_rel_table("PRODUCED", pa.table({"src": ["loop-a"], "dst": [batch]}),
                          start="Supplier", end="Batch")  # fmt: skip
    store.write_rel_table("SUPPLIES", pa.table({"src": ["loop-a"], "dst": [members[0]]}),
                          start="Supplier", end="Product")  # fmt: skip
    analysis = analyse(store)
    sup = analysis.suppliers.set_index("supplier_id")
    assert sup.at["lonely", "products"] == 0
    assert sup.at["lonely", "risk"] == pytest.approx(analysis.extra["prior"])
    # the product it supplies and made is counted once; the batch's first maker keeps it
    assert sup.at["loop-a", "products"] == len(members) > 1
    assert sup.at[maker, "products"] == before
    prod = analysis.products.set_index("product_id")
    assert prod.at["unreviewed", "reviews"] == 1  # the review without a rating counts
    row = analysis.reviews.set_index("review_id").loc["norating"]
    others = analysis.reviews[analysis.reviews["review_id"] != "norating"]
    assert pd.isna(row["rating"]) and pd.isna(row["text_score"])
    assert row["score"] == pytest.approx(others["score"].mean())  # neutral: the mean


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
    heights = []  # the chart has --top bars
    for top_n in (2, 6):
        args = ["defects", "--level", "batch", "--top", str(top_n), "--plot",
                str(tmp_path / f"t{top_n}"), "--store", str(folder)]  # fmt: skip
        assert runner.invoke(main, args).exit_code == 0
        with Image.open(tmp_path / f"t{top_n}" / "defects-batch.png") as chart:
            heights.append(chart.height)
    assert heights[0] < heights[1]
    top = rows[0]["supplier_id"]
    res = runner.invoke(main, ["defects", "--evidence", top, "--json", "--store", str(folder)])
    assert res.exit_code == 0, res.output
    paths = json.loads(res.output)
    assert paths and all(p["path"][0] == ["Supplier", top] for p in paths)
    res = runner.invoke(main, ["defects", "--evidence", "nope", "--store", str(folder)])
    assert res.exit_code == 1 and "no supplier, batch or product 'nope'" in res.output
    # --level says which node the key is
    args = ["defects", "--evidence", top, "--json", "--store", str(folder), "--level"]
    assert json.loads(runner.invoke(main, [*args, "supplier"]).output) == paths
    res = runner.invoke(main, [*args, "batch"])
    assert res.exit_code == 1 and f"no batch '{top}'" in res.output
    assert runner.invoke(main, ["defects", "--level", "shop"]).exit_code == 2


def test_sigmoid_of_infinity_is_exact() -> None:
    # a photo in a category too small to score has z = -inf: score exactly 0, no observation
    out = defects._sigmoid(np.array([-np.inf, -800.0, 0.0, 800.0, np.inf]))
    assert out.tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]


def test_no_defect_reports_means_low_risk(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    # without reviews the photos are the only evidence; in the tiny shop's categories (fewer
    # than IMAGE_MIN photos) none is scored: nothing reports a defect, so nothing is at risk
    analysis = analyse(engine.store, sources=("image", "recall"))
    assert analysis.extra["prior"] == 0.0
    assert (analysis.products["observations"] == 0).all()
    for frame in (analysis.products, analysis.batches, analysis.suppliers):
        assert (frame["risk"] == 0.0).all()
    # scored photos report defects only where they are odd: the shop-wide rate stays the
    # reviews' (0 without them), not the share of odd photos among the odd photos (1.0)
    monkeypatch.setattr(defects, "IMAGE_MIN", 3)
    photos = analyse(engine.store, sources=("image",))
    assert photos.extra["prior"] == 0.0
    assert photos.products["image"].max() > 0.5
    assert photos.suppliers["risk"].min() < 0.2
    products = photos.products
    assert products["risk"].idxmax() == products["image"].idxmax()
    both = analyse(engine.store)
    reviews_only = analyse(engine.store, sources=("review",))
    assert both.extra["prior"] == reviews_only.extra["prior"] > 0.0


def test_a_store_of_recalls_puts_only_recalled_firms_at_risk(tmp_path: Path) -> None:
    # the CPSC recall fixture (no reviews) with a firm whose product was never recalled, and
    # then one fine review: the firms without a recall stay at low risk
    with EmbeddedStore(tmp_path / "store") as store:
        load(store, "cpsc_recalls", formats.write_cpsc_recalls(tmp_path / "cpsc"))
        _unrecalled_product_of(store, "acme", "acme-kettle")
        _write_supply_graph(store, {"quiet": {"quiet-0": []}})
        alone = analyse(store)
        _write_supply_graph(store, {"calm": {"calm-0": [(5.0, FINE)]}})
        embed(store, only=("text",))
        reviewed = analyse(store)
    named = ["acme", "bestbuy", "costco", "gadget", "widget", "qvc", "walmart", "beta"]
    for analysis in (alone, reviewed):
        sup = analysis.suppliers.set_index("supplier_id")
        assert sup.loc[named, "risk"].min() > 0.5
        assert analysis.extra["prior"] < 0.1
        assert sup.at["quiet", "risk"] < 0.1
        products = analysis.products.set_index("product_id")
        assert products.at["quiet-0", "risk"] < 0.1
        # the product of a recalled firm without a recall of its own is still at risk
        assert products.at["acme-kettle", "risk"] > 0.5
    assert reviewed.suppliers.set_index("supplier_id").at["calm", "risk"] < 0.1
    assert alone.batches["risk"].tolist() == [0.0]  # "quiet-lot": no products with evidence


def _unrecalled_product_of(store: EmbeddedStore, supplier: str, product: str) -> None:
    """A product that ``supplier`` supplies and no recall names."""
    store.upsert_nodes("Product", pd.DataFrame({"id": [product], "title": ["A kettle"]}))
    store.upsert_relationships(
        "SUPPLIES", pd.DataFrame({"src": [supplier], "dst": [product]}),
        start="Supplier", end="Product",
    )  # fmt: skip


@pytest.fixture(scope="module")
def resold(tmp_path_factory: pytest.TempPathFactory) -> defects.DefectAnalysis:
    """Supplier "maker" produced its batch; "reseller" only supplies one of its products (``m0``,
    with the only defect review) and makes nothing; "good" has only fine reviews."""
    graph = {
        "maker": {"m0": [(1.0, BROKE), (5.0, FINE)], "m1": [(5.0, FINE)] * 2},
        "good": {"g0": [(5.0, FINE)] * 3},
    }
    with EmbeddedStore(tmp_path_factory.mktemp("resold") / "store") as store:
        _write_supply_graph(store, graph)
        store.write_node_table("Supplier", pa.table({"id": ["reseller"], "name": ["R"]}))
        store.write_rel_table("SUPPLIES", pa.table({"src": ["reseller"], "dst": ["m0"]}),
                              start="Supplier", end="Product")  # fmt: skip
        embed(store, only=("text",))
        return analyse(store)


def test_evidence_paths_follow_only_real_edges(resold: defects.DefectAnalysis) -> None:
    broke = resold.reviews.loc[resold.reviews["text"] == BROKE, "review_id"].tolist()
    assert len(broke) == 1
    # the reseller's path goes straight to the product: it did not produce the batch
    assert [p["path"] for p in resold.evidence_paths("reseller")] == [
        [("Supplier", "reseller"), ("Product", "m0"), ("Review", broke[0])]
    ]
    assert [p["path"] for p in resold.evidence_paths("maker")] == [
        [("Supplier", "maker"), ("Batch", "maker-lot"), ("Product", "m0"), ("Review", broke[0])]
    ]
    assert resold.extra["batch_makers"] == {"good-lot": ["good"], "maker-lot": ["maker"]}


def test_evidence_is_defect_reports_only(resold: defects.DefectAnalysis, tmp_path: Path) -> None:
    # fine reviews count toward the risk (observations without reports) but are no evidence
    # against a node, as photos that show nothing odd are none
    assert (resold.reviews["score"] <= 0.5).sum() == 6
    sup = resold.suppliers.set_index("supplier_id")
    assert sup.at["good", "observations"] == 3
    assert resold.evidence_paths("good") == [] and resold.evidence_paths("m1") == []
    ranking = resold.ranking("supplier", 3).set_index("supplier_id")
    assert ranking.at["good", "evidence"] == []
    assert [e["score"] > 0.5 for e in ranking.at["maker", "evidence"]] == [True]
    # ... so there is nothing to draw for them
    with pytest.raises(ValidationError, match="no evidence against 'good': nothing to plot"):
        resold.plot_subgraph("good", tmp_path / "good.png")
    assert not (tmp_path / "good.png").exists()
    assert resold.plot_subgraph("maker", tmp_path / "maker.png").stat().st_size > 1000


def test_evidence_keys_are_validated(resold: defects.DefectAnalysis, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="must be a supplier, batch or product id"):
        resold.evidence_paths(["maker"])  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="must be a supplier, batch or product id"):
        resold.plot_subgraph(None, tmp_path / "none.png")  # type: ignore[arg-type]


def test_plots_need_something_to_plot(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path / "store") as store:
        store.write_node_table("Product", pa.table({"id": ["p"], "title": ["P"]}))
        analysis = analyse(store)
    for level in ("supplier", "batch"):
        with pytest.raises(ValidationError, match=f"no {level}: nothing to plot"):
            analysis.plot(tmp_path / f"{level}.png", level)
    assert list(tmp_path.glob("*.png")) == []
    assert analysis.plot(tmp_path / "p.png", "product").stat().st_size > 1000


def test_save_figure_returns_the_written_path(tmp_path: Path) -> None:
    # a path without a suffix is written as PNG with .png appended, and that path returned
    fig, _ = new_figure(2, 2)
    out = save_figure(fig, tmp_path / "plots")
    assert out == tmp_path / "plots.png" and out.read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "plots").exists()
    svg = save_figure(fig, tmp_path / "plots.svg")
    assert svg == tmp_path / "plots.svg" and b"<svg" in svg.read_bytes()[:500]
    with pytest.raises(ValidationError, match=r"cannot write a figure as '\.v2'"):
        save_figure(fig, tmp_path / "risk.v2")


def test_a_product_from_two_batches_counts_for_both(tmp_path: Path) -> None:
    # "a0" (six defect reviews) came from a's lot and from a second lot that "b" produced:
    # both lots and both makers answer for it, and b's path to the review goes through b's lot
    graph = {
        "a": {"a0": [(1.0, BROKE)] * 6, "a1": [(5.0, FINE)] * 6},
        "z": {"z0": [(5.0, FINE)] * 6},
    }
    with EmbeddedStore(tmp_path / "store") as store:
        _write_supply_graph(store, graph)
        store.write_node_table("Supplier", pa.table({"id": ["b"], "name": ["B"]}))
        store.write_node_table("Batch", pa.table({"id": ["b-lot"]}))
        store.write_rel_table("PRODUCED", pa.table({"src": ["b"], "dst": ["b-lot"]}),
                              start="Supplier", end="Batch")  # fmt: skip
        store.write_rel_table("FROM_BATCH", pa.table({"src": ["a0"], "dst": ["b-lot"]}),
                              start="Product", end="Batch")  # fmt: skip
        embed(store, only=("text",))
        analysis = analyse(store)
    sup = analysis.suppliers.set_index("supplier_id")
    assert sup.at["b", "products"] == 1 and sup.at["b", "reviews"] == 6
    assert sup.at["b", "risk"] > sup.at["a", "risk"] > sup.at["z", "risk"]
    assert analysis.extra["supplier_products"]["b"] == {"a0"}
    batches = analysis.batches.set_index("batch_id")
    assert batches.at["b-lot", "products"] == 1 and batches.at["a-lot", "products"] == 2
    a0 = analysis.products.set_index("product_id").loc["a0"]
    assert batches.at["b-lot", "reports"] == a0["reports"] > 5
    assert a0["batch_id"] == "a-lot"  # its first batch, in key order
    ranking = analysis.ranking("batch", 3).set_index("batch_id")
    assert [e["product_id"] for e in ranking.at["b-lot", "evidence"]] == ["a0"] * 3
    paths = analysis.evidence_paths("b")
    assert len(paths) == 5 and all(
        p["path"][:3] == [("Supplier", "b"), ("Batch", "b-lot"), ("Product", "a0")] for p in paths
    )
    assert len(analysis.evidence_paths("b-lot")) == 5


def test_evidence_shown_is_the_evidence_counted(tmp_path: Path) -> None:
    # with some sources left out, the evidence of the others is neither counted nor shown
    with EmbeddedStore(tmp_path / "store") as store:
        load(store, "cpsc_recalls", formats.write_cpsc_recalls(tmp_path / "cpsc"))
        _write_supply_graph(store, {"acme": {"kettle": [(1.0, BROKE)] + [(5.0, FINE)] * 3}})
        embed(store, only=("text",))
        everything = analyse(store)
        no_recalls = analyse(store, sources=("review", "image"))
        recalls_only = analyse(store, sources=("recall",))
    acme = everything.ranking("supplier", 20).set_index("supplier_id").loc["acme"]
    assert {e["kind"] for e in acme["evidence"]} == {"recall", "review"}
    for analysis, left_out in ((no_recalls, "recall"), (recalls_only, "review")):
        for level in ("supplier", "batch", "product"):
            for items in analysis.ranking(level, 100)["evidence"]:
                assert left_out not in {e["kind"] for e in items}
        assert left_out not in {p["kind"] for p in analysis.evidence_paths("acme")}
    # the kettle's one defect review is not counted without reviews: it is a quiet product
    assert (
        "kettle"
        in recalls_only.ranking("supplier", 20)
        .set_index("supplier_id")
        .at["acme", "at_risk_products"]
    )
    assert "kettle" not in acme["at_risk_products"]


def test_a_product_with_an_odd_photo_is_not_quiet(tmp_path: Path) -> None:
    # twelve products with a fine review each, whose photos are alike but a0's: a0's photo is
    # evidence against the supplier, so a0 is not among its products at risk without evidence
    graph = {"a": {f"a{i}": [(5.0, FINE)] for i in range(12)}}
    with EmbeddedStore(tmp_path / "store") as store:
        _write_supply_graph(store, graph)
        dim = store.schema.node("Image").prop("image_vec").type.dim
        rng = np.random.default_rng(0)
        base = rng.normal(size=dim)
        vectors = (base + 0.01 * rng.normal(size=(12, dim))).astype(np.float32)
        vectors[0] = -base
        ids = [f"img{i}" for i in range(12)]
        store.write_node_table("Image", pa.table({
            "id": ids, "image_vec": pa.array(list(vectors), pa.list_(pa.float32(), dim)),
        }))  # fmt: skip
        store.write_rel_table("HAS_IMAGE", pa.table({"src": list(graph["a"]), "dst": ids}),
                              start="Product", end="Image")  # fmt: skip
        embed(store, only=("text",))
        analysis = analyse(store)
    top = analysis.ranking("supplier", 1).iloc[0]
    assert [(e["kind"], e["product_id"]) for e in top["evidence"]] == [("image", "a0")]
    assert "a0" not in top["at_risk_products"]
    assert sorted(top["at_risk_products"]) == sorted(f"a{i}" for i in range(1, 12))
    batch = analysis.ranking("batch", 1).iloc[0]
    assert "a0" not in batch["at_risk_products"] and len(batch["at_risk_products"]) == 11


@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")  # CJK: drawn as boxes
def test_plots_draw_keys_as_written(tmp_path: Path) -> None:
    # keys with dollar signs are drawn as text, not parsed as matplotlib math (which fails)
    graph = {"s$x^$": {"p$\\frac$": [(1.0, BROKE)] * 2, "ünï 供应": [(5.0, FINE)]}}
    with EmbeddedStore(tmp_path / "store") as store:
        _write_supply_graph(store, graph)
        embed(store, only=("text",))
        analysis = analyse(store)
    for level in LEVELS:
        assert analysis.plot(tmp_path / f"{level}.png", level).stat().st_size > 1000
    for key in ("s$x^$", "s$x^$-lot", "p$\\frac$"):
        assert analysis.plot_subgraph(key, tmp_path / "sub.png").stat().st_size > 1000


def test_results_do_not_depend_on_the_order_of_loading(tmp_path: Path) -> None:
    # the same graph, its reviews written in key order and in reverse: the same analysis,
    # and evidence of equal scores shown in key order
    ids = [f"r{i}" for i in range(6)]
    frames = []
    for name, order in (("forward", ids), ("reverse", ids[::-1])):
        with EmbeddedStore(tmp_path / name / "store") as store:
            _write_supply_graph(store, {"s": {"p": []}})
            store.write_node_table("Review", pa.table({
                "id": order, "title": [""] * 6, "text": [BROKE] * 6,
                "rating": pa.array([1.0] * 6, pa.float64()),
            }))  # fmt: skip
            store.write_rel_table("ABOUT", pa.table({"src": order, "dst": ["p"] * 6}),
                                  start="Review", end="Product")  # fmt: skip
            embed(store, only=("text",))
            frames.append(analyse(store))
    forward, reverse = frames
    assert forward.reviews["review_id"].tolist() == ids == reverse.reviews["review_id"].tolist()
    pd.testing.assert_frame_equal(forward.products, reverse.products)
    for analysis in frames:
        shown = analysis.ranking("supplier", 1)["evidence"].iloc[0]
        assert [e["key"] for e in shown] == ["r0", "r1", "r2"]
        assert [p["path"][-1][1] for p in analysis.evidence_paths("p")] == ids[:5]


def test_a_key_of_several_levels_needs_its_level(tmp_path: Path) -> None:
    """A supplier and a product with the same key: the evidence paths of the key are refused
    until the level is given (the supplier won silently), then are that node's."""
    graph = {"acme": {"acme": [(1.0, BROKE)], "mug": [(1.0, BROKE)]}}
    with EmbeddedStore(tmp_path / "store") as store:
        _write_supply_graph(store, graph)
        embed(store, only=("text",))
        analysis = analyse(store)
    with pytest.raises(ValidationError, match="'acme' is a supplier and a product: say which"):
        analysis.evidence_paths("acme")
    supplier = analysis.evidence_paths("acme", "supplier")
    assert {p["path"][0] for p in supplier} == {("Supplier", "acme")}
    assert {p["path"][-2][1] for p in supplier} == {"acme", "mug"}
    product = analysis.evidence_paths("acme", level="product")
    assert [p["path"] for p in product] == [[("Product", "acme"), ("Review", "acme-r0")]]
    assert analysis.evidence_paths("mug") == analysis.evidence_paths("mug", "product")
    with pytest.raises(NotFoundError, match="no batch 'mug'"):
        analysis.evidence_paths("mug", "batch")
    with pytest.raises(ValidationError, match="unknown level"):
        analysis.evidence_paths("mug", "warehouse")
