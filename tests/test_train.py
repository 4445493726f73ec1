"""Training on the stored interactions: history, early stopping, files, write-back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from graphfusion import Engine
from graphfusion.cli import main
from graphfusion.errors import ValidationError
from graphfusion.ingest import load
from graphfusion.train import TrainConfig, load_interactions


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


def test_training_graph_holds_only_training_interactions(engine: Engine) -> None:

    from graphfusion.train import _training_graph

    frame, users, items = load_interactions(engine.store)
    train_edges = torch.tensor(frame.iloc[:100][["user", "item"]].to_numpy().T)
    held = set(zip(frame.iloc[100:]["user"], frame.iloc[100:]["item"], strict=True))
    data, ids = _training_graph(
        engine.store, train_edges, held, ("VIEWED", "PURCHASED", "FAVORITED", "RATED"), users, items
    )
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
