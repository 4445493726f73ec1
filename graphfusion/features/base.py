"""What every modality encoder shares: the result of encoding a batch with per-item errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from graphfusion.errors import ValidationError

if TYPE_CHECKING:
    import torch

__all__ = ["EncodeResult", "l2_normalize", "resolve_device"]


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
    """Rows scaled to unit length (zero rows stay zero), as float32.

    Each row is first scaled by the power of two that brings its largest magnitude into
    [0.5, 1), in the input's precision (float64 input stays float64 until then, anything else
    is taken as float32). The scaling is exact, so ordinary rows come out bit for bit as a
    plain ``x / norm`` would give them, while rows of very large or very small values (1e30,
    1e-30, or float64 values beyond float32's range) become unit vectors instead of
    overflowing or underflowing to zero vectors.

    Args:
        x: ``(n, dim)`` numbers.

    Returns:
        ``(n, dim)`` float32 rows of length 1, or 0 for the zero rows.
    """
    x = np.asarray(x)
    x = np.asarray(x, dtype=np.float64 if x.dtype == np.float64 else np.float32)
    _, exponent = np.frexp(np.max(np.abs(x), axis=1, keepdims=True, initial=0.0))
    scaled = np.asarray(np.ldexp(x, -exponent), dtype=np.float32)
    norms = np.linalg.norm(scaled, axis=1, keepdims=True)
    return np.divide(scaled, norms, out=np.zeros_like(scaled), where=norms > 0)


def resolve_device(device: Any, error: type[ValidationError] = ValidationError) -> torch.device:
    """The torch device an encoder runs on: ``cpu``, ``cuda`` (when CUDA is available) or
    ``auto`` (``cuda`` where available, else ``cpu``).

    Raises:
        ValidationError: Another device, or ``cuda`` without CUDA (as ``error``, a subclass).
    """
    import torch  # the encoders have imported it by then; this module stays light

    if isinstance(device, str) and device.strip().lower() == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise error(f"device must be cpu, cuda or auto, not {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise error("device 'cuda' was asked for but CUDA is not available")
    if dev.type not in ("cpu", "cuda"):
        raise error(f"device must be cpu, cuda or auto, not {device!r}")
    return dev
