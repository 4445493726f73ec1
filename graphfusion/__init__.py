"""graphfusion: a graph-based multimodal knowledge fusion engine for e-commerce."""

from __future__ import annotations

from graphfusion.engine import Engine
from graphfusion.errors import (
    GraphFusionError,
    MappingError,
    QueryError,
    SchemaError,
    StoreError,
    StoreLockedError,
    ValidationError,
)

__version__ = "0.1.0"

__all__ = [
    "Engine",
    "GraphFusionError",
    "MappingError",
    "QueryError",
    "SchemaError",
    "StoreError",
    "StoreLockedError",
    "ValidationError",
    "__version__",
]
