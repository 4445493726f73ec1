"""How much of the synthetic bench shop's test interactions can any model rank at all?

The recommendation benchmark asks the fusion model to beat LightGCN by 10% on the synthetic
bench shop, where every model lands near popularity, and to be far above it on cold-start
products. This benchmark measures, on the same per-user 8:1:1 split of the same prepared store
(``benchmarks/.work/recommend/synthetic``, made by ``python -m benchmarks.recommend
--datasets synthetic``), six rankings that read the generator's hidden
``ground_truth.json``, which no model sees, and three that read only what the models see:

- ``popularity``: log(1 + training interactions of the product);
- ``known attributes``: popularity plus, per hidden product attribute (category, colour,
  brand, price level), ``w * log(share of the user's training products with the product's
  value, smoothed towards the overall share / the overall share)``, the weights chosen by
  coordinate search on the validation split: the best an estimator of the users' tastes from
  their few training interactions can do with the attributes handed to it;
- ``known attributes, by strength``: the same, each training product counted by the strength
  of the user's interactions with it (:data:`graphfusion.train.TYPE_WEIGHTS`, as the fusion
  model's neighbourhood profiles count it): a purchase says more of a taste than a view;
- ``taste posterior``: the Bayes estimate of the same thing, handed the generator's model as
  well: per attribute, the posterior over each user's liked values (one or two categories,
  colours and brands, one price level; the prior is the share of all users with each liked
  value and each number of them) given their training products, each drawn with probability
  proportional to ``exp(affinity + popularity)``; the score is the log posterior predictive
  of the product's values plus the products' popularity, estimated from the training counts
  with the users' tastes factored out (a fixed point of the expected counts);
- ``taste posterior, how``: the same, also handed the generator's model of how a viewed product
  is used (:data:`HOW`): each training product tells, besides that it was viewed, whether it
  was bought and favourited and how many times it was viewed, which all follow the user's
  affinity for it (the purchase threshold, calibrated per shop by the generator, is fitted to
  the training purchases at the true affinities). The affinity is a sum over attributes
  inside a non-linear likelihood, so the posterior is a mean-field approximation (one factor
  per attribute); without the "how" it gives the ``taste posterior`` exactly;
- ``true tastes``: the generator's own affinity (2 category + 1 colour + 1.2 brand - 0.6 price
  distance) plus ``alpha`` log popularity, ``alpha`` chosen on validation: the noise ceiling;
- ``raw content kernels``, which reads no ground truth, only what the fusion model is given:
  log popularity plus the fusion model's four fixed neighbourhood kernels
  (:mod:`graphfusion.models.neighbourhood`), each standardized per user, with weights chosen
  by coordinate search on the validation split (:func:`_content_kernels`): the content kernel
  (the mean likeness of a product to the user's products, by strength), the sharp one (a
  product close to any one of the user's products scores high), the price level (log price
  minus the mean log price of the products with the nearest titles, times the user's mean of
  it) and the followees' content profiles: how far fixed kernels over the model's own inputs
  get, without its trained scores;
- ``learned taste``, which also reads only what the models see: the content taste model
  (:mod:`graphfusion.models.taste`), trained on the training pairs (each described by
  whether it was bought and favourited and how many times viewed: the interaction types the
  store holds) and the follows, its epoch chosen on the validation split; its scores alone
  (they carry its own popularity term), and ``learned taste + raw content kernels``: its
  scores standardized as the base of the kernels' blend, weights chosen as above.

A second table does the same for the cold-start setting (the products held out, split into
validation and tested ones, exactly as ``TrainConfig(cold_items=0.2)`` does): ``chance``
(20 / the number of tested cold products), ``known attributes`` (and ``by strength``) without
popularity (the cold products have none), weights chosen on the validation cold products,
``taste posterior`` (and ``how``) without popularity, and ``true tastes``.

Run::

    python -m benchmarks.recommend_ceiling [--seeds 0,1,2]
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.stats import poisson

from benchmarks.common import (
    add_folder_arguments,
    add_out_argument,
    benchmark_parser,
    command_line,
    print_table,
    save_results,
    seed_list,
)
from benchmarks.recommend import COLD_SHARE
from graphfusion.evaluate import full_ranking_metrics, random_split
from graphfusion.graph import to_heterodata
from graphfusion.light import standard
from graphfusion.models.neighbourhood import (
    FOLLOW_EDGE,
    WEIGHTS,
    ContentNeighbourhood,
    item_modalities,
)
from graphfusion.models.taste import TasteConfig, fit_taste, item_features
from graphfusion.store import EmbeddedStore
from graphfusion.train import (
    TYPE_WEIGHTS,
    _cold_split,
    _cold_validation,
    _per_user,
    _rank_among,
    link_matrices,
    load_interactions,
    product_log_prices,
)

NAME = "recommend-ceiling"
MODULE = "benchmarks.recommend_ceiling"
ATTRIBUTES = ("category", "colour", "brand", "price_level")
GRID = (0.0, 0.15, 0.3, 0.5, 0.75, 1.0)
SMOOTHING = 2.0
LEVELS = {"low": 0, "mid": 1, "high": 2}
#: The generator's affinity (``graphfusion.synthetic``): weight of a liked category, colour
#: and brand (the taste key in ``user_preferences``), and per step of price-level distance.
LIKED = {"category": (2.0, "categories"), "colour": (1.0, "colours"), "brand": (1.2, "brands")}
LEVEL_STEP = -0.6
#: The generator's model of how a viewed product is used (``graphfusion.synthetic``): its
#: affinity plus N(0, noise^2) is ``a``; it is bought with probability sigmoid(slope (a - the
#: shop's threshold)), favourited (by users with 3 views or more) with sigmoid(slope (a -
#: threshold - fav_shift)), and viewed 1 + Poisson(view_base + view_gain sigmoid(a -
#: view_shift)) times.
HOW = {"noise": 0.5, "slope": 1.3, "fav_shift": 0.7, "view_base": 0.3, "view_gain": 1.5,
       "view_shift": 1.5}  # fmt: skip
#: Users with at most this many products are the generator's light users (they cannot
#: favourite).
LIGHT_MAX = 2
#: Bought (2) x favourited (0, 1, or 2: could not) x extra views (0 to 9, more capped).
PATTERN_SHAPE = (2, 3, 10)
PATTERNS = int(np.prod(PATTERN_SHAPE))
QUADRATURE = 40


def _recall(scores: np.ndarray, seen: list[list[int]], truth: list[list[int]]) -> float:
    return float(full_ranking_metrics(scores, seen, truth, ks=(20,))["recall@20"])


def _attribute_features(
    train: pd.DataFrame,
    items: list[str],
    style: dict[str, Any],
    n_u: int,
    weighted: bool = False,
) -> dict[str, np.ndarray]:
    """Per hidden attribute, ``(n_u, n_i)``: log of the user's smoothed share of training
    products with the product's value over the overall share; ``weighted``: each training
    product counted by the strength of the user's interactions with it (``strength``)."""
    weight = train["strength"].to_numpy() if weighted else np.ones(len(train))
    n_user = np.bincount(train["user"], weights=weight, minlength=n_u)[:, None]
    feats = {}
    for attr in ATTRIBUTES:
        values = sorted({style[i][attr] for i in items})
        code = np.array([values.index(style[i][attr]) for i in items])
        counts = np.zeros((n_u, len(values)))
        np.add.at(counts, (train["user"].to_numpy(), code[train["item"].to_numpy()]), weight)
        base = np.bincount(code[train["item"]], minlength=len(values)) / len(train)
        share = (counts + SMOOTHING * base) / (n_user + SMOOTHING)
        feats[attr] = np.log(share / base)[:, code]
    return feats


