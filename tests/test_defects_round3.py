"""Defect analysis, round 3: schemas of one's own, stores never (or partly) embedded,
reviews that deny a defect, and what a quality-control engineer meets next (thousands of
products of one supplier without batches, a key of two levels, the product ranking's
evidence rate)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from graphfusion import Engine
from graphfusion.defects import analyse
from graphfusion.errors import SchemaError
from graphfusion.features.embed import embed
from graphfusion.schema import Schema, parse_schema
from graphfusion.store import EmbeddedStore

BROKE = "It broke after a week, poor quality, it fell apart."
FINE = "Works great, excellent quality, very happy with it."
TEXT_VEC = {"type": "vector", "dim": 384, "encoder": "text", "from": ["title"]}
IMAGE_VEC = {"type": "vector", "dim": 1280, "encoder": "image", "from": ["path"]}


def _defect_schema(key: str = "id", drop: tuple[str, ...] = (), recall: bool = False) -> Schema:
    """The labels and types defect analysis reads (and ``Recall`` if ``recall``), keyed by
    ``key``, without the ``Label.property`` names in ``drop``."""
    props: dict[str, dict[str, Any]] = {
        **({"Recall": {"title": "string", "hazard": "string"}} if recall else {}),
        "Product": {"title": "string"},
        "Review": {"title": "string", "text": "string", "rating": "float", "text_vec": TEXT_VEC},
        "Image": {"path": "string", "image_vec": IMAGE_VEC},
        "Category": {"name": "string"},
        "Supplier": {"name": "string"},
        "Batch": {"produced_at": "datetime"},
    }
    nodes = {
        label: {"key": key, "properties": {key: "string", **{
            name: kind for name, kind in extra.items() if f"{label}.{name}" not in drop}}}
        for label, extra in props.items()
    }  # fmt: skip
    rels = {
        "ABOUT": [["Review", "Product"], *([["Recall", "Product"]] if recall else [])],
        "HAS_IMAGE": [["Product", "Image"]],
        "IN_CATEGORY": [["Product", "Category"]],
        "SUPPLIES": [["Supplier", "Product"]],
        "FROM_BATCH": [["Product", "Batch"]],
        "PRODUCED": [["Supplier", "Batch"]],
    }
    raw = {
        "name": "own",
        "nodes": nodes,
        "relationships": {rel: {"between": pairs} for rel, pairs in rels.items()},
    }
    return parse_schema(raw, source="own.yaml")


def _one_product(engine: Engine, key: str) -> None:
    engine.store.write_node_table("Product", pa.table({key: ["p1"], "title": ["a lamp"]}))


def test_labels_keyed_by_sku_are_refused_naming_the_properties_read(tmp_path: Path) -> None:
    """The queries read ``n.id``: a schema keyed by ``sku`` failed with the database's own
    "Cannot find property id" instead of naming what the analysis needs."""
    with Engine(tmp_path / "store", schema=_defect_schema("sku")) as engine:
        _one_product(engine, "sku")
        with pytest.raises(SchemaError, match=r"defect analysis needs .*Product\.id") as err:
            engine.defects()
    for name in ("Review.id", "Supplier.id", "Batch.id", "Image.id", "Category.id"):
        assert name in str(err.value)


@pytest.mark.parametrize(
    "missing",
    ["Product.title", "Review.rating", "Review.text", "Supplier.name", "Review.text_vec"],
)
def test_a_property_the_queries_read_is_named_when_missing(tmp_path: Path, missing: str) -> None:
    with Engine(tmp_path / "store", schema=_defect_schema(drop=(missing,))) as engine:
        if missing != "Product.title":
            _one_product(engine, "id")
        with pytest.raises(SchemaError, match=rf"defect analysis needs .*{missing}"):
            engine.defects()


def test_photo_vectors_are_needed_only_when_photos_count(tmp_path: Path) -> None:
    """A schema without ``Image.image_vec`` can still rank by reviews (``sources``)."""
    folder = tmp_path / "store"
    with Engine(folder, schema=_defect_schema(drop=("Image.image_vec",))) as engine:
        _one_product(engine, "id")
        with pytest.raises(SchemaError, match=r"defect analysis needs .*Image\.image_vec"):
            engine.defects()
        analysis = analyse(engine.store, sources=("review",))
    assert analysis.products["product_id"].tolist() == ["p1"]


def test_recalls_without_a_hazard_are_named_where_the_schema_has_recalls(tmp_path: Path) -> None:
    schema = _defect_schema(drop=("Recall.hazard",), recall=True)
    with Engine(tmp_path / "store", schema=schema) as engine:
        _one_product(engine, "id")
        with pytest.raises(SchemaError, match=r"defect analysis needs .*: Recall\.hazard \("):
            analyse(engine.store, sources=("review",))  # recalls are shown even uncounted


def _write_shop(store: EmbeddedStore, reviews: dict[str, list[tuple[float, str]]]) -> None:
    """One supplier ``s1`` with one batch ``b1`` of the products in ``reviews``, each with its
    ``(rating, text)`` reviews."""
    products = list(reviews)
    rows = [(p, f"{p}-r{i}", r, t) for p, rs in reviews.items() for i, (r, t) in enumerate(rs)]
    store.write_node_table("Supplier", pa.table({"id": ["s1"], "name": ["Acme"]}))
    store.write_node_table("Batch", pa.table({"id": ["b1"]}))
    store.write_node_table("Product", pa.table({"id": products, "title": products}))
    store.write_node_table("Review", pa.table({
        "id": [r[1] for r in rows], "title": [""] * len(rows), "text": [r[3] for r in rows],
        "rating": pa.array([r[2] for r in rows], pa.float64()),
    }))  # fmt: skip
    rels = {
        "PRODUCED": ("Supplier", "Batch", ["s1"], ["b1"]),
        "FROM_BATCH": ("Product", "Batch", products, ["b1"] * len(products)),
        "SUPPLIES": ("Supplier", "Product", ["s1"] * len(products), products),
        "ABOUT": ("Review", "Product", [r[1] for r in rows], [r[0] for r in rows]),
    }
    for rel, (start, end, src, dst) in rels.items():
        store.write_rel_table(rel, pa.table({"src": src, "dst": dst}), start=start, end=end)


SHOP = {"p1": [(1.0, BROKE), (5.0, FINE)], "p2": [(5.0, FINE), (4.0, FINE)]}


def test_a_store_never_embedded_warns_that_ratings_alone_decide(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Without text vectors every review was scored on its rating, silently."""
    with EmbeddedStore(tmp_path / "store") as store:
        _write_shop(store, SHOP)
        with caplog.at_level("WARNING", logger="graphfusion.defects"):
            analysis = analyse(store)
    (message,) = [m for m in caplog.messages if "text vector" in m]
    assert "none of the 4 reviews with text" in message
    assert "graphfusion embed" in message and "Engine.embed()" in message
    assert "rating alone" in message
    assert len(analysis.reviews) == 4


