"""Training on the stored interactions: history, early stopping, files, write-back."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from graphfusion import Engine
from graphfusion.cli import main
from graphfusion.errors import NotReadyError, ValidationError
from graphfusion.ingest import load
from graphfusion.recommend import Recommender
from graphfusion.store import EmbeddedStore
from graphfusion.store.base import BaseStore
from graphfusion.train import (
    TYPE_WEIGHTS,
    TrainConfig,
    load_interactions,
    pair_strength,
    product_log_prices,
)


@pytest.fixture
def engine(tiny_shop: Path, tmp_path: Path) -> Engine:
    engine = Engine(tmp_path / "store")
    load(engine.store, "synthetic", {"shop": tiny_shop})
    return engine


def test_lightgcn_trains_and_writes_fused_vectors(engine: Engine) -> None:
    result = engine.train("lightgcn", epochs=15, patience=15, batch_size=256, lr=0.01)
    losses = [h["loss"] for h in result.history]
    assert len(losses) == 15
    assert losses[-1] < losses[0]
    assert 1 <= result.best_epoch <= 15
    assert set(result.test) == {"recall@10", "ndcg@10", "recall@20", "ndcg@20"}
    assert all(0.0 <= v <= 1.0 for v in result.test.values())
    assert result.checkpoint is not None and result.checkpoint.exists()
    assert result.curve is not None and result.curve.read_bytes()[:4] == b"\x89PNG"
    counts = engine.stats().nodes
    for label in ("User", "Product"):
        n = engine.cypher(f"MATCH (n:{label}) WHERE n.fused_vec IS NOT NULL RETURN count(n) AS c")
        assert int(n["c"][0]) == counts[label]
    vec = engine.cypher("MATCH (p:Product {id: 'p0001'}) RETURN p.fused_vec AS v")["v"][0]
    assert len(vec) == 64 and np.isfinite(vec).all()
    assert len(engine.similar("p0001", "fused", k=3)) == 3


def test_early_stopping_and_determinism(engine: Engine) -> None:
    a = engine.train("mf", epochs=40, patience=2, batch_size=256, lr=0.05, seed=3)
    assert len(a.history) < 40
    assert len(a.history) - a.best_epoch == 2
    b = engine.train("mf", epochs=40, patience=2, batch_size=256, lr=0.05, seed=3)
    # the same seed gives the same run, up to float rounding of multi-threaded matmuls
    np.testing.assert_allclose(
        [h["loss"] for h in a.history], [h["loss"] for h in b.history], rtol=1e-5
    )
    assert a.test == pytest.approx(b.test, abs=1e-6)


def test_popularity_and_bad_settings(engine: Engine) -> None:
    pop = engine.train("popularity")
    assert pop.history == [] and pop.test["recall@20"] > 0
    with pytest.raises(ValidationError, match="unknown model"):
        engine.train("fusion-of-everything")
    with pytest.raises(ValidationError, match="epochs"):
        engine.train("mf", epochs=0)
    with pytest.raises(ValidationError, match="unknown training setting"):
        engine.train("mf", colour="red")
    with pytest.raises(ValidationError, match="cold_items"):
        engine.train("mf", cold_items=0.95)
    with pytest.raises(ValidationError, match="seed"):
        engine.train("mf", seed=-1)


def test_cold_items_are_held_out_and_tested_apart(engine: Engine) -> None:
    from graphfusion.train import COLD_VALID_SHARE, _cold_split, _cold_validation

    frame, _, items = load_interactions(engine.store)
    warm, cold_df, cold = _cold_split(frame, len(items), 0.25, seed=0)
    assert len(cold) == round(0.25 * frame["item"].nunique())
    assert set(cold_df["item"]) == set(cold) and not set(warm["item"]) & set(cold)
    assert len(warm) + len(cold_df) == len(frame)
    # a quarter of the cold products validate, the others are tested: no product in both
    valid_df, test_df, valid, tested = _cold_validation(cold_df, cold, seed=0)
    assert len(valid) == round(COLD_VALID_SHARE * len(cold)) and len(valid) + len(tested) == len(
        cold
    )
    assert not set(valid) & set(tested) and set(valid_df["item"]) <= set(valid)
    assert set(test_df["item"]) <= set(tested) and len(valid_df) + len(test_df) == len(cold_df)
    few = _cold_validation(cold_df, cold[:7], seed=0)
    assert len(few[2]) == 0 and len(few[1]) == len(cold_df)  # too few to split: all tested
    result = engine.train("fusion", epochs=3, patience=3, batch_size=512, cold_items=0.25)
    assert set(result.cold) == {"recall@10", "ndcg@10", "recall@20", "ndcg@20"}
    assert all(0.0 <= v <= 1.0 for v in result.cold.values())
    assert "cold items" in result.summary()
    assert engine.train("popularity").cold == {}


def test_a_shop_too_large_to_score_whole_is_validated_on_a_sample_and_tested_in_blocks(
    engine: Engine,
) -> None:
    from graphfusion.train import _validation_rows

    truth = [[1], [], [2, 3], [], [4], [5]]
    assert _validation_rows(6, 10, truth, 60, seed=0).tolist() == list(range(6))  # fits
    some = _validation_rows(6, 10, truth, 30, seed=0)  # 3 of the 4 users with truth
    assert len(some) == 3 and set(some) <= {0, 2, 4, 5} and list(some) == sorted(some)
    assert _validation_rows(6, 10, truth, 30, seed=0).tolist() == some.tolist()
    assert _validation_rows(6, 10, truth, 50, seed=0).tolist() == [0, 2, 4, 5]
    # the test ranks every user, a few at a time: the same metrics as all at once
    n_items = engine.stats().nodes["Product"]
    whole = engine.train("popularity", cold_items=0.2)
    blocks = engine.train("popularity", cold_items=0.2, max_scores=7 * n_items)
    assert blocks.test == pytest.approx(whole.test, abs=1e-12)
    assert blocks.cold == pytest.approx(whole.cold, abs=1e-12)
    with pytest.raises(ValidationError, match="max_scores"):
        engine.train("mf", max_scores=0)


def test_the_fusion_model_validates_on_a_sample_of_a_large_shop(
    trained_store: Path, private_copy: Callable[[Path], Engine]
) -> None:
    """Early stopping, the taste model's epochs and the blend weights, on 5 users' scores."""
    engine = private_copy(trained_store)
    n_items = engine.stats().nodes["Product"]
    small = engine.train("fusion", epochs=2, batch_size=512, taste_epochs=2,
                         max_scores=5 * n_items, cold_items=0.2)  # fmt: skip
    assert len(small.history) == 2 and len(small.taste_history) == 2 and small.blend
    assert all(0.0 <= v <= 1.0 for v in [*small.test.values(), *small.cold.values()])


def test_interactions_are_deduplicated_across_types(engine: Engine) -> None:
    frame, users, items = load_interactions(engine.store)
    assert not frame.duplicated().any()
    # sorted, so that a seeded split does not depend on the order the store returns rows in
    assert frame.equals(frame.sort_values(["user", "item"]).reset_index(drop=True))
    distinct = engine.cypher(
        "MATCH (u:User)-[r]->(p:Product) RETURN count(DISTINCT u.id + '|' + p.id) AS n"
    )
    assert len(frame) == int(distinct["n"][0])
    assert len(users) == engine.stats().nodes["User"] and len(items) == 40
    with pytest.raises(ValidationError):
        TrainConfig(batch_size=0).check()
    for bad in (-1, 1.5, True):
        with pytest.raises(ValidationError, match="taste_epochs"):
            TrainConfig(taste_epochs=bad).check()  # type: ignore[arg-type]


def test_each_pair_has_the_strength_of_the_types_that_link_it(engine: Engine) -> None:
    frame, users, items = load_interactions(engine.store, type_weights=TYPE_WEIGHTS)
    want: dict[tuple[str, str], float] = {}
    for rtype, weight in TYPE_WEIGHTS.items():
        rows = engine.cypher(
            f"MATCH (u:User)-[:{rtype}]->(p:Product) RETURN DISTINCT u.id AS u, p.id AS p"
        )
        for u, p in zip(rows.get("u", []), rows.get("p", []), strict=True):
            want[u, p] = want.get((u, p), 0.0) + weight
    columns = frame[["user", "item", "strength"]]
    got = {(users[u], items[i]): w for u, i, w in columns.itertuples(index=False)}
    assert got == want
    assert {1.0, 5.0} <= set(got.values())  # views alone, views with a purchase
    plain, _, _ = load_interactions(engine.store)
    assert (plain["strength"] == 1.0).all()
    assert plain[["user", "item"]].equals(frame[["user", "item"]])


def test_each_pair_says_which_types_link_it_and_their_weights(engine: Engine) -> None:
    """The taste model's pair features: per type, whether it links the pair and the log of
    its links' summed weight (a missing weight counts as 1)."""
    from graphfusion.train import how_columns, link_weights, pair_features

    types = ("VIEWED", "PURCHASED", "FAVORITED", "RATED")
    frame, users, items = load_interactions(engine.store, types)
    columns = how_columns(types)
    assert columns[:2] == ["how VIEWED", "how VIEWED log weight"] and len(columns) == 8
    rows = engine.cypher("MATCH (u:User)-[r:VIEWED]->(p:Product) RETURN u.id AS u, p.id AS p, "
                         "r.weight AS w")  # fmt: skip
    want: dict[tuple[str, str], float] = {}
    for u, p, w in zip(rows["u"], rows["p"], link_weights(rows["w"]), strict=True):
        want[u, p] = want.get((u, p), 0.0) + w
    assert max(want.values()) > 1  # some products were viewed more than once
    for u, i, linked, log_weight in frame[["user", "item", *columns[:2]]].itertuples(index=False):
        pair = (users[u], items[i])
        assert linked == float(pair in want)
        assert log_weight == pytest.approx(np.log(want[pair]) if pair in want else 0.0, abs=1e-5)
    assert (frame["how RATED"] == 0).all()  # the tiny shop has no ratings
    assert link_weights([2.0, None, -1.0, float("nan"), "x", 0.5]).tolist() == [
        2.0, 1.0, 1.0, 1.0, 1.0, 0.5
    ]  # fmt: skip
    import scipy.sparse as sp

    links = {"VIEWED": sp.csr_matrix(np.array([[3.0, 0.0], [0.0, 1.0]]))}
    got = pair_features(links, ("VIEWED", "RATED"), np.array([0, 1, 1]), np.array([0, 1, 0]))
    np.testing.assert_allclose(got, [[1, np.log(3.0), 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]], rtol=1e-6)