def _fit_weights(
    base: np.ndarray,
    feats: dict[str, np.ndarray],
    recall: Callable[[np.ndarray], float],
    grid: tuple[float, ...] = GRID,
) -> dict[str, float]:
    """Weights of ``base + sum(weight * feature)`` by coordinate search (two passes over
    ``grid``, from 0.3 each) on ``recall``."""
    weights = dict.fromkeys(feats, 0.3)

    def known(w: dict[str, float]) -> np.ndarray:
        return base + sum(w[a] * feats[a] for a in feats)

    best = recall(known(weights))
    for _ in range(2):
        for attr in feats:
            for value in grid:
                trial = {**weights, attr: value}
                score = recall(known(trial))
                if score > best:
                    best, weights = score, trial
    return weights


@dataclass(frozen=True)
class _Hypotheses:
    """One hidden attribute's taste hypotheses: each product's value (``code``, ``(n_i,)``),
    the affinity of each value under each hypothesis (``effect``, ``(S, V)``), the prior of
    the hypotheses (``(S,)``, summing to 1) and the share of the products with each value."""

    code: np.ndarray
    effect: np.ndarray
    prior: np.ndarray
    share: np.ndarray

    @property
    def norm(self) -> np.ndarray:
        """Log of each hypothesis's normalizer: ``log sum_v share_v exp(effect_v)``."""
        return np.asarray(np.log(np.exp(self.effect) @ self.share))

    def posterior(self, loglik: np.ndarray, n_user: np.ndarray) -> np.ndarray:
        """``(n_u, S)``: each user's posterior over the hypotheses, given the ``(n_u, S)`` log
        likelihood of their products' values and their ``(n_u, 1)`` numbers of products (each
        product's choice is normalized by :attr:`norm`)."""
        log_post = np.log(self.prior)[None] + loglik - n_user * self.norm[None]
        log_post -= log_post.max(1, keepdims=True)
        post = np.exp(log_post)
        return np.asarray(post / post.sum(1, keepdims=True))

    def predictive(self, post: np.ndarray) -> np.ndarray:
        """``(n_u, n_i)``: the log posterior predictive factor of each product's value, given
        the ``(n_u, S)`` posterior over the hypotheses."""
        return np.asarray(np.log(post @ np.exp(self.effect - self.norm[:, None]))[:, self.code])


