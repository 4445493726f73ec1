"""Training and evaluation, round 3: the training items full ranking excludes, interaction
types and their weights as settings, and training on unusual small stores."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from builders import linked_shop

from graphfusion.errors import ValidationError
from graphfusion.evaluate import full_ranking_metrics, ndcg_at_k, recall_at_k
from graphfusion.train import TYPE_WEIGHTS, TrainConfig, train


def _said(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "graphfusion.train"]


def _frame_metrics(
    scores: np.ndarray, train: list[list[int]], test: list[list[int]], k: int
) -> tuple[float, float]:
    """Recall@k and NDCG@k of the DataFrame metrics, the training items left out of the
    predictions (what "excluded from the ranking" means)."""
    rows = [(u, i, float(s)) for u, row in enumerate(scores) for i, s in enumerate(row)
            if i not in train[u]]  # fmt: skip
    pred = pd.DataFrame(rows, columns=["user", "item", "prediction"])
    true = pd.DataFrame([(u, i) for u, items in enumerate(test) for i in items],
                        columns=["user", "item"])  # fmt: skip
    return recall_at_k(true, pred, k=k), ndcg_at_k(true, pred, k=k)


def test_a_training_item_is_never_a_hit_even_when_k_ranks_every_item() -> None:
    """With K at least the number of items, the masked training items entered the top K,
    and a test item that was also a training item counted as a hit (Recall@3 of 1)."""
    scores = np.array([[5.0, 1.0, 2.0]])
    assert full_ranking_metrics(scores, [[0]], [[0]], ks=(3,)) == {"recall@3": 0.0,
                                                                  "ndcg@3": 0.0}  # fmt: skip
    got = full_ranking_metrics(scores, [[0]], [[0, 1]], ks=(3, 10))
    want = _frame_metrics(scores, [[0]], [[0, 1]], 3)
    assert got["recall@3"] == pytest.approx(want[0]) == pytest.approx(0.5)
    assert got["ndcg@3"] == pytest.approx(want[1])
    assert got["recall@10"] == pytest.approx(0.5)


@pytest.mark.parametrize("train", [[0], [3], [4], [0, 3], [3, 4]])
def test_items_scored_minus_inf_rank_before_the_training_items(train: list[int]) -> None:
    """An item scored -inf ranks after every finite score but is still ranked; a masked
    training item came before it in the top K (Recall@4 of 0 where it is 4th of 4)."""
    scores = np.array([[1.0, 2.0, -np.inf, 0.5, 0.3]])
    for k in (3, 4, 5, 6):
        got = full_ranking_metrics(scores, [train], [[2]], ks=(k,))
        recall, ndcg = _frame_metrics(scores, [train], [[2]], k)
        assert got[f"recall@{k}"] == pytest.approx(recall), (k, train)
        assert got[f"ndcg@{k}"] == pytest.approx(ndcg), (k, train)


def test_full_ranking_agrees_with_the_frame_metrics_on_small_catalogues() -> None:
    """Random small cases, K from 1 to beyond the catalogue, some scores -inf, some test
    items also training items: the two ways agree (scores distinct, so no ties)."""
    rng = np.random.default_rng(3)
    for _ in range(40):
        n_users, n_items = int(rng.integers(1, 5)), int(rng.integers(2, 9))
        scores = rng.permutation(n_users * n_items).reshape(n_users, n_items).astype(float)
        scores[rng.random(scores.shape) < 0.2] = -np.inf
        minus_inf = np.isneginf(scores)
        train = [sorted(rng.choice(n_items, int(rng.integers(0, n_items)), replace=False).tolist())
                 for _ in range(n_users)]  # fmt: skip
        test = [sorted(rng.choice(n_items, int(rng.integers(1, n_items + 1)), replace=False)
                       .tolist()) for _ in range(n_users)]  # fmt: skip
        for k in (1, 2, n_items - 1, n_items, n_items + 3):
            if k < 1 or (minus_inf.sum(axis=1) > 1).any():
                continue  # -inf ties rank in item order here, in row order there
            got = full_ranking_metrics(scores, train, test, ks=(k,))
            recall, ndcg = _frame_metrics(scores, train, test, k)
            assert got[f"recall@{k}"] == pytest.approx(recall)
            assert got[f"ndcg@{k}"] == pytest.approx(ndcg)


def test_items_tied_at_minus_inf_rank_in_item_order() -> None:
    scores = np.array([[1.0] + [-np.inf] * 5])
    # item 4 ranks 4th: after item 0 and the -inf items 1 and 3 (item 2 is a training item)
    got = full_ranking_metrics(scores, [[2]], [[4]], ks=(3, 4))
    assert got["recall@3"] == 0.0 and got["recall@4"] == 1.0
    assert got["ndcg@4"] == pytest.approx(1 / np.log2(5))


def test_the_top_k_of_ordinary_scores_is_unchanged() -> None:
    """Where K finite scores remain after the masking, nothing differs from a plain
    ranking: a large random case against a sort by hand (ties broken alike)."""
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(50, 400)).astype(np.float32)
    train = [rng.choice(400, 30, replace=False).tolist() for _ in range(50)]
    test = [rng.choice(np.setdiff1d(np.arange(400), t), 5, replace=False).tolist()
            for t in train]  # fmt: skip
    got = full_ranking_metrics(scores, train, test, ks=(10, 20))
    for k in (10, 20):
        recall, ndcg = _frame_metrics(scores, train, test, k)
        assert got[f"recall@{k}"] == pytest.approx(recall)
        assert got[f"ndcg@{k}"] == pytest.approx(ndcg)


# ---------------------------------------------------------------- interaction types as settings


@pytest.mark.parametrize("types", [("BOUGHT",), ("PURCHASED", "purchased")])
def test_an_interaction_type_the_schema_lacks_is_a_bad_setting(
    tmp_path: Path, types: tuple[str, ...]
) -> None:
    """``interactions`` naming a type the schema lacks raised SchemaError ("training on
    BOUGHT needs what the schema lacks ... it reads the graph of the built-in e-commerce
    schema"), where Engine.train documents ValidationError for a bad setting: the setting
    is wrong, not the schema. The message names the types that would do."""
    with linked_shop(tmp_path / "store") as store:
        with pytest.raises(
            ValidationError,
            match=rf"interactions name {types[-1]}, which the schema 'ecommerce' lacks; its "
            r"types from User to Product are VIEWED, PURCHASED, FAVORITED, RATED",
        ):
            train(store, TrainConfig(model="mf", epochs=1, interactions=types))
        assert not (tmp_path / "store" / "models").exists()


def test_an_interaction_type_that_does_not_link_users_to_products_is_refused(
    tmp_path: Path,
) -> None:
    refused = pytest.raises(
        ValidationError,
        match=r"interactions name WROTE, which does not link User to Product; .* VIEWED, PURCHASED",
    )
    with linked_shop(tmp_path / "store") as store, refused:
        train(store, TrainConfig(model="mf", epochs=1, interactions=("PURCHASED", "WROTE")))


@pytest.mark.parametrize("types", [("PURCHASED", "PURCHASED"), ["VIEWED", "PURCHASED", "VIEWED"]])
def test_a_repeated_interaction_type_is_refused(types: tuple[str, ...]) -> None:
    """A repeated type was accepted silently (and gave the taste model's pair features the
    same two columns twice)."""
    with pytest.raises(ValidationError, match=r"interactions name \w+ more than once"):
        TrainConfig(interactions=types).check()


def test_type_weights_of_types_not_trained_on_are_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Weights of a type that training does not read changed nothing, silently; they are
    named in a warning. The defaults, which weigh every built-in type, are not."""
    weights = {"PURCHASED": 4.0, "VIEWED": 3.0, "FAVORITED": 2.0}
    with linked_shop(tmp_path / "store") as store, caplog.at_level(logging.WARNING):
        train(store, TrainConfig(model="popularity", interactions=("PURCHASED",)))
        assert not [m for m in _said(caplog) if "type_weights" in m]
        train(store, TrainConfig(model="fusion", epochs=1, taste_epochs=0,
                                 interactions=("PURCHASED",), type_weights=weights))  # fmt: skip
    said = [m for m in _said(caplog) if "type_weights" in m]
    assert said == [
        "type_weights weigh FAVORITED, VIEWED, which training does not read (interactions: "
        "PURCHASED): they change nothing"
    ]


def test_type_weights_given_to_a_model_that_does_not_use_them_are_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with linked_shop(tmp_path / "store") as store, caplog.at_level(logging.WARNING):
        train(store, TrainConfig(model="popularity", type_weights=None))
        train(store, TrainConfig(model="popularity"))
        assert not [m for m in _said(caplog) if "type_weights" in m]
        train(
            store, TrainConfig(model="popularity", type_weights={**TYPE_WEIGHTS, "PURCHASED": 8.0})
        )
    assert [m for m in _said(caplog) if "type_weights" in m] == [
        "type_weights are used by the fusion model only: the popularity model ignores them"
    ]


# ---------------------------------------------------------------- unusual training runs


@pytest.mark.parametrize("model", ["mf", "lightgcn"])
def test_weights_that_overflow_are_called_a_diverged_training(tmp_path: Path, model: str) -> None:
    """With a huge lr the loss of the first steps stayed finite but the weights overflowed:
    validation then failed with the metrics' message for a caller's bad scores ("scores hold
    76 NaN or +inf value(s) ... or -inf for an item to rank last"), which says nothing of
    training. It is called a divergence, naming the epoch and the lr, and nothing is
    written."""
    with linked_shop(tmp_path / "store") as store:
        with pytest.raises(
            ValidationError,
            match=r"training diverged: the model's (weights are not finite|scores are NaN or "
            r"\+inf) after epoch 1; use a smaller lr \(it was 1e\+30\)",
        ):
            train(store, TrainConfig(model=model, epochs=2, lr=1e30))
        assert not list((tmp_path / "store" / "models").glob("*.pt"))


@pytest.mark.parametrize(
    ("types", "message"),
    [
        (("BOUGHT",), r"interactions name BOUGHT, which the schema 'ecommerce' lacks; its types"),
        (("PURCHASED", "PURCHASED"), r"interactions name PURCHASED more than once"),
        (("WROTE",), r"interactions name WROTE, which does not link User to Product"),
    ],
)
def test_load_interactions_refuses_bad_types_as_it_documents(
    tmp_path: Path, types: tuple[str, ...], message: str
) -> None:
    """load_interactions documents ValidationError for a bad type: an unknown one raised
    SchemaError, and a repeated one gave a frame whose pair-feature columns were assigned
    four columns under two names."""
    from graphfusion.train import load_interactions

    with linked_shop(tmp_path / "store") as store, pytest.raises(ValidationError, match=message):
        load_interactions(store, types)
