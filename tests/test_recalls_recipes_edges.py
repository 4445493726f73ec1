"""Edges of the recall report (firms, clusters, the recall graph) and of the Cypher recipe
(parity with the Python API on the tiny trained shop, stores of another ``rec_vec`` size)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from graphfusion import Engine
from graphfusion.cypher_recipes import recommend, recommend_query
from graphfusion.errors import SchemaError, ValidationError
from graphfusion.recalls import recall_report
from graphfusion.schema import load_schema
from graphfusion.store import EmbeddedStore, Neo4jStore

try:
    from neo4j_recorder import RecordingDriver
except ImportError:  # pragma: no cover - when tests/ is a package
    from tests.neo4j_recorder import RecordingDriver


def _recall_store(engine: Engine, recalls: dict[str, str], names: list[tuple[str, str]]) -> None:
    """Recalls ``id -> hazard text`` naming firms ``(recall, supplier)``, each firm named
    after its id."""
    store = engine.store
    store.write_node_table("Recall", pa.table({
        "id": list(recalls), "title": [f"Item {r}" for r in recalls],
        "hazard": list(recalls.values()),
    }))  # fmt: skip
    firms = sorted({s for _, s in names})
    store.write_node_table(
        "Supplier", pa.table({"id": firms, "name": [f"Firm {s}" for s in firms]})
    )
    store.write_rel_table(
        "NAMES",
        pa.table({"src": [r for r, _ in names], "dst": [s for _, s in names]}),
        start="Recall",
        end="Supplier",
    )


def _self_loops(graph: object) -> list[object]:
    import networkx as nx

    return list(nx.selfloop_edges(graph))  # type: ignore[arg-type]


def test_repeat_share_is_of_the_recalls_that_name_a_firm(tmp_path: Path) -> None:
    """Half the real export's recalls name no firm, and ``repeat_share`` counts only those
    that name one: the clusters say how many that is (``with_firms``), so that the share
    reads right (0.5 of fire's 2 such recalls here, not of its 4)."""
    fire = "Posing a fire hazard."
    with Engine(tmp_path / "store") as engine:
        _recall_store(
            engine,
            {"r1": fire, "r2": fire, "r3": fire, "r4": fire, "r5": "Posing a burn hazard."},
            [("r1", "a"), ("r2", "b"), ("r5", "a")],
        )
        clusters = engine.recalls().clusters.set_index("hazard_type")
    assert clusters.at["fire", "recalls"] == 4
    assert clusters.at["fire", "with_firms"] == 2  # r3 and r4 name no firm
    assert clusters.at["fire", "repeat_share"] == 0.0  # a and b are each named once for fire
    assert clusters.at["burn", "with_firms"] == 1
    assert list(clusters.columns[:3]) == ["recalls", "with_firms", "firms"]


def test_the_recall_graph_keeps_a_firm_and_a_recall_with_one_id_apart(tmp_path: Path) -> None:
    """A store keyed by numbers (recall "1", supplier "1") merged the firm and the recall into
    one node of the drawn graph, with a loop, and lost the recall's hazard colour."""
    fire = "Posing a fire hazard."
    with Engine(tmp_path / "store") as engine:
        names = [("1", "1"), ("2", "1"), ("3", "2"), ("2", "2")]
        _recall_store(engine, {"1": fire, "2": fire, "3": fire}, names)
        report = engine.recalls()
    graph = report.graph()
    firms = sorted(n for n, d in graph.nodes(data=True) if d["kind"] == "firm")
    recalls = sorted(n for n, d in graph.nodes(data=True) if d["kind"] != "firm")
    assert firms == [("firm", "1"), ("firm", "2")]
    assert recalls == [("recall", "1"), ("recall", "2"), ("recall", "3")]
    assert graph.number_of_edges() == 4 and not list(_self_loops(graph))
    assert {graph.nodes[n]["kind"] for n in recalls} == {"fire"}
    assert graph.nodes[("firm", "1")]["label"] == "Firm 1"
    assert report.plot_graph(tmp_path / "g.png").stat().st_size > 1000
    with pytest.raises(ValidationError, match="top must be"):
        report.graph(top=0)


def test_the_report_is_the_same_every_time(tmp_path: Path) -> None:
    texts = ["Posing a fire hazard.", "Posing fire and burn hazards.", "Posing a burn hazard."]
    recalls = {f"r{i}": texts[i % 3] for i in range(12)}
    names = [(f"r{i}", "abc"[i % 3]) for i in range(12)] + [("r0", "b"), ("r4", "c")]
    with Engine(tmp_path / "store") as engine:
        _recall_store(engine, recalls, names)
        one, two = recall_report(engine.store), recall_report(engine.store)
    for part in ("recalls", "links", "companies", "clusters"):
        pd.testing.assert_frame_equal(getattr(one, part), getattr(two, part))


# --- the Cypher recipe ---------------------------------------------------------------------


def _served_and_recipe(engine: Engine, user: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    served = engine.recommend(user, 1000, explain=False)
    query = recommend_query(engine.store.dialect.name)  # as the README runs it
    recipe = engine.cypher(query, {"user_id": user, "k": 1000})
    return served, recipe


def test_recipe_ranks_as_the_api_once_a_users_vector_is_refitted(
    trained_store: Path, private_copy: Callable[[Path], Engine]
) -> None:
    """After a live interaction the user's ``rec_vec`` is refitted to the served scores: the
    recipe then lists the same unseen products in the same order, its cosine the served score
    less the user's mean over the user's ``rec_vec`` norm (the tiny shop's 40 products are
    within the 65 factors, so the fit is exact)."""
    engine = private_copy(trained_store)
    users = ["u0003", "u0011"]
    products = [r["id"] for r in engine.store.query("MATCH (p:Product) RETURN p.id AS id")]
    for user in users:
        served, _ = _served_and_recipe(engine, user)
        new = served["product_id"].iloc[0]  # the user buys their top product
        report = engine.add_interactions(
            pd.DataFrame({"user_id": [user], "product_id": [new], "type": ["PURCHASED"]})
        )
        assert report.rejected == []
        served, recipe = _served_and_recipe(engine, user)
        assert new not in set(recipe["id"])
        assert recipe["id"].tolist()[:10] == served["product_id"].tolist()[:10]
        assert set(recipe["id"]) == set(served["product_id"])
        (me,) = engine.store.query("MATCH (u:User {id: $u}) RETURN u.rec_vec AS r", {"u": user})
        norm = float(np.linalg.norm(me["r"]))
        everything = engine.recommender().scores(user)[0]
        mean = float(np.mean(everything))
        want = served.set_index("product_id")["score"]
        got = recipe.set_index("id")["score"] * norm + mean
        np.testing.assert_allclose(got[want.index], want, atol=1e-3 * float(want.abs().max()))
    assert recommend(engine.store, users[0], 5) == (
        engine.cypher(recommend_query("ladybug"), {"user_id": users[0], "k": 5}).to_dict(
            orient="records"
        )
    )
    assert len(products) == 40


def _small_rec_schema(tmp_path: Path, dim: int) -> Path:
    import yaml

    from graphfusion.schema import default_schema_path

    raw = yaml.safe_load(default_schema_path().read_text())
    for label in ("User", "Product"):
        raw["nodes"][label]["properties"]["rec_vec"]["dim"] = dim
    path = tmp_path / "schema.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_the_query_of_a_store_casts_to_that_stores_dimension(tmp_path: Path) -> None:
    """``recommend_query(dialect name)`` casts to the built-in schema's 66 coordinates: on a
    store of another ``rec_vec`` size it failed with LadybugDB's conversion error. Given the
    store, it is that store's dialect and size."""
    schema = load_schema(_small_rec_schema(tmp_path, 5))
    with EmbeddedStore(tmp_path / "store", schema=schema) as store:
        store.upsert_nodes("User", pd.DataFrame({"id": ["u1"]}))
        store.upsert_nodes("Product", pd.DataFrame({"id": ["p1", "p2"], "title": ["A", "B"]}))
        for key, vec in (("u1", [1.0, 0, 0, 0, 0]), ("p1", [0.6, 0.8, 0, 0, 0]),
                         ("p2", [1.0, 0, 0, 0, 0])):  # fmt: skip
            store.query("MATCH (n) WHERE n.id = $k SET n.rec_vec = $v", {"k": key, "v": vec})
        query = recommend_query(store)
        assert "FLOAT[5]" in query and "FLOAT[66]" not in query
        rows = store.query(query, {"user_id": "u1", "k": 5})
        assert [r["id"] for r in rows] == ["p2", "p1"]
        assert [r["score"] for r in rows] == pytest.approx([1.0, 0.6])
        assert recommend(store, "u1", 5) == rows
    assert recommend_query(Neo4jStore(driver=RecordingDriver())) == recommend_query("neo4j")
    assert recommend_query("ladybug") == recommend_query("ladybug", dim=66)
    with pytest.raises(ValidationError, match="dialect name or a store"):
        recommend_query(3)  # type: ignore[arg-type]


def test_a_schema_without_rec_vec_is_named_in_the_error(tmp_path: Path) -> None:
    import yaml

    from graphfusion.schema import default_schema_path

    raw = yaml.safe_load(default_schema_path().read_text())
    for label in ("User", "Product"):
        del raw["nodes"][label]["properties"]["rec_vec"]
    (tmp_path / "schema.yaml").write_text(yaml.safe_dump(raw))
    with EmbeddedStore(tmp_path / "store", schema=load_schema(tmp_path / "schema.yaml")) as store:
        for call in (lambda: recommend(store, "u1", 3), lambda: recommend_query(store)):
            with pytest.raises(SchemaError, match=r"rec_vec.*train"):
                call()