def test_link_matrices_count_and_sum_the_links_in_the_given_key_orders(engine: Engine) -> None:
    from graphfusion.train import link_matrices, link_weights

    rows = engine.cypher("MATCH (u:User)-[r:VIEWED]->(p:Product) RETURN u.id AS u, p.id AS p, "
                         "r.weight AS w")  # fmt: skip
    count: dict[tuple[str, str], int] = {}
    total: dict[tuple[str, str], float] = {}
    for u, p, w in zip(rows["u"], rows["p"], link_weights(rows["w"]), strict=True):
        count[u, p] = count.get((u, p), 0) + 1
        total[u, p] = total.get((u, p), 0.0) + w
    # reversed orders, and one user and one product left out of the lists
    users = sorted({u for u, _ in count}, reverse=True)[1:]
    items = sorted({p for _, p in count}, reverse=True)[1:]
    counts, weights = link_matrices(engine.store, "VIEWED", users, items)
    assert counts.shape == weights.shape == (len(users), len(items))
    kept = {pair for pair in count if pair[0] in users and pair[1] in items}
    assert 0 < len(kept) < len(count)
    assert counts.nnz == weights.nnz == len(kept)
    for u, p in kept:
        assert counts[users.index(u), items.index(p)] == count[u, p]
        assert weights[users.index(u), items.index(p)] == pytest.approx(total[u, p])
    # the base store's generic Arrow path (rows to a table, for a store without its own),
    # which has no columns for no rows
    store = engine.store
    generic = functools.partial(BaseStore._run_arrow, store)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store, "_run_arrow", generic)
        again = link_matrices(store, "VIEWED", users, items)
        none = link_matrices(store, "RATED", users, items)  # the tiny shop has no ratings
    assert (again[0] != counts).nnz == 0 and (again[1] != weights).nnz == 0
    assert none[0].shape == none[1].shape == counts.shape
    assert none[0].nnz == none[1].nnz == 0


