"""The embedded LadybugDB store, against the real database."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from builders import ENDLESS_QUERY

from graphfusion.errors import (
    QueryError,
    QueryTimeoutError,
    SchemaError,
    StoreError,
    StoreLockedError,
    ValidationError,
)
from graphfusion.schema import default_schema_path, load_schema
from graphfusion.store import EmbeddedStore, open_store


def _products(store: EmbeddedStore) -> pd.DataFrame:
    return store.query_df(
        "MATCH (p:Product) RETURN p.id AS id, p.title AS title, p.price AS price, "
        "p.created_at AS created_at ORDER BY id"
    )


def test_upsert_nodes_inserts_then_updates_without_erasing(store: EmbeddedStore) -> None:
    n = store.upsert_nodes(
        "Product",
        pd.DataFrame({"id": ["p1", "p2"], "title": ["Mug", None], "price": ["9.5", 12]}),
    )
    assert n == 2
    store.upsert_nodes(
        "Product",
        pd.DataFrame(
            {"id": ["p2", "p3"], "title": ["Lamp", "Hat"], "created_at": ["2024-01-02", None]}
        ),
    )
    rows = _products(store)
    assert rows["id"].tolist() == ["p1", "p2", "p3"]
    assert rows["title"].tolist() == ["Mug", "Lamp", "Hat"]
    assert rows.loc[0, "price"] == 9.5
    assert rows.loc[1, "price"] == 12.0  # not erased by the second frame, which lacked it
    assert rows.loc[1, "created_at"] == pd.Timestamp("2024-01-02")
    assert store.counts().nodes["Product"] == 3


def test_upsert_is_idempotent_and_relationships_are_unique_per_pair(store: EmbeddedStore) -> None:
    store.upsert_nodes("User", pd.DataFrame({"id": ["u1", "u2"]}))
    store.upsert_nodes("Product", pd.DataFrame({"id": ["p1", "p2"]}))
    views = pd.DataFrame(
        {"src": ["u1", "u1", "u2"], "dst": ["p1", "p2", "p1"], "weight": [1, 2, 3],
         "ts": ["2024-01-01T10:00:00", None, "2024-01-03"]}
    )  # fmt: skip
    for _ in range(2):
        store.upsert_relationships("VIEWED", views, start="User", end="Product", batch_size=2)
    counts = store.counts()
    assert counts.relationships["VIEWED"] == 3
    assert counts.nodes["User"] == 2
    store.upsert_relationships(
        "VIEWED", pd.DataFrame({"src": ["u1"], "dst": ["p1"], "weight": [7.0]}),
        start="User", end="Product",
    )  # fmt: skip
    rows = store.query(
        "MATCH (u:User {id: $u})-[e:VIEWED]->(p:Product {id: $p}) RETURN e.weight AS w, e.ts AS ts",
        {"u": "u1", "p": "p1"},
    )
    assert rows == [{"w": 7.0, "ts": dt.datetime(2024, 1, 1, 10, 0)}]


def test_union_lists_accumulate_across_writes(store: EmbeddedStore) -> None:
    """Supplier.roles and SUPPLIES.roles are ``merge: union``: a write adds what is new."""
    store.upsert_nodes(
        "Supplier",
        pd.DataFrame({"id": ["s1", "s2"], "roles": [["importer", "importer"], None]}),
    )
    store.upsert_nodes("Product", pd.DataFrame({"id": ["p1"]}))
    supplies = {"src": ["s1"], "dst": ["p1"]}
    store.upsert_relationships(
        "SUPPLIES", pd.DataFrame({**supplies, "roles": [["importer"]]}), start="Supplier",
        end="Product",
    )  # fmt: skip
    for _ in range(2):  # a repeat changes nothing
        store.upsert_nodes(
            "Supplier",
            pd.DataFrame({"id": ["s1", "s2"], "roles": [["retailer", "importer"], ["retailer"]]}),
        )
        store.upsert_relationships(
            "SUPPLIES", pd.DataFrame({**supplies, "roles": [["retailer"]]}), start="Supplier",
            end="Product",
        )  # fmt: skip
    store.upsert_nodes("Supplier", pd.DataFrame({"id": ["s1"], "roles": [None], "name": ["S"]}))
    roles = store.query("MATCH (s:Supplier) RETURN s.id AS id, s.roles AS roles ORDER BY id")
    assert roles == [
        {"id": "s1", "roles": ["importer", "retailer"]},
        {"id": "s2", "roles": ["retailer"]},
    ]
    rows = store.query("MATCH (:Supplier)-[e:SUPPLIES]->(:Product) RETURN e.roles AS roles")
    assert rows == [{"roles": ["importer", "retailer"]}]


def test_a_store_made_with_an_older_schema_takes_writes(tmp_path: Path) -> None:
    """Columns a later schema dropped keep their values, and columns stored in another order
    than the schema's are written by name."""
    raw = yaml.safe_load(default_schema_path().read_text())
    raw["relationships"]["SUPPLIES"]["properties"] = {"role": "string"}
    raw["relationships"]["VIEWED"]["properties"] = {"weight": "float", "ts": "datetime"}
    older = tmp_path / "older.yaml"
    older.write_text(yaml.safe_dump(raw))
    ends = {"start": "Supplier", "end": "Product"}
    with EmbeddedStore(tmp_path / "s", schema=load_schema(older)) as store:
        store.upsert_nodes("Supplier", pd.DataFrame({"id": ["s1"]}))
        store.upsert_nodes("Product", pd.DataFrame({"id": ["p1", "p2"]}))
        store.upsert_nodes("User", pd.DataFrame({"id": ["u1"]}))
        frame = pd.DataFrame({"src": ["s1"], "dst": ["p1"], "role": ["maker"]})
        store.upsert_relationships("SUPPLIES", frame, **ends)
    with EmbeddedStore(tmp_path / "s") as store:
        frame = pd.DataFrame({"src": ["s1", "s1"], "dst": ["p1", "p2"], "roles": [["a"], ["b"]]})
        store.upsert_relationships("SUPPLIES", frame, **ends)
        views = pd.DataFrame({"src": ["u1"], "dst": ["p1"], "ts": ["2024-01-02"], "weight": [3]})
        store.upsert_relationships("VIEWED", views, start="User", end="Product")
        supplies = store.query(
            "MATCH (:Supplier)-[e:SUPPLIES]->(p:Product) RETURN p.id AS pid, e.role AS role, "
            "e.roles AS roles ORDER BY pid"
        )
        viewed = store.query(
            "MATCH (:User)-[e:VIEWED]->(:Product) RETURN e.ts AS ts, e.weight AS w"
        )
    assert supplies == [
        {"pid": "p1", "role": "maker", "roles": ["a"]},
        {"pid": "p2", "role": None, "roles": ["b"]},
    ]
    assert viewed == [{"ts": dt.datetime(2024, 1, 2), "w": 3.0}]


