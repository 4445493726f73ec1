"""Ranking metrics and the split protocol for recommendation.

The protocol follows MMRec (multimodal recommendation): a per-user random 8:1:1 split of the
interactions (users with fewer than ``min_interactions`` stay in training only), full ranking
over every item the user did not interact with in training, Recall@K and NDCG@K at 10 and 20.

Metrics come two ways, which agree where no two items a user ranks have equal scores:

- plain functions over DataFrames with uniform ``col_user``, ``col_item``, ``col_prediction``
  arguments (as in Microsoft's recommenders), for people comparing any model's output;
- :func:`full_ranking_metrics` over a score matrix, for training loops; its training items
  are left out of the ranking as if they were missing from the predictions (never a hit,
  whatever K, though a relevant item that is also a training item still counts as relevant).

Every metric is averaged over the users that have at least one relevant (test) item. A
(user, item) pair predicted more than once counts once, at its best score. Equal scores rank
in the frame's row order; :func:`full_ranking_metrics` takes tied finite scores in the order
numpy's partial sort leaves them (repeatable, but not the item order: so the two ways can
differ where ties straddle the cut-off, as with the popularity baseline's counts), and items
scored ``-inf`` in item order, after every finite score. Cut-offs are integers from 1
to :data:`MAX_K` (numpy integers taken, booleans not); a missing column, a missing
user or item, predictions or scores that are not numbers, non-finite AUC scores, NaN or +inf
predictions or full-ranking scores (``-inf`` ranks an item last), item indices outside the
score matrix or a bad cut-off raise :class:`~graphfusion.errors.ValidationError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from graphfusion.errors import ValidationError
from graphfusion.values import count_arg

__all__ = [
    "check_cutoffs",
    "random_split",
    "recall_at_k",
    "precision_at_k",
    "ndcg_at_k",
    "mrr_at_k",
    "auc",
    "full_ranking_metrics",
]

DEFAULT_USER, DEFAULT_ITEM, DEFAULT_PREDICTION = "user", "item", "prediction"

#: Largest cut-off K the metrics accept.
MAX_K = 1_000_000

#: Largest seed :func:`random_split` accepts (numpy's generators take 128-bit seeds).
MAX_SEED = 2**128 - 1


def _require_columns(frame: pd.DataFrame, what: str, columns: Iterable[str]) -> None:
    """Raise a ValidationError naming the first of ``columns`` that ``frame`` lacks, or the
    first that has missing values."""
    for col in columns:
        if col not in frame.columns:
            raise ValidationError(f"{what} must have the column {col!r}")
    for col in columns:
        missing = int(frame[col].isna().sum())
        if missing:
            raise ValidationError(f"{what} has {missing} row(s) with a missing {col!r}")


def _require_scores(frame: pd.DataFrame, what: str, col: str) -> None:
    """Raise a ValidationError unless ``frame[col]`` holds numbers, none NaN or ``+inf``."""
    if col not in frame.columns:
        raise ValidationError(f"{what} must have the column {col!r}")
    values = frame[col]
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        raise ValidationError(f"{what}[{col!r}] must hold numbers, got {values.dtype}")
    bad = int((~(values.to_numpy(dtype=np.float64) < np.inf)).sum())
    if bad:
        raise ValidationError(
            f"{what}[{col!r}] holds {bad} NaN or +inf value(s); predictions must be finite, "
            "or -inf for an item to rank last"
        )


def random_split(
    interactions: pd.DataFrame,
    *,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    col_user: str = DEFAULT_USER,
    col_item: str = DEFAULT_ITEM,
    min_interactions: int = 3,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split each user's interactions at random into train, validation and test.

    Args:
        interactions: One row per (user, item) interaction; repeated pairs are dropped first.
        ratios: Shares of train, validation and test (summing to 1).
        col_user: User column.
        col_item: Item column.
        min_interactions: Users with fewer interactions stay in training only.
        seed: Random seed, an integer of at least 0. The split is deterministic for a seed
            and the order of the rows: it shuffles the rows as given, so the same rows in
            another order split otherwise (sort them first for a split that does not
            depend on the order they came in).

    Returns:
        ``(train, valid, test)`` frames with the input's columns. Every user with at least
        ``min_interactions`` interactions has at least one validation and one test item
        (``max(1, round(share * interactions))`` of each, the test taking at most all but
        one), the rest in training.

    Raises:
        ValidationError: Missing columns or values, ratios that are not three finite shares
            summing to 1, ``min_interactions`` not an integer of at least 2, or ``seed`` not
            an integer of at least 0.
    """
    _require_columns(interactions, "interactions", (col_user, col_item))
    try:
        shares = np.asarray(ratios, dtype=np.float64)
    except (TypeError, ValueError):
        shares = np.full(1, np.nan)
    if (
        isinstance(ratios, str | bytes)
        or shares.shape != (3,)
        or not np.isfinite(shares).all()
        or (shares < 0).any()
        or abs(shares.sum() - 1.0) > 1e-6
    ):
        raise ValidationError(f"ratios must be three shares summing to 1, got {ratios!r}")
    # fewer than 2 interactions cannot give a validation and a test item
    min_interactions = count_arg("min_interactions", min_interactions, MAX_K, low=2)
    seed = count_arg("seed", seed, MAX_SEED, low=0)  # None would split anew on every call
    frame = interactions.drop_duplicates([col_user, col_item]).reset_index(drop=True)
    rng = np.random.default_rng(seed)
    frame = frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)
    pos = frame.groupby(col_user, sort=False).cumcount().to_numpy()
    size = frame.groupby(col_user, sort=False)[col_item].transform("size").to_numpy()
    # at least one of each; a test share near 1 must still leave one item to validate
    n_test = np.clip(np.round(size * shares[2]), 1, np.maximum(size - 1, 1)).astype(int)
    n_valid = np.clip(np.round(size * shares[1]), 1, np.maximum(size - n_test, 1)).astype(int)
    eligible = size >= min_interactions
    is_test = eligible & (pos < n_test)
    is_valid = eligible & ~is_test & (pos < n_test + n_valid)
    is_train = ~(is_test | is_valid)
    return frame[is_train], frame[is_valid], frame[is_test]


