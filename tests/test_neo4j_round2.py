"""The Neo4j path, round 2: what changed since the last round, without a server.

- The server's vector indexes must be the schema's: ``CREATE VECTOR INDEX ... IF NOT EXISTS``
  does nothing where an index of that name, or another vector index on that property, is
  there already (a schema changed since, an index made by another tool), and the searches
  then ran on an index of another size or similarity, or on none.
- A schema of one's own (``graphfusion --schema FILE --neo4j URI``), with a ``euclidean``
  vector: its constraints and indexes are made from the file.
- The behaviour features' recency compares ``e.ts <= $latest``: the parameter must reach
  Neo4j as a ``LocalDateTime``, as the stored times are (a ``DateTime`` against a
  ``LocalDateTime`` is null in Neo4j, and every interaction would drop out silently), and
  ``$latest_at`` as the same instant in UTC as a ``DateTime``, for times stored zoned.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from graphfusion import Engine
from graphfusion.cli import main
from graphfusion.errors import NotReadyError, QueryError, SchemaError
from graphfusion.features.behaviour import behaviour_features
from graphfusion.features.embed import write_vectors
from graphfusion.schema import load_schema
from graphfusion.search import similar
from graphfusion.store import EmbeddedStore, Neo4jStore
from graphfusion.store.dialect import NEO4J

try:
    from cypher_lint import cypher_lint_available, lint_cypher, unavailable_reason
    from neo4j_recorder import EmbeddedResponder, RecordingDriver, index_row, vector_index_row
except ImportError:  # pragma: no cover - when tests/ is a package
    from tests.cypher_lint import cypher_lint_available, lint_cypher, unavailable_reason
    from tests.neo4j_recorder import (
        EmbeddedResponder,
        RecordingDriver,
        index_row,
        vector_index_row,
    )

SHOP_SCHEMA = {
    "name": "shop",
    "nodes": {
        "Item": {"key": "sku", "properties": {
            "sku": "string", "name": "string",
            "emb": {"type": "vector", "dim": 4, "similarity": "euclidean"},
        }},
        "Buyer": {"key": "id", "properties": {"id": "string"}},
    },
    "relationships": {"BOUGHT": {"between": [["Buyer", "Item"]]}},
}  # fmt: skip


# ----------------------------------------------------------- the server's vector indexes
def test_a_fresh_database_gets_the_schemas_indexes_and_passes_the_check() -> None:
    driver = RecordingDriver()
    Neo4jStore(driver=driver)
    made = {row["name"] for row in driver.indexes if row["type"] == "VECTOR"}
    assert made == {f"{label.lower()}_{p.name}" for label, p in load_schema().vector_properties()}
    assert driver.queries[-1].startswith("SHOW INDEXES")


def test_an_index_as_the_schema_says_is_taken_whatever_the_case_of_its_similarity() -> None:
    driver = RecordingDriver()
    driver.indexes.append(
        vector_index_row("product_text_vec", "Product", "text_vec", 384, "COSINE")
    )
    Neo4jStore(driver=driver)  # no error: Neo4j shows the similarity in capitals


def test_a_vector_index_of_another_size_or_similarity_is_refused() -> None:
    """A database indexed for another schema (768-dim text vectors, euclidean): the new
    schema's index was silently not made, and every text search failed on the server (or,
    for a similarity alone, ranked by the old one)."""
    driver = RecordingDriver()
    driver.indexes.append(
        vector_index_row("product_text_vec", "Product", "text_vec", 768, "EUCLIDEAN")
    )
    with pytest.raises(SchemaError) as caught:
        Neo4jStore(driver=driver)
    message = str(caught.value)
    assert "product_text_vec" in message
    assert "768 dimensions and euclidean similarity" in message
    assert "384 dimensions and cosine similarity" in message
    assert "DROP INDEX product_text_vec" in message


def test_another_vector_index_on_the_property_is_refused() -> None:
    """An index made by another tool on ``Product.text_vec``: Neo4j makes no second one, so
    ``db.index.vector.queryNodes('product_text_vec', ...)`` found no such index."""
    driver = RecordingDriver()
    driver.indexes.append(vector_index_row("embeddings", "Product", "text_vec", 384, "cosine"))
    with pytest.raises(
        SchemaError, match=r"Product\.text_vec.*'embeddings'.*DROP INDEX embeddings"
    ):
        Neo4jStore(driver=driver)


def test_an_index_of_another_kind_holding_the_name_is_refused() -> None:
    driver = RecordingDriver()
    driver.indexes.append(index_row("product_text_vec", "RANGE", "Product", "title"))
    with pytest.raises(
        SchemaError, match=r"'product_text_vec' is the RANGE index on Product\(title\)"
    ):
        Neo4jStore(driver=driver)


def test_the_check_is_one_read_of_the_catalogue_that_neo4j_parses() -> None:
    driver = RecordingDriver()
    Neo4jStore(driver=driver)
    shows = [q for q in driver.queries if q.startswith("SHOW")]
    assert len(shows) == 1
    if cypher_lint_available():
        failed = [r.describe() for r in lint_cypher(shows) if not r.ok]
        assert not failed, "\n".join(failed)
    else:  # pragma: no cover - without node
        pytest.skip(unavailable_reason() or "")


def test_a_read_only_store_reads_no_catalogue() -> None:
    """A reader may lack the SHOW INDEX privilege, and it creates nothing to check."""
    driver = RecordingDriver()
    Neo4jStore(driver=driver, read_only=True)
    assert driver.calls == []


# ----------------------------------------------------------- a schema of one's own
def _cli_driver(monkeypatch: pytest.MonkeyPatch, driver: RecordingDriver) -> None:
    import neo4j

    monkeypatch.setattr(neo4j.GraphDatabase, "driver", lambda uri, auth=None: driver)


def test_a_schema_file_of_ones_own_makes_its_constraints_and_euclidean_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "shop.yaml"
    path.write_text(yaml.safe_dump(SHOP_SCHEMA))
    driver = RecordingDriver()
    _cli_driver(monkeypatch, driver)
    result = CliRunner().invoke(
        main, ["--schema", str(path), "stats", "--json", "--neo4j", "bolt://shop:7687"]
    )
    assert result.exit_code == 0, result.output
    assert driver.queries[:3] == NEO4J.schema_ddl(load_schema(path))
    assert "`vector.similarity_function`: 'euclidean'" in driver.queries[2]
    assert {r["name"] for r in driver.indexes} == {"item_sku_unique", "buyer_id_unique", "item_emb"}


def test_a_schema_changed_since_the_index_was_made_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The config file's ``schema=`` is what the store opens with; once the schema's vector
    changes (8 dimensions, cosine), the server's index of the old one is named."""
    path, config = tmp_path / "shop.yaml", tmp_path / "graphfusion.toml"
    path.write_text(yaml.safe_dump(SHOP_SCHEMA))
    config.write_text('[graphfusion]\nneo4j_uri = "bolt://shop:7687"\nschema = "shop.yaml"\n')
    driver = RecordingDriver()
    _cli_driver(monkeypatch, driver)
    args = ["--config", str(config), "stats", "--json"]
    assert CliRunner().invoke(main, args).exit_code == 0
    changed: dict[str, Any] = yaml.safe_load(path.read_text())
    changed["nodes"]["Item"]["properties"]["emb"] = {"type": "vector", "dim": 8}
    path.write_text(yaml.safe_dump(changed))
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert "item_emb" in result.output
    assert "4 dimensions and euclidean similarity" in result.output