def test_a_store_made_with_a_schema_that_lacked_tables_is_completed(tmp_path: Path) -> None:
    """Opened for writing, the store gains the labels, types and (start, end) pairs the schema
    added since (ABOUT from Recall was refused by the store: "Rel table ABOUT does not contain
    Recall-Product from-to pair"); read-only, it says what it lacks instead of failing later."""
    raw = yaml.safe_load(default_schema_path().read_text())
    del raw["nodes"]["Recall"], raw["relationships"]["NAMES"]
    raw["relationships"]["ABOUT"]["between"] = [["Review", "Product"], ["Question", "Product"]]
    del raw["nodes"]["User"]["properties"]["rec_vec"]
    older = tmp_path / "older.yaml"
    older.write_text(yaml.safe_dump(raw))
    path = tmp_path / "s"
    EmbeddedStore(path, schema=load_schema(older)).close()
    with pytest.raises(StoreError, match="open it once for writing") as info:
        EmbeddedStore(path, read_only=True)
    for lacks in ("no table Recall", "no table NAMES", "ABOUT lacks (Recall)->(Product)",
                  "User lacks the property rec_vec"):  # fmt: skip
        assert lacks in str(info.value)
    with EmbeddedStore(path) as store:
        store.upsert_nodes("Recall", pd.DataFrame({"id": ["r1"]}))
        store.upsert_nodes("Product", pd.DataFrame({"id": ["p1"]}))
        store.upsert_relationships(
            "ABOUT", pd.DataFrame({"src": ["r1"], "dst": ["p1"]}), start="Recall", end="Product"
        )
    with EmbeddedStore(path, read_only=True) as store:
        assert store.counts().relationships["ABOUT"] == 1


