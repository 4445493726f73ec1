"""Recommendation as a product, on the real embedded store with a trained fusion model."""

from __future__ import annotations

import json
import math
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
from graphfusion.ingest import load
from graphfusion.light import DEFAULT_WEIGHTS
from graphfusion.recommend import LIGHT_USER_MAX, Recommender
from graphfusion.train import TYPE_WEIGHTS


@pytest.fixture
def engine(trained_store: Path, private_copy: Callable[[Path], Engine]) -> Engine:
    """A private copy of the prepared store."""
    return private_copy(trained_store)


def _seen(engine: Engine, user: str) -> set[str]:
    rows = engine.cypher(
        "MATCH (u:User {id: $u})-[:VIEWED|PURCHASED|FAVORITED|RATED]->(p:Product) "
        "RETURN DISTINCT p.id AS id",
        {"u": user},
    )
    return set(rows["id"])


def _strengths(engine: Engine, user: str) -> dict[str, float]:
    """Per product the user interacted with, the sum of the default weights of the types that
    link them (each type once), counted from the store."""
    out: dict[str, float] = {}
    for rtype, weight in TYPE_WEIGHTS.items():
        rows = engine.cypher(
            f"MATCH (u:User {{id: $u}})-[:{rtype}]->(p:Product) RETURN DISTINCT p.id AS id",
            {"u": user},
        )
        for key in rows["id"] if len(rows) else []:
            out[key] = out.get(key, 0.0) + weight
    return out


def test_top_k_is_the_exact_best_of_unseen_products(engine: Engine) -> None:
    rec = engine.recommender()
    user = "u0001"
    frame = engine.recommend(user, k=5)
    assert list(frame.columns) == [
        "product_id", "title", "score", "category", "brand", "price", "reasons"
    ]  # fmt: skip
    assert len(frame) == 5 and frame.attrs["method"] == "model"
    assert not set(frame["product_id"]) & _seen(engine, user)
    scores, _ = rec.scores(user)
    seen = _seen(engine, user)
    brute = sorted(
        (k for k in rec.state.items if k not in seen),
        key=lambda k: -scores[rec.state.item_index[k]],
    )[:5]
    assert list(frame["product_id"]) == brute
    assert frame["score"].is_monotonic_decreasing
    for reasons, pid in zip(frame["reasons"], frame["product_id"], strict=True):
        assert reasons, "every recommendation carries a reason"
        for r in reasons:
            assert r["path"][0] == {"label": "User", "key": user}
            assert r["path"][-1] == {"label": "Product", "key": pid}
    with_seen = engine.recommend(user, k=40, exclude_seen=False)
    assert set(with_seen["product_id"]) & seen


def test_filters(engine: Engine) -> None:
    rec = engine.recommender()
    cat = rec.catalogue
    some = next(c for c in cat.category if c)
    name = cat.category_names[some]
    frame = engine.recommend("u0002", k=10, category=name.upper())
    assert len(frame) >= 1 and set(frame["category"]) == {name}
    brand_id = next(b for b in cat.brand if b)
    frame = engine.recommend("u0002", k=10, brand=brand_id)
    assert set(frame["brand"]) == {cat.brand_names[brand_id]}
    for typo in ({"category": "Headphonez"}, {"brand": "no-such-brand"}):  # not an empty list
        with pytest.raises(ValidationError, match=r"no (category|brand) with the id or name"):
            engine.recommend("u0002", k=10, **typo)
    assert len(engine.recommend("u0002", k=np.int64(3))) == 3  # a numpy integer is an int
    frame = engine.recommend("u0002", k=10, max_price=20.0)
    assert len(frame) and (frame["price"] <= 20.0).all()
    assert engine.recommend("u0002", k=10, max_price=0.0).empty
    # a top category includes its subcategories
    parent = min(next(iter(cat.parents.values())))
    frame = engine.recommend("u0002", k=40, category=parent)
    children = {cat.category_names[c] for c, p in cat.parents.items() if parent in p}
    assert len(frame) and set(frame["category"]) <= children


def test_diversity_spreads_the_list(engine: Engine) -> None:
    rec = engine.recommender()

    def spread(frame: pd.DataFrame) -> float:
        rows = [rec.state.item_index[k] for k in frame["product_id"]]
        v = rec.state.item_vecs[rows]
        v = v / np.linalg.norm(v, axis=1, keepdims=True)
        sims = v @ v.T
        return float(sims[np.triu_indices(len(rows), 1)].mean())

    plain = engine.recommend("u0003", k=6)
    diverse = engine.recommend("u0003", k=6, diversity=0.9)
    assert len(diverse) == 6 and list(diverse["product_id"]) != list(plain["product_id"])
    assert spread(diverse) < spread(plain)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"user_id": "nobody"}, "no user"),
        ({"user_id": ""}, "non-empty"),
        ({"user_id": 7}, "non-empty"),
        ({"k": 0}, "k must"),
        ({"k": 10**6}, "k must"),
        ({"k": "5"}, "k must"),
        ({"k": True}, "k must"),
        ({"category": 5}, "category must"),
        ({"brand": ["b1"]}, "brand must"),
        ({"max_price": "cheap"}, "max_price"),
        ({"max_price": math.nan}, "max_price"),
        ({"max_price": -1}, "max_price"),
        ({"diversity": 2}, "diversity"),
        ({"exclude_seen": "yes"}, "exclude_seen"),
        ({"explain": "no"}, "explain"),
    ],
)
def test_bad_arguments(engine: Engine, kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"user_id": "u0001", **kwargs}
    with pytest.raises(ValidationError, match=message):
        engine.recommend(**args)  # type: ignore[arg-type]