def test_reviews_added_after_embedding_are_counted_in_the_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with EmbeddedStore(tmp_path / "store") as store:
        _write_shop(store, SHOP)
        embed(store, only=("text",))
        with caplog.at_level("WARNING", logger="graphfusion.defects"):
            analyse(store)
        assert [m for m in caplog.messages if "text vector" in m] == []  # every review has one
        caplog.clear()
        store.write_node_table("Review", pa.table({
            "id": ["late"], "title": ["Cracked"], "text": ["It cracked on day one."],
            "rating": pa.array([1.0], pa.float64()),
        }))  # fmt: skip
        store.write_rel_table("ABOUT", pa.table({"src": ["late"], "dst": ["p2"]}),
                              start="Review", end="Product")  # fmt: skip
        with caplog.at_level("WARNING", logger="graphfusion.defects"):
            analyse(store)
    (message,) = [m for m in caplog.messages if "text vector" in m]
    assert "1 of the 5 reviews with text has no text vector" in message


def test_reviews_without_words_need_no_vector(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A review of emoji alone, or without text, is scored on its rating by design: no
    warning for it."""
    with EmbeddedStore(tmp_path / "store") as store:
        _write_shop(store, {"p1": [(1.0, BROKE), (5.0, FINE), (2.0, "!!! 👎"), (3.0, "")]})
        embed(store, only=("text",))
        with caplog.at_level("WARNING", logger="graphfusion.defects"):
            scores = analyse(store).reviews
    assert [m for m in caplog.messages if "text vector" in m] == []
    assert scores["text_score"].isna().sum() == 2


NEGATED = (
    "Nothing is broken.",
    "No defects at all.",
    "Zero issues.",
    "No problems, works as expected.",
)
COMPLAINTS = (
    "The zipper broke after a week.",
    "No problems with the fit, but the seams ripped after a week.",
    "No issues with delivery. It cracked on day one.",
    "No issues with delivery. The seams ripped.",
)


def test_a_negated_defect_is_no_complaint(tmp_path: Path) -> None:
    """A text that denies a defect ("Nothing is broken") read as a complaint (its words are
    a defect's); a negation next to a complaint ("but", another defect word) still does."""
    with EmbeddedStore(tmp_path / "store") as store:
        _write_shop(store, {"p1": [(3.0, t) for t in NEGATED + COMPLAINTS]})
        embed(store, only=("text",))
        scores = analyse(store).reviews.set_index("text")
    assert (scores.loc[list(NEGATED), "text_score"] < 0.1).all(), scores["text_score"]
    assert (scores.loc[list(COMPLAINTS), "text_score"] > 0.5).all(), scores["text_score"]
    assert (scores.loc[list(NEGATED), "score"] < 0.5).all()


def test_text_scores_of_vectors_alone_are_as_before() -> None:
    """Without the texts (the real-text benchmark's call), the negation reading is off."""
    from graphfusion.defects import text_defect_scores
    from graphfusion.features.text import TextEncoder

    encoder = TextEncoder()
    vectors = encoder.encode(list(NEGATED[:1]))
    assert text_defect_scores(vectors, encoder)[0] > 0.5  # the words alone read as a defect
    assert text_defect_scores(vectors, encoder, texts=list(NEGATED[:1]))[0] < 0.1
    with pytest.raises(ValueError, match="2 texts for 1 vectors"):
        text_defect_scores(vectors, encoder, texts=["a", "b"])


def _loose_shop(store: EmbeddedStore, n: int) -> None:
    """``n`` products without a batch, supplied by ``big`` (all of them) and ``small`` (the
    first ten), one review each: every third one-star, the rest five-star."""
    products = [f"p{i:04d}" for i in range(n)]
    reviews = [f"r{i:04d}" for i in range(n)]
    ratings = [1.0 if i % 3 == 0 else 5.0 for i in range(n)]
    store.write_node_table("Supplier", pa.table({"id": ["big", "small"], "name": ["B", "S"]}))
    store.write_node_table("Product", pa.table({"id": products, "title": products}))
    store.write_node_table("Review", pa.table({
        "id": reviews, "text": [""] * n, "rating": pa.array(ratings, pa.float64())}))  # fmt: skip
    src, dst = ["big"] * n + ["small"] * 10, products + products[:10]
    store.write_rel_table("SUPPLIES", pa.table({"src": src, "dst": dst}),
                          start="Supplier", end="Product")  # fmt: skip
    store.write_rel_table("ABOUT", pa.table({"src": reviews, "dst": products}),
                          start="Review", end="Product")  # fmt: skip


def test_products_without_a_batch_are_not_visited_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A product without a batch took its prior from a Python loop over such products, with
    two pandas lookups each: 20,000 products of one supplier (a shop loaded without batches)
    took 33 s to analyse. The prior is the riskiest supplier's rate over its other products."""
    import pandas as pd

    n = 600
    with EmbeddedStore(tmp_path / "store") as store:
        _loose_shop(store, n)
        lookups = []
        getitem = pd.core.indexing._iLocIndexer.__getitem__

        def counted(self: Any, key: Any) -> Any:
            lookups.append(key)
            return getitem(self, key)

        monkeypatch.setattr(pd.core.indexing._iLocIndexer, "__getitem__", counted)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            analysis = analyse(store, sources=("review",))
        monkeypatch.undo()
    assert len(lookups) < n // 10  # not one per product
    prior = analysis.extra["prior"]
    sup = analysis.suppliers.set_index("supplier_id")
    prod = analysis.products.set_index("product_id")
    for pid in ("p0000", "p0001", "p0100", "p0599"):
        k, obs = prod.at[pid, "reports"], prod.at[pid, "observations"]
        rates = [
            (max(sup.at[s, "reports"] - k, 0.0) + 10.0 * prior)
            / (max(sup.at[s, "observations"] - obs, 0.0) + 10.0)
            for s in (("big", "small") if int(pid[1:]) < 10 else ("big",))
        ]
        expected = (k + 10.0 * max(rates)) / (obs + 10.0)
        assert prod.at[pid, "risk"] == pytest.approx(expected, rel=1e-12)


def test_the_subgraph_of_a_key_of_several_levels_can_be_drawn(tmp_path: Path) -> None:
    """``plot_subgraph`` had no ``level``: a supplier whose key is also a product's could not
    be drawn at all (``defects --plot`` failed on it after writing the chart)."""
    from graphfusion.errors import ValidationError

    with EmbeddedStore(tmp_path / "store") as store:
        _write_shop(store, {"p1": [(1.0, BROKE)], "s1": [(1.0, BROKE)]})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            analysis = analyse(store)
    with pytest.raises(ValidationError, match="'s1' is a supplier and a product: say which"):
        analysis.plot_subgraph("s1", tmp_path / "both.png")
    out = analysis.plot_subgraph("s1", tmp_path / "supplier.png", level="supplier")
    assert out.stat().st_size > 1000
    assert analysis.plot_subgraph("s1", tmp_path / "product.png", "product").is_file()


def test_the_product_ranking_keeps_the_evidence_rate(tmp_path: Path) -> None:
    """A product's ``evidence`` column (its own evidence rate) was overwritten in the
    product ranking by the list of evidence items: the rate was silently gone."""
    with EmbeddedStore(tmp_path / "store") as store:
        _write_shop(store, SHOP)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            analysis = analyse(store)
    ranking = analysis.ranking("product", 2).set_index("product_id")
    rates = analysis.products.set_index("product_id")["evidence"]
    assert ranking["evidence_rate"].to_dict() == rates.to_dict()
    assert all(isinstance(items, list) for items in ranking["evidence"])
    assert "evidence_rate" not in analysis.ranking("supplier", 1).columns


def test_the_command_draws_keys_with_a_slash_or_of_two_levels_and_says_when_no_evidence(
    tmp_path: Path,
) -> None:
    """`defects --plot` wrote the riskiest product "lamps/red" into a subfolder
    (``defects-lamps/red.png``) and failed on a supplier key that is also a product's after
    writing the chart; `--evidence` of a node with nothing against it printed nothing."""
    from click.testing import CliRunner

    from graphfusion.cli import main

    folder = tmp_path / "store"
    with EmbeddedStore(folder) as store:
        _write_shop(store, {"lamps/red": [(1.0, BROKE)], "s1": [(1.0, BROKE)], "p3": [(5.0, FINE)]})
    runner = CliRunner()
    plots = tmp_path / "plots"
    for level, name in (("product", "lamps_red"), ("supplier", "s1")):
        args = ["defects", "--level", level, "--top", "1", "--plot", str(plots)]
        res = runner.invoke(main, [*args, "--store", str(folder)])
        assert res.exit_code == 0, res.output
        assert (plots / f"defects-{level}-{name}.png").is_file()
    assert sorted(p.name for p in plots.iterdir()) == [
        "defects-product-lamps_red.png",
        "defects-product.png",
        "defects-supplier-s1.png",
        "defects-supplier.png",
    ]
    res = runner.invoke(main, ["defects", "--evidence", "p3", "--store", str(folder)])
    assert res.exit_code == 0, res.output
    assert "no evidence against 'p3'" in res.stderr
