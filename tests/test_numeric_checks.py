"""Numeric edge cases: unit rows of extreme magnitude, zero vectors supplied to the store,
and scores a full ranking cannot order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import graphfusion.evaluate as evaluate
from graphfusion import Engine
from graphfusion.align import RandomProjection
from graphfusion.errors import ValidationError
from graphfusion.evaluate import full_ranking_metrics
from graphfusion.features.base import l2_normalize

# ------------------------------------------------------------------------ l2_normalize


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", [1e30, 1e-30, 1e-40, 1.0])
def test_unit_rows_of_any_magnitude(dtype: type, scale: float) -> None:
    x = (np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 0.0], [-1.0, 0.0, 0.0]]) * scale).astype(dtype)
    got = l2_normalize(x)
    assert got.dtype == np.float32 and got.shape == x.shape
    want = np.array([[0.6, 0.8, 0.0], [0.0, 0.0, 0.0], [-1.0, 0.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(got, want, atol=1e-5)  # 1e-40: subnormal float32 input


def test_float64_rows_beyond_float32s_range_are_unit_rows() -> None:
    got = l2_normalize(np.array([[1e300, 1e300], [1e-50, 0.0], [1e300, 1.0]]))
    np.testing.assert_allclose(got, [[2**-0.5, 2**-0.5], [1.0, 0.0], [1.0, 0.0]], rtol=1e-6)
    assert np.isfinite(got).all()


def test_ordinary_rows_are_bit_for_bit_a_plain_division() -> None:
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64, np.int64):
        x = (rng.normal(size=(200, 64)) * rng.uniform(1e-3, 1e3, (200, 1)) * 100).astype(dtype)
        as32 = np.asarray(x, dtype=np.float32)
        np.testing.assert_array_equal(
            l2_normalize(x), as32 / np.linalg.norm(as32, axis=1, keepdims=True)
        )
    assert l2_normalize(np.zeros((0, 4))).shape == (0, 4)
    assert l2_normalize(np.zeros((3, 0))).shape == (3, 0)


def test_an_aligner_projects_rows_of_large_values_to_unit_vectors() -> None:
    rng = np.random.default_rng(1)
    x1, x2 = rng.normal(size=(20, 6)), rng.normal(size=(20, 5))
    aligner = RandomProjection(4).fit(x1, x2)
    got = aligner.transform1(x1[:3] * 1e30)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(got, aligner.transform1(x1[:3]), atol=1e-6)


# ------------------------------------------------------------------------ add_vectors


def test_add_vectors_reports_zero_vectors_and_writes_the_others(tmp_path: Path) -> None:
    with Engine(tmp_path / "s") as engine:
        engine.store.upsert_nodes("Product", pd.DataFrame({"id": ["a", "b", "c", "d"]}))
        good = np.ones((4, 384)) / np.sqrt(384)
        assert engine.add_vectors("Product", "text_vec", ["a", "b", "c", "d"], good) == (4, [])
        given = good.copy()
        given[0] = 0.0
        given[1, 5] = np.nan
        given[2] = 0.0
        given[2, 7] = 1e-50  # zero as the 32-bit floats stored
        given[3] *= 2.0
        written, errors = engine.add_vectors("Product", "text_vec", ["a", "b", "c", "d"], given)
        assert written == 1
        assert [(e.key, e.reason) for e in errors] == [
            ("a", "vector is all zeros (it has no direction)"),
            ("b", "vector holds NaN or infinite values"),
            ("c", "vector is all zeros as 32-bit floats (it has no direction)"),
        ]
        stored = engine.cypher("MATCH (p:Product) RETURN p.id AS id, p.text_vec AS v ORDER BY id")
        vectors = np.asarray(stored["v"].tolist())
        np.testing.assert_allclose(vectors[:3], good[:3], atol=1e-6)  # kept, not zeroed
        np.testing.assert_allclose(vectors[3], given[3], atol=1e-6)
        # a zero row of an unknown key is reported once, for being zero
        written, errors = engine.add_vectors("Product", "text_vec", ["zzz"], np.zeros((1, 384)))
        assert written == 0 and [e.key for e in errors] == ["zzz"]
        assert "all zeros" in errors[0].reason
        # the batch's own checks still come first
        with pytest.raises(ValidationError, match="dimension 384"):
            engine.add_vectors("Product", "text_vec", ["a"], np.zeros((1, 10)))
        with pytest.raises(ValidationError, match="repeated"):
            engine.add_vectors("Product", "text_vec", ["a", "a"], np.zeros((2, 384)))
        with pytest.raises(ValidationError, match="shape"):
            engine.add_vectors("Product", "text_vec", ["a", "b"], np.zeros((1, 384)))


# ------------------------------------------------------------------------ full ranking


def _ranking() -> tuple[np.ndarray, list[list[int]], list[list[int]]]:
    rng = np.random.default_rng(2)
    scores = rng.normal(size=(12, 30))
    train = [[u % 30, (u + 1) % 30] for u in range(12)]
    test = [[(u + 2) % 30, (u + 9) % 30] for u in range(12)]
    return scores, train, test


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_full_ranking_refuses_nan_and_positive_infinity(
    bad: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    scores, train, test = _ranking()
    scores[3, 4] = scores[3, 7] = scores[10, 0] = bad
    with pytest.raises(
        ValidationError, match=r"3 NaN or \+inf value\(s\) in 2 user row\(s\) \(3, 10\)"
    ):
        full_ranking_metrics(scores, train, test)
    monkeypatch.setattr(evaluate, "RANKING_CHUNK", 2 * 30)  # blocks of 2 users: counted across
    with pytest.raises(ValidationError, match=r"3 NaN or \+inf value\(s\) in 2 user row\(s\)"):
        full_ranking_metrics(scores.astype(np.float32), train, test)
    scores[:, 0] = np.nan  # a bad score in a training cell is refused too
    with pytest.raises(ValidationError, match=r"in 12 user row\(s\) \(0, 1, 2, 3, 4, \.\.\.\)"):
        full_ranking_metrics(scores, train, test)


def test_full_ranking_takes_negative_infinity_as_a_masked_item() -> None:
    scores, train, test = _ranking()
    masked = scores.copy()
    extra = [[(u + 5) % 30] for u in range(12)]
    for u, items in enumerate(extra):
        masked[u, items] = -np.inf
    want = full_ranking_metrics(scores, [t + e for t, e in zip(train, extra, strict=True)], test)
    assert full_ranking_metrics(masked, train, test) == want
