"""Ranking metrics against hand-computed examples, and the split protocol."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from graphfusion.errors import ValidationError
from graphfusion.evaluate import (
    auc,
    full_ranking_metrics,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    random_split,
    recall_at_k,
)

# user a: relevant {1, 2}; ranking 3, 1, 4, 2 -> hits at ranks 2 and 4
# user b: relevant {5};    ranking 5, 6       -> hit at rank 1
TRUE = pd.DataFrame({"user": ["a", "a", "b"], "item": [1, 2, 5]})
PRED = pd.DataFrame(
    {"user": ["a"] * 4 + ["b"] * 2, "item": [3, 1, 4, 2, 5, 6],
     "prediction": [0.9, 0.8, 0.7, 0.6, 0.9, 0.1]}
)  # fmt: skip


def test_recall_precision_mrr_by_hand() -> None:
    assert recall_at_k(TRUE, PRED, k=2) == pytest.approx((1 / 2 + 1) / 2)
    assert recall_at_k(TRUE, PRED, k=4) == pytest.approx(1.0)
    assert precision_at_k(TRUE, PRED, k=2) == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert mrr_at_k(TRUE, PRED, k=4) == pytest.approx((1 / 2 + 1) / 2)
    assert mrr_at_k(TRUE, PRED, k=1) == pytest.approx((0 + 1) / 2)


def test_ndcg_by_hand() -> None:
    dcg_a = 1 / math.log2(3) + 1 / math.log2(5)
    ideal_a = 1 + 1 / math.log2(3)
    assert ndcg_at_k(TRUE, PRED, k=4) == pytest.approx((dcg_a / ideal_a + 1.0) / 2)
    # at k=1 user a has no hit, b is perfect
    assert ndcg_at_k(TRUE, PRED, k=1) == pytest.approx(0.5)


def test_user_without_predictions_counts_zero() -> None:
    truth = pd.concat([TRUE, pd.DataFrame({"user": ["c"], "item": [9]})])
    assert recall_at_k(truth, PRED, k=4) == pytest.approx((1 + 1 + 0) / 3)


def test_auc_by_hand() -> None:
    assert auc([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0]) == 1.0
    assert auc([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0]) == 0.0
    # one positive above one of two negatives, a tie with the other: (1 + 0.5) / 2
    assert auc([0.5, 0.5, 0.1], [1, 0, 0]) == pytest.approx(0.75)
    with pytest.raises(ValidationError):
        auc([0.1, 0.2], [1, 1])


def test_full_ranking_agrees_with_the_frame_metrics() -> None:
    rng = np.random.default_rng(0)
    scores = rng.random((6, 30))
    train = [list(rng.choice(30, 5, replace=False)) for _ in range(6)]
    test = [[int(i) for i in rng.choice([j for j in range(30) if j not in t], 3, replace=False)]
            for t in train]  # fmt: skip
    test[5] = []  # a user with nothing to find is skipped
    got = full_ranking_metrics(scores, train, test, ks=(5, 10))
    rows = [(u, i, scores[u, i]) for u in range(6) for i in range(30) if i not in train[u]]
    pred = pd.DataFrame(rows, columns=["user", "item", "prediction"])
    truth = pd.DataFrame([(u, i) for u in range(6) for i in test[u]], columns=["user", "item"])
    for k in (5, 10):
        assert got[f"recall@{k}"] == pytest.approx(recall_at_k(truth, pred, k=k))
        assert got[f"ndcg@{k}"] == pytest.approx(ndcg_at_k(truth, pred, k=k))
    # training items are never ranked: a perfect score on them changes nothing
    boosted = scores.copy()
    for u in range(6):
        boosted[u, train[u]] = 100.0
    assert full_ranking_metrics(boosted, train, test, ks=(5, 10)) == got


def test_random_split_protocol() -> None:
    rng = np.random.default_rng(1)
    rows = [(f"u{u}", i) for u in range(50) for i in rng.choice(100, 2 + u % 15, replace=False)]
    frame = pd.DataFrame(rows, columns=["user", "item"])
    train, valid, test = random_split(frame, seed=3)
    assert len(train) + len(valid) + len(test) == len(frame)
    pairs = [set(zip(f["user"], f["item"], strict=True)) for f in (train, valid, test)]
    assert not (pairs[0] & pairs[1] or pairs[0] & pairs[2] or pairs[1] & pairs[2])
    sizes = frame.groupby("user").size()
    light = set(sizes[sizes < 3].index)
    assert light and light.isdisjoint(valid["user"]) and light.isdisjoint(test["user"])
    assert set(test["user"]) == set(sizes[sizes >= 3].index) == set(valid["user"])
    assert 0.75 < len(train) / len(frame) < 0.85
    again = random_split(frame, seed=3)
    assert all(a.equals(b) for a, b in zip(again, (train, valid, test), strict=True))
    other = random_split(frame, seed=4)[2]
    assert not other.reset_index(drop=True).equals(test.reset_index(drop=True))
    with pytest.raises(ValidationError, match="ratios"):
        random_split(frame, ratios=(0.5, 0.5, 0.5))
    with pytest.raises(ValidationError, match="column"):
        random_split(frame.rename(columns={"item": "product"}))


def _one_user_at_a_time(
    scores: np.ndarray, train: list[list[int]], test: list[list[int]], ks: tuple[int, ...]
) -> dict[str, float]:
    """Full ranking written plainly, one user after the other."""
    sums = {f"{m}@{k}": 0.0 for k in ks for m in ("recall", "ndcg")}
    counted = 0
    for u in range(len(scores)):
        relevant = set(test[u])
        if not relevant:
            continue
        row = scores[u].astype(np.float64)
        row[train[u]] = -np.inf
        ranked = sorted(range(len(row)), key=lambda i: -row[i])[: max(ks)]
        for k in ks:
            top = ranked[:k]
            sums[f"recall@{k}"] += len(relevant & set(top)) / len(relevant)
            dcg = sum(1 / math.log2(r + 2) for r, i in enumerate(top) if i in relevant)
            ideal = sum(1 / math.log2(r + 2) for r in range(min(k, len(relevant))))
            sums[f"ndcg@{k}"] += dcg / ideal
        counted += 1
    return {name: value / counted for name, value in sums.items()}


def test_full_ranking_in_blocks_agrees_with_one_user_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import graphfusion.evaluate as evaluate

    rng = np.random.default_rng(3)
    n_users, n_items = 40, 25
    scores = rng.normal(size=(n_users, n_items)).astype(np.float32)
    train = [rng.choice(n_items, rng.integers(0, 6), replace=False).tolist()
             for _ in range(n_users)]  # fmt: skip
    test = [rng.choice([i for i in range(n_items) if i not in t], rng.integers(0, 4),
                       replace=False).tolist() for t in train]  # fmt: skip
    test[7] = [3, 3]  # a repeated item counts once
    want = _one_user_at_a_time(scores, train, test, (5, 10, 30))
    whole = full_ranking_metrics(scores, train, test, ks=(5, 10, 30))
    monkeypatch.setattr(evaluate, "RANKING_CHUNK", 3 * n_items)  # blocks of 3 users
    blocks = full_ranking_metrics(scores, train, test, ks=(5, 10, 30))
    assert whole == pytest.approx(want) and blocks == pytest.approx(want)
    assert full_ranking_metrics(scores, train, [[] for _ in test]) == {
        "recall@10": 0.0, "ndcg@10": 0.0, "recall@20": 0.0, "ndcg@20": 0.0}  # fmt: skip


def test_repeated_predictions_count_once_at_their_best() -> None:
    # user a's item 1 predicted three times; once it is a single item at its best score (0.95)
    repeated = pd.concat(
        [PRED, pd.DataFrame({"user": ["a", "a"], "item": [1, 1], "prediction": [0.95, 0.85]})]
    )
    deduplicated = pd.DataFrame(
        {"user": ["a"] * 4 + ["b"] * 2, "item": [1, 3, 4, 2, 5, 6],
         "prediction": [0.95, 0.9, 0.7, 0.6, 0.9, 0.1]}
    )  # fmt: skip
    for metric in (recall_at_k, precision_at_k, ndcg_at_k, mrr_at_k):
        for k in (1, 2, 3, 4):
            got = metric(TRUE, repeated, k=k)
            assert got == pytest.approx(metric(TRUE, deduplicated, k=k)), (metric, k)
            assert 0.0 <= got <= 1.0
    # only the repeated relevant item: each metric as if it were predicted once
    only = pd.DataFrame({"user": ["a"] * 3, "item": [1] * 3, "prediction": [0.9, 0.8, 0.7]})
    truth = pd.DataFrame({"user": ["a", "a"], "item": [1, 2]})
    assert ndcg_at_k(truth, only, k=3) == pytest.approx(1.0 / (1 + 1 / math.log2(3)))
    assert precision_at_k(truth, only, k=1) == pytest.approx(1.0)
    assert recall_at_k(truth, only, k=3) == pytest.approx(0.5)


@pytest.mark.parametrize("metric", [recall_at_k, precision_at_k, ndcg_at_k, mrr_at_k])
def test_metrics_refuse_missing_columns(metric: Callable[..., float]) -> None:
    with pytest.raises(ValidationError, match="rating_true must have the column 'item'"):
        metric(TRUE.rename(columns={"item": "product"}), PRED)
    with pytest.raises(ValidationError, match="rating_pred must have the column 'user'"):
        metric(TRUE, PRED.drop(columns="user"))
    with pytest.raises(ValidationError, match="rating_pred must have the column 'score'"):
        metric(TRUE, PRED, col_prediction="score")


@pytest.mark.parametrize("metric", [recall_at_k, precision_at_k, ndcg_at_k, mrr_at_k])
def test_metrics_k_is_a_count(metric: Callable[..., float]) -> None:
    assert metric(TRUE, PRED, k=np.int64(2)) == metric(TRUE, PRED, k=2)
    for bad in (True, 0, -1, 2.0, "2", None):
        with pytest.raises(ValidationError, match="k must be an integer"):
            metric(TRUE, PRED, k=bad)


def test_full_ranking_checks_the_cutoffs() -> None:
    scores = np.arange(12, dtype=np.float64).reshape(3, 4)
    train, test = [[0], [], [1]], [[3], [2], [0]]
    base = full_ranking_metrics(scores, train, test, ks=(2,))
    assert full_ranking_metrics(scores, train, test, ks=(np.int64(2),)) == base  # type: ignore[arg-type]
    # a repeated cut-off counts once (it was summed twice before)
    assert full_ranking_metrics(scores, train, test, ks=(2, 2)) == base
    assert full_ranking_metrics(scores, train, test, ks=[2]) == base
    for bad, match in [((), "at least one"), ((-1,), "ks must be an integer"),
                       ((0,), "ks must be an integer"), ((True,), "ks must be an integer"),
                       ((2.0,), "ks must be an integer"), (10, "sequence of cut-offs"),
                       ("10", "sequence of cut-offs")]:  # fmt: skip
        with pytest.raises(ValidationError, match=match):
            full_ranking_metrics(scores, train, test, ks=bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="matrix"):
        full_ranking_metrics(scores[0], train, test)


def test_auc_refuses_scores_that_are_not_finite() -> None:
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(ValidationError, match="NaN or infinite"):
            auc(np.array([0.9, bad, 0.2, 0.1]), np.array([1, 1, 0, 0]))
    for labels in ([1, 2, 0, 0], [1, np.nan, 0, 0]):  # a label is 0 or 1, not any non-zero
        with pytest.raises(ValidationError, match="labels must be 0 or 1"):
            auc(np.array([0.9, 0.8, 0.2, 0.1]), np.array(labels))


def test_full_ranking_refuses_item_indices_out_of_range() -> None:
    """An index past the last item raised a bare IndexError; a negative one silently counted
    as an item from the end, a fractional one as the item below it."""
    scores = np.arange(8, dtype=np.float64).reshape(2, 4)
    for train, test in [([[], []], [[4], [1]]), ([[], []], [[-1], [1]]),
                        ([[-1], []], [[3], [1]]), ([[], []], [[1.7], [1]]),
                        ([[], ["2"]], [[3], [1]])]:  # fmt: skip
        with pytest.raises(ValidationError, match="item ind"):
            full_ranking_metrics(scores, train, test)


@pytest.mark.parametrize("metric", [recall_at_k, precision_at_k, ndcg_at_k, mrr_at_k])
def test_metrics_refuse_predictions_that_are_not_numbers(metric: Callable[..., float]) -> None:
    """A NaN prediction used to rank last and still count as a hit within K, and text
    predictions ranked in alphabetical order ("10" below "9")."""
    for bad in (np.nan, np.inf):
        pred = PRED.assign(prediction=PRED["prediction"].where(PRED["item"] != 1, bad))
        with pytest.raises(ValidationError, match=r"NaN or \+inf"):
            metric(TRUE, pred, k=4)
    with pytest.raises(ValidationError, match="numbers"):
        metric(TRUE, PRED.assign(prediction=PRED["prediction"].astype(str)), k=4)
    # -inf ranks an item last, as in the full ranking
    last = PRED.assign(prediction=PRED["prediction"].where(PRED["item"] != 3, -np.inf))
    assert mrr_at_k(TRUE, last, k=1) == pytest.approx(1.0)


@pytest.mark.parametrize("metric", [recall_at_k, precision_at_k, ndcg_at_k, mrr_at_k])
def test_metrics_refuse_missing_users_and_items(metric: Callable[..., float]) -> None:
    """A row with no user used to be dropped from the truth without a word."""
    truth = pd.concat([TRUE, pd.DataFrame({"user": [None], "item": [7]})])
    with pytest.raises(ValidationError, match="missing"):
        metric(truth, PRED)
    with pytest.raises(ValidationError, match="missing"):
        metric(TRUE, PRED.assign(item=PRED["item"].where(PRED["item"] != 3)))


def test_random_split_checks_its_arguments() -> None:
    frame = pd.DataFrame({"user": ["u"] * 10 + ["v"] * 2, "item": list(range(12))})
    for ratios in [(float("nan"), 0.5, 0.5), (0.8, float("inf"), 0.1), "abc", (0.8, "a", 0.1)]:
        with pytest.raises(ValidationError, match="ratios"):
            random_split(frame, ratios=ratios)  # type: ignore[arg-type]
    # fewer than 2 would leave a user with a test item and no validation item
    for bad in (0, 1, "3", 2.5, True):
        with pytest.raises(ValidationError, match="min_interactions"):
            random_split(frame, min_interactions=bad)  # type: ignore[arg-type]
    _, valid, test = random_split(frame, min_interactions=2)
    assert set(valid["user"]) == set(test["user"]) == {"u", "v"}
    # a row without a user went to training under the user NaN
    for column in ("user", "item"):
        holed = frame.assign(**{column: frame[column].where(frame.index != 3)})
        with pytest.raises(ValidationError, match="missing"):
            random_split(holed)
    empty = random_split(frame.iloc[:0])
    assert all(len(part) == 0 for part in empty)


def test_random_split_refuses_a_seed_that_is_not_a_count() -> None:
    """``seed=None`` split at random on every call (so "deterministic for a seed" did not
    hold), and a negative or fractional seed raised numpy's own ValueError or TypeError."""
    frame = pd.DataFrame({"user": ["u"] * 10, "item": list(range(10))})
    for bad in (None, -1, 1.5, "0", True):
        with pytest.raises(ValidationError, match="seed must be an integer"):
            random_split(frame, seed=bad)  # type: ignore[arg-type]
    got = random_split(frame, seed=np.int64(5))  # type: ignore[arg-type]
    assert all(a.equals(b) for a, b in zip(got, random_split(frame, seed=5), strict=True))


