"""Vectors whose cosine similarity ranks products as the served model does.

The served score of a product for a user is more than a dot product of two vectors: the
fusion model adds a product bias and blends its scores, standardized per user, with the
neighbourhood and taste kernels (:mod:`graphfusion.models.neighbourhood`). A vector index
compares two vectors only, so training factorizes the model's whole users x products score
matrix instead: each user's scores are centred (a constant per user does not change their
order) and a randomized truncated SVD (Halko, Martinsson and Tropp, 2011) gives ``rank``
factors per user ``u`` and product ``q`` with ``u · q`` about the centred score, computed in
blocks of users so that the matrix is never held whole. For LightGCN and MF, whose scores
have rank at most their dimension, the factorization is exact; for the fusion model's blend
it is an approximation of the served ranking (README, "Recommend in pure Cypher", has its
measured quality).

A cosine index also drops the vectors' norms, which carry much of the ranking. Inner-product
search reduces to cosine search by appending a coordinate (Bachrach et al., 2014, "Speeding
up the Xbox recommender system using a Euclidean transformation for inner-product spaces"): a
product gets ``[q, sqrt(M² - |q|²)] / M``, ``M`` the largest ``|q|``, so every product's
vector has norm 1, and a user ``[M u, 0]``. Their dot product is ``u · q`` and their cosine
``u · q / (M |u|)``: for one user, the approximated score over a positive constant, so the
products come in its order.

Training writes these as ``rec_vec`` beside ``fused_vec`` (which stays the embedding, for
similarity between products); :mod:`graphfusion.cypher_recipes` ranks by them. A user whose
interactions change, or a new product, gets its factors by least squares against the stored
factors of the other side (:func:`fit_factors`), so the served recommender keeps them current
without refactorizing.

Example:
    >>> import numpy as np
    >>> scores = np.array([[1.0, 3.0, 2.0], [2.0, 0.0, 1.0]])
    >>> users, items = score_factors(lambda rows: scores[rows], 2, 3, rank=2, block=2)
    >>> products, scale = product_rec_vectors(items)
    >>> (user_rec_vectors(users, scale) @ products.T).argsort()[:, ::-1].tolist()
    [[1, 2, 0], [0, 2, 1]]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from graphfusion.errors import ValidationError
from graphfusion.features.embed import read_vectors
from graphfusion.store.base import BaseStore

__all__ = [
    "PROPERTY",
    "fit_factors",
    "product_rec_vectors",
    "read_rec_vectors",
    "rec_rank",
    "score_factors",
    "user_rec_vectors",
]

#: The vector property of users and products that holds them.
PROPERTY = "rec_vec"

#: Extra random directions of the randomized SVD beyond its rank.
OVERSAMPLE = 10

ScoreFn = Callable[[torch.Tensor], torch.Tensor] | Callable[[np.ndarray], np.ndarray]


def rec_rank(store: BaseStore) -> int | None:
    """The rank of the factors the store's ``rec_vec`` holds (its dimension less the one
    coordinate that lifts products to norm 1), or None when users and products do not both
    have one of the same dimension (a schema without it gets none written)."""
    dims = set()
    for label in ("User", "Product"):
        node = store.schema.nodes.get(label)
        if node is None or not node.has_property(PROPERTY):
            return None
        dims.add(node.prop(PROPERTY).type.dim)
    dim = dims.pop()
    return dim - 1 if not dims and dim and dim > 1 else None


def _centred(score_fn: ScoreFn, rows: np.ndarray) -> np.ndarray:
    """The scores of the user ``rows``, each row less its mean, as float64."""
    with torch.no_grad():
        out = score_fn(torch.as_tensor(rows))  # type: ignore[arg-type]
    scores = np.asarray(out.numpy() if isinstance(out, torch.Tensor) else out, dtype=np.float64)
    if not np.isfinite(scores).all():
        raise ValidationError("the model's scores are not all finite")
    return scores - scores.mean(axis=1, keepdims=True)


def score_factors(
    score_fn: ScoreFn,
    num_users: int,
    num_items: int,
    rank: int,
    *,
    block: int,
    seed: int = 0,
    power: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Rank-``rank`` factors of the per-user centred score matrix (randomized SVD).

    Args:
        score_fn: Scores of every product for a tensor of user rows, ``(len(rows), n_i)``.
        num_users: Users (rows of the matrix).
        num_items: Products (its columns).
        rank: Factors per user and product (at most ``min(num_users, num_items)`` are
            non-zero; the rest are zeros).
        block: Users scored at a time (memory is about ``block x num_items`` scores); every
            pass scores all users once, and there are ``2 * power + 2`` passes.
        seed: Seed of the random directions.
        power: Power iterations (each sharpens the leading factors at two passes more).

    Returns:
        ``(num_users, rank)`` user factors and ``(num_items, rank)`` product factors (the
        singular values on the products' side), their products about the centred scores.

    Raises:
        ValidationError: Sizes that are not positive, or scores that are not finite.
    """
    if min(num_users, num_items, rank, block) < 1 or power < 0:
        raise ValidationError("sizes, rank and block must be positive")
    width = min(rank + OVERSAMPLE, num_users, num_items)
    starts = range(0, num_users, block)
    parts = [np.arange(s, min(s + block, num_users)) for s in starts]
    omega = np.random.default_rng(seed).standard_normal((num_items, width))
    basis = np.vstack([_centred(score_fn, rows) @ omega for rows in parts])
    for _ in range(power):
        q, _ = np.linalg.qr(basis)
        back = np.zeros((num_items, width))
        for rows in parts:
            back += _centred(score_fn, rows).T @ q[rows]
        back, _ = np.linalg.qr(back)
        basis = np.vstack([_centred(score_fn, rows) @ back for rows in parts])
    q, _ = np.linalg.qr(basis)
    small = np.zeros((width, num_items))
    for rows in parts:
        small += q[rows].T @ _centred(score_fn, rows)
    left, sigma, right = np.linalg.svd(small, full_matrices=False)
    users, items = np.zeros((num_users, rank)), np.zeros((num_items, rank))
    keep = min(rank, len(sigma))
    users[:, :keep] = (q @ left)[:, :keep]
    items[:, :keep] = (right[:keep] * sigma[:keep, None]).T
    return users, items


