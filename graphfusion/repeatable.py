"""Repeatable training: the same seed gives the same model, bit for bit, with several threads.

Seeding alone does not make a CPU training run repeat itself. A gather such as ``x[index]``
sums its gradient into the rows of ``x`` with ``index_put_(..., accumulate=True)``, and on
more than one thread that sum's order (and so its last bits) changes from run to run once the
index is long (tens of thousands of rows). Training a model compounds those bits: two runs of
the fusion model on MovieLens 100K with the same seed on two threads differed in the first
epoch's loss in the ninth digit and in test Recall@10 in the third. PyTorch's deterministic
algorithms make that sum (and every other op that has one) repeatable, at a small cost (the
README's training section has the timings). The fill of uninitialized memory that PyTorch
adds in that mode (a debugging aid) is left off.

:func:`repeatable` runs a function with them switched on and restores the caller's setting
afterwards; the training entry points (:func:`graphfusion.train.train`,
:func:`graphfusion.models.taste.fit_taste`,
:meth:`graphfusion.align.ContrastiveAligner.fit`) are wrapped with it. An op without a
deterministic form warns (PyTorch's ``warn_only``) instead of failing. One and two threads
gave the same history here; another machine or PyTorch build may differ in the last bits.
The setting is PyTorch's, for the whole process: while a training runs, other threads' torch
code runs deterministically too. Trainings that overlap (on several threads, or one inside
another) share it: the first to start saves the caller's setting and switches it on, the last
to finish restores it, so none runs a part of its work without it and none leaves it on.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import torch

__all__ = ["repeatable"]

P = ParamSpec("P")
R = TypeVar("R")

_lock = threading.Lock()
#: How many calls of repeatable functions are running now, and the settings the first found.
_running = 0
_found: tuple[bool, bool, bool] = (False, False, True)


def _enter() -> None:
    global _running, _found
    with _lock:
        if _running == 0:
            _found = (
                torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled(),
                torch.utils.deterministic.fill_uninitialized_memory,  # type: ignore[attr-defined]
            )
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]
        _running += 1


def _leave() -> None:
    global _running
    with _lock:
        _running -= 1
        if _running == 0:
            enabled, warn_only, fill = _found
            torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
            torch.utils.deterministic.fill_uninitialized_memory = fill  # type: ignore[attr-defined]


def repeatable(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorate ``fn`` to run with PyTorch's deterministic algorithms (warn only, without the
    fill of uninitialized memory), restoring the settings it found when it returns or raises
    (when the last of several overlapping calls does, on any thread).

    Args:
        fn: The function, typically one that trains a model.

    Returns:
        The wrapped function.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        _enter()
        try:
            return fn(*args, **kwargs)
        finally:
            _leave()

    return wrapper
