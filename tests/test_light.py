"""The light-user blend: its parts, its weights, and choosing them in training."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from graphfusion import Engine, light
from graphfusion import train as train_module
from graphfusion.errors import ValidationError
from graphfusion.ingest import load
from graphfusion.light import (
    DEFAULT_WEIGHTS,
    PARTS,
    HeldOut,
    LightParts,
    fit_weights,
    light_split,
)
from graphfusion.models.neighbourhood import WEIGHTS
from graphfusion.recommend import Recommender
from graphfusion.train import load_interactions


def _frame(products_per_user: list[int]) -> pd.DataFrame:
    rows = [(u, i) for u, n in enumerate(products_per_user) for i in range(n)]
    return pd.DataFrame(rows, columns=["user", "item"])


def test_light_split_keeps_one_or_two_products_of_heavy_users() -> None:
    frame = _frame([12] * 140 + [9] * 30 + [30] * 10)
    kept, held, users = light_split(frame, 0.5, seed=0)
    assert len(users) == 75  # half of the 150 users with at least MIN_PRODUCTS products
    assert set(users) <= set(range(140)) | set(range(170, 180))
    per_user = kept[kept["user"].isin(users)].groupby("user")["item"].nunique()
    assert per_user.loc[users].tolist() == [1 + pos % 2 for pos in range(len(users))]
    assert set(held["user"]) == set(users)
    assert len(kept) + len(held) == len(frame)
    merged = pd.concat([kept, held]).sort_values(["user", "item"]).reset_index(drop=True)
    assert merged.equals(frame)
    again = light_split(frame, 0.5, seed=0)
    assert np.array_equal(again[2], users) and again[1].equals(held)
    assert not np.array_equal(light_split(frame, 0.5, seed=1)[2], users)
    # too few to validate and test: nobody is made light
    few, none, nobody = light_split(frame, 0.3, seed=0)
    assert 3 * light.MIN_USERS > 0.3 * 150
    assert few.equals(frame) and none.empty and len(nobody) == 0
    assert light_split(frame, 0.0, seed=0)[2].size == 0


def _parts(kept: list[int]) -> LightParts:
    rng = np.random.default_rng(0)
    values = {name: light.standard(rng.normal(size=(len(kept), 6))) for name in PARTS}
    known = {name: np.ones(len(kept), dtype=bool) for name in PARTS}
    return LightParts(values, known, np.array(kept, dtype=np.float64))


def test_blend_is_the_weighted_mean_of_the_known_parts() -> None:
    parts = _parts([1, 2])
    parts.known["peers"][1] = False
    weights = {"popularity": 1.0, "products": 0.5, "model": 2.0, "peers": 0.25}
    got = parts.blend(weights)
    v = parts.values
    first = (v["popularity"][0] + 0.5 * v["products"][0] + 2 * v["model"][0]
             + 0.25 * v["peers"][0]) / 3.75  # fmt: skip
    second = (v["popularity"][1] + 2 * 0.5 * v["products"][1] + 2 * v["model"][1]) / 4.0
    np.testing.assert_allclose(got, np.stack([first, second]))
    # every weight of a user's known parts 0: popularity alone
    zero = parts.blend(dict.fromkeys(PARTS, 0.0))
    np.testing.assert_allclose(zero, v["popularity"])
    assert np.allclose(light.standard(np.array([3.0, 3.0])), 0.0)


def test_peers_match_on_what_is_known_of_the_user() -> None:
    """Age, then a gender block and an occupation block: a user who gave only a gender is
    matched on it; one who gave everything, on everything; one who gave nothing has none."""
    profile = np.array([
        [0.0, 1, 0, 0, 0],  # gender only (age missing: 0; occupation missing: zeros)
        [0.5, 1, 0, 1, 0],
        [-0.5, 1, 0, 0, 1],
        [0.5, 0, 1, 1, 0],
        [0.5, 1, 0, 1, 0],  # the same as user 1
        [0.0, 0, 0, 0, 0],  # nothing known
        [0.5, 1, 0, 1, 0],  # the same as user 1, without interactions
    ], dtype=np.float32)  # fmt: skip
    trained = np.array([True, True, True, True, True, True, False])
    blocks = [slice(0, 1), slice(1, 3), slice(3, 5)]
    assert light.peer_rows(profile, trained, 0, blocks).tolist() == [1, 2, 4]
    assert light.peer_rows(profile, trained, 1, blocks).tolist() == [4]
    assert light.peer_rows(profile, trained, 5, blocks).tolist() == []
    # without the blocks, every column must match
    assert light.peer_rows(profile, trained, 0).tolist() == []
    assert light.peer_rows(profile, trained, 1).tolist() == [4]


def test_demographic_blocks_follow_the_columns_of_the_encoding() -> None:
    """The blocks peer_rows matches on are those demographic_features writes: age first when
    there is an age column, then each one-hot property; training and serving share them."""
    from graphfusion.features.demographics import Demographics

    both = Demographics((30.0, 5.0), {"gender": ("f", "m"), "occupation": ("a", "b", "c")})
    assert both.blocks() == [slice(0, 1), slice(1, 3), slice(3, 6)]
    no_age = Demographics(None, {"gender": ("f", "m"), "occupation": ()})
    assert no_age.blocks() == [slice(0, 2)]
    assert Demographics().blocks() == []


def _held_out(seed: int, n_users: int = 30, n_items: int = 50, signal: float = 0.0) -> HeldOut:
    """Random parts; with ``signal``, the peers part points at the held-out products."""
    rng = np.random.default_rng(seed)
    truth = [sorted(rng.choice(np.arange(2, n_items), 3, replace=False).tolist())
             for _ in range(n_users)]  # fmt: skip
    values = {name: light.standard(rng.normal(size=(n_users, n_items))) for name in PARTS}
    for u, items in enumerate(truth):
        values["peers"][u, items] += signal
    values["peers"] = light.standard(values["peers"])
    parts = LightParts(values, {n: np.ones(n_users, dtype=bool) for n in PARTS},
                       np.full(n_users, 2.0))  # fmt: skip
    return HeldOut(parts, [[0, 1] for _ in range(n_users)], truth)


def test_fit_weights_finds_the_part_that_ranks_the_held_out_products() -> None:
    search, confirm = _held_out(1, signal=5.0), _held_out(2, n_users=25, signal=5.0)
    fit = fit_weights(search, confirm)
    weights = fit.weights
    assert fit.found == weights and fit.gain > light.MIN_Z * fit.error and fit.users == (30, 25)
    assert fit.to_dict()["served"] == "found"
    assert set(weights) == set(PARTS) and set(weights.values()) <= set(WEIGHTS)
    # the peers alone rank every held-out product first; ties keep the smaller weights
    assert weights["peers"] > 0 and all(w == 0 for k, w in weights.items() if k != "peers")
    top = np.argsort(-confirm.parts.blend(weights), axis=1)[:, :3]
    assert [sorted(row) for row in top.tolist()] == confirm.truth
    assert confirm.recall(weights) == 1.0 > confirm.recall(DEFAULT_WEIGHTS)
    with pytest.raises(ValidationError, match="one entry per light user"):
        HeldOut(search.parts, search.kept[:-1], search.truth)


def test_fit_weights_keeps_the_defaults_unless_other_users_confirm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    search, confirm = _held_out(3), _held_out(4)  # noise: what the search finds is chance
    fit = fit_weights(search, confirm)
    assert fit.weights == DEFAULT_WEIGHTS != fit.found
    assert search.recall(fit.found) > search.recall(DEFAULT_WEIGHTS)  # flattered by its users
    assert fit.gain <= light.MIN_Z * fit.error and fit.to_dict()["served"] == "defaults"
    monkeypatch.setattr(light, "MIN_Z", -np.inf)  # without the test, the search is served
    assert fit_weights(search, confirm).weights == fit.found


def test_group_of_puts_both_kinds_of_light_users_in_each_third() -> None:
    group = light.group_of(12)
    assert group.tolist() == [0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2]
    kept = np.arange(12) % 2 + 1  # as light_split: one product, then two, alternately
    for g in range(len(light.GROUPS)):
        assert set(kept[group == g]) == {1, 2}


@pytest.fixture
def engine(tiny_shop: Path, tmp_path: Path) -> Engine:
    engine = Engine(tmp_path / "store")
    load(engine.store, "synthetic", {"shop": tiny_shop})
    return engine


def test_training_chooses_and_saves_the_light_weights(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(light, "MIN_USERS", 5)  # the tiny shop has 60 users
    frame, _, _ = load_interactions(engine.store)
    users = light_split(frame, 0.5, seed=0)[2]
    assert len(users) >= 10
    split = train_module.random_split
    given: list[pd.DataFrame] = []

    def spy(frame: pd.DataFrame, **kwargs: Any) -> Any:
        given.append(frame)
        return split(frame, **kwargs)

    monkeypatch.setattr(train_module, "random_split", spy)
    result = engine.train("lightgcn", epochs=4, patience=4, batch_size=256, lr=0.01,
                          light_users=0.5)  # fmt: skip
    assert set(result.light_weights) == set(PARTS)
    assert set(result.light_weights.values()) <= set(WEIGHTS)
    assert set(result.light) == {"recall@10", "ndcg@10", "recall@20", "ndcg@20",
                                 "default recall@20"}  # fmt: skip
    assert all(0.0 <= v <= 1.0 for v in result.light.values())
    assert "light users" in result.summary()
    group = light.group_of(len(users))
    assert result.light_search["users"] == [int((group == 0).sum()), int((group == 1).sum())]
    assert result.light_search["served"] in {"found", "defaults"}
    history = json.loads(Path(str(result.checkpoint).replace(".pt", "-history.json")).read_text())
    assert history["light_weights"] == result.light_weights
    ckpt = torch.load(result.checkpoint, weights_only=True)
    assert ckpt["light_weights"] == result.light_weights
    assert Recommender(engine.store).light_weights == result.light_weights
    # weights a training chose are served (the tiny shop's search may well keep the defaults)
    chosen = {"popularity": 0.5, "products": 0.0, "model": 2.0, "peers": 0.125}
    torch.save({**ckpt, "light_weights": chosen}, result.checkpoint)
    served = Recommender(engine.store)
    assert served.light_weights == chosen
    u = served.state.user_index[served.state.users[0]]
    assert np.allclose(served._blend(u), served._blend(u, chosen))
    assert not np.allclose(served._blend(u), served._blend(u, DEFAULT_WEIGHTS))
    # the model was trained and validated on one or two products of each light user
    per_user = given[0].groupby("user")["item"].nunique()
    assert per_user.loc[users].tolist() == [1 + pos % 2 for pos in range(len(users))]
    assert len(given[0]) < len(frame)
    # without light users, the defaults are served
    plain = engine.train("lightgcn", epochs=2, patience=2, batch_size=256)
    assert plain.light_weights == {} and plain.light == {}
    assert Recommender(engine.store).light_weights == DEFAULT_WEIGHTS
    with pytest.raises(ValidationError, match="light_users"):
        engine.train("mf", light_users=0.6)


@pytest.mark.parametrize("share", [1.5, -0.1, float("nan"), "0.3", True])
def test_light_split_refuses_a_share_outside_0_to_1(share: object) -> None:
    """A share above 1 or NaN was numpy's ValueError from the draw; a negative one or a
    string (compared with 0) made nobody light, or failed, without saying why."""
    with pytest.raises(ValidationError, match="share"):
        light_split(_frame([12] * 100), share, 0)  # type: ignore[arg-type]
    assert len(light_split(_frame([12] * 100), 1.0, 0)[2]) == 100