def test_a_store_made_with_a_conflicting_schema_is_refused(tmp_path: Path) -> None:
    """A property of another type was written in the stored column's type (9.5 became the
    string '9.500000'); a label keyed by another property failed with a NULL key."""
    raw = yaml.safe_load(default_schema_path().read_text())
    raw["nodes"]["Product"]["properties"]["price"] = "string"
    raw["nodes"]["Brand"] = {"key": "code", "properties": {"code": "string", "id": "string"}}
    raw["relationships"]["VIEWED"]["properties"]["weight"] = "int"
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(raw))
    path = tmp_path / "s"
    with EmbeddedStore(path, schema=load_schema(other)) as store:
        store.upsert_nodes("Product", pd.DataFrame({"id": ["p1"], "price": ["cheap"]}))
    for read_only in (False, True):
        with pytest.raises(StoreError, match="does not fit the schema ecommerce") as info:
            EmbeddedStore(path, read_only=read_only)
        for conflict in ("Product.price is STRING, the schema's float (DOUBLE)",
                         "Brand is keyed by code, the schema's by id",
                         "VIEWED.weight is INT64, the schema's float (DOUBLE)"):  # fmt: skip
            assert conflict in str(info.value)
    with EmbeddedStore(path, schema=load_schema(other), read_only=True) as store:
        assert store.query("MATCH (p:Product) RETURN p.price AS p") == [{"p": "cheap"}]


def test_relationship_properties_of_every_type(tmp_path: Path) -> None:
    """A relationship's new rows are copied in the stored columns' types, read back from the
    store (a bool column, stored as BOOL, was refused: "no schema type maps to")."""
    from graphfusion.schema import parse_schema

    types = ["string", "int", "float", "bool", "datetime", "list[string]", "list[float]",
             "list[int]"]  # fmt: skip
    props = {f"p{i}": t for i, t in enumerate(types)}
    schema = parse_schema({
        "nodes": {"Thing": {"key": "id", "properties": {"id": "string", **props}}},
        "relationships": {"LIKES": {"between": [["Thing", "Thing"]], "properties": props}},
    })  # fmt: skip
    values = ["a", 1, 1.5, True, dt.datetime(2024, 1, 2), ["x"], [0.5], [2]]
    row = {f"p{i}": [v] for i, v in enumerate(values)}
    with EmbeddedStore(tmp_path / "s", schema=schema) as store:
        store.upsert_nodes("Thing", pd.DataFrame({"id": ["t1"], **row}))
        store.upsert_relationships(
            "LIKES", pd.DataFrame({"src": ["t1"], "dst": ["t1"], **row}), start="Thing",
            end="Thing",
        )  # fmt: skip
        returns = ", ".join(f"e.p{i} AS p{i}" for i in range(len(types)))
        (got,) = store.query(f"MATCH (:Thing)-[e:LIKES]->(:Thing) RETURN {returns}")
    assert got == {f"p{i}": v for i, v in enumerate(values)}


