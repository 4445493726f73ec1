"""The light-user blend: how users with one or two interactions are ranked.

A model's vector of a user it saw one or two interactions of is a poor guess of their taste,
so :class:`graphfusion.recommend.Recommender` ranks such users by a weighted mean of up to
four parts, each standardized over the products (:data:`PARTS`):

- ``popularity``: log(1 + interactions of the product);
- ``products``: the likeness of the product's fused vector to the mean fused vector of the
  user's products (its weight counts once per product of theirs);
- ``model``: the model's own scores for them (when the model has a vector for them);
- ``peers``: the likeness of the product's fused vector to the mean vector of the users with
  the same demographics, as far as they are known of the user (when there are such users;
  :func:`peer_rows`).

A part that is unknown for a user is left out of their mean. :data:`DEFAULT_WEIGHTS` are
used unless training chose weights for the store: with ``TrainConfig(light_users=share)``,
:func:`light_split` makes ``share`` of the users with at least :data:`MIN_PRODUCTS` products
light for training (each keeps one or two products; the others are held out), and
:func:`fit_weights` chooses the weights on them: a third of them *search*
(a coordinate search over :data:`graphfusion.models.neighbourhood.WEIGHTS` for the best
Recall@20 of their held-out products), a third *confirm* (the weights found are served only
when they beat the defaults clearly on these other users) and a third *test* the served ones
(``TrainResult.light``). :func:`group_of` says which third a light user is in.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from graphfusion.errors import ValidationError
from graphfusion.evaluate import full_ranking_metrics
from graphfusion.models.neighbourhood import search_weights
from graphfusion.values import real_arg

__all__ = [
    "PARTS",
    "DEFAULT_WEIGHTS",
    "LightParts",
    "LightFit",
    "light_parts",
    "light_split",
    "fit_weights",
    "group_of",
    "HeldOut",
    "paired_gain",
]

log = logging.getLogger("graphfusion.light")

#: The blend's parts, in the order they are searched.
PARTS = ("popularity", "products", "model", "peers")
#: The weights used when training chose none (``products``: per product of the user).
DEFAULT_WEIGHTS: dict[str, float] = {"popularity": 1.0, "products": 0.5, "model": 1.0, "peers": 0.5}
#: Fewest distinct products of a user that :func:`light_split` may make light.
MIN_PRODUCTS = 10
#: Fewest light users per third (search, confirm, test): with fewer, no user is made light.
MIN_USERS = 20
#: Most light users of a third whose rankings are held in memory at once.
MAX_FIT_USERS = 400
#: The thirds of the light users, in the order of :func:`group_of`.
GROUPS = ("search", "confirm", "test")
#: Coordinate-search rounds of :func:`fit_weights`.
ROUNDS = 2
#: Standard errors of the paired per-user gain over the defaults that weights must clear.
MIN_Z = 2.0


def standard(x: np.ndarray) -> np.ndarray:
    """``x`` standardized along its last axis (zero mean, unit deviation over the ``n`` values,
    as :func:`graphfusion.models.neighbourhood.standardize`; constant rows: 0)."""
    x = np.asarray(x, dtype=np.float64)
    sd = x.std(axis=-1, keepdims=True)
    return np.divide(x - x.mean(axis=-1, keepdims=True), sd, out=np.zeros_like(x), where=sd > 0)


@dataclass(frozen=True)
class LightParts:
    """The standardized parts of some users' blends.

    Attributes:
        values: Part name -> ``(n_users, n_items)`` standardized scores.
        known: Part name -> ``(n_users,)`` whether the part is known for the user.
        kept: ``(n_users,)`` how many products each user has.
    """

    values: dict[str, np.ndarray]
    known: dict[str, np.ndarray]
    kept: np.ndarray

    def blend(self, weights: Mapping[str, float]) -> np.ndarray:
        """``(n_users, n_items)``: the weighted mean of each user's known parts (popularity
        alone where every weight of a user's known parts is 0)."""
        total = np.zeros_like(self.values["popularity"])
        mass = np.zeros(len(self.kept))
        for name, part in self.values.items():
            w = weights.get(name, 0.0) * self.known[name]
            if name == "products":
                w = w * self.kept
            total += w[:, None] * part
            mass += w
        empty = mass == 0
        total[empty] = self.values["popularity"][empty]
        mass[empty] = 1.0
        out: np.ndarray = total / mass[:, None]
        return out


