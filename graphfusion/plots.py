"""Figures drawn without pyplot, so that plotting never switches a notebook's backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graphfusion.errors import ValidationError

__all__ = ["new_figure", "plot_text", "save_figure"]


def new_figure(width: float, height: float) -> tuple[Any, Any]:
    """A matplotlib ``Figure`` of ``width`` x ``height`` inches and its one ``Axes``.

    The figure belongs to no pyplot state: draw on it, then :func:`save_figure` it. In a
    notebook, a returned figure shows itself inline.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    return fig, fig.add_subplot()


def plot_text(value: Any) -> str:
    """``value`` as text matplotlib draws as written: ``$`` escaped, so that a key or name such
    as ``lot$x^$`` is not parsed as math (which fails on it)."""
    return str(value).replace("$", r"\$")


def save_figure(fig: Any, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` to ``path`` (parent folders made), trimmed to its content.

    The format is the one the suffix names (``.png``, ``.svg``, ``.pdf``, ...); a path without
    a suffix is written as PNG with ``.png`` appended (``"plots"`` -> ``plots.png``).

    Returns:
        The path of the written file.

    Raises:
        ValidationError: The suffix names no image format matplotlib can write.
    """
    out = Path(path)
    suffix = out.suffix[1:].lower()
    if not suffix:
        out, suffix = out.with_name(out.name.rstrip(".") + ".png"), "png"
    formats = fig.canvas.get_supported_filetypes()
    if suffix not in formats:
        raise ValidationError(
            f"cannot write a figure as {out.suffix!r}; use one of "
            f"{', '.join('.' + f for f in sorted(formats))} (e.g. {out.stem}.png)"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format=suffix, dpi=dpi, bbox_inches="tight")
    return out