def test_pair_strength_sums_the_weights_of_the_linking_types() -> None:
    import scipy.sparse as sp

    viewed = sp.csr_matrix(np.array([[1, 1, 0], [0, 2, 0]]))  # a repeated view counts once
    bought = sp.csr_matrix(np.array([[0, 1, 0], [0, 0, 1]]))
    got = pair_strength({"VIEWED": viewed, "PURCHASED": bought}, {"PURCHASED": 4.0}, (2, 3))
    assert got.toarray().tolist() == [[1.0, 5.0, 0.0], [0.0, 1.0, 4.0]]
    same = pair_strength({"VIEWED": viewed, "PURCHASED": bought}, None, (2, 3))
    assert same.toarray().tolist() == [[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]]
    for bad in ({"PURCHASED": 0.0}, {"PURCHASED": float("nan")}, {"PURCHASED": "4"}, {4: 1.0}):
        with pytest.raises(ValidationError, match="type_weights"):
            pair_strength({"PURCHASED": bought}, bad, (2, 3))  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="type_weights"):
            TrainConfig(type_weights=bad).check()  # type: ignore[arg-type]


def test_configs_hash_by_value_and_can_be_keys() -> None:
    # frozen, so usable as a key; the type_weights dict is hashed by its items
    same = {TrainConfig(): "a", TrainConfig(type_weights=dict(TYPE_WEIGHTS)): "b"}
    assert len(same) == 1 and same[TrainConfig()] == "b"
    assert len({TrainConfig(), TrainConfig(type_weights=None), TrainConfig(seed=1)}) == 3
    assert len({TrainConfig(type_weights={"PURCHASED": 2.0}),
                TrainConfig(type_weights={"PURCHASED": 3.0})}) == 2  # fmt: skip