def test_new_and_light_users_get_a_blend(engine: Engine) -> None:
    new = pd.DataFrame({"id": ["fresh"], "age": [30], "gender": ["female"],
                        "occupation": ["nurse"]})  # fmt: skip
    engine.store.write_node_table("User", pa_table(new))
    engine._recommender = None
    frame = engine.recommend("fresh", k=5)
    assert frame.attrs["method"] == "cold-start blend" and len(frame) == 5
    popular = engine.recommender()._popularity()
    top_popular = engine.recommender().state.items[int(np.argmax(popular))]
    assert top_popular in set(engine.recommend("fresh", k=10)["product_id"])
    # two interactions: still the blend, now pulled toward what they chose
    rec = engine.recommender()
    picks = ["p0007", "p0008"]
    report = engine.add_interactions(pd.DataFrame({"user_id": "fresh", "product_id": picks}))
    assert report.relationships["PURCHASED"] == 2 and not report.rejected
    after = engine.recommend("fresh", k=5)
    assert after.attrs["method"] == "cold-start blend"
    assert not set(after["product_id"]) & set(picks)
    assert rec.state.seen[rec.state.user_index["fresh"]].nnz == 2 <= LIGHT_USER_MAX
    # the blend, part by part: popularity 1, their products 0.5 each, the users with the same
    # demographics 0.5, and the model's own scores 1 now that it has a vector for them
    st = rec.state
    u = st.user_index["fresh"]
    mine = [st.item_index[p] for p in picks]

    def standard(x: np.ndarray) -> np.ndarray:
        return (x - x.mean()) / x.std()

    same = np.flatnonzero((st.profile == st.profile[u]).all(axis=1) & st.trained_users)
    same = same[same != u]
    assert np.any(st.user_vecs[u])
    parts = [
        (1.0, standard(np.log1p(np.asarray(st.seen.sum(axis=0)).ravel()))),
        (1.0, standard(st.item_vecs @ st.item_vecs[mine].mean(0))),
        (1.0, standard(rec._model_scores([u])[0])),
    ]
    if len(same):  # no one else of the tiny shop may share their age, gender and occupation
        parts.append((0.5, standard(st.item_vecs @ st.user_vecs[same].mean(0))))
    want = sum(w * x for w, x in parts) / sum(w for w, _ in parts)
    np.testing.assert_allclose(rec.scores("fresh")[0], want, rtol=1e-6, atol=1e-6)
    without = rec._blend(u, {**DEFAULT_WEIGHTS, "model": 0.0})
    assert not np.allclose(without, want)


def pa_table(frame: pd.DataFrame) -> object:
    import pyarrow as pa

    return pa.Table.from_pandas(frame, preserve_index=False)


def _rec_dots(engine: Engine, users: list[str]) -> np.ndarray:
    """``(len(users), n_i)``: the dot products of the users' stored ``rec_vec`` with every
    product's, in the served state's product order."""
    rows = engine.cypher("MATCH (p:Product) RETURN p.id AS id, p.rec_vec AS r")
    stored = dict(zip(rows["id"], rows["r"], strict=True))
    items = np.asarray([stored[k] for k in engine.recommender().state.items], dtype=np.float64)
    mine = engine.cypher(
        "MATCH (u:User) WHERE u.id IN $u RETURN u.id AS id, u.rec_vec AS r", {"u": users}
    )
    have = dict(zip(mine["id"], mine["r"], strict=True))
    return np.asarray([have[u] for u in users], dtype=np.float64) @ items.T


def test_add_interactions_reports_bad_rows_and_moves_the_user(engine: Engine) -> None:
    rec = engine.recommender()
    user = "u0004"
    before = rec.state.user_vecs[rec.state.user_index[user]].copy()
    target = engine.recommend(user, k=30)["product_id"].iloc[-1]
    frame = pd.DataFrame({
        "user_id": [user, user, "nobody", user, user],
        "product_id": [target, "p0001", "p0001", "nope", "p0002"],
        "type": ["VIEWED", "clicked", "VIEWED", "VIEWED", "FAVORITED"],
        "ts": ["2026-01-02T10:00:00", None, None, None, "not a date"],
    })  # fmt: skip
    report = engine.add_interactions(frame)
    reasons = {r.line: r.reason for r in report.rejected}
    assert set(reasons) == {2, 3, 4, 5} and len(report.rejected) == 4  # each row once
    assert "type 'CLICKED' matches none of 'VIEWED', 'PURCHASED', 'FAVORITED'" in reasons[2]
    assert "User 'nobody' does not exist" in reasons[3]
    assert "Product 'nope' does not exist" in reasons[4]
    assert report.relationships["VIEWED"] == 1
    stored = engine.cypher(
        "MATCH (u:User {id: $u})-[e:VIEWED]->(p:Product {id: $p}) RETURN e.ts AS ts",
        {"u": user, "p": target},
    )
    assert len(stored) == 1
    after = rec.state.user_vecs[rec.state.user_index[user]]
    assert not np.allclose(before, after)
    # the stored rec_vec is refitted to the served scores now (rec_vectors.fit_factors)
    dots, served = _rec_dots(engine, [user]), rec.scores(user)[0]
    assert np.corrcoef(dots[0], served)[0, 1] > 0.999  # the trained one: 0.99 here
    assert target not in set(engine.recommend(user, k=30)["product_id"])
    again = engine.add_interactions(frame.iloc[:1])  # idempotent
    assert again.relationships["VIEWED"] == 1
    assert engine.stats().relationships["VIEWED"] == rec.state.by_type["VIEWED"].nnz
    with pytest.raises(ValidationError, match="DataFrame"):
        engine.add_interactions([{"user_id": user}])  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="product_id"):
        engine.add_interactions(pd.DataFrame({"user_id": [user]}))