def _posterior_predictive(
    counts: np.ndarray, effect: np.ndarray, prior: np.ndarray, share: np.ndarray
) -> np.ndarray:
    """Per user, the log posterior predictive factor of each attribute value.

    Args:
        counts: ``(n_u, V)`` training products of each value per user.
        effect: ``(S, V)`` affinity of each value under each taste hypothesis.
        prior: ``(S,)`` prior of the hypotheses.
        share: ``(V,)`` share of the products with each value.
    """
    hyp = _Hypotheses(np.arange(len(share)), effect, prior, share)
    return hyp.predictive(hyp.posterior(counts @ effect.T, counts.sum(1, keepdims=True)))


def _hypotheses(attr: str, items: list[str], truth: dict[str, Any]) -> _Hypotheses:
    """The hypotheses of ``attr``: one or two liked values (one price level), the prior the
    share of all users with each liked value and each number of them (module docstring)."""
    style, tastes = truth["product_style"], truth["user_preferences"]
    values = sorted({style[i][attr] for i in items})
    index = {v: k for k, v in enumerate(values)}
    code = np.array([index[style[i][attr]] for i in items])
    n_v = len(values)
    if attr == "price_level":
        levels = np.array([LEVELS[v] for v in values])
        effect = LEVEL_STEP * np.abs(levels[:, None] - levels[None, :])
        liked = [index[t["price_level"]] for t in tastes.values()]
        prior = np.bincount(liked, minlength=n_v).astype(np.float64) + 1.0
    else:
        weight, key = LIKED[attr]
        hypotheses: list[tuple[int, ...]] = [(k,) for k in range(n_v)]
        hypotheses += itertools.combinations(range(n_v), 2)
        value_freq = np.ones(n_v)
        size_freq = np.ones(3)
        for t in tastes.values():
            for v in t[key]:
                value_freq[index[v]] += 1
            size_freq[min(len(t[key]), 2)] += 1
        f = value_freq / value_freq.sum()
        prior = np.array([size_freq[len(h)] * np.prod(f[list(h)]) for h in hypotheses])
        effect = np.zeros((len(hypotheses), n_v))
        for k, h in enumerate(hypotheses):
            effect[k, list(h)] = weight
    share = np.bincount(code, minlength=n_v) / len(items)
    return _Hypotheses(code, effect, prior / prior.sum(), share)


