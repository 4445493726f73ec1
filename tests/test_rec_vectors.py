"""Vectors whose cosine ranks products as a model's dot products plus biases do."""

from __future__ import annotations

import numpy as np
import pytest

from graphfusion.errors import ValidationError
from graphfusion.rec_vectors import EXTRA, product_rec_vectors, user_rec_vectors


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    return a @ (b / np.linalg.norm(b, axis=1, keepdims=True)).T


def test_cosine_of_rec_vectors_is_the_model_score_over_a_per_user_constant() -> None:
    rng = np.random.default_rng(0)
    users = rng.normal(size=(30, 8))
    items = rng.normal(size=(200, 8)) * rng.uniform(0.1, 3.0, size=(200, 1))  # norms vary
    bias = rng.normal(scale=2.0, size=200)
    products, scale = product_rec_vectors(items, bias)
    lifted_users = user_rec_vectors(users)
    assert products.shape == (200, 8 + EXTRA) and lifted_users.shape == (30, 8 + EXTRA)
    np.testing.assert_allclose(np.linalg.norm(products, axis=1), 1.0)
    model = users @ items.T + bias
    cosine = _cosine(lifted_users, products)
    per_user = scale * np.linalg.norm(np.c_[users, np.ones(30)], axis=1, keepdims=True)
    np.testing.assert_allclose(cosine * per_user, model, atol=1e-9)
    assert (np.argsort(-cosine, axis=1) == np.argsort(-model, axis=1)).all()
    # the fused vectors' own cosine ranks differently: norms and biases are lost
    assert not (np.argsort(-_cosine(users, items), axis=1) == np.argsort(-model, axis=1)).all()


def test_products_added_on_the_same_scale_rank_with_the_others() -> None:
    rng = np.random.default_rng(1)
    items, bias = rng.normal(size=(50, 4)), rng.normal(size=50)
    _, scale = product_rec_vectors(items, bias)
    some, same = product_rec_vectors(items[:5], bias[:5], scale)
    assert same == scale
    np.testing.assert_allclose(some, product_rec_vectors(items, bias)[0][:5])
    assert product_rec_vectors(items)[0][:, 4].tolist() == [0.0] * 50  # no bias: zeros
    with pytest.raises(ValidationError, match="below"):
        product_rec_vectors(items * 10, bias, scale)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: product_rec_vectors(np.zeros(3)), r"\(n, d\)"),
        (lambda: product_rec_vectors(np.zeros((3, 2)), np.zeros(2)), "one number per product"),
        (lambda: product_rec_vectors(np.array([[np.nan, 1.0]])), "finite"),
        (lambda: user_rec_vectors(np.array([[np.inf, 1.0]])), "finite"),
        (lambda: user_rec_vectors(np.zeros(3)), "finite"),
    ],
)
def test_bad_inputs_are_refused(call: object, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        call()  # type: ignore[operator]


def test_all_zero_products_get_a_scale_of_one() -> None:
    vecs, scale = product_rec_vectors(np.zeros((3, 2)))
    assert scale == 1.0 and np.allclose(np.linalg.norm(vecs, axis=1), 1.0)