def test_live_interactions_serve_what_the_store_holds(engine: Engine) -> None:
    """Only rows the load wrote reach the served state, and as the store holds them: a row
    rejected, repeated or sent again moves nothing; ids are keyed as the loader keys them."""
    rec = engine.recommender()
    user, u = "u0010", rec.state.user_index["u0010"]
    target = engine.recommend(user, k=1)["product_id"].iloc[0]
    before = rec.scores(user)[0].copy()
    report = engine.add_interactions(
        pd.DataFrame({"user_id": [user], "product_id": [target], "ts": ["not a date"]})
    )
    assert [r.line for r in report.rejected] == [1]
    np.testing.assert_array_equal(rec.scores(user)[0], before)
    assert engine.recommend(user, k=1)["product_id"].iloc[0] == target
    # the same purchase three times, its ids padded: one link, stored and served
    padded = pd.DataFrame({"user_id": [f" {user} "] * 3, "product_id": [f"{target}  "] * 3})
    report = engine.add_interactions(padded)
    assert report.relationships["PURCHASED"] == 1 and [r.line for r in report.rejected] == [2, 3]
    i = rec.state.item_index[target]
    assert rec.state.by_type["PURCHASED"][u, i] == 1
    assert target not in set(engine.recommend(user, k=20)["product_id"])
    fresh = Recommender(engine.store)  # a fresh start on the store has the same links
    for rtype, links in fresh.state.by_type.items():
        assert (rec.state.by_type[rtype] != links).nnz == 0
        assert (rec.state.weights[rtype] != fresh.state.weights[rtype]).nnz == 0
    # a stored view sent again is the same link: nothing served moves
    viewed = engine.cypher(
        "MATCH (u:User {id: $u})-[:VIEWED]->(p:Product) RETURN p.id AS id", {"u": user}
    )["id"].iloc[0]
    after, links = rec.scores(user)[0].copy(), rec.state.seen.nnz
    for _ in range(2):
        engine.add_interactions(
            pd.DataFrame({"user_id": [user], "product_id": [viewed], "type": ["VIEWED"]})
        )
    np.testing.assert_array_equal(rec.scores(user)[0], after)
    assert rec.state.seen.nnz == links
    assert engine.stats().relationships["VIEWED"] == rec.state.by_type["VIEWED"].nnz


def test_live_products_change_links_and_report_bad_images(engine: Engine, tmp_path: Path) -> None:
    """A product row keyed with spaces is the product the store keys; a changed product's
    category and brand replace the old ones; a photo that cannot be read is reported."""
    rec = engine.recommender()

    def links(key: str, rtype: str, label: str) -> set[str]:
        rows = engine.cypher(
            f"MATCH (p:Product {{id: $k}})-[:{rtype}]->(x:{label}) RETURN x.id AS id", {"k": key}
        )
        return set(rows["id"]) if len(rows) else set()

    old_cat = links("p0002", "IN_CATEGORY", "Category")
    old_brand = links("p0002", "OF_BRAND", "Brand")
    suppliers = set(engine.cypher(
        "MATCH (s:Supplier)-[:SUPPLIES]->(p:Product {id: 'p0002'}) RETURN s.id AS id"
    )["id"])  # fmt: skip
    cats = sorted(set(engine.cypher("MATCH (c:Category) RETURN c.id AS id")["id"]) - old_cat)
    brands = sorted(set(engine.cypher("MATCH (b:Brand) RETURN b.id AS id")["id"]) - old_brand)
    others = sorted(set(engine.cypher("MATCH (s:Supplier) RETURN s.id AS id")["id"]) - suppliers)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    frame = pd.DataFrame({
        "id": [" px010 ", "p0002", "px011"],
        "title": ["Test Widget Mug - Blue", None, "Imgtest Lamp"],
        "category_id": [cats[0], cats[0], cats[1]],
        "brand_id": [brands[0], brands[0], None],
        "supplier_id": [None, others[0], None],
        "image": [None, None, str(broken)],
    })  # fmt: skip
    report = engine.add_products(frame)
    assert [(r.line, r.field) for r in report.rejected] == [(3, "image")]
    assert "cannot be used" in report.rejected[0].reason
    assert "px010" in rec.state.item_index and " px010 " not in rec.state.item_index
    assert len(engine.similar("px010", k=2)) == 2  # it has a text vector
    assert links("p0002", "IN_CATEGORY", "Category") == {cats[0]}
    assert links("p0002", "OF_BRAND", "Brand") == {brands[0]}
    now = set(engine.cypher(
        "MATCH (s:Supplier)-[:SUPPLIES]->(p:Product {id: 'p0002'}) RETURN s.id AS id"
    )["id"])  # fmt: skip
    assert now == suppliers | {others[0]}  # suppliers add up
    assert "px011" in rec.state.item_index  # the product is stored, its photo has no vector
    # a row the load rejects leaves the product's links as they were
    again = engine.add_products(pd.DataFrame({"id": ["p0002"], "category_id": ["no-such"]}))
    assert [r.line for r in again.rejected] == [1]
    assert links("p0002", "IN_CATEGORY", "Category") == {cats[0]}
    # a row rejected for its supplier alone still moves the product to its new category
    again = engine.add_products(
        pd.DataFrame({"id": ["p0002"], "category_id": [cats[1]], "supplier_id": ["no-such"]})
    )
    assert [(r.line, r.field) for r in again.rejected] == [(1, "from")]
    assert links("p0002", "IN_CATEGORY", "Category") == {cats[1]}
    # a product in several categories (a film's genres) keeps them and gains the new one
    engine.store.upsert_relationships(
        "IN_CATEGORY", pd.DataFrame({"src": ["p0002"], "dst": [cats[2]]}),
        start="Product", end="Category",
    )  # fmt: skip
    engine.add_products(pd.DataFrame({"id": ["p0002"], "category_id": [cats[3]]}))
    assert links("p0002", "IN_CATEGORY", "Category") == {cats[1], cats[2], cats[3]}


