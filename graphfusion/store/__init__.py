"""Graph stores: one ``GraphStore`` interface, an embedded LadybugDB store and Neo4j."""

from __future__ import annotations

import os
from pathlib import Path

from graphfusion.errors import ValidationError
from graphfusion.schema import Schema
from graphfusion.store.base import BaseStore, Counts, GraphStore, ReadResult
from graphfusion.store.embedded import DEFAULT_STORE_DIR, EmbeddedStore
from graphfusion.store.neo4j import Neo4jStore

__all__ = [
    "GraphStore",
    "BaseStore",
    "Counts",
    "ReadResult",
    "EmbeddedStore",
    "Neo4jStore",
    "open_store",
    "DEFAULT_STORE_DIR",
]


def open_store(
    store: str | os.PathLike[str] | None = None,
    *,
    neo4j: str | None = None,
    schema: Schema | None = None,
    read_only: bool = False,
) -> BaseStore:
    """Open the store named by the arguments or the environment.

    Order: ``neo4j`` (a URI), else ``store`` (a folder), else ``$NEO4J_URI`` or the embedded
    store in ``$GRAPHFUSION_STORE`` (not both), else the embedded store in ``./.graphfusion``.

    Args:
        store: Folder of an embedded store.
        neo4j: URI of a Neo4j server.
        schema: The graph schema (built-in e-commerce schema when None).
        read_only: Open read-only: an embedded store without write access; on Neo4j every
            statement in a read transaction, and no schema created.

    Returns:
        The open store; close it (or use it as a context manager) when done.

    Raises:
        ValidationError: Neither ``store`` nor ``neo4j`` given, and both ``$NEO4J_URI`` and
            ``$GRAPHFUSION_STORE`` set.
    """
    if neo4j:
        return Neo4jStore(neo4j, schema=schema, read_only=read_only)
    both = os.environ.get("GRAPHFUSION_STORE") and os.environ.get("NEO4J_URI")
    if store is None and both:
        raise ValidationError(
            "both GRAPHFUSION_STORE and NEO4J_URI are set: unset one, or pass store= or neo4j="
        )
    if store is None and not os.environ.get("GRAPHFUSION_STORE") and os.environ.get("NEO4J_URI"):
        return Neo4jStore(schema=schema, read_only=read_only)
    return EmbeddedStore(
        Path(store) if store is not None else None, schema=schema, read_only=read_only
    )