def test_open_store_refuses_both_stores_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With GRAPHFUSION_STORE and NEO4J_URI both set, open_store() opened the embedded store
    in silence; an argument still picks one."""
    monkeypatch.setenv("GRAPHFUSION_STORE", str(tmp_path / "env"))
    monkeypatch.setenv("NEO4J_URI", "neo4j://localhost:1")
    with pytest.raises(ValidationError, match="both GRAPHFUSION_STORE and NEO4J_URI"):
        open_store()
    assert not (tmp_path / "env").exists()
    with open_store(tmp_path / "arg") as store:
        assert isinstance(store, EmbeddedStore)


def test_data_survives_close_and_reopen(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path / "s") as s:
        s.upsert_nodes("Brand", pd.DataFrame({"id": ["b1"], "name": ["Acme"]}))
        s.upsert_nodes("Product", pd.DataFrame({"id": ["p1"]}))
    with EmbeddedStore(tmp_path / "s") as s:
        assert s.query("MATCH (b:Brand) RETURN b.name AS name") == [{"name": "Acme"}]
    with open_store(tmp_path / "s", read_only=True) as s:
        assert s.counts().nodes["Brand"] == 1
        with pytest.raises(QueryError):
            s.query("CREATE (:Brand {id: 'b2'})")
        with pytest.raises(QueryError, match="read-only"):  # the store's refusal, said plainly
            s.upsert_relationships(
                "OF_BRAND", pd.DataFrame({"src": ["p1"], "dst": ["b1"]}), start="Product",
                end="Brand",
            )  # fmt: skip


def test_reset_empties_the_graph(store: EmbeddedStore) -> None:
    store.upsert_nodes("User", pd.DataFrame({"id": ["u1"]}))
    store.upsert_nodes("Product", pd.DataFrame({"id": ["p1"]}))
    store.upsert_relationships(
        "PURCHASED", pd.DataFrame({"src": ["u1"], "dst": ["p1"]}), start="User", end="Product"
    )
    store.reset()
    counts = store.counts()
    assert sum(counts.nodes.values()) == 0
    assert sum(counts.relationships.values()) == 0


def test_values_are_parameters_never_cypher(store: EmbeddedStore) -> None:
    evil = "x'}) MATCH (n) DETACH DELETE n //"
    store.upsert_nodes("Product", pd.DataFrame({"id": ["p1", evil], "title": [evil, "ok"]}))
    rows = store.query("MATCH (p:Product {id: $id}) RETURN p.title AS t", {"id": evil})
    assert rows == [{"t": "ok"}]
    assert store.counts().nodes["Product"] == 2


@pytest.mark.parametrize(
    ("frame", "error", "match"),
    [
        (pd.DataFrame({"title": ["x"]}), ValidationError, "lacks the column"),
        (pd.DataFrame({"id": ["a", None]}), ValidationError, "row 1 has no key"),
        (pd.DataFrame({"id": ["a", "a"]}), ValidationError, "duplicate key 'a'"),
        (pd.DataFrame({"id": ["a"], "price": ["cheap"]}), ValidationError, "not a number"),
        (pd.DataFrame({"id": ["a"], "colour": ["red"]}), SchemaError, "no property 'colour'"),
        (pd.DataFrame({"id": ["a"], "text_vec": [[float("nan")] * 384]}), ValidationError, "NaN"),
        (pd.DataFrame({"id": ["a"], "text_vec": [[0.1] * 3]}), ValidationError, "384"),
        ("not a frame", ValidationError, "DataFrame"),
        # keys as the loaders take them: text or a number, no NUL, at most 512 characters
        # (these were stored as 'True', "['a']", 'inf', ...)
        (pd.DataFrame({"id": [True]}), ValidationError, "row 0: a key must be text or a number"),
        (pd.DataFrame({"id": ["a", ["b"]]}), ValidationError, "row 1: a key must be text or a"),
        (pd.DataFrame({"id": [{"a": 1}]}), ValidationError, "a key must be text or a number"),
        (pd.DataFrame({"id": [float("inf")]}), ValidationError, "row 0: .*not a finite number"),
        (pd.DataFrame({"id": ["a\x00b"]}), ValidationError, "NUL"),
        (pd.DataFrame({"id": ["x" * 513]}), ValidationError, "longer than 512"),
        # the schema's ranges, as the loaders check them (stored before)
        (pd.DataFrame({"id": ["a"], "price": [-5.0]}), ValidationError,
         "row 0: price -5.0 is below its minimum 0"),
    ],
)  # fmt: skip
def test_bad_node_frames(store: EmbeddedStore, frame: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        store.upsert_nodes("Product", frame)  # type: ignore[arg-type]
    assert store.counts().nodes["Product"] == 0


def test_bad_relationship_frames(store: EmbeddedStore) -> None:
    store.upsert_nodes("User", pd.DataFrame({"id": ["u1"]}))
    store.upsert_nodes("Product", pd.DataFrame({"id": ["p1"]}))
    ok = pd.DataFrame({"src": ["u1"], "dst": ["p1"]})
    with pytest.raises(ValidationError, match="Product ends do not exist"):
        store.upsert_relationships(
            "VIEWED", pd.DataFrame({"src": ["u1"], "dst": ["p9"]}), start="User", end="Product"
        )
    with pytest.raises(SchemaError, match="does not connect"):
        store.upsert_relationships("VIEWED", ok, start="Product", end="User")
    with pytest.raises(SchemaError, match="unknown relationship type"):
        store.upsert_relationships("LIKES", ok, start="User", end="Product")
    with pytest.raises(ValidationError, match="duplicate"):
        store.upsert_relationships("VIEWED", pd.concat([ok, ok]), start="User", end="Product")
    with pytest.raises(ValidationError, match="batch_size"):
        store.upsert_relationships("VIEWED", ok, start="User", end="Product", batch_size=0)
    with pytest.raises(ValidationError, match=r"VIEWED\.src: row 0: a key must be text"):
        store.upsert_relationships(
            "VIEWED", pd.DataFrame({"src": [["u1"]], "dst": ["p1"]}), start="User", end="Product"
        )
    with pytest.raises(ValidationError, match=r"rating 7\.0 is above its maximum 5"):
        store.upsert_relationships("RATED", ok.assign(rating=[7.0]), start="User", end="Product")
    # a weight of 1e300 became inf as the 32-bit float the models read
    with pytest.raises(ValidationError, match=r"weight 1e\+300 is above its maximum"):
        store.upsert_relationships("VIEWED", ok.assign(weight=[1e300]), start="User", end="Product")
    assert store.counts().relationships["VIEWED"] == 0
    assert store.counts().relationships["RATED"] == 0


def test_keys_that_are_numbers_or_text(store: EmbeddedStore) -> None:
    """A whole float key loses its ``.0`` (an id column with gaps), text is stripped, unicode
    and long keys are kept whole (a decomposed accent composed, NFC); 1 and "1" are one
    key."""
    long = "k" * 512
    frame = pd.DataFrame({"id": [1, 2.0, " 3 ", "日本語🎉", long, "e\u0301"]})
    assert store.upsert_nodes("Brand", frame) == 6
    keys = [r["id"] for r in store.query("MATCH (b:Brand) RETURN b.id AS id")]
    assert sorted(keys) == sorted(["1", "2", "3", "日本語🎉", long, "\u00e9"])
    with pytest.raises(ValidationError, match="duplicate key '1'"):
        store.upsert_nodes("Brand", pd.DataFrame({"id": [1, "1"]}))
    store.upsert_nodes("Product", pd.DataFrame({"id": [10]}))
    store.upsert_relationships(
        "OF_BRAND", pd.DataFrame({"src": [10.0], "dst": ["日本語🎉"]}), start="Product", end="Brand"
    )
    rows = store.query("MATCH (p:Product)-[:OF_BRAND]->(b:Brand) RETURN p.id AS p, b.id AS b")
    assert rows == [{"p": "10", "b": "日本語🎉"}]


def test_query_errors(store: EmbeddedStore) -> None:
    with pytest.raises(QueryError):
        store.query("MATCH (n:Nope) RETURN n")
    with pytest.raises(ValidationError):
        store.query("   ")
    with pytest.raises(ValidationError):
        store.query("RETURN 1", params=[1, 2])  # type: ignore[arg-type]
    # several statements are refused before anything runs (the CREATE never happens)
    with pytest.raises(ValidationError, match="one statement at a time"):
        store.query("MATCH (p:Product) RETURN count(p); CREATE (:Product {id: 'x'})")
    assert store.query("MATCH (p:Product) RETURN count(p) AS n") == [{"n": 0}]
    # ';' inside a string or a comment, and a trailing one, are fine
    assert store.query("RETURN 'a;b' AS s; ") == [{"s": "a;b"}]
    assert store.query("RETURN 1 AS n // one; two") == [{"n": 1}]
    with pytest.raises(ValidationError, match="unterminated string"):
        store.query("RETURN 'open AS s")
    # a parameter LadybugDB cannot convert is a QueryError; a list of mixed types is refused
    # before (test_parameter_lists_of_mixed_kinds_are_refused)
    with pytest.raises(QueryError, match="Unknown parameter type"):
        store.query("RETURN $a AS a", {"a": {1, 2}})


def test_query_read_refuses_writes_and_leaves_the_store_usable(store: EmbeddedStore) -> None:
    store.upsert_nodes("Brand", pd.DataFrame({"id": ["b1"], "name": ["Acme"]}))
    count = "MATCH (b:Brand) RETURN count(b) AS n"
    read = store.query_read("MATCH (b:Brand {id: $id}) RETURN b.name AS name", {"id": "b1"})
    assert (read.columns, read.rows, read.truncated) == (["name"], [{"name": "Acme"}], False)
    for write in (
        "CREATE (:Brand {id: 'b2'})",
        "MATCH (b:Brand) SET b.name = 'Evil'",
        "MATCH (b:Brand) DETACH DELETE b",
    ):
        with pytest.raises(QueryError):
            store.query_read(write)
        # the read-only transaction ended: the store reads and writes as before
        assert store.query(count) == [{"n": 1}]
    assert store.query("MATCH (b:Brand) RETURN b.name AS name") == [{"name": "Acme"}]
    store.query("CREATE (:Brand {id: 'b3'})")
    assert store.query(count) == [{"n": 2}]
    with pytest.raises(ValidationError):
        store.query_read("RETURN 1; RETURN 2")


def test_query_read_limits_rows_and_time(store: EmbeddedStore) -> None:
    read = store.query_read("UNWIND range(1, 3000000) AS n RETURN n, n * 2 AS m", max_rows=3)
    assert read.columns == ["n", "m"]
    assert read.rows == [{"n": 1, "m": 2}, {"n": 2, "m": 4}, {"n": 3, "m": 6}]
    assert read.truncated
    exact = store.query_read("UNWIND range(1, 3) AS n RETURN n", max_rows=3)
    assert (len(exact.rows), exact.truncated) == (3, False)
    # no rows: the columns are still known
    empty = store.query_read("MATCH (b:Brand) WHERE b.id = $id RETURN b.id AS id, b.name AS n",
                             {"id": "nobody"})  # fmt: skip
    assert (empty.columns, empty.rows, empty.truncated) == (["id", "n"], [], False)
    started = time.monotonic()
    with pytest.raises(QueryTimeoutError, match=r"0\.5 s"):
        store.query_read(ENDLESS_QUERY, timeout_s=0.5)
    assert time.monotonic() - started < 60
    # the timeout was for that query only: the store reads and writes as before
    assert store.query("UNWIND range(1, 2000000) AS n RETURN count(*) AS c") == [{"c": 2000000}]
    for bad in ({"max_rows": 0}, {"max_rows": 2.5}, {"timeout_s": 0}, {"timeout_s": True}):
        with pytest.raises(ValidationError):
            store.query_read("RETURN 1 AS one", **bad)  # type: ignore[arg-type]


def test_queries_must_give_every_parameter(store: EmbeddedStore) -> None:
    with pytest.raises(ValidationError, match=r"\$u"):
        store.query("RETURN $u AS u")
    with pytest.raises(ValidationError, match=r"\$max"):
        store.query_read("MATCH (b:Brand) WHERE b.id = $id RETURN b LIMIT $max", {"id": "b1"})
    # a $ inside a string or comment is no parameter; names may be any identifier
    assert store.query("RETURN '$u' AS u // $v") == [{"u": "$u"}]
    assert store.query("RETURN $café AS x", {"café": 1}) == [{"x": 1}]
    from graphfusion.store.cypher import mask_cypher, parameter_names

    query = "MATCH (n) WHERE n.id = $`a b` RETURN n {.*, x: $v}, [x IN $xs | x], $0"
    assert parameter_names(query, mask_cypher(query)) == ["a b", "v", "xs", "0"]


def test_query_arrow_matches_query(store: EmbeddedStore) -> None:
    from graphfusion.store.base import BaseStore

    frame = pd.DataFrame({"id": ["b", "a", "c"], "name": ["Bee", None, "Sea"], "age": [3, 4, 5]})
    store.upsert_nodes("User", frame)
    cypher = "MATCH (u:User) WHERE u.age >= $low RETURN u.id AS id, u.name AS name ORDER BY id"
    table = store.query_arrow(cypher, {"low": 4})
    assert table.to_pylist() == store.query(cypher, {"low": 4})
    assert table.to_pylist() == [{"id": "a", "name": None}, {"id": "c", "name": "Sea"}]
    # the generic path (rows converted) gives the same table as LadybugDB's own Arrow result
    assert BaseStore._run_arrow(store, cypher, {"low": 4}).to_pylist() == table.to_pylist()
    with pytest.raises(ValidationError):
        store.query_arrow("")
    with pytest.raises(QueryError):
        store.query_arrow("MATCH (n:Nope) RETURN n")


def test_store_folder_errors(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="not a folder"):
        EmbeddedStore(blocker)
    with pytest.raises(StoreError, match="cannot create store folder"):
        EmbeddedStore(blocker / "sub")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="not a graphfusion store"):
        EmbeddedStore(foreign)
    with pytest.raises(StoreError, match="no graphfusion store"):
        EmbeddedStore(tmp_path / "missing", read_only=True)
    with pytest.raises(ValidationError, match="a folder path"):  # was a TypeError
        EmbeddedStore(123)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="schema must be a Schema"):  # an AttributeError
        EmbeddedStore(tmp_path / "s", schema="ecommerce")  # type: ignore[arg-type]
    assert not (tmp_path / "s").exists()


def test_newer_or_damaged_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s"
    EmbeddedStore(path).close()
    meta = json.loads((path / "graphfusion.json").read_text())
    (path / "graphfusion.json").write_text(json.dumps({**meta, "format": 99}))
    with pytest.raises(StoreError, match="newer graphfusion"):
        EmbeddedStore(path)
    (path / "graphfusion.json").write_text(json.dumps({**meta, "ladybug": "0.1.0"}))
    with pytest.raises(StoreError, match=r"LadybugDB 0\.1\.0"):
        EmbeddedStore(path)
    (path / "graphfusion.json").write_text(json.dumps({**meta, "ladybug": 5}))
    with pytest.raises(StoreError, match="is damaged"):  # was an AttributeError
        EmbeddedStore(path)
    (path / "graphfusion.json").write_text(json.dumps(meta))
    (path / "graph.lbug").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot be read"):
        EmbeddedStore(path)


def test_store_locked_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "s"
    EmbeddedStore(path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from graphfusion.store import EmbeddedStore
            s = EmbeddedStore({str(path)!r})
            print("open", flush=True)
            time.sleep(30)
        """)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(StoreLockedError, match=f"in use by process {holder.pid}"):
            EmbeddedStore(path)
    finally:
        holder.kill()
        holder.wait()
    deadline = time.time() + 10
    while True:  # the lock goes with the process
        try:
            EmbeddedStore(path).close()
            break
        except StoreLockedError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def test_a_store_open_for_writing_is_not_opened_again_in_the_same_process(
    tmp_path: Path,
) -> None:
    """LadybugDB's lock is per process: a second handle opened beside a writer did not see its
    writes, and the writer's close dropped the second one's writes (brand b was lost)."""
    path = tmp_path / "s"
    first = EmbeddedStore(path)
    first.upsert_nodes("Brand", pd.DataFrame({"id": ["a"]}))
    for read_only in (False, True):
        with pytest.raises(StoreLockedError, match="already open in this process"):
            EmbeddedStore(path, read_only=read_only)
    with pytest.raises(StoreLockedError, match="already open in this process"):
        EmbeddedStore(tmp_path / "." / "s")  # the same folder, spelled another way
    first.upsert_nodes("Brand", pd.DataFrame({"id": ["b"]}))
    first.close()
    readers = [EmbeddedStore(path, read_only=True) for _ in range(2)]  # readers may share
    with pytest.raises(StoreLockedError, match="already open in this process"):
        EmbeddedStore(path)
    assert [r.counts().nodes["Brand"] for r in readers] == [2, 2]
    for reader in readers:
        reader.close()
    with EmbeddedStore(path) as again:
        brands = again.query("MATCH (b:Brand) RETURN b.id AS id ORDER BY id")
    assert brands == [{"id": "a"}, {"id": "b"}]


