"""Serving, round 3: a schema whose categories and brands are keyed by another property, price
levels that stay put on a restart, a checkpoint from another store, live updates beside
recommendations in threads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from graphfusion import Engine
from graphfusion.errors import NotFoundError, NotReadyError, ValidationError
from graphfusion.mapping import parse_mapping
from graphfusion.recommend import Recommender
from graphfusion.schema import Schema, parse_schema

FUSED = {"type": "vector", "dim": 64, "encoder": "model"}


@pytest.fixture
def engine(trained_store: Path, private_copy: Callable[[Path], Engine]) -> Engine:
    return private_copy(trained_store)


# ----------------------------------------------------------------- keys other than id
def _coded_schema() -> Schema:
    """Users, products and interactions keyed by ``id``; categories and brands by ``code``."""
    coded = {"key": "code", "properties": {"code": "string", "name": "string"}}
    return parse_schema(
        {
            "name": "coded",
            "nodes": {
                "User": {"key": "id", "properties": {"id": "string", "fused_vec": FUSED}},
                "Product": {"key": "id", "properties": {
                    "id": "string", "title": "string", "price": "float", "fused_vec": FUSED}},
                "Category": coded,
                "Brand": coded,
            },
            "relationships": {
                "PURCHASED": {"between": [["User", "Product"]], "properties": {"weight": "float"}},
                "IN_CATEGORY": {"between": [["Product", "Category"]]},
                "OF_BRAND": {"between": [["Product", "Brand"]]},
                "SUBCATEGORY_OF": {"between": [["Category", "Category"]]},
            },
        },
        source="coded.yaml",
    )  # fmt: skip


def _coded_frames() -> dict[str, pd.DataFrame]:
    """20 products in two categories (lamps: even, mugs: odd; mugs under homeware) and two
    brands; 30 users buying four products of one category and one of the other."""
    rng = np.random.default_rng(0)
    products = pd.DataFrame({
        "id": [f"p{i}" for i in range(20)],
        "title": [f"{'lamp' if i % 2 == 0 else 'mug'} {i}" for i in range(20)],
        "price": [10.0 + i for i in range(20)],
        "category": ["L" if i % 2 == 0 else "M" for i in range(20)],
        "brand": ["A" if i < 10 else "B" for i in range(20)],
    })  # fmt: skip
    categories = pd.DataFrame({"code": ["L", "M", "H"], "name": ["Lamps", "Mugs", "Homeware"]})
    parents = pd.DataFrame({"code": ["M"], "parent": ["H"]})
    brands = pd.DataFrame({"code": ["A", "B"], "name": ["Acme", "Borealis"]})
    pairs = set()
    for u in range(30):
        group = [p for p in range(20) if p % 2 == u % 2]
        pairs.update((f"u{u}", f"p{p}") for p in rng.choice(group, 4, replace=False))
        pairs.add((f"u{u}", f"p{rng.integers(20)}"))
    events = pd.DataFrame(sorted(pairs), columns=["u", "p"])
    users = pd.DataFrame({"id": [f"u{u}" for u in range(30)]})
    return {"users": users, "products": products, "categories": categories,
            "parents": parents, "brands": brands, "events": events}  # fmt: skip


def _load_coded(engine: Engine) -> None:
    frames = _coded_frames()
    mapping = parse_mapping(
        {
            "name": "coded",
            "sources": {t: {} for t in frames},
            "tables": {t: {"source": t, "format": "frame"} for t in frames},
            "nodes": [
                {"label": "User", "table": "users", "key": "id"},
                {"label": "Product", "table": "products", "key": "id",
                 "properties": {"title": "title", "price": "price"}},
                {"label": "Category", "table": "categories", "key": "code",
                 "properties": {"name": "name"}},
                {"label": "Brand", "table": "brands", "key": "code",
                 "properties": {"name": "name"}},
            ],
            "relationships": [
                {"type": "PURCHASED", "table": "events", "from": {"label": "User", "key": "u"},
                 "to": {"label": "Product", "key": "p"}},
                {"type": "IN_CATEGORY", "table": "products",
                 "from": {"label": "Product", "key": "id"},
                 "to": {"label": "Category", "key": "category"}},
                {"type": "OF_BRAND", "table": "products",
                 "from": {"label": "Product", "key": "id"},
                 "to": {"label": "Brand", "key": "brand"}},
                {"type": "SUBCATEGORY_OF", "table": "parents",
                 "from": {"label": "Category", "key": "code"},
                 "to": {"label": "Category", "key": "parent"}},
            ],
        },
        engine.schema,
    )  # fmt: skip
    report = engine.load(mapping, frames)
    assert not report.rejected, report.rejected


def test_categories_and_brands_keyed_by_another_property_filter_and_explain(
    tmp_path: Path,
) -> None:
    """Category and Brand keyed by ``code``: serving read ``n.id`` of them and failed with
    the database's "Cannot find property id for n."; now their keys are read, the filters
    take a code or a name (a parent category its subcategories), the reasons name them."""
    with Engine(tmp_path / "store", schema=_coded_schema()) as engine:
        _load_coded(engine)
        engine.train("lightgcn", epochs=1, interactions=("PURCHASED",), type_weights=None)
        mugs = engine.recommend("u1", k=3, category="Homeware", exclude_seen=False)
        assert len(mugs) == 3 and set(mugs["category"]) == {"Mugs"}
        assert all(int(p[1:]) % 2 == 1 for p in mugs["product_id"])
        acme = engine.recommend("u1", k=20, brand="A", explain=False)
        assert len(acme) and all(int(p[1:]) < 10 for p in acme["product_id"])
        assert set(acme["brand"]) == {"Acme"}
        reasons = engine.explain("u1", mugs["product_id"].iloc[0])
        paths = [r.path for r in reasons if r.kind == "category"]
        assert paths and ("Category", "M") in paths[0]


# ----------------------------------------------------------------- restarts
def _extreme_products() -> pd.DataFrame:
    """Three new products, priced far from the others of their kind."""
    return pd.DataFrame({
        "id": ["pn1", "pn2", "pn3"],
        "title": ["Lumen Studio Wood Lamp - Blue", "Acme Everyday Mug", "Acme Nova Headset"],
        "description": ["A blue wood lamp.", "A mug.", "A plastic headset."],
        "price": [1.0, 500.0, 2.0],
        "category_id": ["c07", "c01", "c02"],
        "brand_id": ["b03", "b01", "b02"],
    })  # fmt: skip


def _aligned(recommender: Recommender, keys: list[str], values: np.ndarray) -> np.ndarray:
    return values[[recommender.state.item_index[k] for k in keys]]


def test_a_restart_after_new_products_serves_the_scores_served_before(engine: Engine) -> None:
    """New products were placed among the products the model was trained with, but a
    restart measured every product's price level among all of them, the new ones included:
    the levels of products served all along moved (here by up to 0.07) and so did the
    scores. Now a restart gives the levels and scores that were served live."""
    live = Recommender(engine.store)
    before = live.state.levels.copy() if live.state.levels is not None else None
    assert before is not None, "the trained store's model has the price kernel"
    report = live.add_products(_extreme_products())
    assert not report.rejected
    np.testing.assert_array_equal(live.state.levels[: len(before)], before)
    restarted = Recommender(engine.store)
    keys = live.state.items
    assert restarted.state.levels is not None
    np.testing.assert_allclose(
        _aligned(restarted, keys, restarted.state.levels), live.state.levels, atol=1e-5
    )
    for user in ("u0001", "u0007"):
        np.testing.assert_allclose(
            _aligned(restarted, keys, restarted.scores(user)[0]), live.scores(user)[0], atol=1e-4
        )


def test_a_store_without_products_added_keeps_its_levels(engine: Engine) -> None:
    """The levels measured among the products trained with are those of the model's own
    neighbourhood when no product was added: ordinary serving does not change."""
    served = Recommender(engine.store)
    assert served.fusion is not None and served.fusion.neighbourhood is not None
    np.testing.assert_array_equal(served.state.levels, served.fusion.neighbourhood.levels().numpy())


# ----------------------------------------------------------------- another store's model
def test_a_fusion_checkpoint_from_another_store_is_refused(engine: Engine, tmp_path: Path) -> None:
    """A fusion checkpoint that knows none of the store's users and products (another
    store's models folder) was served silently, every id embedding and bias zero; it is now
    refused, as LightGCN's and MF's are, and names what to do."""
    ckpt = torch.load(engine.store.path / "models" / "fusion.pt", weights_only=True)  # type: ignore[attr-defined]
    ckpt["node_ids"] = {label: [f"other-{k}" for k in keys]
                        for label, keys in ckpt["node_ids"].items()}  # fmt: skip
    models = tmp_path / "other-models"
    models.mkdir()
    torch.save(ckpt, models / "fusion.pt")
    with pytest.raises(NotReadyError, match="none of this store's users or products") as caught:
        Recommender(engine.store, models_dir=models)
    assert "another store" in str(caught.value) and str(models) in str(caught.value)
    assert len(Recommender(engine.store).recommend("u0001", 3)) == 3  # its own still serves


# ----------------------------------------------------------------- threads
def test_live_updates_beside_recommendations_in_threads(engine: Engine) -> None:
    """Recommendations asked in other threads while products and interactions are added:
    they read the serving state half grown (``IndexError: index 40 is out of bounds``, a
    tensor size mismatch); now every one answers, and sees the products once placed."""
    served = Recommender(engine.store)
    errors: list[BaseException] = []
    stop = threading.Event()

    def ask() -> None:
        while not stop.is_set():
            try:
                served.recommend("u0005", 5)
                served.explain("u0005", "p0001")
            except BaseException as exc:
                errors.append(exc)

    readers = [threading.Thread(target=ask) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        for n in range(6):
            new = pd.DataFrame({"id": [f"pn{n}"], "title": ["Acme Everyday Mug"],
                                "price": [5.0], "category_id": ["c01"]})  # fmt: skip
            assert not served.add_products(new).rejected
            bought = pd.DataFrame({"user_id": ["u0005"], "product_id": [f"pn{n}"]})
            assert not served.add_interactions(bought).rejected
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert not errors, errors[:3]
    assert {f"pn{n}" for n in range(6)} <= set(served.state.items)
    assert served.explain("u0005", "pn0")[0].kind == "yours"


# ----------------------------------------------------------------- arguments
def test_numpy_booleans_are_taken_and_a_bad_flag_is_named(engine: Engine) -> None:
    """``exclude_seen=df["x"].any()`` is a numpy boolean: it was refused as not "True or
    False" (numpy integers for ``k`` and floats for ``diversity`` are taken); a flag of
    another type is refused with its value."""
    served = Recommender(engine.store)
    plain = served.recommend("u0001", 3, exclude_seen=False, explain=True)
    numpy = served.recommend("u0001", 3, exclude_seen=np.bool_(False), explain=np.True_)
    pd.testing.assert_frame_equal(numpy, plain)
    with pytest.raises(ValidationError, match=r"^explain must be True or False, got 'yes'$"):
        served.recommend("u0001", 3, explain="yes")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"^exclude_seen must be True or False, got 1$"):
        served.recommend("u0001", 3, exclude_seen=1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("user", "product", "message"),
    [
        ("U0001", "p0001", r"^no user 'U0001' in the store \(did you mean 'u0001'\?\)$"),
        ("u0001", "P0001", r"^no product 'P0001' in the store \(did you mean 'p0001'\?\)$"),
        (" U0001 ", "p0001", r"^no user ' U0001 ' in the store \(did you mean 'u0001'\?\)$"),
        ("nobody", "p0001", r"^no user 'nobody' in the store$"),
    ],
)
def test_an_id_in_another_case_is_not_found_with_the_stored_one_named(
    engine: Engine, user: str, product: str, message: str
) -> None:
    """Case is not folded (``U0001`` is not ``u0001``), but a key in another case only said
    "no user"; the stored key it folds to is named."""
    served = Recommender(engine.store)
    with pytest.raises(NotFoundError, match=message):
        served.explain(user, product)
    if product == "p0001":
        with pytest.raises(NotFoundError, match=message):
            served.recommend(user, 3)


def test_an_id_pasted_with_its_spaces_is_the_stored_one(engine: Engine) -> None:
    """Loads drop the spaces around a key, so none is stored with them: an id pasted with
    them (or with a line end) is the stored key, as ``similar`` takes it; it was refused
    with a "did you mean" naming that very key."""
    served = Recommender(engine.store)
    assert served.explain(" u0001 ", "p0001\n") == served.explain("u0001", "p0001")
    pd.testing.assert_frame_equal(served.recommend("\tu0001", 3), served.recommend("u0001", 3))