def _relevant(rating_true: pd.DataFrame, col_user: str, col_item: str) -> dict[object, set[object]]:
    return rating_true.groupby(col_user)[col_item].apply(set).to_dict()


def _top_k(
    rating_pred: pd.DataFrame, col_user: str, col_item: str, col_prediction: str, k: int
) -> dict[object, list[object]]:
    """Each user's top ``k`` distinct items, best first (a repeated pair keeps its best)."""
    top = rating_pred.sort_values([col_user, col_prediction], ascending=[True, False])
    top = top.drop_duplicates([col_user, col_item], keep="first")
    top = top.groupby(col_user, sort=False).head(k)
    return top.groupby(col_user, sort=False)[col_item].apply(list).to_dict()


def _average(
    value: Callable[[set[object], list[object], int], float],
    rating_true: pd.DataFrame,
    rating_pred: pd.DataFrame,
    col_user: str,
    col_item: str,
    col_prediction: str,
    k: int,
) -> float:
    """Mean of ``value(relevant items, top-k list, k)`` over users with relevant items."""
    k = count_arg("k", k, MAX_K)
    _require_columns(rating_true, "rating_true", (col_user, col_item))
    _require_columns(rating_pred, "rating_pred", (col_user, col_item))
    _require_scores(rating_pred, "rating_pred", col_prediction)
    truth = _relevant(rating_true, col_user, col_item)
    ranked = _top_k(rating_pred, col_user, col_item, col_prediction, k)
    values = [value(items, ranked.get(user, []), k) for user, items in truth.items()]
    return float(np.mean(values)) if values else 0.0


def _recall(items: set[object], top: list[object], k: int) -> float:
    return len(items & set(top)) / len(items)


def _precision(items: set[object], top: list[object], k: int) -> float:
    return len(items & set(top)) / k


