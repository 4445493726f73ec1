r"""Content neighbourhood: products ranked by how alike their content is to a user's products.

A fixed (not trained) kernel over the products' modality vectors, the content counterpart of
item-based collaborative filtering. Each modality :math:`m` (the product's ``text_vec``; the
``image_vec`` of its images, averaged) is L2-normalized, centred and projected on its first
``rank`` principal directions (fitted once, on the products the model is built with); the
projections of all modalities, each scaled by :math:`1/\sqrt{M}`, are concatenated into
:math:`\mathbf{k}_i`. A user's profile is the mean over the products they interacted with,
weighted by the strength :math:`s_{uj}` of each interaction (what it says of the user's taste:
a purchase more than a view; :func:`graphfusion.train.pair_strength`),
:math:`\mathbf{p}_u = \sum_{j \in N(u)} s_{uj}\mathbf{k}_j / \sum_{j \in N(u)} s_{uj}`, and the
kernel score is :math:`\mathbf{p}_u^\top\mathbf{k}_i`: the (weighted) mean similarity of
product :math:`i` to the user's products.

The same kernel over the model's own item vectors, its **learned neighbourhood** (the fused
embeddings for its scores, the content vectors for its content-only ones), is the mean
similarity of a product to the user's products as the trained model sees them: a user is
described by their products as well as by their own embedding.

The fusion model blends both into its scores after training (:func:`blend`), with weights
fitted on the validation split: joint training would let the id embeddings absorb what the
kernel explains, while the blended kernel keeps its own, smoother view of the content. On the
Myntra catalogue shop the blends lifted the fusion model's warm Recall@20 from 0.098 to 0.115
(mean of 3 seeds; README, recommendation benchmark).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import HeteroData

from graphfusion.errors import ValidationError

__all__ = [
    "ContentNeighbourhood",
    "item_modalities",
    "pooled",
    "profiles",
    "blend",
    "WEIGHTS",
    "KERNELS",
    "IMAGE_EDGE",
]

#: The relationship whose target's ``image_vec`` is a product's photo.
IMAGE_EDGE = "HAS_IMAGE"
#: Blend weights tried on the validation split (0: the model's scores alone).
WEIGHTS = (0.0, 0.125, 0.25, 0.5, 1.0, 2.0)
#: The kernels blended, in the order of the columns of ``ContentNeighbourhood.weight``.
KERNELS = ("content", "learned")
#: Rows used to fit the principal directions (an even sample of larger catalogues).
FIT_ROWS = 20_000


def item_modalities(data: HeteroData, item: str = "Product") -> dict[str, Tensor]:
    """The items' modality vectors, L2-normalized: ``text_vec`` and ``image_vec`` of the item
    itself, and the mean ``image_vec`` of the nodes it points to by :data:`IMAGE_EDGE` (rows
    without one are zeros)."""
    out: dict[str, Tensor] = {}
    n = int(data[item].num_nodes)
    for attr in ("text_vec", "image_vec"):
        if attr in data[item]:
            out[attr] = _unit(data[item][attr])
    for et in data.edge_types:
        src, rel, dst = et
        if (src, rel) == (item, IMAGE_EDGE) and "image_vec" in data[dst] and "image_vec" not in out:
            ei = data[et].edge_index
            out["image_vec"] = pooled(n, ei[0], data[dst].image_vec[ei[1]])
    return out


def pooled(num: int, rows: Tensor, vecs: Tensor) -> Tensor:
    """``(num, width)``: per row, the L2-normalized sum of the unit ``vecs`` that ``rows``
    assigns to it (zeros where none): how a product's photos make one image vector."""
    total = torch.zeros(num, vecs.shape[1]).index_add_(0, rows, _unit(vecs))
    return F.normalize(total, dim=1)