@pytest.mark.parametrize("ratios", [(0.0, 0.0, 1.0), (0.0, 1.0, 0.0), (0.1, 0.0, 0.9)])
def test_random_split_keeps_its_promise_under_extreme_ratios(
    ratios: tuple[float, float, float],
) -> None:
    """A test share of 1 gave every item to the test split and none to validation, though
    every eligible user is promised at least one validation and one test item."""
    rows = [(f"u{n}", i) for n in (2, 3, 4, 7, 12) for i in range(n)]
    frame = pd.DataFrame(rows, columns=["user", "item"])
    train, valid, test = random_split(frame, ratios=ratios, min_interactions=2, seed=1)
    assert len(train) + len(valid) + len(test) == len(frame)
    assert set(valid["user"]) == set(test["user"]) == set(frame["user"])


def test_random_split_is_unchanged_for_ordinary_ratios() -> None:
    """Per user sizes 2..400: the default 8:1:1 split gives each eligible user
    max(1, round(size / 10)) test and validation items, the rest in training."""
    rows = [(f"u{n}", i) for n in range(2, 401) for i in range(n)]
    frame = pd.DataFrame(rows, columns=["user", "item"])
    train, valid, test = random_split(frame, min_interactions=2, seed=0)
    sizes = frame.groupby("user").size()
    want = (sizes * 0.1).round().clip(lower=1).astype(int)
    assert test.groupby("user").size().reindex(sizes.index).equals(want)
    assert valid.groupby("user").size().reindex(sizes.index).equals(want)
    assert train.groupby("user").size().reindex(sizes.index, fill_value=0).equals(sizes - 2 * want)


