"""Exporting the stored graph to PyG: counts, edges, reverse edges and vectors round-trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch

from graphfusion.errors import SchemaError, ValidationError
from graphfusion.graph import to_heterodata
from graphfusion.ingest import load
from graphfusion.store import EmbeddedStore


@pytest.fixture(scope="module")
def shop_store(tiny_shop: Path, tmp_path_factory: pytest.TempPathFactory) -> EmbeddedStore:
    store = EmbeddedStore(tmp_path_factory.mktemp("graph") / "store")
    load(store, "synthetic", {"shop": tiny_shop})
    return store


def test_counts_and_edges_round_trip(shop_store: EmbeddedStore) -> None:
    export = to_heterodata(shop_store)
    data = export.data
    counts = shop_store.counts()
    for label, n in counts.nodes.items():
        if n:
            assert data[label].num_nodes == n
        else:
            assert label not in data.node_types
    for rtype, n in counts.relationships.items():
        edges = sum(data[et].edge_index.shape[1] for et in data.edge_types if et[1] == rtype)
        assert edges == n, rtype
    # every edge of VIEWED is a real relationship of the store, with its weight
    ei = data["User", "VIEWED", "Product"].edge_index
    pairs = {
        (export.key("User", int(s)), export.key("Product", int(d))) for s, d in ei.t().tolist()
    }
    stored = shop_store.query("MATCH (u:User)-[:VIEWED]->(p:Product) RETURN u.id AS u, p.id AS p")
    assert pairs == {(r["u"], r["p"]) for r in stored}
    assert data["User", "VIEWED", "Product"].edge_weight.shape == (ei.shape[1],)


def test_reverse_edges_give_every_type_incoming_messages(shop_store: EmbeddedStore) -> None:
    data = to_heterodata(shop_store).data
    forward = [et for et in data.edge_types if not et[1].startswith("rev_")]
    for start, rtype, end in forward:
        rev = data[end, f"rev_{rtype}", start].edge_index
        assert torch.equal(rev, data[start, rtype, end].edge_index.flip(0))
    receivers = {et[2] for et in data.edge_types}
    assert receivers == set(data.node_types)
    without = to_heterodata(shop_store, reverse=False).data
    assert not [et for et in without.edge_types if et[1].startswith("rev_")]


def test_vectors_become_features_with_masks(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path / "s") as store:
        store.upsert_nodes("Product", pd.DataFrame({"id": ["b", "a", "c"]}))
        vec = np.linspace(-1, 1, 384).astype(np.float32)
        store.upsert_nodes("Product", pd.DataFrame({"id": ["a"], "text_vec": [vec.tolist()]}))
        export = to_heterodata(store)
        assert export.ids["Product"] == ["a", "b", "c"]
        product = export.data["Product"]
        assert product.text_vec.shape == (3, 384)
        assert product.text_vec_mask.tolist() == [True, False, False]
        np.testing.assert_allclose(product.text_vec[0].numpy(), vec, atol=1e-6)
        assert not product.text_vec[1].any()
        assert export.rows("Product", ["c", "a"]).tolist() == [2, 0]
        with pytest.raises(ValidationError, match="no Product 'zz'"):
            export.rows("Product", ["zz"])
        assert export.key("Product", np.int64(2)) == "c"
        for bad in (lambda: export.key("Product", 3), lambda: export.key("Nope", 0),
                    lambda: export.rows("Nope", ["a"]), lambda: export.rows("Product", "ab"),
                    lambda: to_heterodata(store, labels="Product")):  # fmt: skip
            with pytest.raises(ValidationError):
                bad()
        only = to_heterodata(store, labels=["Product"], vectors=False)
        assert only.data.node_types == ["Product"]
        assert "text_vec" not in only.data["Product"]
        with pytest.raises(SchemaError):
            to_heterodata(store, labels=["Gadget"])


def test_vector_columns_to_matrices_with_missing_and_null_typed_values() -> None:
    """Rows without a vector of the right length are zeros and unmasked; a column whose values
    are all null (as rows from Neo4j without vectors arrive: null typed) has no vectors."""
    from graphfusion.graph import _vectors

    column = pa.chunked_array([pa.array([[1.0, 2.0], None, [3.0]]), pa.array([[4.0, 5.0]])])
    matrix, mask = _vectors(column, 2)
    assert mask.tolist() == [True, False, False, True]
    assert matrix.tolist() == [[1.0, 2.0], [0.0, 0.0], [0.0, 0.0], [4.0, 5.0]]
    for nulls in (pa.array([], pa.null()), pa.array([None, None], pa.null())):
        matrix, mask = _vectors(pa.chunked_array([nulls]), 3)
        assert matrix.shape == (len(nulls), 3) and not mask.any() and not matrix.any()


def test_round_trip_of_a_graph_with_odd_corners(tmp_path: Path) -> None:
    """Keys other than ``id``, an isolated node, a self-loop, a label without rows and a type
    without edges: the export's edges are the stored ones, as keys (the export read the ends
    as ``a.id``, which a label keyed by ``sku`` lacks)."""
    from graphfusion.schema import parse_schema

    schema = parse_schema({
        "nodes": {
            "Item": {"key": "sku",
                     "properties": {"sku": "string", "v": {"type": "vector", "dim": 2}}},
            "Shopper": {"key": "id", "properties": {"id": "string"}},
            "Shelf": {"key": "code", "properties": {"code": "string"}},
        },
        "relationships": {
            "LIKES": {"between": [["Shopper", "Item"]], "properties": {"weight": "float"}},
            "LINKS": {"between": [["Item", "Item"]]},
            "PLACED": {"between": [["Item", "Shelf"]]},
        },
    })  # fmt: skip
    with EmbeddedStore(tmp_path / "s", schema=schema) as store:
        store.upsert_nodes(
            "Item", pd.DataFrame({"sku": ["i2", "i1", "i3"], "v": [[1, 0], None, None]})
        )
        store.upsert_nodes("Shopper", pd.DataFrame({"id": ["s1", "s2"]}))  # s2: isolated
        store.upsert_relationships(
            "LIKES",
            pd.DataFrame({"src": ["s1", "s1"], "dst": ["i1", "i3"], "weight": [2.0, None]}),
            start="Shopper", end="Item",
        )  # fmt: skip
        store.upsert_relationships(
            "LINKS", pd.DataFrame({"src": ["i1", "i2"], "dst": ["i1", "i3"]}), start="Item",
            end="Item",
        )  # fmt: skip
        export = to_heterodata(store)
        data = export.data
        assert export.ids == {"Item": ["i1", "i2", "i3"], "Shopper": ["s1", "s2"]}
        assert data["Shopper"].num_nodes == 2 and "Shelf" not in data.node_types

        def edges(et: tuple[str, str, str]) -> set[tuple[str, str]]:
            return {(export.key(et[0], s), export.key(et[2], d))
                    for s, d in data[et].edge_index.t().tolist()}  # fmt: skip

        assert edges(("Shopper", "LIKES", "Item")) == {("s1", "i1"), ("s1", "i3")}
        assert edges(("Item", "LINKS", "Item")) == {("i1", "i1"), ("i2", "i3")}
        assert edges(("Item", "rev_LINKS", "Item")) == {("i1", "i1"), ("i3", "i2")}
        likes = data["Shopper", "LIKES", "Item"]
        weights = dict(zip(likes.edge_index[1].tolist(), likes.edge_weight.tolist(), strict=True))
        assert weights == {0: 2.0, 2: 1.0}  # i1: 2.0, i3: no weight, 1.0
        assert not [et for et in data.edge_types if et[1] == "PLACED"]
        assert data["Item"].v_mask.tolist() == [False, True, False]
        # asked for by name, a label without rows is there, with no nodes
        chosen = to_heterodata(store, labels=["Item", "Shelf"]).data
        assert chosen["Shelf"].num_nodes == 0 and chosen.edge_types == [
            ("Item", "LINKS", "Item"),
            ("Item", "rev_LINKS", "Item"),
        ]