class ContentNeighbourhood(nn.Module):
    """The kernel (see the module docstring) over a fixed set of items.

    Args:
        modalities: ``(num_items, width)`` vectors per modality (:func:`item_modalities`).
        interactions: ``(2, E)`` user-item pairs that make the profiles.
        num_users: Number of users.
        rank: Principal directions kept per modality.
        fit: Fit the principal directions; False leaves empty ones, for a model whose saved
            directions are loaded next (the fit is the costly part: seconds on thousands of
            products).
        strength: ``(E,)`` weight of each pair in the profiles (:func:`profiles`); None: each
            pair counts once.

    The principal directions (``mean_*``, ``basis_*``) and the blend weights (``weight``,
    ``(2, len(KERNELS))``: rows for the model's scores and its content-only scores, columns for
    the :data:`KERNELS`) are saved with the model; loading them replaces those fitted here,
    whatever their shape (a saved weight of one column, from before the learned kernel, gets a
    zero one).
    """

    weight: Tensor

    def __init__(
        self,
        modalities: dict[str, Tensor],
        interactions: Tensor,
        num_users: int,
        rank: int = 128,
        *,
        fit: bool = True,
        strength: Tensor | None = None,
    ) -> None:
        super().__init__()
        if rank < 1:
            raise ValidationError(f"rank must be >= 1, got {rank}")
        _check_strength(interactions, strength)
        self.names = sorted(modalities)
        self._raw = {m: modalities[m].float() for m in self.names}
        self.num_users = num_users
        self.num_items = len(next(iter(self._raw.values()))) if self._raw else 0
        for m in self.names:
            width = self._raw[m].shape[1]
            empty = (torch.zeros(width), torch.zeros(width, 0))
            mean, basis = _principal(self._raw[m], rank) if fit else empty
            self.register_buffer(f"mean_{m}", mean)
            self.register_buffer(f"basis_{m}", basis)
        self.register_buffer("weight", torch.zeros(2, len(KERNELS)))
        self._interactions = interactions
        self._strength = strength
        self._cache: tuple[Tensor, Tensor] | None = None

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        for name in list(self._buffers):
            if prefix + name in state_dict:  # the saved directions, whatever their shape
                self._buffers[name] = state_dict[prefix + name].clone()
        saved = self._buffers["weight"]
        if saved is not None and saved.dim() == 1:  # content kernel only
            self._buffers["weight"] = F.pad(saved.unsqueeze(1), (0, len(KERNELS) - 1))
            state_dict[prefix + "weight"] = self._buffers["weight"]
        self._cache = None
        super()._load_from_state_dict(state_dict, prefix, *args)

    def encode(self, modalities: dict[str, Tensor]) -> Tensor:
        """``(n, sum of ranks)`` kernel vectors of items from their modality vectors (L2
        normalized, as :func:`item_modalities` gives them; a missing one counts as zeros)."""
        n = len(next(iter(modalities.values()))) if modalities else 0
        parts = []
        for m in self.names:
            mean, basis = self._buffers[f"mean_{m}"], self._buffers[f"basis_{m}"]
            assert mean is not None and basis is not None
            x = modalities.get(m)
            if x is None:
                x = torch.zeros(n, len(mean))
            elif x.dim() != 2 or x.shape[1] != len(mean):
                raise ValidationError(f"{m} must be (n, {len(mean)})")
            parts.append((torch.nan_to_num(x.float()) - mean) @ basis)
        return torch.cat(parts, 1) / math.sqrt(max(len(parts), 1))

    def vectors(self) -> tuple[Tensor, Tensor]:
        """``(user profiles, item vectors)`` of the items and interactions given (cached)."""
        if self._cache is None:
            items = self.encode(self._raw)
            self._cache = (self._profiles(items), items)
        return self._cache

    def scores(self, users: Tensor, vectors: Tensor | None = None) -> Tensor:
        """``(len(users), num_items)`` kernel scores: over the content vectors, or over other
        ``(num_items, d)`` item ``vectors`` (the learned neighbourhood)."""
        if vectors is None:
            profile, items = self.vectors()
        else:
            items = vectors
            profile = self._profiles(vectors)
        return profile[users] @ items.t()

    def _profiles(self, items: Tensor) -> Tensor:
        return profiles(self._interactions, items, self.num_users, self._strength)


