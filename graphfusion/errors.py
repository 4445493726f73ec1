"""The exceptions graphfusion raises. Every public entry point raises one of these."""

from __future__ import annotations

__all__ = [
    "GraphFusionError",
    "SchemaError",
    "StoreError",
    "StoreLockedError",
    "MappingError",
    "ValidationError",
    "NotFoundError",
    "NotReadyError",
    "QueryError",
    "QueryTimeoutError",
]


class GraphFusionError(Exception):
    """Base class of every error graphfusion raises on purpose."""


class SchemaError(GraphFusionError):
    """The schema file, or a use of it (an unknown label, type or property), is wrong."""


class StoreError(GraphFusionError):
    """The graph store cannot be opened or written (folder, version, connection)."""


class StoreLockedError(StoreError):
    """The embedded store is held by another process."""


class MappingError(GraphFusionError):
    """A loader mapping file is wrong, or a source it names cannot be read."""


class ValidationError(GraphFusionError):
    """An argument of a public function is invalid."""


class NotFoundError(ValidationError):
    """A user, product or other node named in the call is not in the store."""


class NotReadyError(ValidationError):
    """The store lacks what the call needs yet: a trained model, vectors, or a model that
    fits the current graph. The message says which command to run."""


class QueryError(GraphFusionError):
    """A Cypher query failed in the store."""


class QueryTimeoutError(QueryError):
    """A Cypher query ran past the time it was given and was stopped."""