def test_content_path_reproduces_stored_products(engine: Engine) -> None:
    """The inductive path gives a stored product the same content vector as the model."""
    rec = engine.recommender()
    model = rec.fusion
    assert model is not None
    keys = ["p0003", "p0010"]
    from graphfusion.recommend import _node_features

    with torch.no_grad():
        inputs = model.encode_inputs(
            "Product", _node_features(engine.store, "Product", keys, model)
        )
        got = model.item_content(inputs, [rec._neighbours(k, model) for k in keys])
        want = model.content()["Product"][[rec.state.item_index[k] for k in keys]]
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_new_product_gets_a_vector_and_is_served(engine: Engine, tiny_shop: Path) -> None:
    rec = engine.recommender()
    cat = rec.catalogue
    twin = rec.state.item_index["p0005"]
    frame = pd.DataFrame({
        "id": ["new-1", "new-2"],
        "title": [cat.title[twin] + " II", "Broken row"],
        "description": ["The same, only newer.", "x"],
        "price": [float(cat.price[twin]), 1.0],
        "category_id": [cat.category[twin], "no-such-category"],
        "brand_id": [cat.brand[twin], None],
        "image": [str(tiny_shop / "images" / "p0005.png"), None],
    })  # fmt: skip
    report = engine.add_products(frame)
    assert report.nodes["Product"] == 2 and report.nodes["Image"] == 1
    assert [(r.line, r.field) for r in report.rejected] == [(2, "to")]
    vec = rec.state.item_vecs[rec.state.item_index["new-1"]]
    assert np.isfinite(vec).all() and np.linalg.norm(vec) > 0
    # the live vector is the one a fresh start on the updated store gives it
    fresh = Recommender(engine.store)
    again = fresh.state.item_vecs[fresh.state.item_index["new-1"]]
    np.testing.assert_allclose(vec, again, atol=1e-5, rtol=1e-4)
    # and it is in the store: similar() by fused vectors finds it
    assert len(engine.similar("new-1", modality="fused", k=3)) == 3
    # its rec_vec is fitted to the served scores of the users the model serves, so the
    # Cypher recipe ranks it among the others about as the model scores it
    st = rec.state
    users = [u for u, n in zip(st.users, np.diff(st.seen.indptr), strict=True) if n > 2]
    dots = _rec_dots(engine, users)[:, st.item_index["new-1"]]
    served = [rec.scores(u)[0] for u in users]
    centred = [row[st.item_index["new-1"]] - row.mean() for row in served]
    assert np.corrcoef(dots, centred)[0, 1] > 0.9
    name = cat.category_names[cat.category[twin]]
    served = engine.recommend("u0001", k=50, category=name)
    assert "new-1" in set(served["product_id"])
    with pytest.raises(ValidationError, match="DataFrame"):
        engine.add_products("new-3")  # type: ignore[arg-type]


def test_new_users_keep_the_demographic_columns_of_training(engine: Engine) -> None:
    """The demographic columns are the model's: users added with a new occupation, or with
    the rarest one until it is the commonest, neither break serving nor move the columns."""
    rec = engine.recommender()
    assert rec.demographics is not None and "occupation" in rec.demographics.levels
    before, n = rec.state.profile, len(rec.state.users)
    assert before is not None
    rarest = rec.demographics.levels["occupation"][-1]
    engine.store.upsert_nodes("User", pd.DataFrame({
        "id": ["u9990", "u9991", "u9992", "u9993", "u9994"],
        "age": [30, 41, 52, 63, 24],
        "gender": ["other", None, None, None, None],
        "occupation": ["astronaut", *[rarest] * 4],
    }))  # fmt: skip
    fresh = Recommender(engine.store)
    assert fresh.state.profile is not None
    np.testing.assert_array_equal(fresh.state.profile[:n], before)
    # its gender and occupation were never seen: age is its only column
    assert np.flatnonzero(fresh.state.profile[n]).tolist() in ([], [0])
    assert len(fresh.recommend("u0001", k=3)) == 3
    assert len(fresh.recommend("u9990", k=3)) == 3  # a new user: the cold-start blend


