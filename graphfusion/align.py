"""Cross-modal alignment: map text and image vectors of the same products into one space.

Three aligners with one interface (``fit(x1, x2)``, ``transform1``, ``transform2``, giving
L2-normalized vectors of size ``dim``):

- :class:`RandomProjection`, the baseline: each modality through its own fixed random matrix.
- :class:`CCA`: canonical correlation analysis, closed form. It solves
  :math:`\\min_{W_1, W_2} \\|X_1 W_1 - X_2 W_2\\|_F^2` subject to
  :math:`W_i^\\top (C_{ii} + rI) W_i = I` (the whitening constraints, with ridge ``r``): with
  :math:`T = (C_{11} + rI)^{-1/2} C_{12} (C_{22} + rI)^{-1/2} = U S V^\\top`, the solution is
  :math:`W_1 = (C_{11} + rI)^{-1/2} U_d` and :math:`W_2 = (C_{22} + rI)^{-1/2} V_d`, and
  :math:`S` holds the canonical correlations.
- :class:`ContrastiveAligner`: two linear projection heads trained with a symmetric InfoNCE
  loss (CLIP-style) on the pairs.

:func:`cross_modal_retrieval` measures them: for each item, the rank of its partner among all
items of the other modality (ties count against the item: an item that scores the same as the
partner ranks ahead of it).

Every constructor argument is checked (sizes and counts positive integers, ``batch_size`` at
least 2, ``temperature`` and ``lr`` positive and finite, ``reg`` in 0..:data:`MAX_REG`, a seed
a non-negative integer), and so are the vectors given to ``fit`` and the transforms (real
numbers, 2-D, finite, the width seen in ``fit``; for ``fit`` neither modality the same in every
pair; for the contrastive heads within the range of 32-bit floats): a bad one raises
:class:`~graphfusion.errors.ValidationError`. A fit that raises leaves the aligner as it was.
CCA does not depend on the scale of either modality (vectors of 1e-8 or 1e160 give the
canonical directions of vectors of 1, and so do vectors of 1e306, whose sums overflow), and the
transforms of :class:`RandomProjection` and :class:`CCA` do not overflow on rows of huge values
(1e307): their outputs are directions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from graphfusion.errors import ValidationError
from graphfusion.evaluate import check_cutoffs
from graphfusion.features.base import l2_normalize
from graphfusion.progress import progress_bar
from graphfusion.repeatable import repeatable
from graphfusion.values import count_arg, real_arg

__all__ = ["RandomProjection", "CCA", "ContrastiveAligner", "cross_modal_retrieval"]

#: Largest common size (``dim``) an aligner accepts.
MAX_DIM = 100_000
#: Largest number of epochs :class:`ContrastiveAligner` accepts.
MAX_EPOCHS = 1_000_000
#: Largest batch size :class:`ContrastiveAligner` accepts.
MAX_BATCH = 1 << 30
#: Largest seed (numpy's and torch's generators take 64 bits).
MAX_SEED = 2**63 - 1
#: Largest ridge :class:`CCA` accepts, relative to the mean variance. Far beyond it CCA is
#: already the limit of a large ridge (the directions of the cross-covariance) while the
#: correlations underflow (a ridge of 1e306 gave correlations of 1e-306), and a ridge of 1e307
#: overflows the covariances.
MAX_REG = 1e12


def _numbers(x: np.ndarray, what: str) -> np.ndarray:
    """``x`` as a float64 array, or ValidationError when it does not hold real numbers (text,
    ragged rows, complex numbers, whose imaginary part a cast would drop)."""
    try:
        a = np.asarray(x)
        if a.dtype.kind in "biuf" or a.dtype == object:
            return np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        pass
    raise ValidationError(f"{what} must hold real numbers (a matrix of them)")


def _rows(x: np.ndarray, width: int, what: str) -> np.ndarray:
    """``x`` as a float64 matrix of finite values with ``width`` columns (what fit saw)."""
    a = _numbers(x, what)
    if a.ndim != 2 or a.shape[1] != width:
        raise ValidationError(
            f"{what} must be 2-D with {width} columns (the width seen in fit), got shape {a.shape}"
        )
    if not np.isfinite(a).all():
        raise ValidationError(f"{what} holds NaN or infinite values")
    return a


def _row_scales(*parts: np.ndarray) -> np.ndarray:
    """Per row, the power of two that brings the row's largest magnitude among ``parts`` (each
    ``(n, width)`` or ``(width,)``, broadcast over the rows) into [0.5, 1); 0 for zero rows."""
    top = np.zeros(len(parts[0]))
    for part in parts:
        top = np.maximum(top, np.broadcast_to(np.abs(part), parts[0].shape).max(1, initial=0.0))
    return np.frexp(top)[1][:, None]


def _directions(x: np.ndarray, w: np.ndarray, mean: np.ndarray | None = None) -> np.ndarray:
    """``l2_normalize((x - mean) @ w)`` without overflow: each row (and the mean with it) is
    first scaled by a power of two (:func:`_row_scales`). The scaling is exact and the output
    a direction, so ordinary rows give the bits of the plain formula, while rows of 1e307,
    whose products or sums overflow, give their directions instead of NaN."""
    if not len(x):
        return l2_normalize(x @ w)
    if mean is None:
        k = _row_scales(x)
        return l2_normalize(np.ldexp(x, -k) @ w)
    k = _row_scales(x, mean)
    return l2_normalize((np.ldexp(x, -k) - np.ldexp(mean, -k)) @ w)


def _pair(x1: np.ndarray, x2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = _numbers(x1, "x1"), _numbers(x2, "x2")
    if a.ndim != 2 or b.ndim != 2 or len(a) != len(b) or not (a.shape[1] and b.shape[1]):
        raise ValidationError(
            "x1 and x2 must be 2-D with one row per pair and at least one column, got shapes "
            f"{a.shape} and {b.shape}"
        )
    if len(a) < 2:
        raise ValidationError("alignment needs at least two pairs")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValidationError("vectors hold NaN or infinite values")
    for m, what in ((a, "x1"), (b, "x2")):
        if not (m != m[0]).any():
            raise ValidationError(
                f"{what} is the same in every pair (no variation): there is nothing to align"
            )
    return a, b


class RandomProjection:
    """Each modality through its own fixed Gaussian matrix to ``dim`` (the baseline).

    Args:
        dim: Common size (1 to :data:`MAX_DIM`).
        seed: Seed of the matrices, a non-negative integer.

    Raises:
        ValidationError: ``dim`` is not an integer in 1..:data:`MAX_DIM`, or ``seed`` is not a
            non-negative integer.
    """

    def __init__(self, dim: int = 64, seed: int = 0) -> None:
        self.dim, self.seed = (
            count_arg("dim", dim, MAX_DIM),
            count_arg("seed", seed, MAX_SEED, low=0),
        )
        self.p1: np.ndarray | None = None
        self.p2: np.ndarray | None = None

    def fit(self, x1: np.ndarray, x2: np.ndarray) -> RandomProjection:
        """Draw the matrices for the two input sizes (the pairs are not used).

        Raises:
            ValidationError: The pairs are not two finite matrices of real numbers with one
                row per pair (at least two), or one modality is the same in every pair.
        """
        a, b = _pair(x1, x2)
        rng = np.random.default_rng(self.seed)
        self.p1 = rng.normal(size=(a.shape[1], self.dim)) / np.sqrt(self.dim)
        self.p2 = rng.normal(size=(b.shape[1], self.dim)) / np.sqrt(self.dim)
        return self

    def transform1(self, x1: np.ndarray) -> np.ndarray:
        """Project modality 1.

        Raises:
            ValidationError: Not fitted, or ``x1`` is not a finite matrix of the width fitted.
        """
        if self.p1 is None:
            raise ValidationError("call fit first")
        return _directions(_rows(x1, self.p1.shape[0], "x1"), self.p1)

    def transform2(self, x2: np.ndarray) -> np.ndarray:
        """Project modality 2.

        Raises:
            ValidationError: Not fitted, or ``x2`` is not a finite matrix of the width fitted.
        """
        if self.p2 is None:
            raise ValidationError("call fit first")
        return _directions(_rows(x2, self.p2.shape[0], "x2"), self.p2)


def _unit_scale(a: np.ndarray) -> tuple[np.ndarray, int]:
    """``a * 2**-k`` and ``k``: the power of two that brings the root mean square of ``a``
    (not all zero) into [0.5, 1). The scaling is exact; it keeps the covariances of very large
    or very small values (1e160, 1e-8) from overflowing, or from falling under the floor that
    :func:`_inv_sqrt` puts on eigenvalues."""
    _, top = np.frexp(np.abs(a).max())
    a = np.ldexp(a, -top)
    _, rms = np.frexp(np.sqrt(np.mean(a * a)))
    return np.ldexp(a, -rms), int(top + rms)


def _centred(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """The column means of ``a`` and ``(a - mean) * 2**-k`` with its ``k`` (:func:`_unit_scale`),
    computed on ``a`` scaled by a power of two first: exact, so the bits are those of the plain
    formula, while the sums of values of 1e306 do not overflow."""
    _, top = np.frexp(np.abs(a).max())
    a = np.ldexp(a, -top)
    mean = a.mean(0)
    centred, k = _unit_scale(a - mean)
    return np.ldexp(mean, top), centred, k + int(top)


def _inv_sqrt(c: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(c)
    values = np.clip(values, 1e-12, None)
    return (vectors / np.sqrt(values)) @ vectors.T


class CCA:
    """Regularized canonical correlation analysis, closed form (see the module docstring).

    Args:
        dim: Number of canonical directions kept (1 to :data:`MAX_DIM`; at most the smaller
            input width and the number of pairs less one are kept).
        reg: Ridge added to each covariance, relative to its mean variance (0 to
            :data:`MAX_REG`). With no ridge and no more pairs than columns, every correlation
            is 1: the pairs are fitted exactly, and nothing is learned.

    Attributes:
        correlations: The canonical correlations of the training pairs, highest first, in
            [0, 1].

    Raises:
        ValidationError: ``dim`` is not an integer in 1..:data:`MAX_DIM`, or ``reg`` is not a
            number in 0..:data:`MAX_REG`.
    """

    def __init__(self, dim: int = 64, reg: float = 1e-3) -> None:
        self.dim = count_arg("dim", dim, MAX_DIM)
        self.reg = real_arg("reg", reg, zero=True, high=MAX_REG)
        self.correlations: np.ndarray | None = None
        self._m1: np.ndarray | None = None
        self._m2: np.ndarray | None = None
        self._w1: np.ndarray | None = None
        self._w2: np.ndarray | None = None

    def fit(self, x1: np.ndarray, x2: np.ndarray) -> CCA:
        """Fit on paired rows of the two modalities.

        Raises:
            ValidationError: The pairs are not two finite matrices of real numbers with one
                row per pair (at least two), or one modality is the same in every pair.
        """
        a, b = _pair(x1, x2)
        dim = min(self.dim, a.shape[1], b.shape[1], len(a) - 1)
        # CCA does not depend on the scale of either modality (the ridge is relative too):
        # each is fitted at unit scale, and the scale folded into its weights
        (m1, a, k1), (m2, b, k2) = _centred(a), _centred(b)
        n = len(a) - 1
        c11, c22, c12 = a.T @ a / n, b.T @ b / n, a.T @ b / n
        c11 += self.reg * np.trace(c11) / len(c11) * np.eye(len(c11))
        c22 += self.reg * np.trace(c22) / len(c22) * np.eye(len(c22))
        r1, r2 = _inv_sqrt(c11), _inv_sqrt(c22)
        u, s, vt = np.linalg.svd(r1 @ c12 @ r2, full_matrices=False)
        self._m1, self._m2 = m1, m2
        self._w1 = np.ldexp(r1 @ u[:, :dim], -k1)
        self._w2 = np.ldexp(r2 @ vt.T[:, :dim], -k2)
        # at most 1 in exact arithmetic; rounding gave 1.00000004 where the pairs fit exactly
        self.correlations = np.minimum(s[:dim], 1.0)
        return self

    @staticmethod
    def _project(
        x: np.ndarray, mean: np.ndarray | None, w: np.ndarray | None, what: str
    ) -> np.ndarray:
        if mean is None or w is None:
            raise ValidationError("call fit first")
        return _directions(_rows(x, len(mean), what), w, mean)

    def transform1(self, x1: np.ndarray) -> np.ndarray:
        """Canonical variates of modality 1, L2-normalized.

        Raises:
            ValidationError: Not fitted, or ``x1`` is not a finite matrix of the width fitted.
        """
        return self._project(x1, self._m1, self._w1, "x1")

    def transform2(self, x2: np.ndarray) -> np.ndarray:
        """Canonical variates of modality 2, L2-normalized.

        Raises:
            ValidationError: Not fitted, or ``x2`` is not a finite matrix of the width fitted.
        """
        return self._project(x2, self._m2, self._w2, "x2")


def _float32(x: np.ndarray, what: str) -> torch.Tensor:
    """``x`` as a float32 tensor (the heads' precision), or ValidationError when a value is
    beyond its range (1e39 would become infinite)."""
    with np.errstate(over="ignore"):
        out = np.asarray(x, dtype=np.float32)
    if not np.isfinite(out).all():
        raise ValidationError(f"{what} holds values beyond 32-bit floats (at most 3.4e38)")
    return torch.from_numpy(out)


class ContrastiveAligner:
    """Two linear heads trained with a symmetric InfoNCE loss on the pairs.

    .. math:: \\mathcal{L} = -\\frac{1}{2B}\\sum_i \\Big[\\log
        \\frac{e^{s_{ii}/\\tau}}{\\sum_j e^{s_{ij}/\\tau}} +
        \\log \\frac{e^{s_{ii}/\\tau}}{\\sum_j e^{s_{ji}/\\tau}}\\Big], \\quad
        s_{ij} = \\cos(f_1(x_{1i}), f_2(x_{2j}))

    Args:
        dim: Common size (1 to :data:`MAX_DIM`).
        temperature: :math:`\\tau`, a finite number > 0.
        epochs: Passes over the pairs (1 to :data:`MAX_EPOCHS`).
        batch_size: Pairs per step, at least 2 (the negatives of each pair are the rest of its
            batch; a last batch of a single pair is skipped).
        lr: Adam learning rate, a finite number > 0.
        seed: Seed of the initialization and the batches, a non-negative integer.

    Raises:
        ValidationError: An argument outside the ranges above.
    """

    def __init__(
        self,
        dim: int = 64,
        *,
        temperature: float = 0.07,
        epochs: int = 30,
        batch_size: int = 256,
        lr: float = 1e-3,
        seed: int = 0,
    ) -> None:
        self.dim = count_arg("dim", dim, MAX_DIM)
        self.temperature = real_arg("temperature", temperature, zero=False)
        self.epochs = count_arg("epochs", epochs, MAX_EPOCHS)
        self.batch_size = count_arg("batch_size", batch_size, MAX_BATCH)
        if self.batch_size < 2:
            raise ValidationError(
                "batch_size must be at least 2 (a pair's negatives are the rest of its batch), "
                f"got {batch_size!r}"
            )
        self.lr = real_arg("lr", lr, zero=False)
        self.seed = count_arg("seed", seed, MAX_SEED, low=0)
        self.head1: torch.nn.Linear | None = None
        self.head2: torch.nn.Linear | None = None
        self.losses: list[float] = []

    @repeatable
    def fit(self, x1: np.ndarray, x2: np.ndarray, *, progress: bool = False) -> ContrastiveAligner:
        """Train the heads on paired rows. The heads and ``losses`` change only when the
        training ends well: a fit that raises leaves the aligner as it was.

        Raises:
            ValidationError: The pairs are not two finite matrices of real numbers with one
                row per pair (at least two), one modality is the same in every pair or holds
                values beyond 32-bit floats, or the loss stops being finite (a temperature too
                small for 32-bit floats, or a learning rate too large).
        """
        a, b = _pair(x1, x2)
        torch.manual_seed(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        t1, t2 = _float32(a, "x1"), _float32(b, "x2")
        head1 = torch.nn.Linear(a.shape[1], self.dim)
        head2 = torch.nn.Linear(b.shape[1], self.dim)
        params = list(head1.parameters()) + list(head2.parameters())
        opt = torch.optim.Adam(params, lr=self.lr)
        losses: list[float] = []
        for _ in progress_bar(range(self.epochs), desc="contrastive", progress=progress):
            order = torch.randperm(len(t1), generator=gen)
            total, steps = 0.0, 0
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                if len(idx) < 2:
                    continue
                z1 = torch.nn.functional.normalize(head1(t1[idx]), dim=1)
                z2 = torch.nn.functional.normalize(head2(t2[idx]), dim=1)
                logits = z1 @ z2.t() / self.temperature
                target = torch.arange(len(idx))
                loss = (
                    torch.nn.functional.cross_entropy(logits, target)
                    + torch.nn.functional.cross_entropy(logits.t(), target)
                ) / 2
                if not torch.isfinite(loss):
                    raise ValidationError(
                        f"the contrastive loss is not finite (temperature {self.temperature}, "
                        f"lr {self.lr}): use a larger temperature or a smaller lr"
                    )
                opt.zero_grad()
                loss.backward()
                opt.step()
                total, steps = total + loss.item(), steps + 1
            losses.append(total / max(steps, 1))
        self.head1, self.head2, self.losses = head1, head2, losses
        return self

    @staticmethod
    def _apply(head: torch.nn.Linear | None, x: np.ndarray, what: str) -> np.ndarray:
        if head is None:
            raise ValidationError("call fit first")
        rows = _float32(_rows(x, head.in_features, what), what)
        with torch.no_grad():
            out = head(rows).numpy()
        if not np.isfinite(out).all():
            raise ValidationError(f"{what} holds values beyond 32-bit floats once projected")
        return l2_normalize(out)

    def transform1(self, x1: np.ndarray) -> np.ndarray:
        """Project modality 1, L2-normalized.

        Raises:
            ValidationError: Not fitted, or ``x1`` is not a finite matrix of the width fitted.
        """
        return self._apply(self.head1, x1, "x1")

    def transform2(self, x2: np.ndarray) -> np.ndarray:
        """Project modality 2, L2-normalized.

        Raises:
            ValidationError: Not fitted, or ``x2`` is not a finite matrix of the width fitted.
        """
        return self._apply(self.head2, x2, "x2")


def cross_modal_retrieval(
    queries: np.ndarray, targets: np.ndarray, ks: Sequence[int] = (1, 5, 10)
) -> dict[str, float]:
    """Row ``i`` of ``queries`` looks for row ``i`` of ``targets`` among all targets (cosine).

    The rank of a query's partner is the number of targets that score at least as high as it,
    the partner included: ties count against the query, so vectors that cannot tell the
    targets apart (all zero, all the same) rank every partner last, not first.

    Args:
        queries: ``(n, d)`` query vectors.
        targets: ``(n, d)`` target vectors; row ``i`` is the partner of query ``i``.
        ks: Cut-offs of the recall.

    Returns:
        ``recall@K`` (share of queries whose partner is in the top K, in [0, 1]) for each K,
        and ``median_rank`` (1 is perfect; chance is about half the number of targets).

    Raises:
        ValidationError: The shapes differ or are not 2-D with at least one row, a vector
            holds NaN or infinite values, or ``ks`` is not a non-empty sequence of cut-offs.
    """
    q_raw, t_raw = _numbers(queries, "queries"), _numbers(targets, "targets")
    if q_raw.ndim != 2 or q_raw.shape != t_raw.shape or q_raw.size == 0:
        raise ValidationError(
            "queries and targets must be 2-D with the same shape and at least one row and "
            f"column, got {q_raw.shape} and {t_raw.shape}"
        )
    if not (np.isfinite(q_raw).all() and np.isfinite(t_raw).all()):
        raise ValidationError("queries or targets hold NaN or infinite values")
    ks = check_cutoffs(ks)
    q, t = l2_normalize(q_raw), l2_normalize(t_raw)
    ranks = np.empty(len(q), dtype=np.int64)
    for start in range(0, len(q), 1024):
        sims = q[start : start + 1024] @ t.T
        own = sims[np.arange(len(sims)), np.arange(start, start + len(sims))]
        ranks[start : start + len(sims)] = (sims >= own[:, None]).sum(1)
    out = {f"recall@{k}": float((ranks <= k).mean()) for k in ks}
    out["median_rank"] = float(np.median(ranks))
    return out
