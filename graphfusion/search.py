"""Similar products by one modality's vectors, through the store's vector search.

The embedded store scores every product in Cypher with ``array_cosine_similarity`` (exact);
Neo4j uses its vector index (``db.index.vector.queryNodes``, approximate). The same query
shape serves both: only the candidate clause comes from the dialect.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from graphfusion.errors import NotFoundError, NotReadyError, ValidationError
from graphfusion.store.base import BaseStore
from graphfusion.values import count_arg, nfc_key

__all__ = ["Modality", "MODALITIES", "similar", "MAX_K"]

MAX_K = 1_000


@dataclass(frozen=True)
class Modality:
    """Where a product's vector of one modality lives.

    Attributes:
        label: The label holding the vector (``Product`` or ``Image``).
        prop: The vector property.
        hop: The relationship from Product to ``label`` (None when on the product itself).
    """

    label: str
    prop: str
    hop: str | None = None


MODALITIES: dict[str, Modality] = {
    "text": Modality("Product", "text_vec"),
    "image": Modality("Image", "image_vec", "HAS_IMAGE"),
    "behaviour": Modality("Product", "behaviour_vec"),
    "fused": Modality("Product", "fused_vec"),
}


def _check(product_id: object, modality: object, k: object) -> tuple[str, Modality, int]:
    """The product's key as the store holds it (spaces around it dropped and in the composed
    Unicode form, as the loads store keys: :func:`~graphfusion.columnar.key_list`), the
    modality and ``k``."""
    if not isinstance(product_id, str) or not product_id.strip():
        raise ValidationError("product_id must be a non-empty string")
    if not isinstance(modality, str) or modality not in MODALITIES:
        raise ValidationError(f"unknown modality {modality!r}; use one of {', '.join(MODALITIES)}")
    return nfc_key(product_id.strip()), MODALITIES[str(modality)], count_arg("k", k, MAX_K)


def query_vector(store: BaseStore, product_id: str, modality: str) -> np.ndarray:
    """The product's vector of ``modality`` (the mean of its images' vectors for ``image``),
    of norm 1.

    Raises:
        ValidationError: Bad arguments.
        SchemaError: A schema of one's own without what the modality reads (products keyed
            by ``id`` with a ``title``, the vector property).
        NotFoundError: Unknown product.
        NotReadyError: The product has no such vector yet (or no photo, for ``image``), or
            one without a direction (all zeros, as ``embed`` makes the behaviour vector of a
            product at the mean of every behaviour feature; or not finite), which no cosine
            similarity can rank by.
    """
    product_id, mod, _ = _check(product_id, modality, 1)
    store.schema.require(
        f"similar by {modality}",
        ("Product", mod.label),
        (mod.hop,) if mod.hop else (),
        ("Product.id", "Product.title", f"{mod.label}.{mod.prop}"),  # the queries read them
    )
    if not store.existing_keys("Product", [product_id]):
        raise NotFoundError(f"no product {product_id!r}")
    if mod.hop:
        query = (
            f"MATCH (p:Product {{id: $id}})-[:{mod.hop}]->(n:{mod.label}) "
            f"WHERE n.{mod.prop} IS NOT NULL RETURN n.{mod.prop} AS v"
        )
    else:
        query = (
            f"MATCH (n:Product {{id: $id}}) WHERE n.{mod.prop} IS NOT NULL RETURN n.{mod.prop} AS v"
        )
    rows = store.query(query, {"id": product_id})
    if not rows:
        if mod.hop and not store.query(
            f"MATCH (:Product {{id: $id}})-[:{mod.hop}]->(:{mod.label}) RETURN 1 AS found LIMIT 1",
            {"id": product_id},
        ):
            raise NotReadyError(
                f"product {product_id!r} has no photo ({mod.label} by {mod.hop}) to compare "
                f"by {modality}"
            )
        step = "graphfusion train" if modality == "fused" else "graphfusion embed"
        raise NotReadyError(f"product {product_id!r} has no {modality} vector yet; run `{step}`")
    vec = np.mean(np.asarray([r["v"] for r in rows], dtype=np.float64), axis=0)
    norm = np.linalg.norm(vec)
    if not (np.isfinite(norm) and norm > 0):
        raise NotReadyError(
            f"product {product_id!r} has a {modality} vector with no direction (all zeros or "
            f"not finite): no product can be ranked as similar to it by {modality}"
        )
    out: np.ndarray = vec / norm
    return out


def similar(store: BaseStore, product_id: str, modality: str = "text", k: int = 10) -> pd.DataFrame:
    """The ``k`` products most similar to ``product_id`` by one modality.

    Args:
        store: The store.
        product_id: The product's key.
        modality: ``text``, ``image``, ``behaviour`` or ``fused``.
        k: How many (1 to 1,000).

    Returns:
        Columns ``id``, ``title``, ``score`` (cosine similarity, highest first); the product
        itself is left out. For ``image``, a product scores as its closest image.

    Raises:
        ValidationError: Bad arguments.
        NotFoundError: Unknown product.
        NotReadyError: No vector yet, or one with no direction (:func:`query_vector`).
    """
    product_id, mod, k = _check(product_id, modality, k)
    vector = query_vector(store, product_id, modality)
    dim = store.schema.node(mod.label).prop(mod.prop).type.dim or len(vector)
    head = store.dialect.nearest(mod.label, mod.prop, dim)
    if mod.hop:
        tail = (
            f" MATCH (p:Product)-[:{mod.hop}]->(node) WHERE p.id <> $exclude "
            "WITH p, max(score) AS score RETURN p.id AS id, p.title AS title, score "
            "ORDER BY score DESC, id LIMIT $n"
        )
    else:
        tail = (
            " WITH node AS p, score WHERE p.id <> $exclude "
            "RETURN p.id AS id, p.title AS title, score ORDER BY score DESC, id LIMIT $n"
        )
    params = {
        "vector": vector.astype(np.float32).tolist(),
        "exclude": product_id,
        "n": k,
        # Neo4j's index is approximate and counts the product itself and sibling images
        "k": min(4 * (k + 1), 10_000),
    }
    rows = store.query(head + tail, params)
    return pd.DataFrame.from_records(rows, columns=["id", "title", "score"])