# ----------------------------------------------------------- the recency's time parameter
def _packed_kind(value: Any) -> str:
    """The PackStream structure the driver sends ``value`` as (``d``: LocalDateTime; ``I``
    or ``f``: DateTime with an offset or a zone)."""
    from neo4j._codec.hydration.bolt.v3 import HydrationHandler
    from neo4j._codec.packstream.v1 import Packer

    buffer = Packer.new_packable_buffer()
    Packer(buffer).pack(value, HydrationHandler().new_hydration_scope().dehydration_hooks)
    return chr(bytes(buffer.data)[1])


def test_the_driver_sends_a_naive_time_as_local_datetime() -> None:
    assert _packed_kind(dt.datetime(2024, 1, 1, 12)) == "d"
    assert _packed_kind(dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC)) != "d"


def test_behaviour_features_on_neo4j_compare_local_times(tmp_path: Path) -> None:
    """Every time sent (the loaded ``ts`` and the recency's ``$latest``) is a LocalDateTime,
    so the comparison holds in Neo4j, and the features are the embedded store's."""
    with EmbeddedStore(tmp_path / "answers") as db, EmbeddedStore(tmp_path / "own") as own:
        driver = RecordingDriver(EmbeddedResponder(db))
        store = Neo4jStore(driver=driver)
        users = pd.DataFrame({"id": ["u1", "u2", "u3"]})
        products = pd.DataFrame({"id": ["p1", "p2"], "price": [3.0, 5.0]})
        stamps = [dt.datetime(2024, 1, d) for d in (1, 5, 20)]
        views = pd.DataFrame({"src": ["u1", "u2", "u3"], "dst": ["p1", "p2", "p1"], "ts": stamps})
        for target in (store, own):
            target.upsert_nodes("User", users)
            target.upsert_nodes("Product", products)
            target.upsert_relationships("VIEWED", views, start="User", end="Product")
        got = behaviour_features(store, "User")
        want = behaviour_features(own, "User")
    sent = [
        value
        for call in driver.calls
        for value in _values(call.parameters)
        if isinstance(value, dt.datetime)
    ]
    assert any(call.parameters.get("latest") for call in driver.calls)
    # the loaded ts and $latest are LocalDateTimes; $latest_at is the same instant as a
    # DateTime, which times stored zoned by another tool compare with
    local = [v for v in sent if v.tzinfo is None]
    assert local and {_packed_kind(v) for v in local} == {"d"}
    latest_at = [c.parameters["latest_at"] for c in driver.calls if "latest_at" in c.parameters]
    assert latest_at and {_packed_kind(v) for v in latest_at} == {"I"}
    pd.testing.assert_frame_equal(got, want)
    assert got["recency_days"].nunique() == 3  # the times were read: not all dropped


