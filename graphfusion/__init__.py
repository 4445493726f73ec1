"""graphfusion: a graph-based multimodal knowledge fusion engine for e-commerce.

``graphfusion.Engine`` is imported on first use (PEP 562): it brings torch and PyTorch
Geometric, which take seconds to import, and the modules that need neither (the store, the
loaders, the command line's ``generate``, ``load``, ``stats``, ``cypher``) start without them.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import TYPE_CHECKING, Any


def _ignore_jit_warning() -> None:
    """PyTorch Geometric 2.8 calls torch.jit.script on import, which torch 2.14 deprecates: a
    warning on every run that no user can act on."""
    warnings.filterwarnings(
        "ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning
    )


class _BeforePyG(MetaPathFinder):
    """Applies the filter again when PyTorch Geometric is first imported, whenever that is:
    the exit of a ``warnings.catch_warnings()`` block drops the filters added inside it (the
    one above, when graphfusion was imported there: pytest collects in such a block). It
    finds nothing itself; once PyG is imported, the import system asks it no more about PyG
    (it stays in ``sys.meta_path``: leaving it while the import system walks the list would
    make that skip the next finder)."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if fullname == "torch_geometric":
            _ignore_jit_warning()
        return None


_ignore_jit_warning()
if "torch_geometric" not in sys.modules:
    sys.meta_path.insert(0, _BeforePyG())

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

if TYPE_CHECKING:
    from graphfusion.engine import Engine

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


def __getattr__(name: str) -> Any:
    """``Engine``, imported on first use (after the warnings filter above)."""
    if name == "Engine":
        from graphfusion.engine import Engine

        globals()["Engine"] = Engine  # later lookups find it without this hook
        return Engine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
