"""Cross-modal alignment: CCA recovers a planted linear relation; contrastive learns it too."""

from __future__ import annotations

import numpy as np
import pytest

from graphfusion.align import CCA, ContrastiveAligner, RandomProjection, cross_modal_retrieval
from graphfusion.errors import ValidationError


def _planted(n: int = 600, latent: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two modalities that share a latent factor through different linear maps, plus noise."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, latent))
    x1 = z @ rng.normal(size=(latent, 30)) + 0.1 * rng.normal(size=(n, 30))
    x2 = z @ rng.normal(size=(latent, 50)) + 0.1 * rng.normal(size=(n, 50))
    return x1, x2


def test_cca_recovers_the_planted_relation() -> None:
    x1, x2 = _planted()
    cca = CCA(dim=4).fit(x1[:500], x2[:500])
    assert cca.correlations is not None
    assert cca.correlations.min() > 0.95  # the four shared directions
    beyond = CCA(dim=8).fit(x1[:500], x2[:500]).correlations
    assert beyond is not None and beyond[4:].max() < 0.5  # nothing else is shared
    got = cross_modal_retrieval(cca.transform1(x1[500:]), cca.transform2(x2[500:]))
    chance = cross_modal_retrieval(
        *(lambda r: (r.transform1(x1[500:]), r.transform2(x2[500:])))(
            RandomProjection(4).fit(x1[:500], x2[:500])
        )
    )
    assert got["recall@5"] > 0.8
    assert got["median_rank"] <= 2
    assert chance["recall@5"] < 0.3


def test_cca_variates_are_whitened_and_correlated() -> None:
    x1, x2 = _planted(seed=1)
    cca = CCA(dim=4, reg=0.0).fit(x1, x2)
    v1 = (x1 - x1.mean(0)) @ cca._w1  # type: ignore[operator]
    v2 = (x2 - x2.mean(0)) @ cca._w2  # type: ignore[operator]
    np.testing.assert_allclose(np.cov(v1.T), np.eye(4), atol=1e-6)
    np.testing.assert_allclose(
        np.diag(np.corrcoef(v1.T, v2.T)[:4, 4:]), cca.correlations, atol=1e-6
    )


def test_contrastive_learns_the_pairs() -> None:
    x1, x2 = _planted(seed=2)
    aligner = ContrastiveAligner(dim=8, epochs=40, batch_size=100, lr=0.01, temperature=0.1)
    aligner.fit(x1[:500], x2[:500])
    assert aligner.losses[-1] < aligner.losses[0]
    got = cross_modal_retrieval(aligner.transform1(x1[500:]), aligner.transform2(x2[500:]))
    assert got["recall@10"] > 0.5  # chance is 0.1


def test_retrieval_metric_by_hand() -> None:
    q = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    t = np.array([[1.0, 0.1], [1.0, 0.0], [1.0, 1.0]])
    got = cross_modal_retrieval(q, t, ks=(1, 2))
    # query 0: its partner [1, .1] is beaten by [1, 0] -> rank 2; query 1: its partner [1, 0]
    # is beaten by [1, .1] and [1, 1] -> rank 3; query 2: rank 1
    assert got == {"recall@1": pytest.approx(1 / 3), "recall@2": pytest.approx(2 / 3),
                   "median_rank": 2.0}  # fmt: skip


def test_bad_input() -> None:
    with pytest.raises(ValidationError, match="one row per pair"):
        CCA().fit(np.ones((5, 3)), np.ones((4, 3)))
    with pytest.raises(ValidationError, match="NaN"):
        CCA().fit(np.full((5, 3), np.nan), np.ones((5, 3)))
    with pytest.raises(ValidationError, match="fit first"):
        CCA().transform1(np.ones((2, 3)))