def _taste_posterior(
    train: pd.DataFrame, items: list[str], truth: dict[str, Any], n_u: int
) -> np.ndarray:
    """``(n_u, n_i)``: the sum over attributes of the log posterior predictive of the
    product's value, given the user's training products (see the module docstring)."""
    users, rows = train["user"].to_numpy(), train["item"].to_numpy()
    out = np.zeros((n_u, len(items)))
    for attr in ATTRIBUTES:
        hyp = _hypotheses(attr, items, truth)
        counts = np.zeros((n_u, hyp.effect.shape[1]))
        np.add.at(counts, (users, hyp.code[rows]), 1)
        out += _posterior_predictive(counts, hyp.effect, hyp.prior, hyp.share)[:, hyp.code]
    return out


def _debiased_popularity(train: pd.DataFrame, taste: np.ndarray, n_i: int) -> np.ndarray:
    """Log popularity per product with the users' tastes factored out: the fixed point of
    ``count_i = sum_u n_u q_i t_ui / sum_j q_j t_uj`` (``t = exp(taste)``; a product without
    training interactions counts half of one)."""
    counts = np.maximum(np.bincount(train["item"], minlength=n_i).astype(np.float64), 0.5)
    n_user = np.bincount(train["user"], minlength=taste.shape[0]).astype(np.float64)
    t = np.exp(taste - taste.max(1, keepdims=True))
    q = counts.copy()
    for _ in range(30):
        q = counts / ((n_user / (t @ q)) @ t)
        q /= q.sum()
    return np.log(q)


def _how_table(values: np.ndarray, threshold: float) -> np.ndarray:
    """``(PATTERNS, len(values))``: the log likelihood of each way a user can have interacted
    with a product they viewed (:func:`_patterns`) at each affinity value, the view's choice
    (proportional to ``exp(affinity + noise)``) included and the noise integrated out by
    Gauss-Hermite quadrature (the generator's model, :data:`HOW`)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(QUADRATURE)
    a = values[None, :, None] + HOW["noise"] * nodes[None, None, :]
    bought, fav, views = np.unravel_index(np.arange(PATTERNS), PATTERN_SHAPE)
    slope = HOW["slope"]
    p_buy = _sigmoid(slope * (a - threshold))
    p_fav = _sigmoid(slope * (a - threshold - HOW["fav_shift"]))
    rate = HOW["view_base"] + HOW["view_gain"] * _sigmoid(a - HOW["view_shift"])
    lik = np.exp(a) * np.where(bought[:, None, None] == 1, p_buy, 1.0 - p_buy)
    lik *= np.where(fav[:, None, None] == 1, p_fav, np.where(fav[:, None, None] == 0, 1 - p_fav, 1))
    lik *= poisson.pmf(views[:, None, None], rate)  # extra views beyond the first
    return np.asarray(np.log(lik @ (weights / weights.sum())))


def _patterns(train: pd.DataFrame, light: np.ndarray) -> np.ndarray:
    """Each training pair's pattern: bought or not, favourited or not (2: the user could not,
    having too few views), extra views beyond the first (capped), as one index."""
    fav = np.where(light[train["user"].to_numpy()], 2, train["favourited"].to_numpy())
    extra = np.clip(train["views"].to_numpy() - 1, 0, PATTERN_SHAPE[2] - 1)
    index = (train["bought"].to_numpy(), fav, extra)
    return np.asarray(np.ravel_multi_index(index, PATTERN_SHAPE))


def _fit_threshold(train: pd.DataFrame, affinity: np.ndarray) -> float:
    """The generator's purchase threshold, calibrated per shop: the one at which the expected
    purchases of the training views, at their true affinity (the noise of a viewed product
    tilted by its choice: N(noise^2, noise^2)), equal their number (bisection)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(QUADRATURE)
    sd = HOW["noise"]
    a = affinity[train["user"], train["item"]][:, None] + sd * sd + sd * nodes[None]
    w = weights / weights.sum()
    target = float(train["bought"].sum())
    lo, hi = -5.0, 10.0
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        expected = float((_sigmoid(HOW["slope"] * (a - mid)) @ w).sum())
        lo, hi = (mid, hi) if expected > target else (lo, mid)
    return 0.5 * (lo + hi)


