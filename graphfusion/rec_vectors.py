"""Vectors whose cosine similarity ranks products as a model's own scores do.

A trained model scores a product for a user as ``u · i + b``: the user's and the product's
fused vectors and the product's bias (the popularity the fusion model learned; 0 for LightGCN
and MF). A cosine vector index (Neo4j's, or LadybugDB's ``array_cosine_similarity``) drops the
vectors' norms, and with them much of what the model learned: on the synthetic bench shop the
cosine of the fused vectors ranked far below the model's own scores (README, "Recommend in
pure Cypher"). Inner-product search reduces to cosine search by appending coordinates
(Bachrach et al., 2014, "Speeding up the Xbox recommender system using a Euclidean
transformation for inner-product spaces"): a product gets ``[i, b, sqrt(M² - |i|² - b²)] / M``,
``M`` the largest ``|[i, b]|``, so every product's vector has norm 1; a user gets ``[u, 1, 0]``,
normalized. Their cosine is ``(u · i + b) / (M |[u, 1]|)``: for one user, the model's score
times a positive constant, so the products come in the model's order.

Training writes these as ``rec_vec`` beside ``fused_vec`` (which stays the embedding, for
similarity between products), and :mod:`graphfusion.cypher_recipes` ranks by them.

Example:
    >>> import numpy as np
    >>> items, bias = np.array([[1.0, 0.0], [3.0, 0.0]]), np.array([0.5, 0.0])
    >>> users = user_rec_vectors(np.array([[1.0, 0.0]]))
    >>> products, scale = product_rec_vectors(items, bias)
    >>> (users @ products.T).argsort()[0].tolist()  # u·i + b: 1.5 and 3.0
    [0, 1]
"""

from __future__ import annotations

import numpy as np

from graphfusion.errors import ValidationError
from graphfusion.store.base import BaseStore

__all__ = ["EXTRA", "PROPERTY", "product_rec_vectors", "user_rec_vectors", "rec_vec_fits"]

#: The vector property of users and products that holds them.
PROPERTY = "rec_vec"

#: Coordinates ``rec_vec`` has beyond the fused vectors.
EXTRA = 2


def product_rec_vectors(
    item_vecs: np.ndarray, bias: np.ndarray | None = None, scale: float | None = None
) -> tuple[np.ndarray, float]:
    """The products' ``rec_vec``: ``[i, b, sqrt(M² - |[i, b]|²)] / M``, each of norm 1.

    Args:
        item_vecs: ``(n, d)`` fused product vectors.
        bias: ``(n,)`` product biases; zeros when None.
        scale: ``M``, when the vectors are added to others made with it (it must be at least
            the largest ``|[i, b]|`` here); the largest of these when None.

    Returns:
        ``(n, d + 2)`` vectors and the ``M`` they were made with.

    Raises:
        ValidationError: Shapes that do not fit, values that are not finite, or a ``scale``
            below a product's norm.
    """
    items = np.asarray(item_vecs, dtype=np.float64)
    if items.ndim != 2:
        raise ValidationError("item_vecs must be (n, d)")
    b = np.zeros(len(items)) if bias is None else np.asarray(bias, dtype=np.float64)
    if b.shape != (len(items),):
        raise ValidationError("bias must hold one number per product")
    lifted = np.concatenate([items, b[:, None]], axis=1)
    if not np.isfinite(lifted).all():
        raise ValidationError("product vectors and biases must be finite")
    norms = np.linalg.norm(lifted, axis=1)
    top = float(norms.max()) if len(norms) else 0.0
    if scale is None:
        scale = top if top > 0 else 1.0
    elif not scale >= top:
        raise ValidationError(f"scale {scale} is below the largest product norm {top}")
    fill = np.sqrt(np.maximum(scale**2 - norms**2, 0.0))
    return np.concatenate([lifted, fill[:, None]], axis=1) / scale, float(scale)


def user_rec_vectors(user_vecs: np.ndarray) -> np.ndarray:
    """The users' ``rec_vec``: ``[u, 1, 0]``, normalized.

    Raises:
        ValidationError: Not ``(n, d)``, or values that are not finite.
    """
    users = np.asarray(user_vecs, dtype=np.float64)
    if users.ndim != 2 or not np.isfinite(users).all():
        raise ValidationError("user_vecs must be a finite (n, d) array")
    lifted = np.concatenate([users, np.ones((len(users), 1)), np.zeros((len(users), 1))], axis=1)
    return lifted / np.linalg.norm(lifted, axis=1, keepdims=True)


def rec_vec_fits(store: BaseStore, dim: int) -> bool:
    """Whether the store's users and products have a ``rec_vec`` for fused vectors of ``dim``
    (``dim + EXTRA`` coordinates); a schema without one gets none written."""
    for label in ("User", "Product"):
        node = store.schema.nodes.get(label)
        if node is None or not node.has_property(PROPERTY):
            return False
        if node.prop(PROPERTY).type.dim != dim + EXTRA:
            return False
    return True
