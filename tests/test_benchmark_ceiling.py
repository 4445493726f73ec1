"""The ceiling benchmark's Bayes estimator of users' tastes, against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.recommend_ceiling import (
    ATTRIBUTES,
    _attribute_features,
    _debiased_popularity,
    _posterior_predictive,
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
