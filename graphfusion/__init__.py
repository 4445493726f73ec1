"""graphfusion: a graph-based multimodal knowledge fusion engine for e-commerce."""

from __future__ import annotations

import warnings

# PyTorch Geometric 2.8 calls torch.jit.script on import, which torch 2.14 deprecates: a
# warning on every run that no user can act on.
warnings.filterwarnings(
    "ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning
)

from graphfusion.engine import Engine  # noqa: E402
from graphfusion.errors import (  # noqa: E402
    GraphFusionError,
    MappingError,
    NotFoundError,
    NotReadyError,
    QueryError,
    QueryTimeoutError,
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
    "NotFoundError",
    "NotReadyError",
    "QueryError",
    "QueryTimeoutError",
    "SchemaError",
    "StoreError",
    "StoreLockedError",
    "ValidationError",
    "__version__",
]
