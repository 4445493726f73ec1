"""Figures drawn without pyplot, so that plotting never switches a notebook's backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["new_figure", "save_figure"]


def new_figure(width: float, height: float) -> tuple[Any, Any]:
    """A matplotlib ``Figure`` of ``width`` x ``height`` inches and its one ``Axes``.

    The figure belongs to no pyplot state: draw on it, then :func:`save_figure` it. In a
    notebook, a returned figure shows itself inline.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    return fig, fig.add_subplot()


def save_figure(fig: Any, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` as PNG to ``path`` (parent folders made), trimmed to its content."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi, bbox_inches="tight")
    return out
