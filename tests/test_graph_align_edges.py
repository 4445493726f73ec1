"""Edges of the PyG export and the aligners: vectors written past the store's checks, row
lookups by tensor, failed fits, and values and ridges at the ends of the float64 range."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from graphfusion.align import CCA, MAX_REG, ContrastiveAligner, RandomProjection
from graphfusion.errors import ValidationError
from graphfusion.graph import to_heterodata
from graphfusion.store import EmbeddedStore


def _planted(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two modalities sharing a 3-dimensional latent factor, plus noise."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 3))
    x1 = z @ rng.normal(size=(3, 12)) + 0.1 * rng.normal(size=(n, 12))
    x2 = z @ rng.normal(size=(3, 9)) + 0.1 * rng.normal(size=(n, 9))
    return x1, x2


# --- export -------------------------------------------------------------------------------


def test_vectors_written_past_the_store_checks_export_as_missing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A Cypher ``SET`` skips the checks of ``upsert_nodes``: a vector of the wrong length, or
    one holding NaN or an infinity, is stored. The export read the last two as vectors (mask
    True, NaN in the features); all three are now missing (zeros, mask False), and said so."""
    with EmbeddedStore(tmp_path / "s") as store:
        store.upsert_nodes("Product", pd.DataFrame({"id": ["a", "b", "c", "d", "e"]}))
        good = np.linspace(-1, 1, 384)
        set_vec = "MATCH (p:Product {id: $k}) SET p.text_vec = $v"
        store.query(set_vec, {"k": "a", "v": good.tolist()})
        store.query(set_vec, {"k": "b", "v": [1.0, 2.0]})  # too short
        store.query("MATCH (p:Product {id: 'c'}) SET p.text_vec = [0.0 / 0.0] + $v",
                    {"v": good[1:].tolist()})  # fmt: skip
        store.query(
            "MATCH (p:Product {id: 'd'}) SET p.text_vec = [1e300] + $v", {"v": good[1:].tolist()}
        )  # fmt: skip  (inf as a 32-bit float)
        with caplog.at_level(logging.WARNING, logger="graphfusion.graph"):
            product = to_heterodata(store).data["Product"]
        assert product.text_vec_mask.tolist() == [True, False, False, False, False]
        assert torch.isfinite(product.text_vec).all()
        assert not product.text_vec[1:].any()
        np.testing.assert_allclose(product.text_vec[0].numpy(), good, atol=1e-6)
        assert "Product.text_vec: 3 stored vectors" in caplog.text
        assert "'b'" in caplog.text  # the first of them is named


def test_a_clean_export_warns_of_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with EmbeddedStore(tmp_path / "s") as store:
        store.upsert_nodes(
            "Product", pd.DataFrame({"id": ["a", "b"], "text_vec": [[0.5] * 384, None]})
        )
        with caplog.at_level(logging.WARNING, logger="graphfusion.graph"):
            export = to_heterodata(store)
        assert export.data["Product"].text_vec_mask.tolist() == [True, False]
        assert not caplog.records


def test_key_takes_a_row_from_an_edge_index(tmp_path: Path) -> None:
    """``edge_index`` holds the rows: one of its elements (a 0-d integer tensor) is a row;
    the message for a refused one no longer says it is out of range when it is not."""
    with EmbeddedStore(tmp_path / "s") as store:
        store.upsert_nodes("User", pd.DataFrame({"id": ["u1", "u2"]}))
        store.upsert_nodes("Product", pd.DataFrame({"id": ["p1"]}))
        store.upsert_relationships(
            "VIEWED", pd.DataFrame({"src": ["u2"], "dst": ["p1"]}), start="User", end="Product"
        )
        export = to_heterodata(store, labels=["User", "Product", "Brand"])
        src, dst = export.data["User", "VIEWED", "Product"].edge_index[:, 0]
        assert (export.key("User", src), export.key("Product", dst)) == ("u2", "p1")
        assert export.key("User", np.array(1)) == "u2"
        with pytest.raises(ValidationError, match=r"rows 0\.\.1, got 2"):
            export.key("User", torch.tensor(2))
        for bad in (torch.tensor(1.0), torch.tensor([1]), 1.0, True, "1"):
            with pytest.raises(ValidationError, match="row must be an integer"):
                export.key("User", bad)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="Brand has no rows"):
            export.key("Brand", 0)


def test_rows_refuses_keys_that_are_not_a_list_of_keys(tmp_path: Path) -> None:
    """Bytes read as a list of numbers (``no User 97``), None and a list inside the list
    raised TypeError."""
    with EmbeddedStore(tmp_path / "s") as store:
        store.upsert_nodes("User", pd.DataFrame({"id": ["u1", "u2"]}))
        export = to_heterodata(store)
        assert export.rows("User", ("u2", "u1")).tolist() == [1, 0]
        assert export.rows("User", np.array(["u2"])).tolist() == [1]
        for bad in (b"u1", None, 5):
            with pytest.raises(ValidationError, match="keys must be a list of keys"):
                export.rows("User", bad)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match=r"no User \['u1'\]"):
            export.rows("User", [["u1"]])  # type: ignore[list-item]


