"""Behaviour vectors: independent of the order the graph was loaded in, and not piling up in
the feature cache run after run."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd

from graphfusion import Engine
from graphfusion.features.behaviour import behaviour_features
from graphfusion.features.cache import FeatureCache
from graphfusion.store import EmbeddedStore


def _supplier_shop(path: Path, category_order: list[int]) -> pd.DataFrame:
    """Two suppliers; s1's product p1 is in two categories (c1, c2), p2 in c1; s2's p3 in c3.
    The category links are loaded in ``category_order``."""
    with EmbeddedStore(path) as store:
        store.upsert_nodes("Supplier", pd.DataFrame({"id": ["s1", "s2"]}))
        store.upsert_nodes("Product", pd.DataFrame({"id": ["p1", "p2", "p3"]}))
        store.upsert_nodes("Category", pd.DataFrame({"id": ["c1", "c2", "c3"]}))
        store.upsert_relationships(
            "SUPPLIES",
            pd.DataFrame({"src": ["s1", "s1", "s2"], "dst": ["p1", "p2", "p3"]}),
            start="Supplier",
            end="Product",
        )
        links = pd.DataFrame({"src": ["p1", "p1", "p2", "p3"], "dst": ["c1", "c2", "c1", "c3"]})
        store.upsert_relationships(
            "IN_CATEGORY", links.iloc[category_order], start="Product", end="Category"
        )
        return behaviour_features(store, "Supplier", standardize=False)


def test_supplier_categories_count_every_category_whatever_the_load_order(
    tmp_path: Path,
) -> None:
    """A product in several categories counts each of them for its supplier: the count was
    of the first category the query happened to return, so it changed with the load order."""
    first = _supplier_shop(tmp_path / "a", [0, 1, 2, 3])
    second = _supplier_shop(tmp_path / "b", [1, 0, 3, 2])
    assert first.loc["s1", "categories"] == 2.0  # c1 and c2
    assert first.loc["s2", "categories"] == 1.0
    pd.testing.assert_frame_equal(first.sort_index(), second.sort_index())


def _count(folder: Path) -> int:
    db = sqlite3.connect(folder / "cache" / "features.sqlite")
    try:
        return int(
            db.execute("SELECT count(*) FROM vectors WHERE encoder = 'behaviour'").fetchone()[0]
        )
    finally:
        db.close()


def test_behaviour_vectors_do_not_pile_up_in_the_cache(tmp_path: Path) -> None:
    """Behaviour features move with every new interaction (they are standardized over the
    label), so each run after one wrote a new cache row for every user and product, kept
    forever; they are computed whole on every run, so a cached copy saves nothing."""
    folder = tmp_path / "s"
    with Engine(folder) as engine:
        engine.store.upsert_nodes("User", pd.DataFrame({"id": ["u1", "u2", "u3"]}))
        engine.store.upsert_nodes(
            "Product", pd.DataFrame({"id": ["p1", "p2"], "price": [1.0, 5.0]})
        )
        cache = FeatureCache(folder / "cache" / "features.sqlite")  # rows of an older version
        cache.put_vectors("behaviour", {"old": np.ones(8, dtype=np.float32)})
        cache.close()
        for day, user in enumerate(["u1", "u2", "u3"], start=1):
            engine.store.upsert_relationships(
                "VIEWED",
                pd.DataFrame({"src": [user], "dst": ["p1"], "ts": [pd.Timestamp(2024, 1, day)]}),
                start="User",
                end="Product",
            )
            report = engine.embed("behaviour")
            assert report.encoded["User.behaviour_vec"] == 3
            assert _count(folder) == 0
        again = engine.embed("behaviour")  # nothing changed: nothing written
        assert sum(again.encoded.values()) == 0
        assert again.unchanged["User.behaviour_vec"] == 3
        stored = engine.cypher("MATCH (u:User) RETURN u.id AS id, u.behaviour_vec AS v ORDER BY id")
        want = behaviour_features(engine.store, "User").loc[["u1", "u2", "u3"]].to_numpy()
        np.testing.assert_allclose(np.stack(stored["v"].tolist()), want, atol=1e-6)