def _how_posterior(
    train: pd.DataFrame,
    items: list[str],
    truth: dict[str, Any],
    n_u: int,
    threshold: float,
    light: np.ndarray,
    sweeps: int = 3,
) -> np.ndarray:
    """``(n_u, n_i)``: as :func:`_taste_posterior`, but each training product also tells how
    the user interacted with it (bought, favourited, how many views; :func:`_how_table`).
    The affinity is then no longer a sum of independent terms in the likelihood, so the
    posterior is approximated by mean field: one factor per attribute, each updated in turn
    with the expected log likelihood under the others (``sweeps`` rounds from the prior)."""
    users, rows = train["user"].to_numpy(), train["item"].to_numpy()
    hyps = {attr: _hypotheses(attr, items, truth) for attr in ATTRIBUTES}
    levels = {attr: np.unique(h.effect) for attr, h in hyps.items()}
    sums = np.unique(
        np.round([sum(c) for c in itertools.product(*levels.values())], 9)
    )  # every affinity a product can have
    table = _how_table(sums, threshold)[_patterns(train, light)]  # (E, len(sums))
    n_user = np.bincount(users, minlength=n_u)[:, None]
    post = {attr: np.tile(h.prior, (n_u, 1)) for attr, h in hyps.items()}

    def level_probs(attr: str) -> np.ndarray:
        """``(E, len(levels))``: per training pair, the posterior probability of each value
        of the attribute's term in its affinity."""
        h = hyps[attr]
        cols = [(post[attr] @ (h.effect == v))[users, h.code[rows]] for v in levels[attr]]
        return np.stack(cols, 1)

    for _ in range(sweeps):
        for attr, h in hyps.items():
            others = [(levels[o], level_probs(o)) for o in ATTRIBUTES if o != attr]
            expected = np.zeros((len(rows), len(levels[attr])))
            for combo in itertools.product(*(range(len(v)) for v, _ in others)):
                base = sum(v[c] for (v, _), c in zip(others, combo, strict=True))
                weight = np.prod([p[:, c] for (_, p), c in zip(others, combo, strict=True)], 0)
                for k, value in enumerate(levels[attr]):
                    col = np.searchsorted(sums, round(base + value, 9))
                    expected[:, k] += weight * table[:, col]
            loglik = np.zeros((n_u, len(h.prior)))
            for k, value in enumerate(levels[attr]):
                per_value = np.zeros((n_u, h.effect.shape[1]))
                np.add.at(per_value, (users, h.code[rows]), expected[:, k])
                loglik += per_value @ (h.effect == value).T
            post[attr] = h.posterior(loglik, n_user)
    return np.asarray(sum(h.predictive(post[attr]) for attr, h in hyps.items()))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def _affinity(users: list[str], items: list[str], truth: dict[str, Any]) -> np.ndarray:
    """The generator's affinity of every user for every product."""
    style, tastes = truth["product_style"], truth["user_preferences"]
    affinity = np.zeros((len(users), len(items)))
    values = {attr: np.array([style[i][attr] for i in items]) for attr in LIKED}
    level = np.array([LEVELS[style[i]["price_level"]] for i in items])
    for u, key in enumerate(users):
        t = tastes[key]
        for attr, (weight, liked) in LIKED.items():
            affinity[u] += weight * np.isin(values[attr], t[liked])
        affinity[u] += LEVEL_STEP * np.abs(LEVELS[t["price_level"]] - level)
    return affinity