def test_type_weights_reach_the_fusion_model_and_its_checkpoint(engine: Engine) -> None:
    import graphfusion.train as train_module

    seen: list[torch.Tensor | None] = []
    real = train_module._training_graph

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(kwargs.get("strength"))  # type: ignore[arg-type]
        return real(*args, **kwargs)  # type: ignore[arg-type]

    with pytest.raises(ValidationError, match="BOUGHT"):
        engine.train("fusion", epochs=1, type_weights={"BOUGHT": 2.0})
    train_module._training_graph = spy  # type: ignore[assignment]
    try:
        result = engine.train("fusion", epochs=1, batch_size=512, type_weights={"PURCHASED": 3.0})
    finally:
        train_module._training_graph = real
    strength = seen[0]
    # a purchase weighs 3, every other type 1 (the defaults would make view + purchase 5)
    assert strength is not None and 4.0 in strength.tolist()
    assert set(strength.unique().tolist()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert result.checkpoint is not None
    saved = torch.load(result.checkpoint, weights_only=True)["config"]
    assert saved["type_weights"] == {"PURCHASED": 3.0}


def test_train_command(engine: Engine, tmp_path: Path) -> None:
    path = str(engine.store.path)  # type: ignore[attr-defined]
    engine.close()
    res = CliRunner().invoke(main, ["train", "--model", "mf", "--epochs", "3", "--store", path,
                                    "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["config"]["model"] == "mf" and len(out["history"]) <= 3
    res = CliRunner().invoke(main, ["train", "--model", "gnn", "--store", path])
    assert res.exit_code == 2
    res = CliRunner().invoke(main, ["train", "--cold-items", "0.95", "--store", path])
    assert res.exit_code == 2
    res = CliRunner().invoke(main, ["train", "--light-users", "0.6", "--store", path])
    assert res.exit_code == 2 and "--light-users" in res.output
    res = CliRunner().invoke(main, ["train", "--type-weights", "PURCHASED:4", "--store", path])
    assert res.exit_code == 2 and "--type-weights" in res.output
    res = CliRunner().invoke(main, ["train", "--taste-epochs", "-1", "--store", path])
    assert res.exit_code == 2 and "--taste-epochs" in res.output
    res = CliRunner().invoke(main, ["train", "--max-scores", "0", "--store", path])
    assert res.exit_code == 2 and "--max-scores" in res.output
    res = CliRunner().invoke(main, ["train", "--model", "fusion", "--epochs", "1", "--json",
                                    "--taste-epochs", "2", "--max-scores", "5000",
                                    "--store", path])  # fmt: skip
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["config"]["taste_epochs"] == 2 and out["config"]["max_scores"] == 5000
    assert out["taste_history"] == []  # no text or image vectors here: no taste model
    assert out["taste_seconds"] == 0.0
    for given, want in (("purchased=3,VIEWED=0.5", {"PURCHASED": 3.0, "VIEWED": 0.5}),
                        ("none", None)):  # fmt: skip
        res = CliRunner().invoke(main, ["train", "--model", "mf", "--epochs", "1", "--json",
                                        "--type-weights", given, "--store", path])  # fmt: skip
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["config"]["type_weights"] == want
    assert out["config"]["type_weights"] == TYPE_WEIGHTS  # the default when not given


def test_fusion_model_trains_without_leaking_held_out_pairs(engine: Engine) -> None:
    engine.embed(["behaviour"])
    result = engine.train("fusion", epochs=6, patience=6, batch_size=512, lr=0.01, layers=2)
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < losses[0]
    assert all(0.0 <= v <= 1.0 for v in result.test.values())
    assert result.blend == {}  # no text or image vectors: no content neighbourhood
    vec = engine.cypher("MATCH (u:User {id: 'u0001'}) RETURN u.fused_vec AS v")["v"][0]
    assert len(vec) == 64


def test_content_blend_weights_are_chosen_and_saved(trained_store: Path) -> None:
    """The neighbourhood weights chosen on validation are reported and saved."""
    from graphfusion.models.neighbourhood import KERNELS, WEIGHTS

    folder = trained_store / "models"
    history = json.loads((folder / "fusion-history.json").read_text())
    blend = history["blend"]
    assert set(blend) == {f"{p} {k}" for p in ("warm", "cold") for k in KERNELS}
    assert set(blend.values()) <= set(WEIGHTS)
    state = torch.load(folder / "fusion.pt", weights_only=True)["state_dict"]
    assert state["neighbourhood.weight"].tolist() == [
        [blend[f"{p} {k}"] for k in KERNELS] for p in ("warm", "cold")
    ]
    assert state["neighbourhood.basis_text_vec"].shape[0] == 384
    # the taste model was trained (its best validation epoch kept) and saved with its inputs
    taste = history["taste_history"]
    assert taste and all(0.0 <= h["valid"] <= 1.0 for h in taste)
    assert taste[-1]["loss"] < taste[0]["loss"]
    assert history["taste_seconds"] > 0
    assert state["taste.bias"].shape == (40,) and state["taste.bias"].abs().sum() > 0
    assert state["taste_inputs.basis_image_vec"].shape == (1280, 128)  # the photo, cut
    assert history["config"]["taste_epochs"] == 80


def test_training_graph_holds_only_training_interactions(engine: Engine) -> None:

    from graphfusion.train import _training_graph

    frame, users, items = load_interactions(engine.store)
    train_edges = torch.tensor(frame.iloc[:100][["user", "item"]].to_numpy().T)
    held = set(zip(frame.iloc[100:]["user"], frame.iloc[100:]["item"], strict=True))
    strength = torch.arange(1.0, 101.0)
    data, ids = _training_graph(
        engine.store, train_edges, held, ("VIEWED", "PURCHASED", "FAVORITED", "RATED"), users,
        items, strength=strength,
    )  # fmt: skip
    assert torch.equal(data["User", "INTERACTED", "Product"].edge_weight, strength)
    kinds = {et[1] for et in data.edge_types}
    assert ids["User"] == users and ids["Product"] == items
    assert not kinds & {"VIEWED", "PURCHASED", "FAVORITED", "rev_VIEWED"}
    assert torch.equal(data["User", "INTERACTED", "Product"].edge_index, train_edges)
    wrote = data["User", "WROTE", "Review"].edge_index.shape[1]
    assert wrote < engine.stats().relationships["WROTE"]  # reviews of held-out pairs are gone
    about = data["Review", "ABOUT", "Product"].edge_index
    kept = set(data["User", "WROTE", "Review"].edge_index[1].tolist())
    assert set(about[0].tolist()) <= kept  # ... from their products too
    assert torch.equal(data["Product", "rev_ABOUT", "Review"].edge_index, about.flip(0))


def test_product_log_prices_are_nan_where_unknown(store: EmbeddedStore) -> None:
    """The log of each product's stored price, in the order asked; NaN for a product without
    a price, with a price of 0, or not stored."""
    frame = pd.DataFrame({"id": ["a", "b", "c"], "title": ["A lamp", "A mug", "A hat"],
                          "price": [10.0, None, 0.0]})  # fmt: skip
    report = load(store, "live_products", {"products": frame})
    assert report.nodes.get("Product") == 3 and not report.rejected
    got = product_log_prices(store, ["c", "a", "nobody", "b"])
    assert got is not None and got.shape == (4,)
    assert got[1].item() == pytest.approx(np.log(10.0))
    assert torch.isnan(got[[0, 2, 3]]).all()
    again = product_log_prices(store, ["a", "a"])  # only the products asked, repeats kept
    assert again is not None and torch.allclose(again, torch.full((2,), float(np.log(10.0))))
    empty = product_log_prices(store, [])
    assert empty is not None and empty.shape == (0,)


def test_settings_are_plain_python_and_checked() -> None:
    """A checkpoint holds the settings and is loaded with weights_only, which refuses numpy
    scalars: numpy numbers become Python's; settings of the wrong type are refused."""
    import io
    from dataclasses import asdict

    config = TrainConfig(lr=np.float64(0.01), epochs=np.int64(2), item_ids=np.bool_(True),
                         type_weights={"PURCHASED": np.float32(3.0)})  # fmt: skip
    config.check()
    assert type(config.lr) is float and type(config.epochs) is int
    assert type(config.item_ids) is bool and type(config.type_weights["PURCHASED"]) is float
    buffer = io.BytesIO()
    torch.save({"config": asdict(config)}, buffer)
    buffer.seek(0)
    assert torch.load(buffer, weights_only=True)["config"]["lr"] == 0.01
    assert TrainConfig(interactions=["PURCHASED"]).interactions == ("PURCHASED",)
    for bad in (
        {"lr": "0.1"}, {"lr": None}, {"lr": float("inf")}, {"reg": float("nan")},
        {"reg": "x"}, {"content_weight": float("inf")}, {"content_weight": float("nan")},
        {"cold_items": "0.2"}, {"cold_items": None}, {"layers": 2.5}, {"context_layers": 1.5},
        {"dim": True}, {"epochs": True}, {"max_scores": True}, {"neighbourhood_rank": True},
        {"interactions": None}, {"interactions": "PURCHASED"}, {"interactions": ()},
        {"item_ids": "yes"},
    ):  # fmt: skip
        name = next(iter(bad))
        with pytest.raises(ValidationError, match=name):
            TrainConfig(**bad).check()  # type: ignore[arg-type]


def _pairs_store(folder: Path, per_user: int) -> EmbeddedStore:
    """A store of 12 users who each bought ``per_user`` of 12 products."""
    store = EmbeddedStore(folder)
    users, products = [f"u{i}" for i in range(12)], [f"p{i}" for i in range(12)]
    store.upsert_nodes("User", pd.DataFrame({"id": users}))
    store.upsert_nodes("Product", pd.DataFrame({"id": products}))
    pairs = [(u, products[(i + j) % 12]) for i, u in enumerate(users) for j in range(per_user)]
    store.upsert_relationships(
        "PURCHASED", pd.DataFrame(pairs, columns=["src", "dst"]), start="User", end="Product"
    )
    return store


def test_a_split_with_nothing_to_validate_or_test_is_refused(tmp_path: Path) -> None:
    from graphfusion.train import train

    with _pairs_store(tmp_path / "few" / "store", per_user=2) as store:  # 24 interactions
        for model in ("popularity", "mf", "lightgcn"):
            with pytest.raises(ValidationError, match="the validation split is empty"):
                train(store, TrainConfig(model=model, epochs=1))
        assert not (tmp_path / "few" / "store" / "models" / "mf.pt").exists()
    with (
        _pairs_store(tmp_path / "all" / "store", per_user=4) as store,
        pytest.raises(ValidationError, match="split is empty"),
    ):  # 11 of the 12 products cold
        train(store, TrainConfig(model="mf", epochs=1, cold_items=0.9))


def test_a_failed_or_unserved_run_leaves_the_served_model(tmp_path: Path) -> None:
    from graphfusion.train import SERVED_FILE, served_model, train

    folder = tmp_path / "shop" / "store"
    with _pairs_store(folder, per_user=5) as store:
        train(store, TrainConfig(model="mf", epochs=2, dim=64))
        checkpoint = (folder / "models" / "mf.pt").read_bytes()
        # another dim is never written back: its files do not replace the served model's
        other = train(store, TrainConfig(model="mf", epochs=2, dim=8))
        assert other.checkpoint == folder / "models" / "mf-dim8.pt"
        assert (folder / "models" / "mf.pt").read_bytes() == checkpoint
        # written back from another models folder: the store's own says whose vectors it holds
        train(store, TrainConfig(model="lightgcn", epochs=2), out_dir=tmp_path / "elsewhere")
        assert served_model(folder / "models") == "lightgcn"
        assert served_model(tmp_path / "elsewhere") == "lightgcn"
        with pytest.raises(NotReadyError, match="whose checkpoint is not in"):
            Recommender(store)  # not mf.pt's model: its vectors are no longer stored
        assert Recommender(store, models_dir=tmp_path / "elsewhere").model_name == "lightgcn"
        (folder / "models" / SERVED_FILE).unlink()
    with (
        EmbeddedStore(folder, read_only=True) as store,
        pytest.raises(ValidationError, match="read-only"),
    ):
        train(store, TrainConfig(model="mf", epochs=2))
    assert (folder / "models" / "mf.pt").read_bytes() == checkpoint
    assert not list((folder / "models").glob("*.part"))


def test_the_progress_bar_shows_each_validation_recall_apart(
    trained_store: Path,
    private_copy: Callable[[Path], Engine],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fusion model stops on the sum of two validation recalls (its scores' and its
    content path's); the bar shows each as it is, not their sum as "recall20"."""
    import graphfusion.train as train_module

    shown: list[dict[str, str]] = []

    class Bar:
        def __init__(self, iterable: Any, **_: Any) -> None:
            self.iterable = iterable

        def __iter__(self) -> Any:
            return iter(self.iterable)

        def set_postfix(self, values: dict[str, str]) -> None:
            shown.append(dict(values))

    monkeypatch.setattr(train_module, "progress_bar", Bar)
    engine = private_copy(trained_store)
    result = engine.train("fusion", epochs=2, batch_size=256, lr=0.01, taste_epochs=0)
    assert [set(s) for s in shown] == [{"loss", "recall@20", "content_recall@20"}] * 2
    for values, entry in zip(shown, result.history, strict=True):
        assert float(values["recall@20"]) == pytest.approx(entry["valid_recall@20"], abs=1e-4)
        content = float(values["content_recall@20"])
        assert content == pytest.approx(entry["valid_content_recall@20"], abs=1e-4)
        assert 0.0 <= float(values["recall@20"]) <= 1.0 and 0.0 <= content <= 1.0


def test_a_training_that_diverges_is_refused_and_writes_nothing(engine: Engine) -> None:
    """A learning rate far too large makes the loss infinite or NaN: training stops with a
    clear error (it went on and served NaN scores) and the store is left as it was."""
    with pytest.raises(ValidationError, match=r"training diverged.*smaller lr"):
        engine.train("mf", epochs=5, batch_size=256, lr=1e30)
    written = engine.cypher("MATCH (p:Product) WHERE p.fused_vec IS NOT NULL RETURN count(p) AS n")
    assert int(written["n"][0]) == 0
    assert not (engine.store.path / "models" / "mf.pt").exists()  # type: ignore[attr-defined]


def test_models_of_a_store_without_a_folder_go_where_graphfusion_models_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On Neo4j the models went to ./graphfusion-models/models of whatever folder the command
    ran in, so `train` and `serve` run from two folders did not find the same model."""
    from types import SimpleNamespace

    from graphfusion.train import store_models_dir

    neo4j_like: Any = SimpleNamespace()  # a store with no folder
    monkeypatch.delenv("GRAPHFUSION_MODELS", raising=False)
    assert store_models_dir(neo4j_like) == Path("graphfusion-models") / "models"
    monkeypatch.setenv("GRAPHFUSION_MODELS", str(tmp_path / "models"))
    assert store_models_dir(neo4j_like) == tmp_path / "models"
    monkeypatch.setenv("GRAPHFUSION_MODELS", "~/gf-models")
    assert store_models_dir(neo4j_like) == Path.home() / "gf-models"
    monkeypatch.setenv("GRAPHFUSION_MODELS", "  ")
    with pytest.raises(ValidationError, match="GRAPHFUSION_MODELS is blank"):
        store_models_dir(neo4j_like)
    # an embedded store keeps its models in its own folder, whatever the variable says
    assert store_models_dir(SimpleNamespace(path=tmp_path / "s")) == tmp_path / "s" / "models"