def test_the_last_model_trained_is_served(engine: Engine) -> None:
    """Training another model serves it (its vectors are the store's now); a model whose
    vectors did not reach the store is not served from another's."""
    assert engine.recommender().model_name == "fusion"
    engine.train("mf", epochs=2, batch_size=256)
    assert engine.recommender().model_name == "mf"
    engine.train("lightgcn", epochs=2, batch_size=256, dim=8)  # not written back
    assert (engine.store.path / "models" / "lightgcn-dim8.pt").exists()
    with pytest.raises(NotReadyError, match="no trained model"):
        Recommender(engine.store, model="lightgcn")  # no lightgcn.pt: it was never served
    assert engine.recommender().model_name == "mf"  # still the store's vectors
    engine.train("fusion", epochs=2, batch_size=256, taste_epochs=0)
    assert engine.recommender().model_name == "fusion"
    with pytest.raises(NotReadyError, match="fusion model trained since"):
        Recommender(engine.store, model="mf")


def test_training_again_brings_the_behaviour_vectors_up_to_date(engine: Engine) -> None:
    """Live interactions move the behaviour features, which the next training reads."""
    query = "MATCH (p:Product {id: 'p0003'}) RETURN p.behaviour_vec AS v"
    before = np.array(engine.cypher(query)["v"][0])
    users = [f"u{n:04d}" for n in range(1, 31)]
    report = engine.add_interactions(pd.DataFrame({"user_id": users, "product_id": "p0003"}))
    assert sum(report.relationships.values()) >= 20 and not report.rejected
    np.testing.assert_array_equal(engine.cypher(query)["v"][0], before)  # not yet
    engine.train("mf", epochs=1)
    assert not np.allclose(engine.cypher(query)["v"][0], before)


def test_new_products_keep_the_learned_qa_weights(engine: Engine) -> None:
    """New products rebuild the QA index on the next question, with the fusion weights it
    learned before (learning them again asks 300 stored questions); a load or embed
    learns them anew."""
    engine.ask("Is it dishwasher safe?")
    assert engine._qa is not None and engine._qa.fusion_trained_on >= 20
    learned = dict(engine._qa.fusion_weights)
    frame = pd.DataFrame({"id": ["new-7"], "title": ["Zorblax kettle"], "price": [9.0]})
    engine.add_products(frame)
    result = engine.ask("Does the zorblax kettle whistle?", k=1, method="bm25")
    assert result.products["product_id"][0] == "new-7"  # the index has the new product
    assert engine._qa.fusion_trained_on == 0
    assert engine._qa.fusion_weights.keys() == learned.keys()
    for name, weights in learned.items():
        np.testing.assert_array_equal(engine._qa.fusion_weights[name], weights)
    engine.embed(only=("text",))
    engine.ask("Is it dishwasher safe?")
    assert engine._qa.fusion_trained_on >= 20


def test_a_new_product_beyond_the_stored_lift_rescales_every_rec_vec(
    engine: Engine, tiny_shop: Path
) -> None:
    """The products' ``rec_vec`` have norm 1; a new product whose fitted factors are longer
    rescales every product and user, which keeps each user's order of the others."""
    rec = engine.recommender()
    factors = rec._rec_factors()
    assert factors is not None
    old = list(rec.state.items)
    before = _rec_dots(engine, ["u0001", "u0002"])
    factors[0][:] /= 1000.0  # users' factors far too short: the new one's fit far too long
    engine.add_products(pd.DataFrame({"id": ["new-9"], "title": ["A copy"], "price": [9.0]}))
    rows = engine.cypher("MATCH (p:Product) RETURN p.id AS id, p.rec_vec AS r")
    assert set(rows["id"]) == {*old, "new-9"}
    np.testing.assert_allclose([np.linalg.norm(r) for r in rows["r"]], 1.0, atol=1e-5)
    after = _rec_dots(engine, ["u0001", "u0002"])[:, : len(old)]
    np.testing.assert_allclose(after * 1000.0, before, rtol=1e-4, atol=1e-6)


def test_explain(engine: Engine) -> None:
    top = engine.recommend("u0001", k=1)["product_id"].iloc[0]
    reasons = engine.explain("u0001", top)
    assert reasons and reasons[0].path[0] == ("User", "u0001")
    assert all(r.path[-1] == ("Product", top) for r in reasons)
    assert [r.strength for r in reasons] == sorted((r.strength for r in reasons), reverse=True)
    with pytest.raises(ValidationError, match="no product"):
        engine.explain("u0001", "nope")


def test_also_interacted_counts_distinct_other_users(engine: Engine) -> None:
    user = "u0001"
    found = 0
    for pid in engine.recommend(user, k=20)["product_id"]:
        for reason in engine.explain(user, pid):
            if reason.kind != "also_interacted":
                continue
            found += 1
            other = reason.path[1][1]
            rows = engine.cypher(
                "MATCH (v:User)-[:VIEWED|PURCHASED|FAVORITED|RATED]->(a:Product {id: $a}) "
                "MATCH (v)-[:VIEWED|PURCHASED|FAVORITED|RATED]->(b:Product {id: $b}) "
                "WHERE v.id <> $u RETURN count(DISTINCT v) AS n",
                {"a": other, "b": pid, "u": user},
            )
            n = int(rows["n"].iloc[0])
            assert n > 0 and reason.strength == n
            assert reason.text.startswith(f"{n} user(s) who interacted with")
    assert found, "no recommendation was explained by co-interactions"


def test_lightgcn_is_served_from_stored_vectors(engine: Engine) -> None:
    engine.train("lightgcn", epochs=3, batch_size=256)
    (engine.store.path / "models" / "fusion.pt").unlink()  # type: ignore[attr-defined]
    rec = engine.recommender()
    assert rec.model_name == "lightgcn" and rec.fusion is None
    assert len(engine.recommend("u0001", k=3)) == 3
    with pytest.raises(ValidationError, match="cannot place new products"):
        engine.add_products(pd.DataFrame({"id": ["x"]}))


