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

Three more fixed kernels look at the same inputs another way (:func:`kernel_scores`):

- **sharp**: :math:`\frac{1}{\beta}\log \sum_j s_{uj} e^{\beta(\cos(\mathbf{k}_i,
  \mathbf{k}_j) - 1)} / \sum_j s_{uj}` with :math:`\beta` = :data:`SHARPNESS`: near the
  likeness of :math:`i` to the *most* alike of the user's products, where the content kernel
  takes the mean likeness (a user who buys jackets and shoes wants more jackets or more
  shoes, not what lies halfway between them);
- **price**: a product's price level :math:`\ell_i`, its log price minus the mean log price
  of the :data:`PRICE_NEIGHBOURS` products with the most alike text (what it costs among
  products of its kind, :func:`price_levels`), times the user's mean level (their profile of
  the levels): a user who buys above their products' usual price is shown the dearer ones;
- **followees**: the mean content profile of the users they follow (:data:`FOLLOW_EDGE`),
  :math:`\bar{\mathbf{p}}_{F(u)}^\top\mathbf{k}_i`.

The fusion model adds a sixth, learned one, **taste**: the scores of its content taste model
(:mod:`graphfusion.models.taste`), trained apart after the GNN.

The fusion model blends the kernels into its scores after training (:func:`blend`), with
weights fitted on the validation split: joint training would let the id embeddings absorb what
the kernels explain, while a blended kernel keeps its own, smoother view of the content. On the
Myntra catalogue shop the content and learned blends lifted the fusion model's warm Recall@20
from 0.098 to 0.115 (mean of 3 seeds; README, recommendation benchmark, which also gives what
the sharp, price and followees kernels add).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import HeteroData

from graphfusion.errors import ValidationError
from graphfusion.models.baselines import check_edges, check_users

__all__ = [
    "ContentNeighbourhood",
    "item_modalities",
    "pooled",
    "profiles",
    "check_follows",
    "principal",
    "kernel_scores",
    "sharp_kernel",
    "price_levels",
    "blend",
    "search_weights",
    "WEIGHTS",
    "KERNELS",
    "IMAGE_EDGE",
    "FOLLOW_EDGE",
    "SHARPNESS",
    "PRICE_NEIGHBOURS",
]

