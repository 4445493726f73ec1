"""Cross-modal alignment: CCA recovers a planted linear relation; contrastive learns it too."""

from __future__ import annotations

import numpy as np
import pytest
import torch

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
    v1 = (x1 - x1.mean(0)) @ cca._w1
    v2 = (x2 - x2.mean(0)) @ cca._w2
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


def test_retrieval_ties_count_against_the_query() -> None:
    n = 7
    for vectors in (np.zeros((n, 4)), np.ones((n, 4))):
        got = cross_modal_retrieval(vectors, vectors, ks=(1, n))
        # every target scores the same: each partner ranks last, not first
        assert got == {"recall@1": 0.0, f"recall@{n}": 1.0, "median_rank": float(n)}
    # a target that scores the same as the partner counts ahead of it; the partner itself once
    q = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    t = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 2.0]])
    got = cross_modal_retrieval(q, t, ks=(1,))
    assert got == {"recall@1": pytest.approx(1 / 3), "median_rank": 2.0}


def test_retrieval_ranks_without_ties_are_the_strict_ranks() -> None:
    rng = np.random.default_rng(5)
    q, t = rng.normal(size=(300, 16)), rng.normal(size=(300, 16))
    t[:100] += 2 * q[:100]  # some partners easy to find
    sims = (q / np.linalg.norm(q, axis=1, keepdims=True)) @ (
        t / np.linalg.norm(t, axis=1, keepdims=True)
    ).T
    strict = (sims > np.diag(sims)[:, None]).sum(1) + 1  # the old rule, ties in its favour
    got = cross_modal_retrieval(q, t, ks=(1, 5, 10))
    for k in (1, 5, 10):
        assert got[f"recall@{k}"] == pytest.approx(float((strict <= k).mean()))
    assert got["median_rank"] == float(np.median(strict))


def test_retrieval_is_scale_free() -> None:
    rng = np.random.default_rng(7)
    q, t = rng.normal(size=(50, 8)), rng.normal(size=(50, 8))
    t[:20] += 3 * q[:20]
    want = cross_modal_retrieval(q, t)
    assert want["recall@1"] > 0.2
    for scale in (1e39, 1e30, 1e-30, 1e-300):  # beyond float32, or squares that over/underflow
        assert cross_modal_retrieval(q * scale, t) == want
        assert cross_modal_retrieval(q, t * scale) == want


