r"""The content taste model: each user's taste read from the content of their products, trained
with a listwise (softmax) likelihood.

A user is described by the products they interacted with, not by an id: each product's feature
vector :math:`\mathbf{x}_j` (its modality vectors and price, :func:`item_features`) goes through
an input MLP :math:`q`, and the user's products are averaged, each weighted by what the pair
says of the taste, :math:`w_{uj} = \exp(\mathbf{a}^\top\mathbf{o}_{uj} + c)` (a learned
function of the pair's per-type features :math:`\mathbf{o}_{uj}`: bought or not, how many
views, ...):

.. math::
    \mathbf{m}_u = \frac{\sum_{j} w_{uj}\, q(\mathbf{x}_j)}{\sum_j w_{uj}}, \qquad
    \mathbf{h}_u = \mathbf{m}_u + \mathrm{MLP}([\mathbf{m}_u, \log(1 + \textstyle\sum_j w_{uj})])
        + F\,\bar{\mathbf{m}}_{\mathrm{followees}(u)}

(the last term, the mean of the followees' :math:`\mathbf{m}`, when users follow users), and a
product scores :math:`s_{ui} = \mathbf{h}_u^\top e(\mathbf{x}_i) + b_i` with an output MLP
:math:`e` and a popularity term :math:`b_i` (zero for products without training
interactions: they are ranked by content alone).

**Training** is a masked softmax: each epoch, each user's products are split at random into
an input share and a target share (:attr:`TasteConfig.mask`); the loss is the negative log
softmax probability of each target among the products that have training interactions and
are not in the input. That is how a shop's users are often modelled as choosing (each next
product with probability proportional to :math:`\exp` of its score, without replacement), so
the item terms learn each product's popularity with the users' tastes factored out, and the
user vector learns what a handful of products says of a taste (how sure one can be after one
jacket, or after three). The weights are averaged over the steps (an exponential moving
average, :attr:`TasteConfig.ema`) and kept at the epoch of the best validation score.

The model is the learned counterpart of the ceiling benchmark's taste posterior
(``benchmarks/recommend_ceiling.py``), which is handed the shop generator's hidden attributes
and model; this one sees only the modality vectors.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphfusion.errors import ValidationError
from graphfusion.models.baselines import check_users, is_integer
from graphfusion.models.neighbourhood import check_follows, principal, profiles
from graphfusion.progress import progress_bar
from graphfusion.repeatable import repeatable

__all__ = ["TasteConfig", "TasteInputs", "TasteModel", "fit_taste", "item_features", "FEATURE_MAX"]

log = logging.getLogger("graphfusion.models")

#: The largest absolute value of an item feature the model accepts, as the fusion model's
#: bound on the features it reads as they are: modality vectors are about unit, a centred log
#: price below 1,000; a larger value is not a feature of a sane scale, and its scores are
#: meaningless or infinite.
FEATURE_MAX = 1e6


@dataclass(frozen=True)
class TasteConfig:
    """How :func:`fit_taste` trains a :class:`TasteModel`.

    Attributes:
        dim: Size of the user and item vectors.
        hidden: Width of the MLPs' hidden layers.
        epochs: Most training epochs.
        lr: Adam learning rate.
        batch_size: Users per step.
        mask: Share of each user's products that are targets in an epoch (users with one
            product have none).
        ema: Decay of the moving average of the weights (0: none).
        patience: Epochs without a better validation score before stopping.
        seed: Seeds the initialization, the masks and the order of the users.
    """

    dim: int = 128
    hidden: int = 256
    epochs: int = 80
    lr: float = 3e-3
    batch_size: int = 512
    mask: float = 0.3
    ema: float = 0.995
    patience: int = 20
    seed: int = 0

    def check(self) -> None:
        """Raise :class:`~graphfusion.errors.ValidationError` for a setting out of range."""
        if min(self.dim, self.hidden, self.epochs, self.batch_size, self.patience) < 1:
            raise ValidationError("dim, hidden, epochs, batch_size and patience must be >= 1")
        if not (0.0 < self.mask < 1.0) or not (0.0 <= self.ema < 1.0) or not self.lr > 0:
            raise ValidationError("mask must be in (0, 1), ema in [0, 1) and lr > 0")


def item_features(
    modalities: dict[str, Tensor],
    log_price: Tensor | None = None,
    *,
    centre: float | None = None,
    projections: Mapping[str, tuple[Tensor, Tensor]] | None = None,
) -> Tensor:
    r"""``(num_items, width)`` input features of the items: their modality vectors (as
    :func:`graphfusion.models.neighbourhood.item_modalities` gives them, in name order) and,
    with ``log_price``, the log price centred (0 where unknown).

    Args:
        modalities: ``(num_items, width)`` vectors per modality.
        log_price: ``(num_items,)`` log prices (NaN where unknown), or None.
        centre: What the log prices are centred on; None: the mean of the known ones.
        projections: Per modality, a ``(width,)`` mean and ``(width, r)`` directions the
            modality's vectors are projected on (scaled by :math:`\sqrt{r / width}`, so the
            projection's values are about as large as the vector's): how a wide photo vector
            is cut to its principal directions.

    Returns:
        The features; NaN and infinite entries of the modality vectors count as 0 (as
        :func:`graphfusion.models.neighbourhood.item_modalities` reads them).

    Raises:
        ValidationError: No modality, one that is not 2-D, rows that differ in number, or a
            ``log_price`` of another length.
    """
    if not modalities:
        raise ValidationError("the items have no modality vectors")
    parts = []
    for m in sorted(modalities):
        if modalities[m].dim() != 2:
            raise ValidationError(
                f"{m} must be (num_items, width), got {tuple(modalities[m].shape)}"
            )
        x = torch.nan_to_num(modalities[m].float(), nan=0.0, posinf=0.0, neginf=0.0)
        if projections is not None and m in projections:
            mean, basis = projections[m]
            x = (x - mean) @ basis * math.sqrt(basis.shape[1] / max(basis.shape[0], 1))
        parts.append(x)
    n = len(parts[0])
    if any(len(p) != n for p in parts):
        raise ValidationError("every modality needs one row per item")
    if log_price is not None:
        if log_price.shape != (n,):
            raise ValidationError(f"log_price must be ({n},), got {tuple(log_price.shape)}")
        known = torch.isfinite(log_price)
        if centre is None:
            centre = float(log_price[known].float().mean()) if known.any() else 0.0
        centred = log_price.float() - centre
        parts.append(torch.where(known, centred, torch.zeros_like(centred))[:, None])
    return torch.cat(parts, 1)


class TasteInputs(nn.Module):
    """How a catalogue's modality vectors and prices become :class:`TasteModel` features
    (:func:`item_features`), with what is fitted on the training catalogue saved (the
    principal directions of the modalities wider than ``max_width``, the price centre), so
    that products added later get features on the same scale.

    Args:
        widths: Width of each modality's vectors.
        prices: Whether a log price is a feature.
        rank: Principal directions kept of a wide modality.
        max_width: Modalities wider than this are projected on their principal directions.
    """

    centre: Tensor

    def __init__(
        self, widths: Mapping[str, int], prices: bool, rank: int = 128, max_width: int = 512
    ) -> None:
        super().__init__()
        self.names = sorted(widths)
        self.widths = dict(widths)
        self.prices = prices
        self.projected = [m for m in self.names if widths[m] > max_width]
        for m in self.projected:
            self.register_buffer(f"mean_{m}", torch.zeros(widths[m]))
            self.register_buffer(f"basis_{m}", torch.zeros(widths[m], min(rank, widths[m])))
        self.register_buffer("centre", torch.zeros(()))
        cut = {m: min(rank, widths[m]) for m in self.projected}
        #: Width of the features.
        self.width = sum(cut.get(m, widths[m]) for m in self.names) + int(prices)

    def _buffer(self, name: str) -> Tensor:
        value = self._buffers[name]
        assert value is not None
        return value

    def fit(self, modalities: Mapping[str, Tensor], log_price: Tensor | None) -> None:
        """Fit the principal directions and the price centre on the catalogue's items."""
        for m in self.projected:
            basis = self._buffer(f"basis_{m}")
            mean, found = principal(modalities[m].float(), basis.shape[1])
            self._buffers[f"mean_{m}"] = mean
            self._buffers[f"basis_{m}"] = F.pad(found, (0, basis.shape[1] - found.shape[1]))
        known = log_price[torch.isfinite(log_price)] if log_price is not None else None
        self.centre = known.float().mean() if known is not None and len(known) else self.centre

    def forward(self, modalities: Mapping[str, Tensor], log_price: Tensor | None) -> Tensor:
        """``(n, width)`` features of items from their modality vectors (a missing modality
        counts as zeros) and log prices (NaN where unknown; None: all unknown).

        Raises:
            ValidationError: A modality of another width, or prices of another length.
        """
        n = len(next(iter(modalities.values()))) if modalities else 0
        given = {}
        for m in self.names:
            x = modalities.get(m, torch.zeros(n, self.widths[m]))
            if x.dim() != 2 or x.shape[1] != self.widths[m]:
                raise ValidationError(f"{m} must be (n, {self.widths[m]})")
            given[m] = x
        projections = {m: (self._buffer(f"mean_{m}"), self._buffer(f"basis_{m}"))
                       for m in self.projected}  # fmt: skip
        price = None
        if self.prices:
            price = log_price if log_price is not None else torch.full((n,), math.nan)
        return item_features(given, price, centre=float(self.centre), projections=projections)


