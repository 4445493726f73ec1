"""Vectors whose cosine ranks products as a model's (centred) score matrix does."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from graphfusion.errors import ValidationError
from graphfusion.features.embed import read_vectors
from graphfusion.rec_vectors import (
    fit_factors,
    product_rec_vectors,
    read_rec_vectors,
    rec_rank,
    score_factors,
    user_rec_vectors,
)
from graphfusion.store import EmbeddedStore


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    return a @ (b / np.linalg.norm(b, axis=1, keepdims=True)).T


def _centred(scores: np.ndarray) -> np.ndarray:
    return scores - scores.mean(axis=1, keepdims=True)


def _low_rank_scores(rng: np.random.Generator, n_u: int, n_i: int, d: int) -> np.ndarray:
    """``u . i + b`` with norms that vary: the scores of LightGCN, MF or the GNN alone."""
    users = rng.normal(size=(n_u, d))
    items = rng.normal(size=(n_i, d)) * rng.uniform(0.1, 3.0, size=(n_i, 1))
    return users @ items.T + rng.normal(scale=2.0, size=n_i)


@pytest.mark.parametrize(("block", "power"), [(7, 0), (40, 1), (1000, 2)])
def test_scores_of_low_rank_are_factored_exactly_in_any_blocks(block: int, power: int) -> None:
    scores = _low_rank_scores(np.random.default_rng(0), 40, 120, 6)
    calls: list[int] = []

    def score_fn(rows: object) -> np.ndarray:
        calls.append(len(rows))  # type: ignore[arg-type]
        return scores[np.asarray(rows)]

    users, items = score_factors(score_fn, 40, 120, 8, block=block, power=power)
    assert users.shape == (40, 8) and items.shape == (120, 8)
    np.testing.assert_allclose(users @ items.T, _centred(scores), atol=1e-8)
    assert max(calls) <= block and sum(calls) == 40 * (2 * power + 2)  # every pass, in blocks


def test_full_rank_scores_get_nearly_the_best_truncation() -> None:
    rng = np.random.default_rng(1)
    scores = _low_rank_scores(rng, 60, 90, 5) + 0.3 * rng.normal(size=(60, 90))
    users, items = score_factors(lambda rows: scores[np.asarray(rows)], 60, 90, 5, block=16)
    left, sigma, right = np.linalg.svd(_centred(scores), full_matrices=False)
    best = np.linalg.norm(_centred(scores) - (left[:, :5] * sigma[:5]) @ right[:5])
    found = np.linalg.norm(_centred(scores) - users @ items.T)
    assert best <= found <= 1.05 * best


def test_a_rank_above_the_matrix_pads_with_zeros() -> None:
    scores = np.arange(12.0).reshape(3, 4) ** 2
    users, items = score_factors(lambda rows: scores[np.asarray(rows)], 3, 4, 10, block=2)
    assert users.shape == (3, 10) and not users[:, 3:].any() and not items[:, 3:].any()
    np.testing.assert_allclose(users @ items.T, _centred(scores), atol=1e-9)


def test_cosine_of_rec_vectors_ranks_as_the_scores_and_dot_products_are_them() -> None:
    scores = _low_rank_scores(np.random.default_rng(2), 30, 200, 8)
    users, items = score_factors(lambda rows: scores[np.asarray(rows)], 30, 200, 9, block=30)
    products, scale = product_rec_vectors(items)
    lifted = user_rec_vectors(users, scale)
    assert products.shape == (200, 10) and lifted.shape == (30, 10)
    np.testing.assert_allclose(np.linalg.norm(products, axis=1), 1.0)
    assert (lifted[:, -1] == 0).all()
    np.testing.assert_allclose(lifted @ products.T, _centred(scores), atol=1e-8)
    cosine = _cosine(lifted, products)
    assert (np.argsort(-cosine, axis=1) == np.argsort(-scores, axis=1)).all()


def test_fitted_factors_of_a_user_and_a_product_recover_their_scores() -> None:
    scores = _centred(_low_rank_scores(np.random.default_rng(3), 50, 80, 4))
    users, items = score_factors(lambda rows: scores[np.asarray(rows)], 50, 80, 5, block=50)
    user = fit_factors(scores[7:8, :70], items[:70])  # from 70 of the products' factors
    np.testing.assert_allclose(user @ items.T, scores[7:8], atol=1e-8)
    new = fit_factors(scores[:20, 78:].T, users[:20])  # two products, from 20 users' scores
    np.testing.assert_allclose(users @ new.T, scores[:, 78:], atol=1e-8)


def test_products_added_on_the_same_scale_rank_with_the_others() -> None:
    items = np.random.default_rng(4).normal(size=(50, 4))
    _, scale = product_rec_vectors(items)
    some, same = product_rec_vectors(items[:5], scale)
    assert same == scale
    np.testing.assert_allclose(some, product_rec_vectors(items)[0][:5])
    with pytest.raises(ValidationError, match="below"):
        product_rec_vectors(items * 10, scale)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: product_rec_vectors(np.zeros(3)), r"\(n, r\)"),
        (lambda: product_rec_vectors(np.array([[np.nan, 1.0]])), "finite"),
        (lambda: user_rec_vectors(np.array([[np.inf, 1.0]])), "finite"),
        (lambda: user_rec_vectors(np.zeros(3)), "finite"),
        (lambda: fit_factors(np.zeros((2, 3)), np.zeros((4, 2))), r"\(m, r\)"),
        (lambda: fit_factors(np.full((1, 2), np.nan), np.zeros((2, 2))), "finite"),
        (lambda: score_factors(lambda r: np.zeros((1, 2)), 0, 2, 1, block=1), "positive"),
        (lambda: score_factors(lambda r: np.full((1, 2), np.nan), 1, 2, 1, block=1), "finite"),
        # a scale that is not a finite positive number would make NaN vectors
        (lambda: product_rec_vectors(np.zeros((2, 2)), scale=0.0), "scale"),
        (lambda: product_rec_vectors(np.ones((2, 2)), scale=np.inf), "scale"),
        (lambda: user_rec_vectors(np.ones((1, 2)), scale=np.nan), "scale"),
        (lambda: user_rec_vectors(np.ones((1, 2)), scale=0.0), "scale"),
    ],
)
def test_bad_inputs_are_refused(call: object, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        call()  # type: ignore[operator]


def test_all_zero_products_get_a_scale_of_one() -> None:
    vecs, scale = product_rec_vectors(np.zeros((3, 2)))
    assert scale == 1.0 and np.allclose(np.linalg.norm(vecs, axis=1), 1.0)


def test_the_store_schema_gives_the_rank_and_missing_vectors_read_as_nan(
    store: EmbeddedStore,
) -> None:
    rank = rec_rank(store)
    assert rank is not None and rank == store.schema.node("Product").prop("rec_vec").type.dim - 1
    store.upsert_nodes("Product", pd.DataFrame({"id": ["p1", "p2"]}))
    vec = np.r_[np.ones(rank), 0.0] / np.sqrt(rank)
    store.query("MATCH (p:Product {id: 'p1'}) SET p.rec_vec = $v", {"v": vec.tolist()})
    read = read_rec_vectors(store, "Product", ["p2", "p1"])
    assert read is not None and np.isnan(read[0]).all()
    np.testing.assert_allclose(read[1], vec, atol=1e-6)
    with pytest.raises(ValidationError, match="User or Product"):
        read_rec_vectors(store, "Brand", ["b1"])


def test_read_vectors_is_for_vector_properties_of_the_schema(store: EmbeddedStore) -> None:
    store.upsert_nodes("Product", pd.DataFrame({"id": ["p1"], "title": ["A"]}))
    assert np.isnan(read_vectors(store, "Product", "fused_vec", ["p1", "nope"])).all()
    with pytest.raises(ValidationError, match="not a vector"):
        read_vectors(store, "Product", "title", ["p1"])


def test_read_vectors_takes_a_list_of_keys_and_skips_vectors_of_another_size(
    store: EmbeddedStore,
) -> None:
    """One string was read as its characters (five NaN rows for "u0001"); a vector of the
    wrong size, written through raw Cypher, failed with numpy's broadcast error."""
    store.upsert_nodes("Product", pd.DataFrame({"id": ["p1", "p2"], "title": ["A", "B"]}))
    dim = store.schema.node("Product").prop("fused_vec").type.dim
    store.query(
        "MATCH (p:Product) WHERE p.id = $id SET p.fused_vec = $v", {"id": "p1", "v": [1.0, 2.0]}
    )
    store.query(
        "MATCH (p:Product) WHERE p.id = $id SET p.fused_vec = $v", {"id": "p2", "v": [0.5] * dim}
    )
    out = read_vectors(store, "Product", "fused_vec", ["p1", "p2"])
    assert np.isnan(out[0]).all() and (out[1] == 0.5).all()
    with pytest.raises(ValidationError, match="list of keys"):
        read_vectors(store, "Product", "fused_vec", "p1")