def test_retrieval_refuses_bad_vectors() -> None:
    good = np.eye(3)
    for bad in (np.nan, np.inf):
        broken = good.copy()
        broken[1, 1] = bad
        with pytest.raises(ValidationError, match="NaN or infinite"):
            cross_modal_retrieval(broken, good)
        with pytest.raises(ValidationError, match="NaN or infinite"):
            cross_modal_retrieval(good, broken)
    with pytest.raises(ValidationError, match="same shape"):
        cross_modal_retrieval(good, np.eye(4))
    with pytest.raises(ValidationError, match="at least one row"):
        cross_modal_retrieval(np.zeros((0, 3)), np.zeros((0, 3)))
    for ks in ((0,), (), "1", (1.5,)):  # cut-offs are counts
        with pytest.raises(ValidationError, match="ks"):
            cross_modal_retrieval(good, good, ks=ks)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="at least one row and column"):
        cross_modal_retrieval(np.zeros((3, 0)), np.zeros((3, 0)))
    with pytest.raises(ValidationError, match="2-D"):
        cross_modal_retrieval(np.ones(3), np.ones(3))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: ContrastiveAligner(batch_size=1), "batch_size must be at least 2"),
        (lambda: ContrastiveAligner(batch_size=0), "batch_size"),
        (lambda: ContrastiveAligner(batch_size=2.0), "batch_size"),  # type: ignore[arg-type]
        (lambda: ContrastiveAligner(temperature=0), "temperature"),
        (lambda: ContrastiveAligner(temperature=-0.1), "temperature"),
        (lambda: ContrastiveAligner(temperature=float("nan")), "temperature"),
        (lambda: ContrastiveAligner(temperature=float("inf")), "temperature"),
        (lambda: ContrastiveAligner(temperature=True), "temperature"),
        (lambda: ContrastiveAligner(epochs=0), "epochs"),
        (lambda: ContrastiveAligner(lr=0.0), "lr"),
        (lambda: ContrastiveAligner(lr=float("nan")), "lr"),
        (lambda: ContrastiveAligner(dim=0), "dim"),
        (lambda: ContrastiveAligner(seed=-1), "seed"),
        (lambda: RandomProjection(dim=-1), "dim"),
        (lambda: RandomProjection(dim=True), "dim"),
        (lambda: RandomProjection(seed=-1), "seed"),
        (lambda: RandomProjection(seed=1.5), "seed"),  # type: ignore[arg-type]
        (lambda: CCA(dim=2.5), "dim"),  # type: ignore[arg-type]
        (lambda: CCA(dim=0), "dim"),
        (lambda: CCA(reg=float("nan")), "reg"),
        (lambda: CCA(reg=-1.0), "reg"),
        (lambda: CCA(reg="0.1"), "reg"),  # type: ignore[arg-type]
    ],
)
def test_constructors_refuse_bad_arguments(make: object, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        make()  # type: ignore[operator]


def test_constructors_take_numpy_numbers() -> None:
    aligner = ContrastiveAligner(
        np.int64(4), epochs=np.int64(1), batch_size=np.int32(2),  # type: ignore[arg-type]
        temperature=np.float32(0.5), lr=np.float64(0.01), seed=np.int64(3),  # type: ignore[arg-type]
    )  # fmt: skip
    assert (aligner.dim, aligner.epochs, aligner.batch_size, aligner.seed) == (4, 1, 2, 3)
    assert all(type(v) is int for v in (aligner.dim, aligner.epochs, aligner.batch_size))
    assert CCA(np.int64(2), reg=0).reg == 0.0  # type: ignore[arg-type]


def test_contrastive_small_batches_train() -> None:
    x1, x2 = _planted(n=40, seed=4)
    aligner = ContrastiveAligner(dim=4, epochs=3, batch_size=2, lr=0.01).fit(x1, x2)
    assert len(aligner.losses) == 3 and all(loss > 0 for loss in aligner.losses)


def test_contrastive_refuses_a_loss_that_is_not_finite() -> None:
    x1, x2 = _planted(n=20, seed=4)
    # finite and positive, but 1 / temperature overflows 32-bit floats
    with pytest.raises(ValidationError, match="not finite"):
        ContrastiveAligner(dim=4, epochs=1, temperature=1e-40).fit(x1, x2)


def test_transforms_check_width_and_values() -> None:
    x1, x2 = _planted(n=50, seed=6)
    aligners: list[RandomProjection | CCA | ContrastiveAligner] = [
        RandomProjection(4).fit(x1, x2),
        CCA(4).fit(x1, x2),
        ContrastiveAligner(4, epochs=1).fit(x1, x2),
    ]
    for aligner in aligners:
        for transform, x, what in ((aligner.transform1, x1, "x1"), (aligner.transform2, x2, "x2")):
            assert transform(x[:3]).shape == (3, 4)
            with pytest.raises(ValidationError, match=f"{what} must be 2-D with {x.shape[1]}"):
                transform(x[:3, :-1])
            with pytest.raises(ValidationError, match="2-D"):
                transform(x[0])
            broken = x[:3].copy()
            broken[1, 0] = np.nan
            with pytest.raises(ValidationError, match="NaN or infinite"):
                transform(broken)
            broken[1, 0] = -np.inf
            with pytest.raises(ValidationError, match="NaN or infinite"):
                transform(broken)


@pytest.mark.parametrize("scale", [1e-8, 1e-100, 1e-200, 1e100, 1e160, 1e200])
def test_cca_does_not_depend_on_the_scale_of_a_modality(scale: float) -> None:
    x1, x2 = _planted(n=300, seed=8)
    want = CCA(dim=4).fit(x1, x2)
    got = CCA(dim=4).fit(x1 * scale, x2)
    assert want.correlations is not None and got.correlations is not None
    assert want.correlations.min() > 0.95
    np.testing.assert_allclose(got.correlations, want.correlations, rtol=1e-6)
    # the same canonical directions, up to the sign of each
    signs = np.sign(np.sum(got.transform1(x1[:20] * scale) * want.transform1(x1[:20]), axis=0))
    np.testing.assert_allclose(got.transform1(x1[:20] * scale), want.transform1(x1[:20]) * signs,
                               atol=1e-4)  # fmt: skip
    np.testing.assert_allclose(got.transform2(x2[:20]), want.transform2(x2[:20]) * signs,
                               atol=1e-4)  # fmt: skip


@pytest.mark.parametrize("make", [lambda: RandomProjection(2), lambda: CCA(2),
                                  lambda: ContrastiveAligner(2, epochs=1)])  # fmt: skip
def test_a_modality_that_is_the_same_in_every_pair_is_refused(make: object) -> None:
    x1, x2 = _planted(n=30, seed=9)
    for a, b, what in ((np.ones_like(x1), x2, "x1"), (x1, np.zeros_like(x2), "x2")):
        with pytest.raises(ValidationError, match=f"{what} is the same in every pair"):
            make().fit(a, b)  # type: ignore[operator]


@pytest.mark.parametrize(
    "bad",
    [
        [["a", "b"], ["c", "d"], ["e", "f"]],  # text
        [[1.0, 2.0], [3.0], [4.0, 5.0]],  # ragged
        np.ones((3, 2)) * (1 + 1j),  # complex: the imaginary part would be dropped
        np.array([[object(), 1.0]] * 3, dtype=object),
    ],
)
def test_values_that_are_not_real_numbers_are_refused(bad: object) -> None:
    x1, x2 = _planted(n=30, seed=10)
    good = np.ones((3, 2))
    with pytest.raises(ValidationError, match="x1 must hold real numbers"):
        CCA(2).fit(bad, good)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="x2 must hold real numbers"):
        RandomProjection(2).fit(good, bad)  # type: ignore[arg-type]
    fitted = CCA(2).fit(x1[:, :2], x2[:, :2])
    with pytest.raises(ValidationError, match="x1 must hold real numbers"):
        fitted.transform1(bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="queries must hold real numbers"):
        cross_modal_retrieval(bad, good)  # type: ignore[arg-type]
    # numbers in an object array, or booleans, are numbers
    as_objects = np.array(x1[:, :2], dtype=object)
    np.testing.assert_array_equal(fitted.transform1(as_objects), fitted.transform1(x1[:, :2]))


def test_contrastive_refuses_values_beyond_32_bit_floats() -> None:
    x1, x2 = _planted(n=30, seed=11)
    with pytest.raises(ValidationError, match="x1 holds values beyond 32-bit floats"):
        ContrastiveAligner(2, epochs=1).fit(x1 * 1e39, x2)
    aligner = ContrastiveAligner(2, epochs=1).fit(x1, x2)
    with pytest.raises(ValidationError, match="x2 holds values beyond 32-bit floats"):
        aligner.transform2(x2[:3] * 1e39)  # the head gave infinities: zero or NaN rows
    big = np.full((2, x1.shape[1]), 3e37)  # each value finite as float32 ...
    assert aligner.head1 is not None
    with torch.no_grad():
        aligner.head1.weight.fill_(1.0)  # ... and their sum in the head is not
    with pytest.raises(ValidationError, match="x1 holds values beyond 32-bit floats once"):
        aligner.transform1(big)
