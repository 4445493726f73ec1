"""The feature cache when its file is damaged, full, or another store's."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from graphfusion import Engine
from graphfusion.errors import StoreError, ValidationError
from graphfusion.features.cache import FeatureCache


def test_a_damaged_cache_file_is_a_clear_error_naming_it(tmp_path: Path) -> None:
    """A cache file that is not SQLite (a disk error, a copy cut short) failed ``embed`` with
    sqlite3's bare "file is not a database", naming no file; deleting it is safe."""
    folder = tmp_path / "my store"
    with Engine(folder) as engine:
        engine.store.upsert_nodes("User", pd.DataFrame({"id": ["u1", "u2"]}))
        engine.embed("behaviour")
    cache = folder / "cache" / "features.sqlite"
    for leftover in cache.parent.glob("features.sqlite-*"):
        leftover.unlink()
    cache.write_bytes(b"not a database " * 1000)
    with Engine(folder) as engine:
        with pytest.raises(StoreError, match="delete it") as caught:
            engine.embed("behaviour")
        assert str(cache) in str(caught.value)
        assert "not a database" in str(caught.value)
        cache.unlink()
        again = engine.embed("behaviour")  # made afresh; the store's vectors were kept
        assert again.encoded["User.behaviour_vec"] == 2


def test_a_full_disk_is_a_clear_error(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path / "features.sqlite")
    cache._db.execute("PRAGMA max_page_count = 8")  # what a full disk gives: SQLITE_FULL
    vectors = {f"h{i}": np.ones(384, dtype=np.float32) for i in range(100)}
    with pytest.raises(StoreError, match=r"cannot use the feature cache .*features\.sqlite.*full"):
        cache.put_vectors("model", vectors)
    cache.close()


def test_stores_without_a_folder_do_not_share_their_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache's state says which nodes' vectors are up to date, by node key alone: two Neo4j
    databases (or servers) embedded from one working folder shared one file, so a product of
    one could be taken as up to date, or lose its vector, for what the other holds."""
    from graphfusion.features.embed import cache_for

    monkeypatch.setenv("GRAPHFUSION_CACHE", str(tmp_path / "caches"))
    paths = []
    a, b = "neo4j://a:7687", "neo4j://b:7687"
    for uri, database in [(a, "shop-de"), (a, "shop-fr"), (b, "shop-de"), (a, "shop-de")]:
        cache = cache_for(SimpleNamespace(uri=uri, database=database))  # type: ignore[arg-type]
        paths.append(cache.path)
        cache.close()
    assert len(set(paths[:3])) == 3
    assert paths[3] == paths[0]
    assert all(p.parent.parent == tmp_path / "caches" for p in paths)
    assert "shop-de" in paths[0].parent.name  # a person can tell which is which


def test_prune_cache_drops_only_the_vectors_no_node_uses(tmp_path: Path) -> None:
    """The cache kept every vector it had made, of content since changed and of nodes since
    deleted, with no way to shrink it but deleting the file: ``prune_cache`` drops those and
    keeps what the nodes' stored vectors were made from."""
    folder = tmp_path / "shop"
    titles = {"p1": "Red kettle", "p2": "Blue mug", "p3": "Green lamp"}
    with Engine(folder) as engine:
        products = engine.store.upsert_nodes
        products("Product", pd.DataFrame({"id": list(titles), "title": list(titles.values())}))
        assert engine.embed("text").encoded["Product.text_vec"] == 3
        products("Product", pd.DataFrame({"id": ["p1"], "title": ["Red steel kettle"]}))
        engine.cypher("MATCH (p:Product {id: 'p3'}) DETACH DELETE p")
        kept = engine.embed("text")  # nothing dropped without the option
        assert kept.encoded["Product.text_vec"] == 1 and kept.pruned == 0
        cache = FeatureCache(folder / "cache" / "features.sqlite")
        assert cache._db.execute("SELECT count(*) FROM vectors").fetchone()[0] == 4
        pruned = engine.embed("text", prune_cache=True)
        assert pruned.pruned == 2 and pruned.to_dict()["pruned"] == 2
        assert "2 vectors no node uses dropped" in pruned.summary()
        assert cache._db.execute("SELECT count(*) FROM vectors").fetchone()[0] == 2
        assert set(cache.get_state("Product", "text_vec")) == {"p1", "p2"}
        # what the nodes use is still cached: a new node of the same text is no new encoding
        products("Product", pd.DataFrame({"id": ["p4"], "title": ["Blue mug"]}))
        again = engine.embed("text", prune_cache=True)
        assert again.cached["Product.text_vec"] == 1 and again.encoded["Product.text_vec"] == 0
        assert again.pruned == 0
        # a dropped content coming back is encoded again
        products("Product", pd.DataFrame({"id": ["p1"], "title": ["Red kettle"]}))
        assert engine.embed("text").encoded["Product.text_vec"] == 1
        cache.close()
        with pytest.raises(ValidationError, match="prune_cache must be True or False"):
            engine.embed("text", prune_cache="yes")  # type: ignore[arg-type]
