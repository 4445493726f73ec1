"""What every modality encoder shares: the result of encoding a batch with per-item errors."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["EncodeResult", "l2_normalize"]


@dataclass(frozen=True)
class EncodeResult:
    """Vectors for the items that could be encoded, and the reasons for the others.

    Attributes:
        vectors: ``(len(ok), dim)`` float32 array, row ``i`` for input ``ok[i]``.
        ok: Indices (into the input) of the encoded items, ascending.
        errors: Input index -> reason, for the items that could not be encoded.
    """

    vectors: np.ndarray
    ok: list[int]
    errors: dict[int, str] = field(default_factory=dict)


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