#: The relationship whose target's ``image_vec`` is a product's photo.
IMAGE_EDGE = "HAS_IMAGE"
#: The relationship from a user to a user they follow (the followees kernel).
FOLLOW_EDGE = "FOLLOWS"
#: Blend weights tried on the validation split (0: the model's scores alone).
WEIGHTS = (0.0, 0.125, 0.25, 0.5, 1.0, 2.0)
#: The kernels blended, in the order of the columns of ``ContentNeighbourhood.weight``.
#: ``taste`` is the fusion model's own (:class:`graphfusion.models.taste.TasteModel`), not one
#: of :class:`ContentNeighbourhood`'s.
KERNELS = ("content", "learned", "sharp", "price", "followees", "taste")
#: The sharp kernel's :math:`\beta`: how much more the most alike of a user's products counts.
SHARPNESS = 3.0
#: Products with the most alike text that a product's price level is measured against.
PRICE_NEIGHBOURS = 100
#: Products compared at once by the kernels that compare every product with many (memory).
CHUNK = 2048
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
    """The kernels (see the module docstring) over a fixed set of items.

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
        log_price: ``(num_items,)`` the items' log prices (NaN where unknown) for the price
            kernel; None or none known: no price kernel.
        follows: ``(2, F)`` follower and followee user rows for the followees kernel; None or
            empty: no followees kernel.

    The principal directions (``mean_*``, ``basis_*``) and the blend weights (``weight``,
    ``(2, len(KERNELS))``: rows for the model's scores and its content-only scores, columns for
    the :data:`KERNELS`) are saved with the model; loading them replaces those fitted here,
    whatever their shape (a weight saved before the later kernels existed gets zero columns
    for them).

    Raises:
        ValidationError: A bad ``rank``, ``interactions``, ``strength``, ``log_price`` or
            ``follows``.
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
        log_price: Tensor | None = None,
        follows: Tensor | None = None,
    ) -> None:
        super().__init__()
        if rank < 1:
            raise ValidationError(f"rank must be >= 1, got {rank}")
        _check_strength(interactions, strength)
        self.names = sorted(modalities)
        self._raw = {m: modalities[m].float() for m in self.names}
        self.num_users = num_users
        self.num_items = len(next(iter(self._raw.values()))) if self._raw else 0
        check_edges(interactions, num_users, self.num_items)
        for m in self.names:
            width = self._raw[m].shape[1]
            empty = (torch.zeros(width), torch.zeros(width, 0))
            mean, basis = principal(self._raw[m], rank) if fit else empty
            self.register_buffer(f"mean_{m}", mean)
            self.register_buffer(f"basis_{m}", basis)
        self.register_buffer("weight", torch.zeros(2, len(KERNELS)))
        if log_price is not None and log_price.shape != (self.num_items,):
            raise ValidationError(
                f"log_price must be ({self.num_items},), got {tuple(log_price.shape)}"
            )
        self._log_price = (
            log_price.float()
            if log_price is not None and bool(torch.isfinite(log_price).any())
            else None
        )
        self._follows = check_follows(follows, num_users)
        self._interactions = interactions
        self._strength = strength
        self._cache: tuple[Tensor, Tensor] | None = None
        self._levels: Tensor | None = None

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        for name in list(self._buffers):
            if prefix + name in state_dict:  # the saved directions, whatever their shape
                self._buffers[name] = state_dict[prefix + name].clone()
        saved = self._buffers["weight"]
        if saved is not None and (saved.dim() == 1 or saved.shape[1] < len(KERNELS)):
            saved = saved.unsqueeze(1) if saved.dim() == 1 else saved  # content kernel only
            self._buffers["weight"] = F.pad(saved, (0, len(KERNELS) - saved.shape[1]))
            state_dict[prefix + "weight"] = self._buffers["weight"]
        self._cache = self._levels = None
        super()._load_from_state_dict(state_dict, prefix, *args)

    @property
    def available(self) -> tuple[str, ...]:
        """The :data:`KERNELS` this neighbourhood can compute: all but ``taste`` (the fusion
        model's), ``price`` without prices and ``followees`` without follows."""
        missing = {"price", "taste"} if self._log_price is None else {"taste"}
        if self._follows is None:
            missing.add("followees")
        return tuple(k for k in KERNELS if k not in missing)

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

    def levels(self) -> Tensor:
        """``(num_items,)`` the items' price levels (:func:`price_levels` among themselves;
        cached).

        Raises:
            ValidationError: No prices were given.
        """
        if self._log_price is None:
            raise ValidationError("the neighbourhood has no prices")
        if self._levels is None:
            text = self._level_text(self._raw)
            self._levels = price_levels(self._log_price, text, self._log_price, text)
        return self._levels

    def levels_of(self, log_price: Tensor, modalities: dict[str, Tensor]) -> Tensor:
        """``(n,)`` price levels of other items (new products) from their log prices (NaN
        where unknown) and modality vectors, measured against this neighbourhood's items.

        Raises:
            ValidationError: No prices were given to the neighbourhood.
        """
        if self._log_price is None:
            raise ValidationError("the neighbourhood has no prices")
        reference = self._level_text(self._raw)
        return price_levels(log_price.float(), self._level_text(modalities), self._log_price,
                            reference, exclude_self=False)  # fmt: skip

    def _level_text(self, modalities: dict[str, Tensor]) -> Tensor:
        """What price levels compare products by: their text (unit rows), or their kernel
        vectors where the items have no text."""
        if "text_vec" in self.names:
            return _unit(modalities["text_vec"])
        return _unit(self.encode(modalities))

    def kernels(
        self, users: Tensor, items: Tensor | None = None, names: Sequence[str] | None = None
    ) -> dict[str, Tensor]:
        """``(len(users), num_items)`` scores of each kernel ``names`` (all
        :attr:`available` ones when None) for ``users`` (:func:`kernel_scores`); the learned
        one over the ``(num_items, d)`` item vectors ``items``.

        Raises:
            ValidationError: A kernel that is not available, ``learned`` without ``items`` or
                with items of another number, or ``users`` that are not user rows.
        """
        names = self.available if names is None else tuple(names)
        unknown = [n for n in names if n not in self.available]
        if unknown:
            raise ValidationError(f"no {', '.join(unknown)} kernel here: {self.available}")
        check_users(users, self.num_users)
        if (
            "learned" in names
            and items is not None
            and (items.dim() != 2 or len(items) != self.num_items)
        ):
            raise ValidationError(
                f"the learned kernel needs ({self.num_items}, d) item vectors, "
                f"got {tuple(items.shape)}"
            )
        return kernel_scores(
            names, users, self._interactions, self.num_users, self.vectors()[1],
            strength=self._strength, learned=items,
            levels=self.levels() if "price" in names else None, follows=self._follows,
        )  # fmt: skip

    def _profiles(self, items: Tensor) -> Tensor:
        return profiles(self._interactions, items, self.num_users, self._strength)


def kernel_scores(
    names: Sequence[str],
    users: Tensor,
    interactions: Tensor,
    num_users: int,
    vectors: Tensor,
    *,
    strength: Tensor | None = None,
    learned: Tensor | None = None,
    levels: Tensor | None = None,
    follows: Tensor | None = None,
) -> dict[str, Tensor]:
    """``(len(users), num_items)`` scores of the kernels ``names`` (of :data:`KERNELS`; the
    module docstring defines them) for ``users``.

    Args:
        names: Which kernels.
        users: Rows of the users scored.
        interactions: ``(2, E)`` user-item pairs that make the profiles.
        num_users: Number of user rows.
        vectors: ``(num_items, r)`` the items' content kernel vectors.
        strength: ``(E,)`` weight of each pair (:func:`profiles`).
        learned: ``(num_items, d)`` item vectors of the learned kernel.
        levels: ``(num_items,)`` price levels (:func:`price_levels`) of the price kernel.
        follows: ``(2, F)`` follower and followee rows of the followees kernel.

    Raises:
        ValidationError: An unknown kernel, or one without what it needs.
    """
    need = {"learned": learned, "price": levels, "followees": follows}
    for name in names:
        if name not in KERNELS:
            raise ValidationError(f"unknown kernel {name!r}; use some of {KERNELS}")
        if name in need and need[name] is None:
            raise ValidationError(f"the {name} kernel needs its input")
    out: dict[str, Tensor] = {}
    profile = (
        profiles(interactions, vectors, num_users, strength)
        if {"content", "followees"} & set(names)
        else vectors[:0]
    )
    for name in names:
        if name == "content":
            out[name] = profile[users] @ vectors.t()
        elif name == "learned" and learned is not None:
            out[name] = profiles(interactions, learned, num_users, strength)[users] @ learned.t()
        elif name == "sharp":
            out[name] = sharp_kernel(users, interactions, num_users, vectors, strength)
        elif name == "price" and levels is not None:
            mean = profiles(interactions, levels[:, None], num_users, strength)[users]
            out[name] = mean * levels[None, :]
        elif name == "followees" and follows is not None:
            out[name] = profiles(follows, profile, num_users)[users] @ vectors.t()
    return out


def sharp_kernel(
    users: Tensor,
    interactions: Tensor,
    num_users: int,
    vectors: Tensor,
    strength: Tensor | None = None,
    beta: float = SHARPNESS,
) -> Tensor:
    r"""``(len(users), num_items)``: per user, :math:`\frac{1}{\beta}\log \sum_j s_{uj}
    e^{\beta(\cos(i, j) - 1)} / \sum_j s_{uj}` over the user's items :math:`j` (``vectors``
    compared by cosine; pairs and strengths as :func:`profiles` takes them): near the greatest
    likeness to any one of them for a large ``beta``, the mean likeness as it goes to 0. A
    user without items gets a constant row."""
    if not interactions.numel():
        _check_strength(interactions, strength)
        return torch.zeros(len(users), len(vectors))
    distinct, back = torch.unique(users, return_inverse=True)
    if len(distinct) < len(users):  # a repeated user: each copy gets the user's row
        return sharp_kernel(distinct, interactions, num_users, vectors, strength, beta)[back]
    pairs, weight = _pair_weights(interactions, strength)
    row = torch.full((num_users,), -1, dtype=torch.long)
    row[users] = torch.arange(len(users))
    keep = row[pairs[0]] >= 0
    rows, cols, weight = row[pairs[0][keep]], pairs[1][keep], weight[keep]
    touched, col = torch.unique(cols, return_inverse=True)
    unit = _unit(vectors)
    total = torch.zeros(len(users), len(vectors))
    for start in range(0, len(touched), CHUNK):
        part = (col >= start) & (col < start + CHUNK)
        near = torch.exp(beta * (unit[touched[start : start + CHUNK]] @ unit.t() - 1.0))
        mine = torch.sparse_coo_tensor(
            torch.stack([rows[part], col[part] - start]),
            weight[part],
            (len(users), len(near)),
            check_invariants=False,
        )
        total += torch.sparse.mm(mine, near)
    mass = torch.zeros(len(users)).index_add_(0, rows, weight).clamp(min=1e-12)
    return torch.log(total / mass[:, None] + 1e-30) / beta


def price_levels(
    log_price: Tensor,
    text: Tensor,
    reference_price: Tensor,
    reference_text: Tensor,
    neighbours: int = PRICE_NEIGHBOURS,
    *,
    exclude_self: bool = True,
) -> Tensor:
    """``(n,)``: each item's log price minus the mean log price of the ``neighbours``
    reference items with the most alike ``text`` (unit rows, compared by dot product): its
    price level among items of its kind. Reference items of unknown price (NaN) are not
    compared; an item of unknown price has level 0. ``exclude_self``: the items are the
    reference items (same rows), each not compared with itself.

    Raises:
        ValidationError: ``exclude_self`` with items that are not the reference items.
    """
    if exclude_self and len(text) != len(reference_text):
        raise ValidationError("exclude_self needs the items to be the reference items")
    known = torch.isfinite(reference_price)
    position = torch.cumsum(known.long(), 0) - 1  # of each known reference in the compared
    compared, prices = reference_text[known], reference_price[known]
    k = min(neighbours, len(prices) - int(exclude_self))
    out = torch.zeros(len(text))
    if k < 1:
        return out
    for start in range(0, len(text), CHUNK):
        like = text[start : start + CHUNK] @ compared.t()
        if exclude_self:
            own = torch.arange(start, min(start + CHUNK, len(text)))
            own = own[known[own]]
            like[own - start, position[own]] = -math.inf
        out[start : start + CHUNK] = prices[like.topk(k, dim=1).indices].mean(1)
    return torch.where(torch.isfinite(log_price), log_price - out, torch.zeros_like(out))


def profiles(
    interactions: Tensor, items: Tensor, num_users: int, strength: Tensor | None = None
) -> Tensor:
    """``(num_users, width)``: each user's mean item vector over ``interactions`` (``(2, E)``
    user-item pairs), weighted by ``strength`` (``(E,)``, positive; None: all 1); a repeated
    pair counts once, with its greatest strength; zeros for users without any.

    Raises:
        ValidationError: ``strength`` is not one positive finite value per pair.
    """
    if not interactions.numel():
        _check_strength(interactions, strength)
        return torch.zeros(num_users, items.shape[1])
    pairs, weight = _pair_weights(interactions, strength)
    total = torch.zeros(num_users, items.shape[1]).index_add_(
        0, pairs[0], items[pairs[1]] * weight[:, None].to(items.dtype)
    )
    mass = torch.zeros(num_users).index_add_(0, pairs[0], weight)
    return total / torch.where(mass > 0, mass, torch.ones_like(mass)).unsqueeze(1).to(items.dtype)


def check_follows(follows: Tensor | None, num_users: int) -> Tensor | None:
    """``follows`` (``(2, F)`` follower and followee user rows), or None when it is None or
    empty.

    Raises:
        ValidationError: Not ``(2, F)``, or a row outside ``0 .. num_users - 1``.
    """
    if follows is None or not follows.numel():
        return None
    if follows.dim() != 2 or follows.shape[0] != 2:
        raise ValidationError(f"follows must be (2, F), got {tuple(follows.shape)}")
    if int(follows.min()) < 0 or int(follows.max()) >= num_users:
        raise ValidationError(f"follows must be user rows below {num_users}")
    return follows


def _pair_weights(interactions: Tensor, strength: Tensor | None) -> tuple[Tensor, Tensor]:
    """The distinct pairs of ``interactions`` and each one's weight: its greatest strength
    (1 without ``strength``)."""
    _check_strength(interactions, strength)
    pairs, inverse = torch.unique(interactions, dim=1, return_inverse=True)
    if strength is None:
        return pairs, torch.ones(pairs.shape[1])
    weight = torch.zeros(pairs.shape[1]).scatter_reduce_(
        0, inverse, strength.float(), "amax", include_self=False
    )
    return pairs, weight


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


def search_weights(
    score: Callable[[dict[str, float]], float], start: Mapping[str, float], rounds: int
) -> dict[str, float]:
    """Blend weights by coordinate search over :data:`WEIGHTS`: from ``start``, up to
    ``rounds`` passes over its names in order, each setting one weight to the value with the
    best ``score`` (the smaller on a tie), until a pass changes none; each weighting is scored
    once."""
    weights = dict(start)
    scored: dict[tuple[float, ...], float] = {}

    def known(trial: dict[str, float]) -> float:
        key = tuple(trial.values())
        if key not in scored:
            scored[key] = score(trial)
        return scored[key]

    for _ in range(rounds):
        before = dict(weights)
        for name in start:
            found = {w: known({**weights, name: w}) for w in WEIGHTS}
            weights[name] = max(WEIGHTS, key=lambda w: (found[w], -w))
        if weights == before:
            break
    return weights


def blend(model_scores: Tensor, kernels: Sequence[Tensor], weights: Sequence[float]) -> Tensor:
    """``standardize(model) + sum_k weights[k] * standardize(kernels[k])``, each standardized
    per row (per user) over the items, so the weights do not depend on the scores' scales; the
    model's scores unchanged when every weight is zero.

    Raises:
        ValidationError: Different numbers of kernels and weights, or a weight that is not
            finite (it would make every score NaN).
    """
    if len(kernels) != len(weights):
        raise ValidationError(f"{len(kernels)} kernels but {len(weights)} weights")
    if not all(math.isfinite(w) for w in weights):
        raise ValidationError(f"blend weights must be finite, got {list(weights)}")
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
    """``x`` standardized per row (over the last axis: zero mean, unit deviation over the row's
    ``n`` values, as :func:`graphfusion.light.standard`; a constant row becomes 0)."""
    if not x.shape[-1]:
        return x.clone()
    mean = x.mean(-1, keepdim=True)
    std = x.std(-1, keepdim=True, correction=0)
    # A constant row is told by its values, not by its deviation: its mean and deviation are
    # off by their rounding (huge for huge values), which (x - mean) / std would blow up.
    # A row with NaN stays NaN.
    varies = (x.amax(-1, keepdim=True) != x.amin(-1, keepdim=True)) & (std != 0)
    return torch.where(varies, (x - mean) / std, torch.zeros_like(x))


#: Rows whose largest absolute value lies outside ``[_SMALL, _LARGE]`` are rescaled before
#: they are normalized: their squares would underflow or overflow float32.
_SMALL, _LARGE = 1e-6, 1e15


def _unit(x: Tensor) -> Tensor:
    """Rows L2-normalized, whatever their scale (a row of 1e30 or 1e-30 keeps its direction);
    NaN and infinite entries count as 0, zero rows stay zero."""
    x = torch.nan_to_num(x.float(), nan=0.0, posinf=0.0, neginf=0.0)
    if x.dim() == 2 and x.shape[1] and len(x):
        scale = x.abs().amax(1, keepdim=True)
        odd = (scale > _LARGE) | ((scale < _SMALL) & (scale > 0))
        if bool(odd.any()):  # rows of ordinary scale are left exactly as they are
            x = torch.where(odd, x / torch.where(odd, scale, torch.ones_like(scale)), x)
    return F.normalize(x, dim=1)


def principal(x: Tensor, rank: int) -> tuple[Tensor, Tensor]:
    """Mean and ``(width, r)`` first principal directions of the rows of ``x`` (an even
    sample of at most :data:`FIT_ROWS`), ``r = min(rank, rows, width)``; signs fixed so the
    result does not depend on the solver."""
    mean = x.mean(0)
    sample = (x - mean)[:: max(1, math.ceil(len(x) / FIT_ROWS))]
    _, _, vt = torch.linalg.svd(sample.double(), full_matrices=False)
    basis = vt[: min(rank, len(vt))].t()
    sign = torch.sign(basis[basis.abs().argmax(0), torch.arange(basis.shape[1])])
    return mean, (basis * sign).float()
