"""The ceiling benchmark's Bayes estimator of users' tastes, against hand-computed cases."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.integrate import quad
from scipy.stats import norm, poisson

from benchmarks.recommend_ceiling import (
    ATTRIBUTES,
    HOW,
    PATTERN_SHAPE,
    _attribute_features,
    _debiased_popularity,
    _fit_threshold,
    _how_posterior,
    _how_table,
    _posterior_predictive,
    _taste_posterior,
    how_features,
)


def test_one_hypothesis_is_its_own_predictive() -> None:
    effect = np.array([[2.0, 0.0, 0.0]])
    share = np.array([0.2, 0.3, 0.5])
    counts = np.array([[0.0, 4.0, 1.0]])
    got = _posterior_predictive(counts, effect, np.array([1.0]), share)
    # exp(effect) / sum(share * exp(effect)), whatever the counts
    norm = 0.2 * np.exp(2.0) + 0.8
    assert np.allclose(got, np.log(np.exp(effect) / norm))


def test_posterior_follows_the_counts() -> None:
    # two hypotheses: value 0 liked, or value 1 liked; equal priors and shares
    effect = np.array([[2.0, 0.0], [0.0, 2.0]])
    share = np.array([0.5, 0.5])
    counts = np.array([[3.0, 0.0], [0.0, 3.0], [0.0, 0.0]])
    got = _posterior_predictive(counts, effect, np.array([0.5, 0.5]), share)
    assert got[0, 0] > got[0, 1] and got[1, 1] > got[1, 0]
    assert np.isclose(got[2, 0], got[2, 1])  # no evidence: the prior's symmetric predictive
    # hand-computed: the likelihood ratio of three products of value 0 is e^6 : 1
    post = np.array([np.exp(6.0), 1.0]) / (np.exp(6.0) + 1.0)
    norm = 0.5 * np.exp(2.0) + 0.5
    expected = np.log(post @ (np.exp(effect) / norm))
    assert np.allclose(got[0], expected)


def test_popularity_without_tastes_is_the_count_share() -> None:
    train = pd.DataFrame({"user": [0, 0, 1, 1, 1, 2], "item": [0, 1, 0, 1, 2, 0]})
    got = _debiased_popularity(train, np.zeros((3, 4)), 4)
    counts = np.array([3.0, 2.0, 1.0, 0.5])  # a product without interactions counts half
    assert np.allclose(got, np.log(counts / counts.sum()))


def test_popularity_discounts_products_everyone_likes() -> None:
    # products 0 and 1 have the same count, but every user likes product 0: its popularity
    # must be lower than product 1's
    train = pd.DataFrame({"user": [0, 1, 2, 3], "item": [0, 0, 1, 1]})
    taste = np.tile(np.array([1.0, 0.0, 0.0]), (4, 1))
    got = _debiased_popularity(train, taste, 3)
    assert got[0] < got[1]


def test_attribute_shares_count_each_product_by_its_strength() -> None:
    style = {"a": {a: "x" for a in ATTRIBUTES}, "b": {a: "y" for a in ATTRIBUTES}}
    # user 0 viewed a and bought b (strength 5); user 1 viewed both
    train = pd.DataFrame({"user": [0, 0, 1, 1], "item": [0, 1, 0, 1],
                          "strength": [1.0, 5.0, 1.0, 1.0]})  # fmt: skip
    plain = _attribute_features(train, ["a", "b"], style, 2)
    weighted = _attribute_features(train, ["a", "b"], style, 2, weighted=True)
    # unweighted: half of each user's products are x, as overall: no preference
    assert np.allclose(plain["category"], 0.0)
    # weighted, user 0: (1 + 2 * 0.5) / (6 + 2) of x and (5 + 1) / 8 of y, over the shares 0.5
    assert np.allclose(weighted["category"][0], np.log(np.array([2.0, 6.0]) / 8 / 0.5))
    assert np.allclose(weighted["category"][1], 0.0)


def _sig(x: float) -> float:
    return 1.0 / (1.0 + np.exp(-x))


def test_how_likelihood_against_numerical_integration() -> None:
    values, threshold = np.array([-0.6, 0.0, 2.0, 4.2]), 1.8
    table = _how_table(values, threshold)
    sd, slope = HOW["noise"], HOW["slope"]
    for bought, fav, extra in ((1, 1, 2), (0, 0, 0), (1, 2, 0), (0, 1, 5)):
        row = np.ravel_multi_index((bought, fav, extra), PATTERN_SHAPE)
        for k, value in enumerate(values):

            def density(
                e: float,
                value: float = value,
                fav: int = fav,
                bought: int = bought,
                extra: int = extra,
            ) -> float:
                a = value + e
                p_buy = _sig(slope * (a - threshold))
                p_fav = _sig(slope * (a - threshold - HOW["fav_shift"]))
                rate = HOW["view_base"] + HOW["view_gain"] * _sig(a - HOW["view_shift"])
                f = {0: 1 - p_fav, 1: p_fav, 2: 1.0}[fav]
                b = p_buy if bought else 1 - p_buy
                return float(np.exp(a) * b * f * poisson.pmf(extra, rate) * norm.pdf(e, 0, sd))

            expected = np.log(quad(density, -6 * sd, 6 * sd)[0])
            assert np.isclose(table[row, k], expected, atol=1e-6), (bought, fav, extra, value)
    # the odds of a purchase against a view alone grow with the affinity
    bought_row = np.ravel_multi_index((1, 0, 0), PATTERN_SHAPE)
    viewed_row = np.ravel_multi_index((0, 0, 0), PATTERN_SHAPE)
    assert (np.diff(table[bought_row] - table[viewed_row]) > 0).all()


def test_threshold_is_recovered_from_planted_purchases() -> None:
    rng = np.random.default_rng(0)
    n_u, n_i, threshold = 400, 50, 1.6
    affinity = rng.choice([-0.6, 0.0, 1.0, 2.0, 3.2], size=(n_u, n_i))
    users, items = np.repeat(np.arange(n_u), 20), rng.integers(0, n_i, n_u * 20)
    sd = HOW["noise"]
    # a viewed product's noise is tilted by its choice: N(sd^2, sd^2)
    a = affinity[users, items] + rng.normal(sd * sd, sd, len(users))
    bought = rng.random(len(users)) < 1 / (1 + np.exp(-HOW["slope"] * (a - threshold)))
    train = pd.DataFrame({"user": users, "item": items, "bought": bought.astype(np.int64)})
    assert abs(_fit_threshold(train, affinity) - threshold) < 0.1


def _tiny_truth() -> tuple[list[str], dict[str, object]]:
    items = [f"p{k}" for k in range(8)]
    style = {
        p: {"category": f"c{k % 2}", "colour": f"k{(k // 2) % 2}", "brand": f"b{(k // 4) % 2}",
            "price_level": ("low", "mid")[k % 2]}
        for k, p in enumerate(items)
    }  # fmt: skip
    prefs = {
        f"u{u}": {"categories": [f"c{u % 2}"], "colours": ["k0"], "brands": ["b0"],
                  "price_level": "low"}
        for u in range(4)
    }  # fmt: skip
    return items, {"product_style": style, "user_preferences": prefs}


def test_how_posterior_reads_purchases() -> None:
    items, truth = _tiny_truth()
    # users 0 and 1 each viewed p0 (category c0) and p1 (c1); user 0 bought p0, user 1 p1
    train = pd.DataFrame({"user": [0, 0, 1, 1], "item": [0, 1, 0, 1], "bought": [1, 0, 0, 1],
                          "favourited": [0, 0, 0, 0], "views": [1, 1, 1, 1]})  # fmt: skip
    light = np.zeros(2, dtype=bool)
    got = _how_posterior(train, items, truth, 2, threshold=1.5, light=light)
    which = _taste_posterior(train, items, truth, 2)
    # which products alone cannot tell the two users apart; how they used them can
    assert np.allclose(which[0], which[1])
    assert got[0, 2] > got[0, 3] and got[1, 3] > got[1, 2]  # p2 is c0, p3 is c1
    # used alike, the two users get the same predictive again
    plain = _how_posterior(train.assign(bought=0), items, truth, 2, 1.5, light)
    assert np.allclose(plain[0], plain[1])


def test_how_posterior_without_how_is_the_taste_posterior(monkeypatch: Any) -> None:
    # with a likelihood of exp(affinity) alone (which products, not how), the mean field is
    # exact and equals the factorized posterior
    import benchmarks.recommend_ceiling as ceiling

    monkeypatch.setattr(
        ceiling, "_how_table", lambda values, threshold: np.tile(values, (ceiling.PATTERNS, 1))
    )
    items, truth = _tiny_truth()
    train = pd.DataFrame({"user": [0, 0, 0, 1, 2, 2], "item": [0, 2, 5, 1, 3, 7],
                          "bought": [1, 0, 0, 1, 0, 1], "favourited": [0, 1, 0, 0, 0, 0],
                          "views": [1, 3, 1, 2, 1, 1]})  # fmt: skip
    light = np.zeros(3, dtype=bool)
    got = ceiling._how_posterior(train, items, truth, 3, threshold=1.5, light=light)
    assert np.allclose(got, _taste_posterior(train, items, truth, 3))


def test_how_features_are_bought_favourited_and_log_extra_views() -> None:
    train = pd.DataFrame({"bought": [1, 0], "favourited": [0, 1], "views": [1, 4]})
    got = how_features(train).numpy()
    assert np.allclose(got, [[1.0, 0.0, 0.0], [0.0, 1.0, np.log(4.0)]])
