"""The best rows of a score vector, with a fixed order for equal scores.

``argpartition`` finds the ``k`` best scores fast but splits equal scores arbitrarily, so two
runs or two stores could list tied items in different orders. :func:`top_rows` keeps its speed
and makes the order of ties part of the answer: every row that ties with the ``k``-th best score
competes for the last places by ``order``.
"""

from __future__ import annotations

import numpy as np


def top_rows(scores: np.ndarray, k: int, order: np.ndarray | None = None) -> np.ndarray:
    """The rows of the ``k`` highest scores, best first.

    Args:
        scores: One finite score per row.
        k: How many rows to return; fewer when ``scores`` has fewer rows, none when ``k`` < 1.
        order: A rank per row that orders equal scores (lower first); row order when None.

    Returns:
        The row indices (int64), best score first; equal scores by ``order``.
    """
    k = min(int(k), len(scores))
    if k < 1:
        return np.zeros(0, dtype=np.int64)
    kth = scores[np.argpartition(-scores, k - 1)[k - 1]]  # the k-th best score
    rows = np.flatnonzero(scores >= kth)
    ties = rows if order is None else order[rows]
    return rows[np.lexsort((ties, -scores[rows]))][:k]