def test_full_ranking_refuses_scores_that_are_not_real_numbers() -> None:
    """Text and object scores raised numpy's TypeError; complex scores were ranked by their
    real and imaginary parts as if they were numbers."""
    train: list[list[int]] = [[]]
    test = [[0]]
    for bad in (np.array([["a", "b"]]), np.array([[1.0, None]], dtype=object),
                np.array([[1 + 1j, 2.0]])):  # fmt: skip
        with pytest.raises(ValidationError, match="scores must hold real numbers"):
            full_ranking_metrics(bad, train, test)
    # booleans and integers are numbers that rank
    ranked = full_ranking_metrics(np.array([[True, False]]), train, test, ks=(1,))
    assert ranked == full_ranking_metrics(np.array([[1, 0]]), train, test, ks=(1,))
    assert ranked == {"recall@1": 1.0, "ndcg@1": 1.0}


def test_auc_refuses_scores_that_are_not_numbers() -> None:
    """Text scores raised a bare ValueError, or were read as numbers when they looked like
    them ("10" and "9")."""
    for bad in (["a", "b", "c"], ["10", "9", "1"], [0.5, None, 0.1]):
        with pytest.raises(ValidationError, match="scores must hold numbers"):
            auc(np.array(bad), np.array([1, 0, 0]))
    assert auc(np.array([True, False, False]), np.array([1, 0, 0])) == 1.0


def test_random_split_follows_the_row_order_as_documented() -> None:
    """The split permutes the rows as given (the same rows in another order split otherwise
    for one seed, as its docstring says); sorting them first makes it independent of the
    order they came in."""
    rng = np.random.default_rng(2)
    rows = [(f"u{u}", int(i)) for u in range(30) for i in rng.choice(50, 10, replace=False)]
    frame = pd.DataFrame(rows, columns=["user", "item"])
    shuffled = frame.sample(frac=1.0, random_state=1)

    def test_pairs(f: pd.DataFrame) -> set[tuple[str, int]]:
        part = random_split(f.sort_values(["user", "item"]), seed=0)[2]
        return set(zip(part["user"], part["item"], strict=True))

    assert test_pairs(frame) == test_pairs(shuffled)
