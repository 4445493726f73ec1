"""top_rows: the k best rows with a fixed order for ties (used by QA and recommendation)."""

import numpy as np
import pytest

from graphfusion.topk import top_rows


def test_best_first_and_ties_in_row_order() -> None:
    scores = np.array([1.0, 3.0, 3.0, 2.0, 3.0])
    assert top_rows(scores, 2).tolist() == [1, 2]
    assert top_rows(scores, 4).tolist() == [1, 2, 4, 3]


def test_ties_by_the_given_order() -> None:
    scores = np.array([1.0, 3.0, 3.0, 2.0, 3.0])
    order = np.array([0, 5, 4, 0, 1])
    assert top_rows(scores, 2, order).tolist() == [4, 2]


@pytest.mark.parametrize(("k", "expected"), [(0, []), (-3, []), (9, [2, 0, 1])])
def test_k_outside_the_rows(k: int, expected: list[int]) -> None:
    assert top_rows(np.array([2.0, 1.0, 5.0]), k).tolist() == expected


def test_no_rows() -> None:
    out = top_rows(np.zeros(0), 5)
    assert out.dtype == np.int64 and len(out) == 0


def test_matches_a_stable_sort_of_the_whole() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 6, size=500).astype(float)  # many ties
    for k in (1, 7, 50, 499):
        assert top_rows(scores, k).tolist() == np.argsort(-scores, kind="stable")[:k].tolist()