def _ndcg(items: set[object], top: list[object], k: int) -> float:
    dcg = sum(1.0 / np.log2(r + 2) for r, item in enumerate(top) if item in items)
    ideal = sum(1.0 / np.log2(r + 2) for r in range(min(k, len(items))))
    return float(dcg / ideal)


def _reciprocal_rank(items: set[object], top: list[object], k: int) -> float:
    rank = next((r + 1 for r, item in enumerate(top) if item in items), None)
    return 1.0 / rank if rank else 0.0


def recall_at_k(
    rating_true: pd.DataFrame,
    rating_pred: pd.DataFrame,
    *,
    col_user: str = DEFAULT_USER,
    col_item: str = DEFAULT_ITEM,
    col_prediction: str = DEFAULT_PREDICTION,
    k: int = 10,
) -> float:
    """Recall@K: the share of a user's relevant items found in their top K, averaged.

    Range [0, 1]; 1 when every relevant item is in the top K (for users with more than K
    relevant items the best possible value is K / relevant).
    """
    return _average(_recall, rating_true, rating_pred, col_user, col_item, col_prediction, k)


def precision_at_k(
    rating_true: pd.DataFrame,
    rating_pred: pd.DataFrame,
    *,
    col_user: str = DEFAULT_USER,
    col_item: str = DEFAULT_ITEM,
    col_prediction: str = DEFAULT_PREDICTION,
    k: int = 10,
) -> float:
    """Precision@K: the share of the top K that is relevant (divided by K), averaged.

    Range [0, 1].
    """
    return _average(_precision, rating_true, rating_pred, col_user, col_item, col_prediction, k)


def ndcg_at_k(
    rating_true: pd.DataFrame,
    rating_pred: pd.DataFrame,
    *,
    col_user: str = DEFAULT_USER,
    col_item: str = DEFAULT_ITEM,
    col_prediction: str = DEFAULT_PREDICTION,
    k: int = 10,
) -> float:
    """NDCG@K with binary relevance: DCG = sum over hits at rank r (1-based) of 1/log2(r + 1),
    divided by the DCG of an ideal ranking of min(K, relevant) hits; averaged.

    Range [0, 1]; 1 when the relevant items fill the top ranks.
    """
    return _average(_ndcg, rating_true, rating_pred, col_user, col_item, col_prediction, k)


def mrr_at_k(
    rating_true: pd.DataFrame,
    rating_pred: pd.DataFrame,
    *,
    col_user: str = DEFAULT_USER,
    col_item: str = DEFAULT_ITEM,
    col_prediction: str = DEFAULT_PREDICTION,
    k: int = 10,
) -> float:
    """MRR@K: 1 / rank of the first relevant item in the top K (0 when none), averaged.

    Range [0, 1].
    """
    return _average(
        _reciprocal_rank, rating_true, rating_pred, col_user, col_item, col_prediction, k
    )


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC: the probability that a random positive scores above a random negative
    (ties count half). Range [0, 1]; 0.5 is chance.

    Raises:
        ValidationError: Shapes differ, a score is not a number or is NaN or infinite, a
            label is not 0 or 1, or the labels are not both present.
    """
    given = np.asarray(scores)
    if given.dtype.kind not in "biuf":  # text such as "10" is not a score, nor None
        raise ValidationError(f"scores must hold numbers, got {given.dtype}")
    s = given.astype(np.float64).ravel()
    raw = np.asarray(labels).ravel()
    if not np.isin(raw, (0, 1)).all():
        raise ValidationError("labels must be 0 or 1 (or booleans)")
    y = raw.astype(bool)
    if s.shape != y.shape:
        raise ValidationError("scores and labels must have the same length")
    if not np.isfinite(s).all():
        raise ValidationError(
            f"scores hold {int((~np.isfinite(s)).sum())} NaN or infinite values; AUC needs "
            "finite scores"
        )
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValidationError("AUC needs both positive and negative labels")
    ranks = pd.Series(s).rank(method="average").to_numpy()
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


#: Score cells :func:`full_ranking_metrics` ranks at once (users per block: this / items).
RANKING_CHUNK = 1 << 22


def _cells(
    items: Sequence[Iterable[int]], users: range, n_items: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Row (within ``users``) and column indices of the users' items.

    Raises:
        ValidationError: An item is not an integer index of the ``n_items`` columns.
    """
    lists = []
    for u in users:
        given = items[u]
        raw = given if isinstance(given, np.ndarray) else np.asarray(list(given))
        if raw.size and (
            raw.dtype.kind not in "iu" or raw.ndim != 1 or raw.min() < 0 or raw.max() >= n_items
        ):
            raise ValidationError(
                f"{what}[{u}] must hold item indices, integers in 0..{n_items - 1}, got "
                f"{raw.tolist()[:5]!r}"
            )
        lists.append(raw.astype(np.int64).reshape(-1))
    rows = np.repeat(np.arange(len(lists)), [len(x) for x in lists])
    cols = np.concatenate(lists) if lists else np.zeros(0, dtype=np.int64)
    return rows, cols


