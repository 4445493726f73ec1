"""Recommendations in pure Cypher, from the vectors that training writes back.

After ``graphfusion train`` every ``User`` and ``Product`` holds a ``rec_vec``: factors of the
trained model's whole score matrix, the served blend included, made so that their cosine
similarity ranks a user's products about as the served model does (see
:mod:`graphfusion.rec_vectors`; the cosine of the ``fused_vec`` themselves ranks far worse).
The query of :func:`recommend_query` ranks, for one user, the products nearest to the user's
``rec_vec``, leaving out the products the user already interacted with. It takes only the
parameters ``$user_id`` and ``$k`` and returns rows ``id``, ``title``, ``score`` (cosine
similarity, highest first), so it can be pasted into any Cypher shell.
Give it the store (``recommend_query(engine.store)``) for the casts of a schema whose
``rec_vec`` has another size than the built-in one.

- LadybugDB (embedded) scores every product: exact. Its ``array_cosine_similarity`` refuses
  plain lists, so both vectors are cast to ``FLOAT[dim]``; the user's products are collected
  first (a ``NOT EXISTS`` per product is far slower there).
- Neo4j 5 asks the ``product_rec_vec`` vector index (approximate) for ``$k`` plus as many
  candidates as the user has interactions, so that ``$k`` unseen ones remain after filtering,
  and maps the index's ``[0, 1]`` score back to cosine similarity.
"""

from __future__ import annotations

from typing import Any

from graphfusion.errors import SchemaError, ValidationError
from graphfusion.rec_vectors import PROPERTY
from graphfusion.schema import load_schema
from graphfusion.store.base import BaseStore
from graphfusion.store.dialect import LADYBUG, index_name
from graphfusion.values import count_arg

__all__ = ["SEEN", "rec_dim", "recommend", "recommend_query"]

#: The interactions that mark a product as seen (``graphfusion.train.INTERACTIONS``).
SEEN = ("VIEWED", "PURCHASED", "FAVORITED", "RATED")


def recommend_query(dialect_name: str | BaseStore, *, dim: int | None = None) -> str:
    """The Cypher that recommends ``$k`` unseen products to user ``$user_id``.

    Args:
        dialect_name: ``ladybug`` (embedded, exact) or ``neo4j`` (vector index), or a store:
            its dialect and its schema's ``rec_vec`` dimension (LadybugDB's casts must name
            the stored size; a schema of one's own may give another than the built-in 66).
        dim: Dimension of ``rec_vec`` (LadybugDB's casts); the store's schema's, else the
            built-in schema's, when None.

    Returns:
        The query; it yields ``id``, ``title``, ``score`` (cosine, highest first), and no row
        for an unknown user or one without ``rec_vec``.

    Raises:
        ValidationError: Unknown dialect, or ``dim`` not an integer in 1..4096.
        SchemaError: A store whose schema gives users or products no ``rec_vec``.
    """
    if isinstance(dialect_name, BaseStore):
        store = dialect_name
        dim = rec_dim(store) if dim is None else dim
        dialect_name = store.dialect.name
    elif not isinstance(dialect_name, str):
        raise ValidationError(
            f"dialect must be a dialect name or a store, got {type(dialect_name).__name__}"
        )
    unseen = f"NOT EXISTS {{ MATCH (u)-[:{'|'.join(SEEN)}]->(p) }}"
    user = f"MATCH (u:User {{id: $user_id}}) WHERE u.{PROPERTY} IS NOT NULL"
    tail = "RETURN p.id AS id, p.title AS title, score\nORDER BY score DESC, id LIMIT $k"
    if dim is not None:
        dim = count_arg("dim", dim, 4096)  # pasted into the casts below
    if dialect_name == "ladybug":
        dim = dim or load_schema().node("Product").prop(PROPERTY).type.dim
        score = LADYBUG.cosine_similarity(f"p.{PROPERTY}", f"u.{PROPERTY}", dim or 0)
        # The user's products are collected once: a NOT EXISTS subquery per product took
        # about 5 s a user on the bench shop here, the list 15 ms.
        return (
            f"{user}\nOPTIONAL MATCH (u)-[:{'|'.join(SEEN)}]->(s:Product)\n"
            f"WITH u, collect(s.id) AS seen\n"
            f"MATCH (p:Product) WHERE p.{PROPERTY} IS NOT NULL AND NOT p.id IN seen\n"
            f"WITH p, {score} AS score\n{tail}"
        )
    if dialect_name == "neo4j":
        return (
            f"{user}\nWITH u, COUNT {{ (u)-[:{'|'.join(SEEN)}]->(:Product) }} AS seen\n"
            f"CALL db.index.vector.queryNodes('{index_name('Product', PROPERTY)}', "
            f"$k + seen, u.{PROPERTY})\n"
            f"YIELD node AS p, score\nWHERE {unseen}\n"
            f"WITH p, 2 * score - 1 AS score\n{tail}"
        )
    raise ValidationError(f"unknown dialect {dialect_name!r}; use ladybug or neo4j")


def recommend(store: BaseStore, user_id: str, k: int = 10) -> list[dict[str, Any]]:
    """Run :func:`recommend_query` in ``store``'s dialect, with parameters only.

    Args:
        store: The store, trained (users and products have ``rec_vec``).
        user_id: The user's key.
        k: How many products (1 to 1,000).

    Returns:
        Rows ``id``, ``title``, ``score``, highest score first.

    Raises:
        ValidationError: Bad arguments.
        SchemaError: The store's schema gives users or products no ``rec_vec``.
    """
    if not isinstance(user_id, str) or not user_id.strip():
        raise ValidationError("user_id must be a non-empty string")
    k = count_arg("k", k, 1_000)
    return store.query(recommend_query(store), {"user_id": user_id, "k": k})


def rec_dim(store: BaseStore) -> int:
    """The dimension of the ``rec_vec`` of ``store``'s users and products.

    Raises:
        SchemaError: The schema gives users or products no ``rec_vec``, or two sizes.
    """
    dims: dict[str, int | None] = {}
    for label in ("User", "Product"):
        node = store.schema.nodes.get(label)
        if node is None or not node.has_property(PROPERTY):
            raise SchemaError(
                f"the Cypher recipe ranks by {label}.{PROPERTY}, which the schema "
                f"{store.schema.name!r} does not have: add it (a vector, as in the built-in "
                "schema) and train again"
            )
        dims[label] = node.prop(PROPERTY).type.dim
    if len(set(dims.values())) != 1 or not dims["User"]:
        raise SchemaError(
            f"User.{PROPERTY} and Product.{PROPERTY} must be vectors of one size for the "
            f"Cypher recipe, got {dims['User']} and {dims['Product']} in the schema "
            f"{store.schema.name!r}"
        )
    return int(dims["User"])