def fit_factors(values: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Least-squares factors of new rows against the other side's factors.

    A user: ``values`` their centred scores ``(1, n_i)``, ``basis`` the products' factors
    ``(n_i, r)``. New products: ``values`` their centred scores for some users, transposed to
    ``(n_new, m)``, ``basis`` those users' factors ``(m, r)``.

    Returns:
        ``(len(values), r)`` factors whose products with ``basis`` best match ``values``.

    Raises:
        ValidationError: Shapes that do not fit, or values that are not finite.
    """
    y, a = np.asarray(values, dtype=np.float64), np.asarray(basis, dtype=np.float64)
    if y.ndim != 2 or a.ndim != 2 or y.shape[1] != a.shape[0]:
        raise ValidationError("values must be (n, m) and basis (m, r)")
    if not (np.isfinite(y).all() and np.isfinite(a).all()):
        raise ValidationError("values and basis must be finite")
    solution, *_ = np.linalg.lstsq(a, y.T, rcond=None)
    return np.asarray(solution.T)


def product_rec_vectors(
    item_factors: np.ndarray, scale: float | None = None
) -> tuple[np.ndarray, float]:
    """The products' ``rec_vec``: ``[q, sqrt(M² - |q|²)] / M``, each of norm 1.

    Args:
        item_factors: ``(n, r)`` product factors (:func:`score_factors`).
        scale: ``M``, when the vectors join others made with it (it must be at least the
            largest ``|q|`` here); the largest of these when None.

    Returns:
        ``(n, r + 1)`` vectors and the ``M`` they were made with.

    Raises:
        ValidationError: Not ``(n, r)``, values that are not finite, or a ``scale`` that is
            not a finite number above 0 or is below a product's norm.
    """
    items = np.asarray(item_factors, dtype=np.float64)
    if items.ndim != 2:
        raise ValidationError("item_factors must be (n, r)")
    if not np.isfinite(items).all():
        raise ValidationError("product factors must be finite")
    norms = np.linalg.norm(items, axis=1)
    top = float(norms.max()) if len(norms) else 0.0
    if scale is None:
        scale = top if top > 0 else 1.0
    else:
        _check_scale(scale)
        if not scale >= top:
            raise ValidationError(f"scale {scale} is below the largest product norm {top}")
    fill = np.sqrt(np.maximum(scale**2 - norms**2, 0.0))
    return np.concatenate([items, fill[:, None]], axis=1) / scale, float(scale)


def user_rec_vectors(user_factors: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """The users' ``rec_vec``: ``[M u, 0]`` (``M`` the products' ``scale``), so that a user's
    dot product with a product's ``rec_vec`` is ``u · q``.

    Raises:
        ValidationError: Not ``(n, r)``, values that are not finite, or a ``scale`` that is
            not a finite number above 0.
    """
    users = np.asarray(user_factors, dtype=np.float64)
    if users.ndim != 2 or not np.isfinite(users).all():
        raise ValidationError("user_factors must be a finite (n, r) array")
    _check_scale(scale)
    return np.concatenate([users * scale, np.zeros((len(users), 1))], axis=1)


def _check_scale(scale: float) -> None:
    """Refuse a ``scale`` (``M``) that is not a finite number above 0: its vectors would be
    NaN or infinite."""
    if not (isinstance(scale, int | float | np.number) and math.isfinite(scale) and scale > 0):
        raise ValidationError(f"scale must be a finite number > 0, got {scale!r}")


def read_rec_vectors(store: BaseStore, label: str, keys: Sequence[str]) -> np.ndarray | None:
    """The stored ``rec_vec`` of the ``label`` nodes ``keys`` (``User`` or ``Product``), in
    their order, NaN rows for those without one (trained before ``rec_vec``, or new); None when
    the schema has no ``rec_vec`` (:func:`rec_rank`)."""
    if label not in ("User", "Product"):
        raise ValidationError("label must be User or Product")
    if rec_rank(store) is None:
        return None
    return read_vectors(store, label, PROPERTY, keys)