def _content_kernels(shop: Shop, train: pd.DataFrame) -> dict[str, np.ndarray]:
    """The standardized kernels of ``raw content kernels`` (module docstring) from the
    training pairs ``train`` and the model's inputs only: the fusion model's own fixed
    neighbourhood kernels (:mod:`graphfusion.models.neighbourhood`), all but the learned one."""
    pairs = torch.tensor(train[["user", "item"]].to_numpy().T)
    strength = torch.tensor(train["strength"].to_numpy(), dtype=torch.float32)
    hood = ContentNeighbourhood(shop.modalities, pairs, len(shop.users), strength=strength,
                                log_price=shop.log_price, follows=shop.follows)  # fmt: skip
    names = [k for k in hood.available if k != "learned"]
    kernels = hood.kernels(torch.arange(len(shop.users)), names=names)
    return {name: standard(k.numpy()) for name, k in kernels.items()}


def how_features(train: pd.DataFrame) -> torch.Tensor:
    """``(E, 3)`` what each training pair says besides that the product was viewed: bought,
    favourited, and the log of one plus the views after the first."""
    extra = np.log1p(np.maximum(train["views"].to_numpy() - 1, 0))
    columns = [train["bought"].to_numpy(), train["favourited"].to_numpy(), extra]
    return torch.tensor(np.stack(columns, 1), dtype=torch.float32)


def _learned_taste(
    shop: Shop, train: pd.DataFrame, score: Callable[[np.ndarray], float], seed: int
) -> np.ndarray:
    """``(n_u, n_i)`` scores of the content taste model trained on ``train`` (the epoch with
    the best ``score`` of its scores)."""
    pairs = torch.tensor(train[["user", "item"]].to_numpy().T)
    how = how_features(train)
    model, _ = fit_taste(
        item_features(shop.modalities, shop.log_price), pairs, how, len(shop.users),
        follows=shop.follows, validate=lambda s: score(s.numpy()),
        config=TasteConfig(seed=seed),
    )  # fmt: skip
    with torch.no_grad():
        vectors = model.user_vectors(pairs, how, len(shop.users), shop.follows)
        return model.scores(vectors).numpy().astype(np.float64)


@dataclass(frozen=True)
class Shop:
    """The prepared store's interactions, user and product keys, the hidden ground truth and
    what the fusion model is given of the products and users: their modality vectors
    (:func:`~graphfusion.models.neighbourhood.item_modalities`), log prices and follows
    (``(2, F)`` follower and followee rows)."""

    frame: pd.DataFrame
    users: list[str]
    items: list[str]
    truth: dict[str, Any]
    modalities: dict[str, torch.Tensor]
    log_price: torch.Tensor
    follows: torch.Tensor

    @classmethod
    def read(cls, work: Path) -> Shop:
        """Read ``work/store`` and ``work/shop/ground_truth.json``; the frame has each pair's
        strength, whether it was bought and favourited, and its number of views."""
        with EmbeddedStore(work / "store", read_only=True) as store:
            frame, users, items = load_interactions(store, type_weights=TYPE_WEIGHTS)
            rows = (frame["user"].to_numpy(), frame["item"].to_numpy())
            for column, rtype in (("bought", "PURCHASED"), ("favourited", "FAVORITED"),
                                  ("views", "VIEWED")):  # fmt: skip
                counts, weights = link_matrices(store, rtype, users, items)
                per_pair = weights if column == "views" else counts.sign()
                frame[column] = np.asarray(per_pair[rows]).ravel().astype(np.int64)
            export = to_heterodata(store)
            if export.ids["User"] != users or export.ids["Product"] != items:
                raise RuntimeError("the export's rows differ from the interactions' rows")
            data = export.data
            modalities = item_modalities(data)
            log_price = product_log_prices(store, items)
            if log_price is None:
                raise RuntimeError("the shop's products have no prices")
            follows = data.edge_index_dict.get(
                ("User", FOLLOW_EDGE, "User"), torch.zeros(2, 0, dtype=torch.long)
            )
        truth = json.loads((work / "shop" / "ground_truth.json").read_text())
        return cls(frame, users, items, truth, modalities, log_price, follows)

    @property
    def light(self) -> np.ndarray:
        """``(n_u,)``: the generator's light users (at most :data:`LIGHT_MAX` products)."""
        return np.bincount(self.frame["user"], minlength=len(self.users)) <= LIGHT_MAX

    def how_posterior(self, train: pd.DataFrame, affinity: np.ndarray) -> np.ndarray:
        """:func:`_how_posterior` on ``train``, the threshold fitted on it
        (:func:`_fit_threshold`, at the true ``affinity``)."""
        threshold = _fit_threshold(train, affinity)
        n_u = len(self.users)
        return _how_posterior(train, self.items, self.truth, n_u, threshold, self.light)