def check_cutoffs(ks: object) -> tuple[int, ...]:
    """``ks`` as distinct Python ints in 1..MAX_K, in the order given.

    Raises:
        ValidationError: Not a non-empty sequence of such cut-offs.
    """
    if isinstance(ks, str | bytes) or not isinstance(ks, Iterable):
        raise ValidationError(f"ks must be a sequence of cut-offs such as (10, 20), got {ks!r}")
    out = tuple(dict.fromkeys(count_arg("ks", k, MAX_K) for k in ks))
    if not out:
        raise ValidationError("ks must hold at least one cut-off, got none")
    return out


def _ranked_top(block: np.ndarray, masked: np.ndarray, kmax: int) -> np.ndarray:
    """Per row of ``block`` (scores, the ``masked`` training items at ``-inf``), the columns
    of its ``kmax`` best items, best first.

    Finite scores rank as numpy's partial sort leaves their ties. Where fewer than ``kmax``
    items have finite scores, the rest of the row's top follows in item order: first the
    items scored ``-inf``, then the masked training items (which rank after every item
    that is not excluded).
    """
    top = np.argpartition(-block, kmax - 1, axis=1)[:, :kmax]
    order = np.argsort(-np.take_along_axis(block, top, axis=1), axis=1, kind="stable")
    ranked = np.take_along_axis(top, order, axis=1)
    # rows whose top reaches -inf: fewer than kmax items have finite scores
    short = np.flatnonzero(np.isneginf(np.take_along_axis(block, ranked[:, -1:], axis=1)[:, 0]))
    if not len(short):
        return ranked
    rows = block[short]
    finite = np.isfinite(rows)
    columns = np.arange(rows.shape[1])
    # -inf items by column, then the masked ones; finite ones (ranked already) last
    tail_key = np.where(finite, 2 * rows.shape[1], columns + masked[short] * rows.shape[1])
    tail = np.argpartition(tail_key, kmax - 1, axis=1)[:, :kmax]
    tail = np.take_along_axis(tail, np.argsort(np.take_along_axis(tail_key, tail, axis=1),
                                               axis=1), axis=1)  # fmt: skip
    n_finite = finite.sum(axis=1, keepdims=True)
    place = np.arange(kmax)[None, :]
    both = np.concatenate([ranked[short], tail], axis=1)
    ranked[short] = np.take_along_axis(
        both, np.where(place < n_finite, place, kmax + place - n_finite), axis=1
    )
    return ranked