def _values(value: Any) -> list[Any]:
    """Every leaf value of a parameter (lists and maps walked)."""
    if isinstance(value, dict):
        return [v for item in value.values() for v in _values(item)]
    if isinstance(value, list):
        return [v for item in value for v in _values(item)]
    return [value]


# ----------------------------------------------------------- the write-back, failing half way
class _LostOnProductVectors(EmbeddedResponder):
    """Answers as Neo4j would, but loses the connection at the write of the products'
    ``fused_vec`` while :attr:`failing` (a transient error the driver's retries gave up on)."""

    failing = False

    def respond(
        self, query: str, params: dict[str, Any], *, read: bool = False
    ) -> tuple[list[str], list[dict[str, Any]]]:
        if (
            self.failing
            and query.startswith("UNWIND $rows AS r MERGE (n:Product")
            and ("n.fused_vec = " in query)
        ):
            raise ConnectionError("ServiceUnavailable: the connection was lost")
        return super().respond(query, params, read=read)


def _fused(db: EmbeddedStore, label: str) -> dict[str, list[float]]:
    rows = db.query(f"MATCH (n:{label}) WHERE n.fused_vec IS NOT NULL RETURN n.id AS id, "
                    "n.fused_vec AS v")  # fmt: skip
    return {r["id"]: r["v"] for r in rows}


@pytest.fixture
def half_written(
    tiny_shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Engine, EmbeddedStore, _LostOnProductVectors, dict[str, dict[str, list[float]]]]:
    """A Neo4j store served by LightGCN, then an MF run whose write-back lost the connection
    after the users' vectors: ``(engine, answering store, responder, LightGCN's vectors)``."""
    monkeypatch.chdir(tmp_path)  # a Neo4j store's models go to the working folder
    db = EmbeddedStore(tmp_path / "answers")
    responder = _LostOnProductVectors(db)
    engine = Engine(Neo4jStore(driver=RecordingDriver(responder)))
    engine.load("synthetic", shop=tiny_shop)
    engine.train("lightgcn", epochs=1, patience=1)
    before = {label: _fused(db, label) for label in ("User", "Product")}
    responder.failing = True
    with pytest.raises(QueryError, match="connection was lost"):
        engine.train("mf", epochs=1, patience=1)
    responder.failing = False
    return engine, db, responder, before


def test_a_failed_write_back_leaves_users_of_one_model_and_products_of_another(
    half_written: tuple[Engine, EmbeddedStore, Any, dict[str, dict[str, list[float]]]],
) -> None:
    """What a failure half-way leaves (the README says the write-back is no one transaction):
    the users' vectors are MF's, the products' still LightGCN's (whether they are served is
    the next test's)."""
    engine, db, _, before = half_written
    assert set(_fused(db, "User")) == set(before["User"])
    assert _fused(db, "User") != before["User"]
    assert _fused(db, "Product") == before["Product"]
    assert not (Path("graphfusion-models") / "models" / "mf.pt").exists()
    engine.close()


def test_a_store_left_half_written_is_not_served_silently(
    half_written: tuple[Engine, EmbeddedStore, Any, dict[str, dict[str, list[float]]]],
) -> None:
    """LightGCN is served from the stored vectors: users of MF against products of LightGCN
    are no model's scores. A fresh engine refuses, naming the model to train again."""
    engine, _, responder, _ = half_written
    engine.close()
    served = json.loads((Path("graphfusion-models") / "models" / "served.json").read_text())
    assert served == {"model": None, "writing": "mf"}
    fresh = Engine(Neo4jStore(driver=RecordingDriver(responder)))
    with fresh, pytest.raises(NotReadyError, match=r"stopped half way.*train mf again"):
        fresh.recommend("u0001", k=5)