def run_seed(shop: Shop, seed: int) -> dict[str, Any]:
    """Test Recall@20 of the warm rankings on the split of ``seed``."""
    frame, users, items, truth = shop.frame, shop.users, shop.items, shop.truth
    train, valid, test = random_split(frame, seed=seed)
    n_u, n_i = len(users), len(items)
    seen = _per_user(train, n_u)
    val, tst = _per_user(valid, n_u), _per_user(test, n_u)
    seen_valid = [a + b for a, b in zip(seen, val, strict=True)]
    log_pop = np.log1p(np.bincount(train["item"], minlength=n_i)).astype(np.float64)
    pop = np.tile(log_pop, (n_u, 1))
    out: dict[str, Any] = {"popularity": _recall(pop, seen_valid, tst)}
    for name, weighted in (("known attributes", False), ("known attributes, by strength", True)):
        feats = _attribute_features(train, items, truth["product_style"], n_u, weighted)
        weights = _fit_weights(pop, feats, lambda s: _recall(s, seen, val))
        known = pop + sum(weights[a] * feats[a] for a in ATTRIBUTES)
        out[name] = _recall(known, seen_valid, tst)
        out[f"{name} weights"] = weights
    affinity = _affinity(users, items, truth)
    for name, taste in (("taste posterior", _taste_posterior(train, items, truth, n_u)),
                        ("taste posterior, how", shop.how_posterior(train, affinity))):  # fmt: skip
        posterior = taste + _debiased_popularity(train, taste, n_i)[None]
        out[name] = _recall(posterior, seen_valid, tst)
    alpha = max((0.25, 0.5, 1.0, 2.0), key=lambda a: _recall(affinity + a * pop, seen, val))
    out["true tastes"] = _recall(affinity + alpha * pop, seen_valid, tst)
    out["true tastes alpha"] = alpha
    kernels = _content_kernels(shop, train)

    def with_kernels(name: str, scores: np.ndarray) -> None:
        """``scores`` standardized plus the kernels, weights fitted on validation."""
        base = standard(scores)
        weights = _fit_weights(base, kernels, lambda s: _recall(s, seen, val), WEIGHTS)
        blended = base + sum(weights[k] * kernels[k] for k in kernels)
        out[name] = _recall(blended, seen_valid, tst)
        out[f"{name} weights"] = weights

    with_kernels("raw content kernels", pop)
    taste = _learned_taste(shop, train, lambda s: _recall(s, seen, val), seed)
    out["learned taste"] = _recall(taste, seen_valid, tst)
    with_kernels("learned taste + raw content kernels", taste)
    return out


