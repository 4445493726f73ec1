"""Progress bars: tqdm's, shown unless the caller turns them off or tqdm's own
``TQDM_DISABLE`` environment variable does.

tqdm reads ``TQDM_DISABLE=1`` only where a bar is made without ``disable=``; a bar made with
``disable=False`` (as ``progress=True`` did) showed anyway, in CI logs and batch jobs that
had asked for none. Every long loop of graphfusion makes its bar here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm

__all__ = ["progress_bar", "wanted"]


def wanted(progress: bool) -> bool:
    """Whether to show progress: ``progress`` asked for it and ``TQDM_DISABLE`` (tqdm's
    switch, any value but empty, ``0`` or ``false``) does not turn it off."""
    switch = os.environ.get("TQDM_DISABLE", "").strip().lower()
    return bool(progress) and switch in ("", "0", "false", "no", "off")


def progress_bar(iterable: Iterable[Any] | None = None, *, progress: bool, **options: Any) -> Any:
    """A tqdm bar over ``iterable`` (or one updated by hand, with ``total=``), shown when
    :func:`wanted`.

    Args:
        iterable: What to iterate over; None for a bar updated with ``update``.
        progress: Show it (the caller's ``progress`` argument).
        **options: tqdm's options (``desc``, ``total``, ``unit``, ``leave``, ...).
    """
    return tqdm(iterable, disable=not wanted(progress), **options)