def full_ranking_metrics(
    scores: np.ndarray,
    train_items: Sequence[Iterable[int]],
    test_items: Sequence[Iterable[int]],
    ks: Sequence[int] = (10, 20),
) -> dict[str, float]:
    """Recall@K and NDCG@K over a score matrix, ranking every item not seen in training.

    Args:
        scores: ``(n_users, n_items)`` scores, higher is better: finite, or ``-inf`` for an
            item ranked below every finite score but still ranked (items tied at ``-inf``
            in item order, where K reaches them). NaN and ``+inf`` have no place in a ranking
            and are refused.
        train_items: Per user, the item indices seen in training: excluded from the
            ranking (never a hit, even where K reaches every item; one that is also a test
            item still counts in the user's relevant items, as in the DataFrame metrics when
            the predictions leave the training items out).
        test_items: Per user, the relevant item indices (users with none are skipped).
        ks: Cut-offs, at least one, each an integer from 1 to :data:`MAX_K` (a repeated one
            counts once; one above the number of items ranks them all).

    Returns:
        ``{"recall@10": ..., "ndcg@10": ..., ...}``, each in [0, 1], averaged over users with
        relevant items, with the same definitions as :func:`recall_at_k` and
        :func:`ndcg_at_k`.

    Raises:
        ValidationError: ``scores`` is not a matrix of real numbers or holds NaN or ``+inf``
            (the message says how many and in which rows), the item lists do not have one
            entry per user or hold something other than item indices (integers from 0 to
            ``n_items - 1``), or ``ks`` is not a non-empty sequence of cut-offs.
    """
    ks = check_cutoffs(ks)
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValidationError(f"scores must be a (users, items) matrix, got shape {scores.shape}")
    if scores.dtype.kind not in "biuf":  # text, objects, complex numbers do not rank
        raise ValidationError(f"scores must hold real numbers, got {scores.dtype}")
    n_users, n_items = scores.shape
    if len(train_items) != n_users or len(test_items) != n_users:
        raise ValidationError("train_items and test_items need one entry per user (row)")
    kmax = min(max(ks), n_items)
    sums = {f"{m}@{k}": 0.0 for k in ks for m in ("recall", "ndcg")}
    counted = 0
    discounts = 1.0 / np.log2(np.arange(2, kmax + 2))
    ideal = np.concatenate([[1.0], np.cumsum(discounts)])  # by number of relevant items
    step = max(1, RANKING_CHUNK // max(n_items, 1))
    dtype = np.result_type(scores.dtype, np.float32)  # float32 stays: ranks as given
    n_bad, bad_rows = 0, []  # NaN and +inf scores, and the rows (users) holding them
    for start in range(0, n_users, step):
        users = range(start, min(start + step, n_users))
        block = np.array(scores[users.start : users.stop], dtype=dtype)
        bad = (~(block < np.inf)).sum(axis=1)  # NaN or +inf; -inf is a masked item
        if bad.any():
            n_bad += int(bad.sum())
            bad_rows.extend((np.flatnonzero(bad) + start).tolist())
        if n_bad:
            continue  # refused below, once every row is counted
        masked = np.zeros(block.shape, dtype=bool)
        masked[_cells(train_items, users, n_items, "train_items")] = True
        block[masked] = -np.inf
        relevant = np.zeros(block.shape, dtype=bool)
        relevant[_cells(test_items, users, n_items, "test_items")] = True
        n_relevant = relevant.sum(axis=1)
        keep = n_relevant > 0
        if not keep.any():
            continue
        block, relevant, n_relevant = block[keep], relevant[keep], n_relevant[keep]
        masked = masked[keep]
        ranked = _ranked_top(block, masked, kmax)
        # a training item is excluded: it is never a hit, even where K reaches it
        hits = np.take_along_axis(relevant & ~masked, ranked, axis=1)
        for k in ks:
            h = hits[:, :k]
            sums[f"recall@{k}"] += float((h.sum(axis=1) / n_relevant).sum())
            best = ideal[np.minimum(k, n_relevant)]
            sums[f"ndcg@{k}"] += float(((h * discounts[: h.shape[1]]).sum(axis=1) / best).sum())
        counted += int(keep.sum())
    if n_bad:
        shown = ", ".join(map(str, bad_rows[:5])) + (", ..." if len(bad_rows) > 5 else "")
        raise ValidationError(
            f"scores hold {n_bad} NaN or +inf value(s) in {len(bad_rows)} user row(s) "
            f"({shown}); scores must be finite, or -inf for an item to rank last"
        )
    return {name: (value / counted if counted else 0.0) for name, value in sums.items()}