def run_cold_seed(shop: Shop, seed: int) -> dict[str, Any]:
    """Cold-start Recall@20 (the recommendation benchmark's cold setting: tested cold products
    ranked among themselves) of the cold rankings, on ``seed``'s split."""
    frame, users, items, truth = shop.frame, shop.users, shop.items, shop.truth
    n_u, n_i = len(users), len(items)
    warm, cold_df, cold = _cold_split(frame, n_i, COLD_SHARE, seed)
    valid_df, test_df, valid_items, test_items = _cold_validation(cold_df, cold, seed)
    train, _, _ = random_split(warm, seed=seed)
    valid_truth, test_truth = _per_user(valid_df, n_u), _per_user(test_df, n_u)

    def recall(scores: np.ndarray, items_: np.ndarray, truth_: list[list[int]]) -> float:
        return float(_rank_among(scores, items_, truth_)["recall@20"])

    # a random order puts each held-out product in the top 20 with probability 20 / N
    out: dict[str, Any] = {"chance": 20 / len(test_items)}
    zero = np.zeros((n_u, n_i))
    for name, weighted in (("known attributes", False), ("known attributes, by strength", True)):
        feats = _attribute_features(train, items, truth["product_style"], n_u, weighted)
        weights = _fit_weights(zero, feats, lambda s: recall(s, valid_items, valid_truth))
        known = sum(weights[a] * feats[a] for a in ATTRIBUTES)
        out[name] = recall(np.asarray(known), test_items, test_truth)
        out[f"{name} weights"] = weights
    affinity = _affinity(users, items, truth)
    taste = _taste_posterior(train, items, truth, n_u)
    out["taste posterior"] = recall(taste, test_items, test_truth)
    out["taste posterior, how"] = recall(
        shop.how_posterior(train, affinity), test_items, test_truth
    )
    out["true tastes"] = recall(affinity, test_items, test_truth)
    return out


def _table(
    runs: dict[int, dict[str, Any]], seeds: list[int], methods: tuple[str, ...], title: str
) -> str:
    rows = []
    for method in methods:
        values = np.array([runs[s][method] for s in seeds])
        per_seed = " / ".join(f"{v:.4f}" for v in values)
        rows.append([method, f"{values.mean():.4f} ± {values.std():.4f}", per_seed])
    return print_table(["ranking", "test Recall@20", "per seed"], rows, title=title)


def main(argv: list[str] | None = None) -> int:
    """Run, print the table and save ``benchmarks/results/recommend-ceiling.json``."""
    parser = benchmark_parser(MODULE, __doc__)
    parser.add_argument(
        "--seeds", type=seed_list, default="0,1,2", help="comma-separated seeds, one split each"
    )
    add_folder_arguments(
        parser,
        "benchmarks/.work/recommend/synthetic",
        "the synthetic folder prepared by benchmarks.recommend",
        data_help=None,
    )
    add_out_argument(parser, NAME)
    args = parser.parse_args(argv)
    if not (args.work / "store").exists():
        parser.error(f"no prepared store in {args.work}; run benchmarks.recommend first")
    seeds = args.seeds
    shown = ",".join(map(str, seeds))
    shop = Shop.read(args.work)
    runs = {seed: run_seed(shop, seed) for seed in seeds}
    cold = {seed: run_cold_seed(shop, seed) for seed in seeds}
    tables = [
        _table(runs, seeds, ("popularity", "raw content kernels", "learned taste",
                             "learned taste + raw content kernels", "known attributes",
                             "known attributes, by strength", "taste posterior",
                             "taste posterior, how", "true tastes"),
               f"Synthetic bench shop: rankings from hidden ground truth, seeds {shown}"),
        _table(cold, seeds, ("chance", "known attributes", "known attributes, by strength",
                             "taste posterior", "taste posterior, how", "true tastes"),
               f"Synthetic bench shop, cold start: tested cold products ranked among "
               f"themselves, seeds {shown}"),
    ]  # fmt: skip
    path = save_results(NAME, {"seeds": seeds, "runs": runs, "cold": cold}, out=args.out,
                        command=command_line(MODULE, argv), tables=tables)  # fmt: skip
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
