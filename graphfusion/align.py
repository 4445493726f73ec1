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
items of the other modality.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from graphfusion.errors import ValidationError
from graphfusion.features.base import l2_normalize
from graphfusion.repeatable import repeatable

__all__ = ["RandomProjection", "CCA", "ContrastiveAligner", "cross_modal_retrieval"]


def _pair(x1: np.ndarray, x2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(x1, dtype=np.float64), np.asarray(x2, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or len(a) != len(b):
        raise ValidationError("x1 and x2 must be 2-D with one row per pair")
    if len(a) < 2:
        raise ValidationError("alignment needs at least two pairs")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValidationError("vectors hold NaN or infinite values")
    return a, b


class RandomProjection:
    """Each modality through its own fixed Gaussian matrix to ``dim`` (the baseline).

    Args:
        dim: Common size.
        seed: Seed of the matrices.
    """

    def __init__(self, dim: int = 64, seed: int = 0) -> None:
        self.dim, self.seed = dim, seed
        self.p1: np.ndarray | None = None
        self.p2: np.ndarray | None = None

    def fit(self, x1: np.ndarray, x2: np.ndarray) -> RandomProjection:
        """Draw the matrices for the two input sizes (the pairs are not used)."""
        a, b = _pair(x1, x2)
        rng = np.random.default_rng(self.seed)
        self.p1 = rng.normal(size=(a.shape[1], self.dim)) / np.sqrt(self.dim)
        self.p2 = rng.normal(size=(b.shape[1], self.dim)) / np.sqrt(self.dim)
        return self

    def transform1(self, x1: np.ndarray) -> np.ndarray:
        """Project modality 1."""
        if self.p1 is None:
            raise ValidationError("call fit first")
        return l2_normalize(np.asarray(x1) @ self.p1)

    def transform2(self, x2: np.ndarray) -> np.ndarray:
        """Project modality 2."""
        if self.p2 is None:
            raise ValidationError("call fit first")
        return l2_normalize(np.asarray(x2) @ self.p2)


def _inv_sqrt(c: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(c)
    values = np.clip(values, 1e-12, None)
    return (vectors / np.sqrt(values)) @ vectors.T


class CCA:
    """Regularized canonical correlation analysis, closed form (see the module docstring).

    Args:
        dim: Number of canonical directions kept.
        reg: Ridge added to each covariance, relative to its mean variance.

    Attributes:
        correlations: The canonical correlations of the training pairs, highest first.
    """

    def __init__(self, dim: int = 64, reg: float = 1e-3) -> None:
        if dim < 1 or reg < 0:
            raise ValidationError("dim must be >= 1 and reg >= 0")
        self.dim, self.reg = dim, reg
        self.correlations: np.ndarray | None = None
        self._m1 = self._m2 = self._w1 = self._w2 = None

    def fit(self, x1: np.ndarray, x2: np.ndarray) -> CCA:
        """Fit on paired rows of the two modalities."""
        a, b = _pair(x1, x2)
        dim = min(self.dim, a.shape[1], b.shape[1], len(a) - 1)
        self._m1, self._m2 = a.mean(0), b.mean(0)
        a, b = a - self._m1, b - self._m2
        n = len(a) - 1
        c11, c22, c12 = a.T @ a / n, b.T @ b / n, a.T @ b / n
        c11 += self.reg * np.trace(c11) / len(c11) * np.eye(len(c11))
        c22 += self.reg * np.trace(c22) / len(c22) * np.eye(len(c22))
        r1, r2 = _inv_sqrt(c11), _inv_sqrt(c22)
        u, s, vt = np.linalg.svd(r1 @ c12 @ r2, full_matrices=False)
        self._w1, self._w2 = r1 @ u[:, :dim], r2 @ vt.T[:, :dim]
        self.correlations = s[:dim]
        return self

    def _project(self, x: np.ndarray, mean: np.ndarray | None, w: np.ndarray | None) -> np.ndarray:
        if mean is None or w is None:
            raise ValidationError("call fit first")
        return (np.asarray(x, dtype=np.float64) - mean) @ w

    def transform1(self, x1: np.ndarray) -> np.ndarray:
        """Canonical variates of modality 1, L2-normalized."""
        return l2_normalize(self._project(x1, self._m1, self._w1))

    def transform2(self, x2: np.ndarray) -> np.ndarray:
        """Canonical variates of modality 2, L2-normalized."""
        return l2_normalize(self._project(x2, self._m2, self._w2))


class ContrastiveAligner:
    """Two linear heads trained with a symmetric InfoNCE loss on the pairs.

    .. math:: \\mathcal{L} = -\\frac{1}{2B}\\sum_i \\Big[\\log
        \\frac{e^{s_{ii}/\\tau}}{\\sum_j e^{s_{ij}/\\tau}} +
        \\log \\frac{e^{s_{ii}/\\tau}}{\\sum_j e^{s_{ji}/\\tau}}\\Big], \\quad
        s_{ij} = \\cos(f_1(x_{1i}), f_2(x_{2j}))

    Args:
        dim: Common size.
        temperature: :math:`\\tau`.
        epochs: Passes over the pairs.
        batch_size: Pairs per step (the negatives of each pair are the rest of its batch).
        lr: Adam learning rate.
        seed: Seed of the initialization and the batches.
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
        self.dim, self.temperature, self.epochs = dim, temperature, epochs
        self.batch_size, self.lr, self.seed = batch_size, lr, seed
        self.head1: torch.nn.Linear | None = None
        self.head2: torch.nn.Linear | None = None
        self.losses: list[float] = []

    @repeatable
    def fit(self, x1: np.ndarray, x2: np.ndarray, *, progress: bool = False) -> ContrastiveAligner:
        """Train the heads on paired rows."""
        a, b = _pair(x1, x2)
        torch.manual_seed(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        t1, t2 = torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.float32)
        self.head1 = torch.nn.Linear(a.shape[1], self.dim)
        self.head2 = torch.nn.Linear(b.shape[1], self.dim)
        params = list(self.head1.parameters()) + list(self.head2.parameters())
        opt = torch.optim.Adam(params, lr=self.lr)
        self.losses = []
        for _ in tqdm(range(self.epochs), desc="contrastive", disable=not progress):
            order = torch.randperm(len(t1), generator=gen)
            total, steps = 0.0, 0
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                if len(idx) < 2:
                    continue
                z1 = torch.nn.functional.normalize(self.head1(t1[idx]), dim=1)
                z2 = torch.nn.functional.normalize(self.head2(t2[idx]), dim=1)
                logits = z1 @ z2.t() / self.temperature
                target = torch.arange(len(idx))
                loss = (
                    torch.nn.functional.cross_entropy(logits, target)
                    + torch.nn.functional.cross_entropy(logits.t(), target)
                ) / 2
                opt.zero_grad()
                loss.backward()
                opt.step()
                total, steps = total + loss.item(), steps + 1
            self.losses.append(total / max(steps, 1))
        return self

    def _apply(self, head: torch.nn.Linear | None, x: np.ndarray) -> np.ndarray:
        if head is None:
            raise ValidationError("call fit first")
        with torch.no_grad():
            out = head(torch.tensor(np.asarray(x), dtype=torch.float32)).numpy()
        return l2_normalize(out)

    def transform1(self, x1: np.ndarray) -> np.ndarray:
        """Project modality 1, L2-normalized."""
        return self._apply(self.head1, x1)

    def transform2(self, x2: np.ndarray) -> np.ndarray:
        """Project modality 2, L2-normalized."""
        return self._apply(self.head2, x2)


def cross_modal_retrieval(
    queries: np.ndarray, targets: np.ndarray, ks: Sequence[int] = (1, 5, 10)
) -> dict[str, float]:
    """Row ``i`` of ``queries`` looks for row ``i`` of ``targets`` among all targets (cosine).

    Returns:
        ``recall@K`` (share of queries whose partner is in the top K, in [0, 1]) for each K,
        and ``median_rank`` (1 is perfect; chance is about half the number of targets).
    """
    q, t = l2_normalize(np.asarray(queries)), l2_normalize(np.asarray(targets))
    if q.shape != t.shape:
        raise ValidationError("queries and targets must have the same shape")
    ranks = np.empty(len(q), dtype=np.int64)
    for start in range(0, len(q), 1024):
        sims = q[start : start + 1024] @ t.T
        own = sims[np.arange(len(sims)), np.arange(start, start + len(sims))]
        ranks[start : start + len(sims)] = (sims > own[:, None]).sum(1) + 1
    out = {f"recall@{k}": float((ranks <= k).mean()) for k in ks}
    out["median_rank"] = float(np.median(ranks))
    return out