def profiles(
    interactions: Tensor, items: Tensor, num_users: int, strength: Tensor | None = None
) -> Tensor:
    """``(num_users, width)``: each user's mean item vector over ``interactions`` (``(2, E)``
    user-item pairs), weighted by ``strength`` (``(E,)``, positive; None: all 1); a repeated
    pair counts once, with its greatest strength; zeros for users without any.

    Raises:
        ValidationError: ``strength`` is not one positive finite value per pair.
    """
    _check_strength(interactions, strength)
    if not interactions.numel():
        return torch.zeros(num_users, items.shape[1])
    pairs, inverse = torch.unique(interactions, dim=1, return_inverse=True)
    if strength is None:
        weight = torch.ones(pairs.shape[1])
    else:
        weight = torch.zeros(pairs.shape[1]).scatter_reduce_(
            0, inverse, strength.float(), "amax", include_self=False
        )
    total = torch.zeros(num_users, items.shape[1]).index_add_(
        0, pairs[0], items[pairs[1]] * weight[:, None].to(items.dtype)
    )
    mass = torch.zeros(num_users).index_add_(0, pairs[0], weight)
    return total / torch.where(mass > 0, mass, torch.ones_like(mass)).unsqueeze(1).to(items.dtype)


def _check_strength(interactions: Tensor, strength: Tensor | None) -> None:
    if strength is None:
        return
    if strength.shape != interactions.shape[1:]:
        raise ValidationError(
            f"strength must have one value per pair ({interactions.shape[1]}), "
            f"got shape {tuple(strength.shape)}"
        )
    if strength.numel() and not bool(torch.isfinite(strength).all() & (strength > 0).all()):
        raise ValidationError("strength must be positive and finite")


def blend(model_scores: Tensor, kernels: Sequence[Tensor], weights: Sequence[float]) -> Tensor:
    """``standardize(model) + sum_k weights[k] * standardize(kernels[k])``, each standardized
    per row (per user) over the items, so the weights do not depend on the scores' scales; the
    model's scores unchanged when every weight is zero.

    Raises:
        ValidationError: Different numbers of kernels and weights.
    """
    if len(kernels) != len(weights):
        raise ValidationError(f"{len(kernels)} kernels but {len(weights)} weights")
    if not any(weights):
        return model_scores
    kernels = [standardize(k) if w else k for k, w in zip(kernels, weights, strict=True)]
    return blend_standardized(standardize(model_scores), kernels, weights)


def blend_standardized(
    model_scores: Tensor, kernels: Sequence[Tensor], weights: Sequence[float]
) -> Tensor:
    """:func:`blend` of scores and kernels already :func:`standardize`-d (to try many weights
    on the same ones); with every weight zero, the standardized model scores."""
    out = model_scores.clone()
    for kernel, weight in zip(kernels, weights, strict=True):
        if weight:
            out.add_(kernel, alpha=weight)
    return out


def standardize(x: Tensor) -> Tensor:
    """``x`` standardized per row (over the last axis; a constant row becomes 0)."""
    mean = x.mean(-1, keepdim=True)
    std = x.std(-1, keepdim=True)
    return (x - mean) / torch.where(std > 0, std, torch.ones_like(std))


def _unit(x: Tensor) -> Tensor:
    return F.normalize(torch.nan_to_num(x.float()), dim=1)


def _principal(x: Tensor, rank: int) -> tuple[Tensor, Tensor]:
    """Mean and ``(width, r)`` first principal directions of the rows of ``x`` (an even
    sample of at most :data:`FIT_ROWS`), ``r = min(rank, rows, width)``; signs fixed so the
    result does not depend on the solver."""
    mean = x.mean(0)
    sample = (x - mean)[:: max(1, math.ceil(len(x) / FIT_ROWS))]
    _, _, vt = torch.linalg.svd(sample.double(), full_matrices=False)
    basis = vt[: min(rank, len(vt))].t()
    sign = torch.sign(basis[basis.abs().argmax(0), torch.arange(basis.shape[1])])
    return mean, (basis * sign).float()
