"""Serving a checkpoint only where it fits: the graph it was trained on, the interaction
types it was trained on, the store that holds its vectors; and the CLI's empty list."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from graphfusion import Engine
from graphfusion.cli import main
from graphfusion.errors import NotReadyError, ValidationError
from graphfusion.recommend import MAX_K, Recommender


def _changed_checkpoint(
    engine: Engine, tmp_path: Path, change: Callable[[dict[str, torch.Tensor]], None]
) -> Path:
    """A models folder holding the engine's fusion checkpoint with its weights changed."""
    folder = engine.store.path / "models"  # type: ignore[attr-defined]
    ckpt = torch.load(folder / "fusion.pt", weights_only=True)
    change(ckpt["state_dict"])
    models = tmp_path / "changed"
    models.mkdir()
    torch.save(ckpt, models / "fusion.pt")
    return models


def test_a_vector_embedded_after_training_is_refused(tiny_shop: Path, tmp_path: Path) -> None:
    """A model trained before the products had text vectors has no weights for them: it is
    not served with random ones (scores that changed from one start to the next), it asks to
    be retrained, and serves once it is."""
    with Engine(tmp_path / "store") as engine:
        engine.load("synthetic", shop=tiny_shop)
        engine.train("fusion", epochs=2, taste_epochs=2)
        engine.embed(only="text")
        with pytest.raises(NotReadyError, match="graph changed") as caught:
            Recommender(engine.store)
        message = str(caught.value)
        assert "new since training: Product.text_vec" in message
        assert "the taste model" in message  # it needs the products' vectors: none then
        assert "retrain" in message
        assert isinstance(caught.value, ValidationError)
        engine.train("fusion", epochs=2, taste_epochs=2)
        first = Recommender(engine.store).scores("u0001")[0]
        np.testing.assert_array_equal(Recommender(engine.store).scores("u0001")[0], first)


def _drop_product_input(state: dict[str, torch.Tensor]) -> None:
    for key in [k for k in state if k.startswith("proj.Product.text_vec.")]:
        del state[key]


def _add_ghost_ids(state: dict[str, torch.Tensor]) -> None:
    state["ids.Ghost.weight"] = torch.zeros(3, 4)


def _widen_input(state: dict[str, torch.Tensor]) -> None:
    weight = state["proj.Product.text_vec.0.weight"]
    state["proj.Product.text_vec.0.weight"] = torch.zeros(weight.shape[0], weight.shape[1] + 1)


def _widen_neighbourhood(state: dict[str, torch.Tensor]) -> None:
    mean = state["neighbourhood.mean_text_vec"]
    state["neighbourhood.mean_text_vec"] = torch.zeros(len(mean) + 1)


def _drop_part_of_the_neighbourhood(state: dict[str, torch.Tensor]) -> None:
    del state["neighbourhood.mean_text_vec"], state["neighbourhood.basis_text_vec"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_drop_product_input, "new since training: Product.text_vec"),
        (_add_ghost_ids, "gone since training: the Ghost id embeddings"),
        (_widen_input, r"of another shape: proj\.Product\.text_vec\.0\.weight is"),
        (_widen_neighbourhood, r"of another shape: neighbourhood\.mean_text_vec is"),
        (_drop_part_of_the_neighbourhood, "new since training: the content neighbourhood"),
    ],
)
def test_a_checkpoint_that_no_longer_fits_the_graph_is_refused(
    trained_store: Path,
    private_copy: Callable[[Path], Engine],
    tmp_path: Path,
    change: Callable[[dict[str, torch.Tensor]], None],
    message: str,
) -> None:
    engine = private_copy(trained_store)
    models = _changed_checkpoint(engine, tmp_path, change)
    with pytest.raises(NotReadyError, match=message):
        Recommender(engine.store, models_dir=models)


def test_a_checkpoint_as_trained_loads_every_weight(
    trained_store: Path, private_copy: Callable[[Path], Engine], tmp_path: Path
) -> None:
    """The checkpoint as training wrote it fits; so does one from before the content
    neighbourhood existed (none of its weights: served without its blend)."""
    engine = private_copy(trained_store)
    rec = engine.recommender()
    assert rec.fusion is not None and rec.state.kernel is not None
    saved = torch.load(rec.checkpoint, weights_only=True)["state_dict"]
    for key, value in rec.fusion.state_dict().items():
        if key in saved and not key.startswith(("ids.", "bias", "taste.bias")):
            torch.testing.assert_close(value, saved[key], msg=key)

    def drop(state: dict[str, torch.Tensor]) -> None:
        for key in [k for k in state if k.startswith("neighbourhood.")]:
            del state[key]

    older = Recommender(engine.store, models_dir=_changed_checkpoint(engine, tmp_path, drop))
    assert older.state.kernel is None


