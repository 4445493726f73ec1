"""Modality features: text, image and behaviour vectors on the nodes.

``TextEncoder`` and ``ImageEncoder`` import their deep-learning libraries only when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from graphfusion.features.base import EncodeResult
from graphfusion.features.embed import EmbedError, EmbedReport, embed, write_vectors

if TYPE_CHECKING:
    from graphfusion.features.image import ImageEncoder
    from graphfusion.features.text import TextEncoder

__all__ = [
    "EncodeResult",
    "EmbedError",
    "EmbedReport",
    "ImageEncoder",
    "TextEncoder",
    "embed",
    "write_vectors",
]


def __getattr__(name: str) -> Any:
    if name == "TextEncoder":
        from graphfusion.features.text import TextEncoder

        return TextEncoder
    if name == "ImageEncoder":
        from graphfusion.features.image import ImageEncoder

        return ImageEncoder
    raise AttributeError(f"module 'graphfusion.features' has no attribute {name!r}")