def test_no_model_is_a_clear_error(tiny_shop: Path, tmp_path: Path) -> None:
    with Engine(tmp_path / "s") as engine:
        load(engine.store, "synthetic", {"shop": tiny_shop})
        with pytest.raises(ValidationError, match="no trained model"):
            engine.recommend("u0001")
        with pytest.raises(ValidationError, match="unknown model"):
            Recommender(engine.store, model="popularity")


def test_cli(trained_store: Path, tmp_path: Path) -> None:
    folder = tmp_path / "store"
    shutil.copytree(trained_store, folder)
    runner = CliRunner()
    res = runner.invoke(main, ["recommend", "u0001", "--k", "3", "--json", "--store", str(folder)])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert len(rows) == 3 and rows[0]["reasons"]
    res = runner.invoke(main, ["recommend", "u0001", "--k", "2", "--store", str(folder)])
    assert res.exit_code == 0 and "  1. p" in res.output and "       - " in res.output
    res = runner.invoke(main, ["recommend", "nobody", "--store", str(folder)])
    assert res.exit_code == 1 and "no user 'nobody'" in res.output
    assert "Traceback" not in res.output
    assert runner.invoke(main, ["recommend", "u0001", "--k", "0"]).exit_code == 2
    pid = rows[0]["product_id"]
    res = runner.invoke(main, ["explain", "u0001", pid, "--json", "--store", str(folder)])
    assert res.exit_code == 0 and json.loads(res.output)[0]["path"][0]["key"] == "u0001"


def test_content_neighbourhood_is_blended_into_served_scores(
    engine: Engine, tiny_shop: Path, tmp_path: Path
) -> None:
    """With blend weights in the checkpoint, served scores are the model's blended with the
    kernels over everything the user has interacted with (live interactions included), each
    product weighted by the strength of the user's interactions with it, and a new product
    gets the kernel vector a fresh start gives it."""
    from graphfusion.models.neighbourhood import blend

    folder = engine.store.path / "models"  # type: ignore[attr-defined]
    ckpt = torch.load(folder / "fusion.pt", weights_only=True)
    ckpt["state_dict"]["neighbourhood.weight"] = torch.tensor([[0.5, 0.25], [1.0, 0.0]])
    models = tmp_path / "weighted"
    models.mkdir()
    torch.save(ckpt, models / "fusion.pt")
    rec = Recommender(engine.store, models_dir=models)
    st = rec.state
    # a weight saved with the two first kernels only: the later ones get weight 0
    assert st.kernel is not None and st.kernel_weights == (0.5, 0.25, 0.0, 0.0, 0.0, 0.0)
    assert st.kernel.shape[0] == len(st.items)

    def expected(user: str, weighted: bool = True, served: Recommender = rec) -> np.ndarray:
        st = served.state
        u = st.user_index[user]
        strength = _strengths(engine, user)
        mine = [st.item_index[p] for p in strength]
        w = np.array([strength[p] for p in strength]) if weighted else np.ones(len(mine))
        model = st.item_vecs @ st.user_vecs[u] + st.item_bias
        near = [
            torch.from_numpy(vecs @ (w @ vecs[mine] / w.sum()))[None]  # type: ignore[index]
            for vecs in (st.kernel, st.item_vecs)
        ]
        return blend(torch.from_numpy(model)[None], near, [0.5, 0.25])[0].numpy()

    user = "u0001"
    assert len(set(_strengths(engine, user).values())) > 1  # purchases and views both
    scores, how = rec.scores(user)
    assert how == "model"
    np.testing.assert_allclose(scores, expected(user), rtol=1e-5, atol=1e-5)
    assert not np.allclose(scores, expected(user, weighted=False), rtol=1e-5, atol=1e-5)
    plain = st.item_vecs @ st.user_vecs[st.user_index[user]] + st.item_bias
    assert not np.allclose(scores, plain)
    rec.add_interactions(pd.DataFrame({"user_id": [user], "product_id": ["p0040"]}))
    np.testing.assert_allclose(rec.scores(user)[0], expected(user), rtol=1e-5, atol=1e-5)
    # a checkpoint from before type_weights: every pair counts once, as it was trained
    del ckpt["config"]["type_weights"]
    older = tmp_path / "unweighted"
    older.mkdir()
    torch.save(ckpt, older / "fusion.pt")
    before = Recommender(engine.store, models_dir=older)
    assert before.config.type_weights is None
    np.testing.assert_allclose(
        before.scores(user)[0], expected(user, weighted=False, served=before), rtol=1e-5, atol=1e-5
    )

    cat = rec.catalogue
    twin = st.item_index["p0005"]
    frame = pd.DataFrame({
        "id": ["new-k"], "title": [cat.title[twin] + " II"], "price": [float(cat.price[twin])],
        "image": [str(tiny_shop / "images" / "p0005.png")],
    })  # fmt: skip
    rec.add_products(frame)
    # one without a photo, added alone: its photo part is that of no photo
    rec.add_products(pd.DataFrame({"id": ["new-t"], "title": ["A plain new mug"]}))
    fresh = Recommender(engine.store, models_dir=models)
    for key in ("new-k", "new-t"):
        live = rec.state.kernel[rec.state.item_index[key]]  # type: ignore[index]
        again = fresh.state.kernel[fresh.state.item_index[key]]  # type: ignore[index]
        np.testing.assert_allclose(live, again, rtol=1e-4, atol=1e-5)
        assert np.linalg.norm(live) > 0