def test_closed_store_refuses_queries(tmp_path: Path) -> None:
    s = EmbeddedStore(tmp_path / "s")
    s.close()
    s.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        s.query("RETURN 1 AS x")


def test_identical_reload_writes_nothing_and_a_change_is_written(
    store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.upsert_nodes("User", pd.DataFrame({"id": ["u1", "u2"], "age": [30, 40]}))
    store.upsert_nodes("Product", pd.DataFrame({"id": ["p1"]}))
    views = pd.DataFrame({"src": ["u1", "u2"], "dst": ["p1", "p1"], "weight": [1.0, 2.0]})
    store.upsert_relationships("VIEWED", views, start="User", end="Product")
    sent: list[str] = []
    original = store._with_table

    def spy(statement: str, tbl: object) -> list[dict[str, object]]:
        sent.append(statement)
        return original(statement, tbl)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "_with_table", spy)
    store.upsert_nodes("User", pd.DataFrame({"id": ["u1", "u2"], "age": [30, 40]}))
    store.upsert_relationships("VIEWED", views, start="User", end="Product")
    assert not [s for s in sent if " SET " in s or s.startswith("COPY")]
    views.loc[1, "weight"] = 5.0
    store.upsert_relationships("VIEWED", views, start="User", end="Product")
    assert len([s for s in sent if " SET " in s]) == 1
    rows = store.query("MATCH (u:User)-[e:VIEWED]->(:Product) RETURN u.id AS u, e.weight AS w")
    assert sorted((r["u"], r["w"]) for r in rows) == [("u1", 1.0), ("u2", 5.0)]