def test_live_interactions_of_untrained_types_are_not_served(
    trained_store: Path, private_copy: Callable[[Path], Engine]
) -> None:
    """A model trained on purchases serves views neither as stored nor as live
    interactions: a product the user views now stays recommended, as one viewed before is;
    a purchase still counts."""
    engine = private_copy(trained_store)
    engine.train("fusion", interactions=("PURCHASED",), epochs=2, taste_epochs=2)
    rec = engine.recommender()
    assert set(rec.state.by_type) == {"PURCHASED"}
    user = "u0001"
    u = rec.state.user_index[user]
    listed = engine.recommend(user, k=MAX_K, explain=False)["product_id"].tolist()
    viewed = set(
        engine.cypher(
            "MATCH (u:User {id: $u})-[:VIEWED]->(p:Product) RETURN p.id AS id", {"u": user}
        )["id"]
    )
    assert viewed & set(listed), "a product viewed before training is recommended"
    target = next(p for p in listed if p not in viewed)
    before, seen = rec.scores(user)[0].copy(), rec.state.seen.copy()
    report = engine.add_interactions(
        pd.DataFrame({"user_id": [user], "product_id": [target], "type": ["VIEWED"]})
    )
    assert report.relationships["VIEWED"] == 1 and not report.rejected  # stored
    assert target in set(engine.recommend(user, k=MAX_K, explain=False)["product_id"])
    np.testing.assert_array_equal(rec.scores(user)[0], before)  # the user did not move
    assert (rec.state.seen != seen).nnz == 0 and set(rec.state.by_type) == {"PURCHASED"}
    fresh = Recommender(engine.store)  # a fresh start serves the same
    assert (fresh.state.seen != rec.state.seen).nnz == 0
    engine.add_interactions(pd.DataFrame({"user_id": [user], "product_id": [target]}))
    assert rec.state.seen[u, rec.state.item_index[target]] == 1
    assert target not in set(engine.recommend(user, k=MAX_K, explain=False)["product_id"])


def test_a_live_interaction_with_a_negative_weight_is_rejected(
    trained_store: Path, private_copy: Callable[[Path], Engine]
) -> None:
    """An interaction's weight (views, a rating) is at least 0: a negative one is reported
    with its line and field and not stored; the rest of the frame is."""
    engine = private_copy(trained_store)
    rec = engine.recommender()
    user = "u0001"
    linked = engine.cypher("MATCH (:User {id: $u})-[]->(p:Product) RETURN p.id AS id", {"u": user})
    bad, good = [p for p in rec.state.items if p not in set(linked["id"])][:2]
    frame = pd.DataFrame(
        {"user_id": user, "product_id": [bad, good], "type": "VIEWED", "weight": [-3.0, 0.0]}
    )
    report = engine.add_interactions(frame)
    assert [(r.line, r.field, r.reason) for r in report.rejected] == [
        (1, "weight", "weight -3.0 is below its minimum 0")
    ]
    assert report.relationships["VIEWED"] == 1
    stored = engine.cypher(
        "MATCH (:User {id: $u})-[:VIEWED]->(p:Product) WHERE p.id IN $ps RETURN p.id AS id",
        {"u": user, "ps": [bad, good]},
    )
    assert stored["id"].tolist() == [good]
    assert rec.state.seen[rec.state.user_index[user], rec.state.item_index[bad]] == 0


def test_a_checkpoint_of_another_store_is_refused(
    trained_store: Path, private_copy: Callable[[Path], Engine], tiny_shop: Path, tmp_path: Path
) -> None:
    """LightGCN is served from the store's vectors: a store without them (another store
    than the one it was trained on) is refused, not served zero vectors."""
    engine = private_copy(trained_store)
    engine.train("lightgcn", epochs=2, batch_size=256)
    models = engine.store.path / "models"  # type: ignore[attr-defined]
    assert Recommender(engine.store, model="lightgcn", models_dir=models).state.item_vecs.any()
    with Engine(tmp_path / "other") as other:
        other.load("synthetic", shop=tiny_shop)
        with pytest.raises(NotReadyError, match="holds no lightgcn vectors") as caught:
            Recommender(other.store, model="lightgcn", models_dir=models)
        assert "fused_vec" in str(caught.value) and "train lightgcn" in str(caught.value)


def test_cli_says_why_the_list_is_empty(trained_store: Path, tmp_path: Path) -> None:
    """With every product seen, the list is empty for that reason, not for filters none
    were given; with filters, the filters are named."""
    folder = tmp_path / "store"
    shutil.copytree(trained_store, folder)
    with Engine(folder) as engine:
        everything = engine.recommender().state.items
        report = engine.add_interactions(
            pd.DataFrame({"user_id": "u0001", "product_id": everything})
        )
        assert not report.rejected
    runner = CliRunner()
    res = runner.invoke(main, ["recommend", "u0001", "--store", str(folder)])
    assert res.exit_code == 0, res.output
    assert "(no products left: the user has seen them all)" in res.output
    assert "filters" not in res.output
    res = runner.invoke(main, ["recommend", "u0001", "--max-price", "1000", "--store", str(folder)])
    assert res.exit_code == 0, res.output
    assert "(no products pass the filters)" in res.output
    res = runner.invoke(main, ["recommend", "u0001", "--include-seen", "--store", str(folder)])
    assert res.exit_code == 0 and "  1. p" in res.output and "(no products" not in res.output