def test_running_the_training_again_mends_a_half_written_store(
    half_written: tuple[Engine, EmbeddedStore, Any, dict[str, dict[str, list[float]]]],
) -> None:
    """Every vector is written by key (``MERGE ... SET``): a re-run writes both labels whole
    and names its model as served."""
    engine, db, responder, before = half_written
    engine.train("mf", epochs=1, patience=1)
    engine.close()
    users, products = _fused(db, "User"), _fused(db, "Product")
    assert set(products) == set(before["Product"])
    assert all(products[k] != before["Product"][k] for k in products)
    assert set(users) == set(before["User"])
    served = json.loads((Path("graphfusion-models") / "models" / "served.json").read_text())
    assert served == {"model": "mf"}
    with Engine(Neo4jStore(driver=RecordingDriver(responder))) as fresh:
        assert len(fresh.recommend("u0001", k=5)) == 5


# ----------------------------------------------------------- serving a read-only Neo4j store
def test_the_service_on_a_read_only_neo4j_store_reads_only(
    trained_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Engine.connect(uri, read_only=True)`` served: every statement goes in a read
    transaction (the responder refuses a write in one, as Neo4j), live updates are 403, a
    writing ``/cypher`` is refused, and the reads answer."""
    from fastapi.testclient import TestClient
    from neo4j import RoutingControl

    from graphfusion.service import create_app

    monkeypatch.setenv("GRAPHFUSION_MODELS", str(trained_store / "models"))
    with EmbeddedStore(trained_store, read_only=True) as db:
        responder = EmbeddedResponder(db)
        driver = RecordingDriver(responder)
        with Engine(Neo4jStore(driver=driver, read_only=True)) as engine:
            client = TestClient(create_app(engine, allow_cypher=True))
            health = client.get("/healthz").json()
            assert (health["store"], health["read_only"]) == ("neo4j", True)
            event = {"interactions": [{"user_id": "u0001", "product_id": "p0002",
                                       "type": "VIEWED"}]}  # fmt: skip
            assert client.post("/events", json=event).status_code == 403
            write = {"query": "MATCH (p:Product {id: 'p0001'}) SET p.title = 'x' RETURN 1"}
            assert client.post("/cypher", json=write).status_code == 403
            for path in ("/recommend/u0001?k=3", "/similar/p0001?k=3", "/defects?top=2"):
                answer = client.get(path)
                assert answer.status_code == 200, (path, answer.text)
            asked = client.post("/ask", json={"question": "Is it waterproof?", "k": 2})
            assert asked.status_code == 200, asked.text
            read = {"query": "MATCH (p:Product) RETURN count(p) AS n", "params": {}}
            assert client.post("/cypher", json=read).json()["rows"][0]["n"] > 0
    assert driver.calls
    assert {c.kwargs["routing_"] for c in driver.calls} == {RoutingControl.READ}
    assert not responder.failures, responder.failures


# ----------------------------------------------------------- cosine similarity on Neo4j
def test_similar_on_neo4j_gives_the_cosine_similarity_of_the_embedded_store(
    tmp_path: Path,
) -> None:
    """Neo4j's ``vector.similarity.cosine`` is its cosine index's score, ``(1 + cosine) / 2``
    in [0, 1] (the Cypher manual: "identical to those used by Neo4j's vector search
    indexes"); ``similar`` scored by it and said "cosine similarity": an opposite product got
    0, not -1, and an unrelated one 0.5, not 0."""
    with EmbeddedStore(tmp_path / "answers") as db:
        keys = ["p1", "p2", "p3", "p4"]
        db.upsert_nodes("Product", pd.DataFrame({"id": keys, "title": ["A", "B", "C", "D"]}))
        vectors = np.zeros((4, 384))
        vectors[0, 0] = vectors[1, 0] = vectors[1, 1] = vectors[3, 1] = 1.0
        vectors[2, 0] = -1.0  # p2 at 45 degrees, p3 opposite, p4 orthogonal to p1
        write_vectors(db, "Product", "text_vec", keys, vectors)
        neo4j = Neo4jStore(driver=RecordingDriver(EmbeddedResponder(db)))
        got = similar(neo4j, "p1", "text", k=3)
        want = similar(db, "p1", "text", k=3)
    assert list(got["id"]) == list(want["id"]) == ["p2", "p4", "p3"]
    np.testing.assert_allclose(got["score"], [2**-0.5, 0.0, -1.0], atol=1e-6)
    np.testing.assert_allclose(got["score"], want["score"], atol=1e-6)