def test_nodes_and_relationships_come_back_as_their_properties(store: EmbeddedStore) -> None:
    """As Neo4j gives them: the properties that hold a value (LadybugDB's rows carried its
    internal _ID and _LABEL, and a node of no label every property of every table)."""
    store.upsert_nodes("User", pd.DataFrame({"id": ["u1"], "age": [30]}))
    store.upsert_nodes("Product", pd.DataFrame({"id": ["p1"], "title": ["Mug"]}))
    store.upsert_relationships(
        "VIEWED", pd.DataFrame({"src": ["u1"], "dst": ["p1"], "weight": [2.0]}), start="User",
        end="Product",
    )  # fmt: skip
    want = {"u": {"id": "u1", "age": 30}, "r": {"weight": 2.0}, "p": {"id": "p1", "title": "Mug"}}
    query = "MATCH (u:User)-[r:VIEWED]->(p) RETURN u, r, p"
    assert store.query(query) == [want]
    assert store.query_read(query).rows == [want]
    assert store.query("MATCH (p:Product) RETURN collect(p) AS ps") == [{"ps": [want["p"]]}]
    assert store.query("RETURN {a: 1, b: [{c: 2}]} AS m") == [{"m": {"a": 1, "b": [{"c": 2}]}}]


def test_a_column_returned_twice_is_refused(store: EmbeddedStore) -> None:
    """Rows keyed by column would keep the last of the two (Neo4j refuses such a query)."""
    for run in (store.query, store.query_read):
        with pytest.raises(QueryError, match=r"returns the column\(s\) a more than once"):
            run("RETURN 1 AS a, 2 AS a, 3 AS b")
    assert store.query_read("RETURN 1 AS a, 2 AS b").rows == [{"a": 1, "b": 2}]


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ([1, "a"], r"\$x mixes numbers and strings"),  # LadybugDB: an error about int()
        ([True, 1], r"\$x mixes booleans and numbers"),
        ([{"a": 1}, {"b": 2}], r"\$x is a list of maps with different keys"),  # read as b, b
        ([{"a": 1}, {"a": "x"}], r"\$x\[\]\.a mixes numbers and strings"),
        ([[1], ["a"]], r"\$x\[\] mixes numbers and strings"),
        ({"m": [1, "a"]}, r"\$x\.m mixes numbers and strings"),
    ],
)
def test_parameter_lists_of_mixed_kinds_are_refused(
    store: EmbeddedStore, value: object, match: str
) -> None:
    for run in (store.query, store.query_read, store.query_arrow):
        with pytest.raises(ValidationError, match=match):
            run("RETURN $x AS x", {"x": value})