def test_a_failed_live_update_leaves_a_consistent_engine(
    trained_store: Path, private_copy: Callable[[Path], Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    """add_products that fails half way (the product stored, the served state half updated)
    does not break later calls: the engine rebuilds its state from the store."""
    engine = private_copy(trained_store)
    engine.ask("Is it dishwasher safe?")
    first = engine.recommend("u0001", k=5)

    def broken(self: Recommender, rows: list[int]) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(Recommender, "_refit_product_rec", broken)
    frame = pd.DataFrame({"id": ["pz"], "title": ["Zorblax titanium espresso grinder"]})
    with pytest.raises(RuntimeError, match="disk full"):
        engine.add_products(frame)
    monkeypatch.undo()
    assert engine._recommender is None and engine._qa is None
    cats = engine.cypher("MATCH (c:Category) RETURN c.id AS id")["id"]
    for kwargs in ({}, {"category": cats[0]}, {"max_price": 1e6}):
        assert len(engine.recommend("u0001", k=50, **kwargs))  # no IndexError, no broadcast
    assert engine.ask("zorblax espresso grinder", k=1).products["product_id"][0] == "pz"
    assert engine.recommend("u0001", k=5)["product_id"].tolist() == first["product_id"].tolist()


def test_embed_rebuilds_the_recommender(
    trained_store: Path, private_copy: Callable[[Path], Engine]
) -> None:
    """After embed the same engine answers as a fresh one: new vectors may be inputs the
    model was not trained on (refused), or behaviour vectors that moved."""
    engine = private_copy(trained_store)
    engine.recommend("u0001", k=3)
    assert engine._recommender is not None
    engine.embed(only="behaviour")
    assert engine._recommender is None
    assert len(engine.recommend("u0001", k=3)) == 3


def test_explain_sees_the_photo_of_a_product_added_live(
    trained_store: Path, tiny_shop: Path, private_copy: Callable[[Path], Engine]
) -> None:
    engine = private_copy(trained_store)
    looks = [r.text for r in engine.explain("u0001", "p0014") if r.kind == "looks_like"]
    assert looks, "p0014 has a look-alike reason to copy"
    clone = pd.DataFrame({"id": ["pclone"], "title": ["Lumen Studio Plastic Charger - Red"],
                          "image": [str(tiny_shop / "images" / "p0014.png")]})  # fmt: skip
    assert not engine.add_products(clone).rejected
    same = [r.text for r in engine.explain("u0001", "pclone") if r.kind == "looks_like"]
    assert same == looks


def test_a_lazy_part_dropped_while_waiting_is_built_alone() -> None:
    """The service builds the QA index (or the recommender, the defects) under the write
    lock; one dropped by a live update between the check and the lock is built so too."""
    from graphfusion.service import _Runtime

    rt = _Runtime(None, None)  # type: ignore[arg-type]
    rt.built.add("qa")
    read = rt.lock.read
    held: list[str] = []

    def dropping_read() -> object:  # a live update ran just before the reader got the lock
        rt.built.discard("qa")
        return read()

    rt.lock.read = dropping_read  # type: ignore[method-assign]

    def build() -> None:
        held.append("writer" if rt.lock._writer else "reader")

    with rt.use("qa", build):
        assert rt.lock._writer
    assert held == ["writer"] and "qa" in rt.built
    rt.lock.read = read  # type: ignore[method-assign]
    with rt.use("qa", build):  # built: shared
        assert rt.lock._readers == 1 and not rt.lock._writer
    assert held == ["writer"]


def test_a_write_through_engine_cypher_is_served(
    trained_store: Path, private_copy: Callable[[Path], Engine]
) -> None:
    """A product's price changed by a Cypher write is what the filters and the list read
    next; a read-only query keeps the built recommender."""
    engine = private_copy(trained_store)
    first = engine.recommend("u0001", k=3, explain=False)["product_id"].iloc[0]
    rec = engine.recommender()
    engine.cypher("MATCH (p:Product {id: $id}) RETURN p.price AS price", {"id": first})
    assert engine.recommender() is rec
    engine.cypher("MATCH (p:Product {id: $id}) SET p.price = 999.0", {"id": first})
    assert first not in set(engine.recommend("u0001", k=MAX_K, max_price=500)["product_id"])
    listed = engine.recommend("u0001", k=MAX_K, explain=False)
    assert listed.set_index("product_id").loc[first, "price"] == 999.0