def light_parts(
    kept: list[np.ndarray],
    *,
    popularity: np.ndarray,
    item_vecs: np.ndarray,
    model_scores: Callable[[int], np.ndarray | None],
    peer_vecs: Callable[[int], np.ndarray | None],
) -> LightParts:
    """The parts of the blends of ``len(kept)`` users.

    Args:
        kept: Per user, the product rows they interacted with.
        popularity: ``(n_items,)`` interactions per product.
        item_vecs: ``(n_items, d)`` fused product vectors.
        model_scores: User position -> the model's scores for them, or None without a vector.
        peer_vecs: User position -> the mean vector of their demographic peers, or None.
    """
    n, n_items = len(kept), len(item_vecs)
    values = {name: np.zeros((n, n_items)) for name in PARTS}
    known = {name: np.zeros(n, dtype=bool) for name in PARTS}
    values["popularity"][:] = standard(np.log1p(popularity))
    known["popularity"][:] = True
    for row, items in enumerate(kept):
        found = {
            "products": item_vecs @ item_vecs[items].mean(0) if len(items) else None,
            "model": model_scores(row),
            "peers": None,
        }
        peers = peer_vecs(row)
        if peers is not None:
            found["peers"] = item_vecs @ peers
        for name, part in found.items():
            if part is not None:
                values[name][row] = standard(part)
                known[name][row] = True
    return LightParts(values, known, np.array([len(items) for items in kept], dtype=np.float64))


def peer_rows(
    profile: np.ndarray | None,
    trained: np.ndarray,
    u: int,
    blocks: Sequence[slice] | None = None,
) -> np.ndarray:
    """Rows of the users with the same demographics as user ``u`` (not ``u``) who had
    interactions when the vectors were made; none when nothing is known of ``u``.

    Args:
        profile: ``(n_users, width)`` demographic columns
            (:func:`graphfusion.features.demographics.demographic_features`), or None.
        trained: ``(n_users,)`` whether each user had interactions.
        u: The user's row.
        blocks: The columns of each property (age, each one-hot property): only those known
            of ``u`` (not all 0: a missing age, gender or occupation is all zeros) must
            match, so a user who gave a gender alone is matched on it. Every column must
            match when None.
    """
    if profile is None or not profile[u].any():
        return np.zeros(0, dtype=np.int64)
    columns = np.ones(profile.shape[1], dtype=bool)
    if blocks is not None:
        columns[:] = False
        for block in blocks:
            columns[block] = bool(profile[u, block].any())
    mine = profile[:, columns]
    same = np.flatnonzero((mine == mine[u]).all(axis=1) & trained)
    return same[same != u]