@pytest.mark.parametrize(
    ("value", "match"),
    [(10**30, r"\$x holds"), (2**63, r"\$x holds"), ([1, -(2**64)], r"\$x holds"),
     ({"m": [[2**70]]}, r"\$x\.m\[\] holds")],
)  # fmt: skip
def test_integers_outside_64_bits_are_refused_by_name(
    store: EmbeddedStore, value: object, match: str
) -> None:
    """They failed with pybind11's "Unable to cast Python instance ... (#define
    PYBIND11_DETAILED_ERROR_MESSAGES ...)"; the largest 64-bit integers are taken."""
    for run in (store.query, store.query_read, store.query_arrow):
        with pytest.raises(ValidationError, match=match + " an integer outside 64 bits"):
            run("RETURN $x AS x", {"x": value})
    assert store.query("RETURN $x AS x", {"x": [2**63 - 1, -(2**63)]}) == [
        {"x": [2**63 - 1, -(2**63)]}
    ]


def test_parameter_lists_of_one_kind_are_taken(store: EmbeddedStore) -> None:
    for value, want in (
        ([1, 2.5], [1.0, 2.5]), ([[1], [2, 3]], [[1], [2, 3]]), ([None, "a"], [None, "a"]),
        ([{"a": 1, "b": None}, {"a": 2, "b": "x"}], [{"a": 1, "b": None}, {"a": 2, "b": "x"}]),
    ):  # fmt: skip
        assert store.query("RETURN $x AS x", {"x": value}) == [{"x": want}]


def test_an_empty_result_keeps_its_columns_in_a_frame(store: EmbeddedStore) -> None:
    """query_df of no rows has the query's columns (it had none: df["id"] was a KeyError);
    a write that returns nothing is an empty frame without columns."""
    frame = store.query_df(
        "MATCH (p:Product) WHERE p.id = $id RETURN p.id AS id, p.title AS title", {"id": "none"}
    )
    assert list(frame.columns) == ["id", "title"] and frame.empty
    assert store.query_df("MATCH (p:Product) SET p.title = 'x'").shape == (0, 0)
    assert _products(store).columns.tolist() == ["id", "title", "price", "created_at"]