class TasteModel(nn.Module):
    """The content taste model (see the module docstring).

    Args:
        features: ``(num_items, width)`` item features (:func:`item_features`), finite.
        how_width: Number of per-pair features (:math:`\\mathbf{o}_{uj}`).
        warm: ``(num_items,)`` bool, the products with training interactions (the others get
            no popularity term and are never training targets).
        dim: Size of the user and item vectors.
        hidden: Width of the MLPs' hidden layers.

    Raises:
        ValidationError: Bad shapes, or features that are not finite or of an absurd scale
            (above :data:`FEATURE_MAX`).
    """

    features: Tensor
    warm: Tensor

    def __init__(
        self, features: Tensor, how_width: int, warm: Tensor, dim: int = 128, hidden: int = 256
    ) -> None:
        super().__init__()
        if features.dim() != 2 or not len(features):
            raise ValidationError("features must be (num_items, width) with items")
        _check_features(features)
        if warm.shape != (len(features),) or warm.dtype != torch.bool:
            raise ValidationError(f"warm must be a bool ({len(features)},) tensor")
        if how_width < 1:
            raise ValidationError("how_width must be >= 1")
        width = features.shape[1]
        self.register_buffer("features", features.float(), persistent=False)
        self.register_buffer("warm", warm.clone(), persistent=False)
        self.q = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.e = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.enc = nn.Sequential(nn.Linear(dim + 1, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.how = nn.Linear(how_width, 1)
        self.followed = nn.Linear(dim, dim, bias=False)
        self.bias = nn.Parameter(torch.zeros(len(features)))

    @property
    def num_items(self) -> int:
        """Number of items the model scores."""
        return len(self.features)

    def user_vectors(
        self,
        interactions: Tensor,
        how: Tensor,
        rows: int,
        follows: Tensor | None = None,
        followee_pairs: tuple[Tensor, Tensor] | None = None,
        inputs: Tensor | None = None,
    ) -> Tensor:
        """``(rows, dim)`` taste vectors of users from their products.

        Args:
            interactions: ``(2, E)`` user rows (below ``rows``) and item rows: the products
                that describe the users.
            how: ``(E, how_width)`` each pair's features.
            rows: Number of users described.
            follows: ``(2, F)`` follower rows (below ``rows``) and followee rows (rows of
                ``followee_pairs``), or None.
            followee_pairs: The followees' pairs and their features (``(2, E')``,
                ``(E', how_width)``; pairs of users no one here follows are left out); None:
                ``interactions`` and ``how``.
            inputs: ``(n, dim)`` the input vectors of the items the pairs refer to
                (:meth:`input_vectors`, computed once to serve many users); None: those of
                the model's items that the pairs refer to (computed for those alone).
        """
        theirs_pairs: tuple[Tensor, Tensor] | None = None
        if follows is not None and follows.numel():
            pairs, feats = followee_pairs if followee_pairs is not None else (interactions, how)
            # the followees' pairs alone: a batch of users follows a few of everyone
            theirs = torch.isin(pairs[0], follows[1])
            theirs_pairs = pairs[:, theirs], feats[theirs]
        if inputs is None:
            used = [interactions[1]]
            if theirs_pairs is not None:
                used.append(theirs_pairs[0][1])
            inputs = self._input_vectors_at(torch.cat(used))
        mean, mass = self._mean(inputs, interactions, how, rows)
        out = mean + self.enc(torch.cat([mean, torch.log1p(mass)[:, None]], 1))
        if follows is not None and theirs_pairs is not None:
            top = 1 + int(follows[1].max())
            followee, _ = self._mean(inputs, *theirs_pairs, top)
            out = out + self.followed(profiles(follows, followee, rows))
        return out

    def vectors_of(
        self,
        users: Tensor,
        interactions: Tensor,
        how: Tensor,
        num_users: int,
        follows: Tensor | None = None,
    ) -> Tensor:
        """``(len(users), dim)``: the rows ``users`` of :meth:`user_vectors` ``(interactions,
        how, num_users, follows)``, computed for those users alone (their own pairs and
        follows; the followees' profiles from every pair).

        Args:
            users: ``(n,)`` user rows below ``num_users`` (repeats allowed).
            interactions: ``(2, E)`` every user's pairs (user rows below ``num_users``).
            how: ``(E, how_width)`` each pair's features.
            num_users: Number of user rows.
            follows: ``(2, F)`` follower and followee user rows, or None.

        Raises:
            ValidationError: A user row out of range.
        """
        if users.dim() != 1 or (
            len(users) and not 0 <= int(users.min()) <= int(users.max()) < num_users
        ):
            raise ValidationError(f"users must be a (n,) tensor of rows below {num_users}")
        rows, back = torch.unique(users, return_inverse=True)
        row, followers = _batch_rows(rows, num_users, interactions[0], follows)
        mine = row >= 0
        own = torch.stack([row[mine], interactions[1, mine]])
        vectors = self.user_vectors(own, how[mine], len(rows), followers, (interactions, how))
        return vectors[back]

    def _mean(
        self, q: Tensor, interactions: Tensor, how: Tensor, num: int
    ) -> tuple[Tensor, Tensor]:
        """Each of ``num`` users' mean of ``q`` over their pairs, weighted by the pairs' learned
        weights, and the sum of those weights."""
        w = torch.exp(self.how(how).squeeze(1).clamp(-10.0, 10.0))
        total = torch.zeros(num, q.shape[1]).index_add_(
            0, interactions[0], w[:, None] * q[interactions[1]]
        )
        mass = torch.zeros(num).index_add_(0, interactions[0], w)
        return total / mass.clamp_min(1e-12)[:, None], mass

    def input_vectors(self, features: Tensor | None = None) -> Tensor:
        """``(n, dim)`` input vectors (:math:`q`) of the model's items, or of other items'
        ``features``.

        Raises:
            ValidationError: ``features`` not finite or of an absurd scale.
        """
        return self.q(self.features if features is None else _check_features(features))

    def _input_vectors_at(self, items: Tensor) -> Tensor:
        """``(num_items, dim)`` input vectors with only the rows ``items`` computed (the others
        zero): a training batch's pairs refer to a few of a large catalogue's products."""
        rows = torch.unique(items)
        q = self.q(self.features[rows])
        return q.new_zeros(self.num_items, q.shape[1]).index_copy(0, rows, q)

    def item_vectors(self, features: Tensor | None = None) -> Tensor:
        """``(n, dim)`` output vectors of the model's items, or of other items' ``features``
        (new products: ranked by content, without a popularity term).

        Raises:
            ValidationError: ``features`` not finite or of an absurd scale.
        """
        return self.e(self.features if features is None else _check_features(features))

    def scores(self, user_vectors: Tensor, content_only: bool = False) -> Tensor:
        """``(n, num_items)`` scores of the items for ``user_vectors`` (:meth:`user_vectors`);
        ``content_only`` leaves out the popularity term."""
        out = user_vectors @ self.item_vectors().t()
        return out if content_only else out + self.bias * self.warm

    def loss(self, user_vectors: Tensor, inputs: Tensor, targets: Tensor) -> Tensor:
        """Mean negative log softmax probability of the ``targets`` (``(2, T)``: rows of
        ``user_vectors``, item rows) among the warm items that are not ``inputs`` (``(2, I)``)
        of the same row."""
        s = self.scores(user_vectors)
        s = s.masked_fill(~self.warm, -math.inf)
        s = s.index_put((inputs[0], inputs[1]), torch.tensor(-math.inf))
        logp = F.log_softmax(s, 1)
        return -logp[targets[0], targets[1]].mean()


def _check_features(features: Tensor) -> Tensor:
    """``features`` as float32, checked finite and within :data:`FEATURE_MAX`.

    Raises:
        ValidationError: A value that is not finite or is larger than :data:`FEATURE_MAX`.
    """
    x = features.float()
    if not bool(torch.isfinite(x).all()):
        raise ValidationError("features must be finite")
    top = float(x.abs().max()) if x.numel() else 0.0
    if top > FEATURE_MAX:
        raise ValidationError(
            f"features must be of a sane scale (|value| <= {FEATURE_MAX:g}), got {top:g}: "
            "normalize the modality vectors (item_features reads them as they are)"
        )
    return x


def _batch_rows(
    batch: Tensor, num_users: int, pair_users: Tensor, follows: Tensor | None
) -> tuple[Tensor, Tensor | None]:
    """Where some users' pairs and follows sit in a batch of them.

    Args:
        batch: ``(n,)`` distinct user rows below ``num_users``.
        num_users: Number of user rows.
        pair_users: ``(E,)`` the user row of each pair.
        follows: ``(2, F)`` follower and followee user rows, or None.

    Returns:
        ``(E,)`` each pair's row in ``batch`` (-1 for another user's pair), and the batch's
        follows with the followers as rows of ``batch`` (the followees stay user rows; None
        without ``follows``).
    """
    slot = torch.full((num_users,), -1, dtype=torch.long)
    slot[batch] = torch.arange(len(batch))
    followers = None
    if follows is not None and follows.numel():
        kept = slot[follows[0]] >= 0
        followers = torch.stack([slot[follows[0, kept]], follows[1, kept]])
    return slot[pair_users], followers


@repeatable
def fit_taste(
    features: Tensor,
    interactions: Tensor,
    how: Tensor,
    num_users: int,
    *,
    follows: Tensor | None = None,
    validate: Callable[[Tensor], float] | None = None,
    validate_users: Tensor | None = None,
    config: TasteConfig | None = None,
    progress: bool = False,
    stop: Callable[[int], bool] | None = None,
) -> tuple[TasteModel, list[dict[str, float]]]:
    """Train a :class:`TasteModel` on the training pairs.

    Args:
        features: ``(num_items, width)`` item features (:func:`item_features`).
        interactions: ``(2, E)`` training user rows and item rows (each pair once).
        how: ``(E, k)`` each pair's features (finite).
        num_users: Number of user rows.
        follows: ``(2, F)`` follower and followee user rows, or None.
        validate: Scores the ``(num_users, num_items)`` scores of every user (all training
            pairs as inputs), higher better: each epoch's, to keep the best epoch and stop
            early; None: the last epoch is kept.
        validate_users: The user rows whose scores ``validate`` gets, in this order (every
            user when None): a sample bounds the memory of a large shop's validation.
        config: Training settings (defaults: :class:`TasteConfig`).
        progress: Show a progress bar.
        stop: Asked after each step and each epoch, with the epoch in progress, whether to
            stop now (a Ctrl-C, :func:`graphfusion.train.train`): True abandons the epoch
            in progress and keeps the best epoch so far, as early stopping does (the model
            as initialized when no epoch was completed).

    Returns:
        The model (in eval mode) and per epoch ``epoch``, ``loss`` and ``valid`` (where
        ``validate`` is given).

    Raises:
        ValidationError: Bad shapes, rows out of range, a repeated pair, non-finite ``how``,
            features that are not finite or of an absurd scale (:data:`FEATURE_MAX`), or a
            loss that is not finite.

    Without a user of two or more products there is no target to learn from: the model is
    returned untrained, with no epochs, and a warning is logged.
    """
    cfg = config or TasteConfig()
    cfg.check()
    if interactions.dim() != 2 or interactions.shape[0] != 2 or not interactions.numel():
        raise ValidationError("interactions must be a non-empty (2, E) tensor")
    if how.dim() != 2 or len(how) != interactions.shape[1]:
        raise ValidationError("how must be (E, k), one row per pair")
    if not bool(torch.isfinite(how).all()):
        raise ValidationError("how must be finite")
    if not is_integer(interactions):
        raise ValidationError(f"interactions must hold integer rows, got {interactions.dtype}")
    if (
        int(interactions.min()) < 0 or int(interactions[0].max()) >= num_users
        or int(interactions[1].max()) >= len(features)
    ):  # fmt: skip
        raise ValidationError("interactions refer to rows out of range")
    if validate_users is not None:
        try:
            check_users(validate_users, num_users)
        except ValidationError as error:
            raise ValidationError(f"validate_users: {error}") from None
    if torch.unique(interactions, dim=1).shape[1] != interactions.shape[1]:
        raise ValidationError("interactions must hold each pair once")
    follows = check_follows(follows, num_users)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    warm = torch.zeros(len(features), dtype=torch.bool)
    warm[interactions[1]] = True
    model = TasteModel(features, how.shape[1], warm, cfg.dim, cfg.hidden)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    average = copy.deepcopy(model.state_dict())
    users, how = interactions[0], how.float()
    several = torch.bincount(users, minlength=num_users)[users] >= 2
    if not bool(several.any()):
        log.warning(
            "taste model not trained: no user has two or more products, so none can be a "
            "target (its scores are of an untrained model)"
        )
        model.eval()
        return model, []

    def all_scores() -> Tensor:
        with torch.no_grad():
            vectors = model.user_vectors(interactions, how, num_users, follows)
            return model.scores(vectors if validate_users is None else vectors[validate_users])

    history: list[dict[str, float]] = []
    best, best_state, waited = -math.inf, copy.deepcopy(average), 0
    bar = progress_bar(range(1, cfg.epochs + 1), desc="train taste", progress=progress)
    stopped = False
    for epoch in bar:
        model.train()
        target = (torch.rand(len(users), generator=gen) < cfg.mask) & several
        order = torch.randperm(num_users, generator=gen)
        total, steps = 0.0, 0
        for start in range(0, num_users, cfg.batch_size):
            batch = order[start : start + cfg.batch_size]
            row, followers = _batch_rows(batch, num_users, users, follows)
            mine = row >= 0
            into, out = mine & ~target, mine & target
            if not bool(out.any()):
                continue
            inputs = torch.stack([row[into], interactions[1, into]])
            h = model.user_vectors(inputs, how[into], len(batch), followers, (interactions, how))
            loss = model.loss(h, inputs, torch.stack([row[out], interactions[1, out]]))
            if not bool(torch.isfinite(loss)):
                raise ValidationError(
                    f"the taste model's loss is not finite (epoch {epoch}): is the learning "
                    "rate too high, or are the item features of too large a scale?"
                )
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, steps = total + loss.item(), steps + 1
            with torch.no_grad():
                for k, v in model.state_dict().items():
                    average[k].mul_(cfg.ema).add_(v, alpha=1.0 - cfg.ema)
            if stop is not None and stop(epoch):
                stopped = True
                break
        if stopped:  # the epoch in progress is abandoned
            bar.set_description(f"train taste (interrupted at epoch {epoch})")
            break
        current = copy.deepcopy(model.state_dict())
        model.load_state_dict(average)
        model.eval()
        entry = {"epoch": float(epoch), "loss": total / max(steps, 1)}
        if validate is not None:
            entry["valid"] = float(validate(all_scores()))
        history.append(entry)
        bar.set_postfix(loss=f"{entry['loss']:.3f}", valid=f"{entry.get('valid', 0.0):.4f}")
        score = entry.get("valid", float(epoch))
        if score > best:
            best, best_state, waited = score, copy.deepcopy(average), 0
        else:
            waited += 1
        model.load_state_dict(current)
        if stop is not None and stop(epoch):
            bar.set_description(f"train taste (interrupted at epoch {epoch})")
            break
        if waited >= cfg.patience:
            break
    model.load_state_dict(best_state)
    model.eval()
    return model, history