def light_split(
    frame: pd.DataFrame, share: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Make ``share`` of the users with at least :data:`MIN_PRODUCTS` products light (seeded):
    each keeps one or two of their products (alternately) and the rest are held out.

    Args:
        frame: Interactions, one row per distinct ``user``, ``item`` pair.
        share: 0 to 1.
        seed: Seed of the choice.

    Returns:
        ``(the kept interactions, the held-out ones, the light users)``; nothing is held out
        when fewer than ``3 * MIN_USERS`` users would be made light.

    Raises:
        ValidationError: ``share`` not a number from 0 to 1.
    """
    share = real_arg("share", share, zero=True, high=1.0)
    none = np.zeros(0, dtype=np.int64)
    if share <= 0:
        return frame, frame.iloc[:0], none
    rows_of: dict[int, np.ndarray] = frame.groupby("user").indices  # type: ignore[assignment]
    items = frame["item"].to_numpy()
    eligible = sorted(u for u, rows in rows_of.items() if len(rows) >= MIN_PRODUCTS)
    n = round(share * len(eligible))
    if n < 3 * MIN_USERS:
        return frame, frame.iloc[:0], none
    rng = np.random.default_rng(seed + 15485863)
    users = np.sort(rng.choice(np.array(eligible, dtype=np.int64), n, replace=False))
    held = np.zeros(len(frame), dtype=bool)
    for pos, u in enumerate(users):
        rows = rows_of[u]
        kept = rng.choice(items[rows], 1 + pos % 2, replace=False)
        held[rows[~np.isin(items[rows], kept)]] = True
    return frame[~held].reset_index(drop=True), frame[held].reset_index(drop=True), users


def group_of(count: int) -> np.ndarray:
    """The third (an index into :data:`GROUPS`) of each of ``count`` light users, in the
    order :func:`light_split` returns them: positions 0-1 of every 6 search, 2-3 confirm,
    4-5 test, so each third has users who kept one product and users who kept two."""
    return np.arange(count) % 6 // 2


@dataclass(frozen=True)
class HeldOut:
    """Light users' blend parts, the products they kept (not ranked) and their held-out ones.

    Raises:
        ValidationError: ``kept`` or ``truth`` does not have one entry per user.
    """

    parts: LightParts
    kept: list[list[int]]
    truth: list[list[int]]

    def __post_init__(self) -> None:
        if not len(self.kept) == len(self.truth) == len(self.parts.kept):
            raise ValidationError("kept and truth need one entry per light user")

    def recall(self, weights: Mapping[str, float]) -> float:
        """Mean Recall@20 of the held-out products ranked by the blend with ``weights``."""
        blended = self.parts.blend(weights)
        return full_ranking_metrics(blended, self.kept, self.truth, ks=(20,))["recall@20"]

    def per_user(self, weights: Mapping[str, float]) -> np.ndarray:
        """Each user's Recall@20 by the blend with ``weights``."""
        blended = self.parts.blend(weights)
        return np.array([
            full_ranking_metrics(blended[u : u + 1], [self.kept[u]], [self.truth[u]],
                                 ks=(20,))["recall@20"]
            for u in range(len(blended))
        ])  # fmt: skip


@dataclass(frozen=True)
class LightFit:
    """What :func:`fit_weights` found.

    Attributes:
        weights: The weights to serve: ``found``, or the defaults when its gain is not clear.
        found: The weights of the best Recall@20 of the searching users.
        gain: Their mean per-user Recall@20 gain over :data:`DEFAULT_WEIGHTS` on the
            confirming users.
        error: The standard error of that gain.
        users: Searching and confirming users.
    """

    weights: dict[str, float]
    found: dict[str, float]
    gain: float
    error: float
    users: tuple[int, int]

    def to_dict(self) -> dict[str, object]:
        """As plain data."""
        return {"found": self.found, "gain": self.gain, "standard error": self.error,
                "users": list(self.users), "served": "found" if self.weights == self.found
                and self.found != DEFAULT_WEIGHTS else "defaults"}  # fmt: skip


def fit_weights(search: HeldOut, confirm: HeldOut) -> LightFit:
    """Choose the light-user blend's weights: a coordinate search from
    :data:`DEFAULT_WEIGHTS` (:func:`~graphfusion.models.neighbourhood.search_weights`,
    :data:`ROUNDS` rounds) for the best Recall@20 of the ``search`` users, served only when
    their per-user gain over the defaults on the other, ``confirm`` users is more than
    :data:`MIN_Z` standard errors above 0 (a paired test): the search's own users would
    flatter what it found."""
    found = search_weights(search.recall, DEFAULT_WEIGHTS, ROUNDS)
    gain, error = paired_gain(confirm.per_user(found), confirm.per_user(DEFAULT_WEIGHTS))
    clear = bool(gain > MIN_Z * error)
    fit = LightFit(found if clear else dict(DEFAULT_WEIGHTS), found, gain, error,
                   (len(search.kept), len(confirm.kept)))  # fmt: skip
    log.info("light-user weights: %s", fit.to_dict())
    return fit


def paired_gain(new: np.ndarray, old: np.ndarray) -> tuple[float, float]:
    """The mean per-user gain of ``new`` over ``old`` (per-user values of the same users) and
    its standard error (paired; infinite with fewer than two users)."""
    diff = np.asarray(new, dtype=np.float64) - np.asarray(old, dtype=np.float64)
    error = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else math.inf
    return float(diff.mean()), error