def test_checkpoint_without_the_neighbourhood_serves_the_model_alone(
    engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = engine.store.path / "models"  # type: ignore[attr-defined]
    ckpt = torch.load(folder / "fusion.pt", weights_only=True)
    ckpt["state_dict"] = {
        k: v for k, v in ckpt["state_dict"].items() if not k.startswith("neighbourhood.")
    }
    models = tmp_path / "older"
    models.mkdir()
    torch.save(ckpt, models / "fusion.pt")
    with caplog.at_level("WARNING", logger="graphfusion.recommend"):
        rec = Recommender(engine.store, models_dir=models)
    assert "graph changed" not in caplog.text
    st = rec.state
    assert st.kernel is None
    u = st.user_index["u0001"]
    plain = st.item_vecs @ st.user_vecs[u] + st.item_bias
    np.testing.assert_allclose(rec.scores("u0001")[0], plain)


def test_served_kernels_are_the_models_own(engine: Engine, tiny_shop: Path, tmp_path: Path) -> None:
    """The served sharp, price, followees and taste kernels (one user at a time, over the
    serving state) are those the model computes for all users at once; a new product's price
    level is measured among the products the model was built with, as a fresh start measures
    it, and so are its taste model vectors."""
    from graphfusion.models.neighbourhood import KERNELS, blend

    folder = engine.store.path / "models"  # type: ignore[attr-defined]
    ckpt = torch.load(folder / "fusion.pt", weights_only=True)
    weights = [0.25, 0.5, 1.0, 0.5, 2.0, 1.0]
    ckpt["state_dict"]["neighbourhood.weight"] = torch.tensor([weights, [0.0] * 6])
    models = tmp_path / "all-kernels"
    models.mkdir()
    torch.save(ckpt, models / "fusion.pt")
    rec = Recommender(engine.store, models_dir=models)
    st, fusion = rec.state, rec.fusion
    assert fusion is not None and fusion.available == KERNELS  # the tiny shop has prices, follows
    assert st.levels is not None and st.follows is not None and st.follows.nnz
    assert st.taste is not None
    follower = int(np.flatnonzero(np.diff(st.follows.indptr))[0])
    for user in ("u0001", st.users[follower]):
        u = st.user_index[user]
        served = rec._kernels([u], list(KERNELS))
        with torch.no_grad():
            own = fusion.kernels(torch.tensor([u]), torch.from_numpy(st.item_vecs))
        for name in KERNELS:
            torch.testing.assert_close(served[name], own[name], rtol=1e-4, atol=1e-5)
        model = torch.from_numpy(st.item_vecs @ st.user_vecs[u] + st.item_bias)[None]
        want = blend(model, [own[k] for k in KERNELS], weights)[0].numpy()
        np.testing.assert_allclose(rec.scores(user)[0], want, rtol=1e-4, atol=1e-4)
    assert served["followees"].any()  # the follower's followees have products
    # many users at once (a follower and two of their followees, one user twice) score as
    # each alone
    followees = st.follows.indices[st.follows.indptr[follower] :][:2].tolist()
    batch = [follower, *followees, 3, follower]
    together = rec._model_scores(batch)
    for row, u in zip(together, batch, strict=True):
        np.testing.assert_allclose(row, rec._model_scores([u])[0], rtol=1e-4, atol=1e-4)
    # a new product of p0005's price and (nearly) its title: the same level, live or fresh
    cat = rec.catalogue
    twin = st.item_index["p0005"]
    frame = pd.DataFrame({"id": ["new-p"], "title": [cat.title[twin] + " II"],
                          "price": [float(cat.price[twin])]})  # fmt: skip
    rec.add_products(frame)
    live = rec.state.levels[rec.state.item_index["new-p"]]  # type: ignore[index]
    fresh = Recommender(engine.store, models_dir=models).state
    assert fresh.levels is not None
    assert live == pytest.approx(fresh.levels[fresh.item_index["new-p"]], abs=0.02)
    assert live == pytest.approx(st.levels[twin], abs=0.1)
    assert rec.state.taste is not None and fresh.taste is not None
    for have, again in zip(rec.state.taste, fresh.taste, strict=True):
        assert len(have) == len(rec.state.items)
        row, other = rec.state.item_index["new-p"], fresh.item_index["new-p"]
        np.testing.assert_allclose(have[row], again[other], rtol=1e-4, atol=1e-5)
    assert np.linalg.norm(rec.state.taste[1][rec.state.item_index["new-p"]]) > 0


def test_a_product_of_several_categories_is_found_by_each_and_deep_subcategories_count(
    engine: Engine,
) -> None:
    """A film has several genres (an Amazon product both levels of its category): the filter
    finds it by any of them. A top category holds its subcategories' subcategories too."""
    cat = engine.recommender().catalogue
    child, (parent,) = next(iter(cat.parents.items()))
    other = next(c for c, p in cat.parents.items() if parent not in p)
    product = next(p for p, c in zip(engine.recommender().state.items, cat.category,
                                     strict=True) if c == child)  # fmt: skip
    moved = next(p for p, c in zip(engine.recommender().state.items, cat.category,
                                   strict=True) if c == child and p != product)  # fmt: skip
    engine.cypher(
        "MATCH (p:Product {id: $p}), (c:Category {id: $c}) CREATE (p)-[:IN_CATEGORY]->(c)",
        {"p": product, "c": other},
    )
    engine.cypher("CREATE (:Category {id: 'deep', name: 'Deep Down'})")
    engine.cypher(
        "MATCH (d:Category {id: 'deep'}), (c:Category {id: $c}) CREATE (d)-[:SUBCATEGORY_OF]->(c)",
        {"c": child},
    )
    engine.cypher("MATCH (:Product {id: $p})-[r:IN_CATEGORY]->() DELETE r", {"p": moved})
    engine.cypher(
        "MATCH (p:Product {id: $p}), (c:Category {id: 'deep'}) CREATE (p)-[:IN_CATEGORY]->(c)",
        {"p": moved},
    )
    engine._recommender = None
    names = engine.recommender().catalogue.category_names
    every = {"exclude_seen": False, "explain": False, "k": 100}
    for category in (child, other, names[other], parent):
        assert product in set(engine.recommend("u0001", category=category, **every)["product_id"])
    for category in ("Deep Down", child, parent):
        assert moved in set(engine.recommend("u0001", category=category, **every)["product_id"])
    assert product not in set(engine.recommend("u0001", category="deep", **every)["product_id"])


def test_names_match_whatever_their_case_and_unicode_form(engine: Engine) -> None:
    """A name typed in another case, or with its accents composed otherwise (as macOS
    spells them), is the same brand."""
    import unicodedata

    brand = engine.recommender().catalogue.brand[0]
    engine.cypher("MATCH (b:Brand {id: $b}) SET b.name = 'Café Straße'", {"b": brand})
    engine._recommender = None
    for typed in ("Café Straße", "café straße", "CAFÉ STRASSE",
                  unicodedata.normalize("NFD", "Café Straße")):  # fmt: skip
        frame = engine.recommend("u0001", k=3, brand=typed, exclude_seen=False)
        assert len(frame) and set(frame["brand"]) == {"Café Straße"}, typed


def test_ties_are_ranked_by_product_id_whatever_the_filters(engine: Engine) -> None:
    """Scores that tie (popularity alone: products with as many interactions) come in
    product id order, as the Cypher recipe orders them, with or without a filter."""
    engine.store.upsert_nodes("User", pd.DataFrame({"id": ["nobody-known"]}))
    rec = Recommender(engine.store)
    rec.light_weights = {"popularity": 1.0, "products": 0.0, "model": 0.0, "peers": 0.0}
    scores, method = rec.scores("nobody-known")
    assert method == "cold-start blend" and len(np.unique(scores)) < len(scores)  # ties
    st = rec.state
    want = sorted(st.items, key=lambda k: (-scores[st.item_index[k]], k))
    got = rec.recommend("nobody-known", k=len(st.items), explain=False)
    assert list(got["product_id"]) == want
    for k in (3, 7, 15):
        assert list(rec.recommend("nobody-known", k=k, explain=False)["product_id"]) == want[:k]
    brand = rec.catalogue.brand[0]
    mine = [p for p in want if rec.catalogue.brand[st.item_index[p]] == brand]
    got = rec.recommend("nobody-known", k=40, brand=brand, explain=False)
    assert list(got["product_id"]) == mine


def test_numpy_numbers_are_numbers_and_a_huge_one_is_refused(engine: Engine) -> None:
    frame = engine.recommend(
        "u0001", k=5, max_price=np.float32(30.0), diversity=np.float32(0.5), explain=False
    )
    assert len(frame) and (frame["price"] <= 30.0).all()
    with pytest.raises(ValidationError, match="max_price"):
        engine.recommend("u0001", max_price=10**400)
    with pytest.raises(ValidationError, match="diversity"):
        engine.recommend("u0001", diversity=np.float64("nan"))


def test_an_empty_list_has_the_columns_of_a_full_one(engine: Engine) -> None:
    """A filter that leaves nothing (a category without products, every product seen) gives
    an empty frame whose columns are typed as a full one's, not as floats."""
    engine.cypher("CREATE (:Category {id: 'empty', name: 'Nothing here'})")
    full = engine.recommend("u0001", k=3)
    empty = engine.recommend("u0001", k=3, category="Nothing here")
    assert empty.empty and list(empty.columns) == list(full.columns)
    for column in ("product_id", "title", "score", "price", "reasons"):
        assert empty[column].dtype == full[column].dtype, column
    assert empty.attrs["method"] == "model"
    assert empty["product_id"].str.startswith("p").empty  # the string methods work


def test_a_new_user_who_gave_only_a_gender_has_the_users_of_that_gender_as_peers(
    engine: Engine,
) -> None:
    """Demographics are matched as far as they are known: a user who gave a gender alone
    is not matched on a missing age and occupation (which no stored user shares)."""
    engine.store.upsert_nodes("User", pd.DataFrame({"id": ["she"], "gender": ["female"]}))
    rec = Recommender(engine.store)
    st = rec.state
    u = st.user_index["she"]
    rows = engine.cypher(
        "MATCH (v:User {gender: 'female'})-[:VIEWED|PURCHASED|FAVORITED|RATED]->(:Product) "
        "RETURN DISTINCT v.id AS id"
    )
    peers = sorted(st.user_index[v] for v in rows["id"])
    assert len(peers) > 1
    weights = {"popularity": 0.0, "products": 0.0, "model": 0.0, "peers": 1.0}
    want = st.item_vecs @ st.user_vecs[peers].mean(0)
    np.testing.assert_allclose(
        rec._blend(u, weights), (want - want.mean()) / want.std(), rtol=1e-5, atol=1e-6
    )