# --- alignment ----------------------------------------------------------------------------


def test_a_failed_contrastive_fit_leaves_the_aligner_as_it_was() -> None:
    """A fit that stops on a loss that is not finite left its half-made heads behind: a fresh
    aligner then projected through random heads as if fitted, a fitted one lost its fit."""
    x1, x2 = _planted(40, seed=1)
    fresh = ContrastiveAligner(2, epochs=1, temperature=1e-40)
    with pytest.raises(ValidationError, match="not finite"):
        fresh.fit(x1, x2)
    with pytest.raises(ValidationError, match="fit first"):
        fresh.transform1(x1[:3])
    assert fresh.losses == []
    fitted = ContrastiveAligner(2, epochs=2).fit(x1, x2)
    before, losses = fitted.transform1(x1[:3]), list(fitted.losses)
    fitted.temperature = 1e-40
    with pytest.raises(ValidationError, match="not finite"):
        fitted.fit(x1, x2)
    np.testing.assert_array_equal(fitted.transform1(x1[:3]), before)
    assert fitted.losses == losses


def test_cca_fits_values_whose_sum_overflows() -> None:
    """300 values of 1e306 sum beyond float64: the mean was infinite and the fit raised
    numpy's LinAlgError (SVD did not converge)."""
    x1, x2 = _planted(300, seed=2)
    x1 = x1 + 10.0  # every value positive: the column sums add up
    want = CCA(3).fit(x1, x2)
    scale = 2.0**1017  # about 1.4e306, exact
    got = CCA(3).fit(x1 * scale, x2)
    assert want.correlations is not None and got.correlations is not None
    np.testing.assert_allclose(got.correlations, want.correlations, rtol=1e-9)
    np.testing.assert_array_equal(got.transform1(x1[:5] * scale), want.transform1(x1[:5]))


def test_random_projection_of_huge_rows_is_their_direction() -> None:
    """Rows of 1e307 overflowed in the projection and the transform gave NaN rows without a
    word; the outputs are directions, so a row's scale does not matter."""
    x1, x2 = _planted(60, seed=3)
    rp = RandomProjection(3).fit(x1, x2)
    scale = 2.0**1020  # about 1.1e307, exact: each value finite, their sums not
    for transform, x in ((rp.transform1, x1[:5]), (rp.transform2, x2[:5])):
        np.testing.assert_array_equal(transform(x * scale), transform(x))


def test_cca_transform_of_huge_rows_is_their_direction() -> None:
    """The same for CCA: rows whose canonical variates overflow (each value finite, their sum
    beyond float64) gave NaN rows."""
    x1, x2 = _planted(60, seed=3)
    cca = CCA(3).fit(x1 * 2.0**-10, x2)  # weights of about 100
    w = cca._w1
    assert w is not None
    # two rows that add up in the first variate: signs of its weights, at 1.5e308
    big = np.sign(w[:, 0])[None, :] * np.array([[1.5e308], [-1.5e308]])
    with np.errstate(over="ignore", invalid="ignore"):
        assert not np.isfinite(big @ w).all()  # the plain projection overflows
    got = cca.transform1(big)
    # beside values of 1e308 the mean is nothing: the directions of the rows themselves
    want = cca.transform1(big * 2.0**-1000 + cca._m1)  # type: ignore[operator]
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert got[0, 0] > 0.5 and got[1, 0] < -0.5


def test_transforms_of_ordinary_rows_are_unchanged() -> None:
    """The projections above scale each row by a power of two: exact, so ordinary rows give
    the same bits as a plain projection."""
    from graphfusion.features.base import l2_normalize

    x1, x2 = _planted(60, seed=4)
    rp = RandomProjection(3).fit(x1, x2)
    assert rp.p1 is not None
    np.testing.assert_array_equal(rp.transform1(x1), l2_normalize(x1 @ rp.p1))
    cca = CCA(3).fit(x1, x2)
    np.testing.assert_array_equal(
        cca.transform2(x2),
        l2_normalize((x2 - cca._m2) @ cca._w2),  # type: ignore[operator]
    )


def test_cca_ridge_has_a_ceiling() -> None:
    """A ridge of 1e307 overflowed the covariances and raised numpy's LinAlgError; far below
    that the correlations underflow (1e-305) and say nothing. ``reg`` stops at MAX_REG."""
    x1, x2 = _planted(50, seed=5)
    with pytest.raises(ValidationError, match="reg"):
        CCA(2, reg=MAX_REG * 10)
    with pytest.raises(ValidationError, match="reg"):
        CCA(2, reg=1e307)
    top = CCA(2, reg=MAX_REG).fit(x1, x2)
    assert top.correlations is not None and (top.correlations > 0).all()
    assert np.isfinite(top.transform1(x1[:3])).all()


def test_cca_correlations_stay_within_one() -> None:
    """Fewer pairs than columns and no ridge: every canonical correlation is 1, and rounding
    gave 1.00000004."""
    x1, x2 = _planted(8, seed=6)
    cca = CCA(4, reg=0.0).fit(x1, x2)
    assert cca.correlations is not None
    assert (cca.correlations <= 1.0).all() and (cca.correlations > 0.999).all()
