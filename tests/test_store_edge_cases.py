"""Edge cases of the stores, the schema and the export (one test each)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from graphfusion.errors import SchemaError, ValidationError
from graphfusion.graph import to_heterodata
from graphfusion.schema import parse_schema
from graphfusion.store import EmbeddedStore, Neo4jStore

try:
    from neo4j_recorder import RecordingDriver
except ImportError:  # pragma: no cover - when tests/ is a package
    from tests.neo4j_recorder import RecordingDriver


def test_a_store_path_with_a_tilde_is_in_the_home_folder(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``EmbeddedStore("~/x")`` made a folder named ``~`` in the working folder, where the
    Engine, the settings and the loaders read ``~`` as the home folder."""
    with EmbeddedStore("~/shop store") as store:
        assert store.path == home / "shop store"
    monkeypatch.setenv("GRAPHFUSION_STORE", "~/from env")
    with EmbeddedStore() as store:
        assert store.path == home / "from env"
    assert list(Path.cwd().iterdir()) == []
    assert (home / "shop store" / "graphfusion.json").exists()


@pytest.mark.parametrize("path", ["", "   "])
def test_a_blank_store_path_is_refused(
    path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``""`` opened ``./.graphfusion`` in silence and ``"   "`` made a folder of spaces."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValidationError, match="empty"):
        EmbeddedStore(path)
    assert list(tmp_path.iterdir()) == []


def _stores(tmp_path: Path) -> list[EmbeddedStore | Neo4jStore]:
    """An embedded store holding products ``p1`` and ``12``, and a Neo4j stand-in that
    answers every key it is asked about."""
    embedded = EmbeddedStore(tmp_path / "s")
    embedded.upsert_nodes("Product", pd.DataFrame({"id": ["p1", "12"]}))
    return [embedded, Neo4jStore(driver=RecordingDriver())]


def test_existing_keys_reads_keys_as_the_upserts_do(tmp_path: Path) -> None:
    """The upserts store ``12.0`` as ``12`` and `` p1 `` as ``p1``; existing_keys looked
    those up as ``12.0`` and `` p1 ``, a None as the text ``None``, and a string given for the
    list as its characters."""
    embedded, neo4j = _stores(tmp_path)
    try:
        for store in (embedded, neo4j):
            assert store.existing_keys("Product", [" p1 ", 12.0, None, "", float("nan")]) == {
                "p1",
                "12",
            }
            assert store.existing_keys("Product", []) == set()
            for keys, match in (
                ("p1", "a list of keys"),
                ([["p1"]], "row 0: a key must be text or a number"),
                ([True], "row 0: a key must be text or a number"),
                (["p1", float("inf")], "row 1: .*not a finite number"),
            ):
                with pytest.raises(ValidationError, match=match):
                    store.existing_keys("Product", keys)  # type: ignore[arg-type]
        assert neo4j._driver.calls[-1].parameters == {"keys": ["p1", "12"]}
    finally:
        embedded.close()


def _vector_schema(nodes: dict[str, object]) -> dict[str, object]:
    return {"name": "clash", "nodes": nodes}


def test_neo4j_index_and_constraint_names_that_clash_are_refused() -> None:
    """``Product.text_vec`` and ``Product_text.vec`` both made the index ``product_text_vec``:
    Neo4j's ``IF NOT EXISTS`` skipped the second, whose searches then ran on the first one's
    label."""
    vec = {"type": "vector", "dim": 2}
    schema = parse_schema(
        _vector_schema({
            "Product": {"key": "id", "properties": {"id": "string", "text_vec": vec}},
            "Product_text": {"key": "id", "properties": {"id": "string", "vec": vec}},
        })
    )  # fmt: skip
    for read_only in (False, True):
        driver = RecordingDriver()
        with pytest.raises(
            SchemaError, match=r"product_text_vec.*Product\.text_vec.*Product_text\.vec"
        ):
            Neo4jStore(driver=driver, schema=schema, read_only=read_only)
        assert driver.calls == []
    # a vector named like a key constraint: user_id_unique
    schema = parse_schema(
        _vector_schema({"User": {"key": "id", "properties": {"id": "string", "id_unique": vec}}})
    )
    with pytest.raises(SchemaError, match="user_id_unique"):
        Neo4jStore(driver=RecordingDriver(), schema=schema)
    # the built-in schema has no clash
    Neo4jStore(driver=RecordingDriver())


def test_query_arrow_gives_nodes_and_relationships_as_their_properties(
    store: EmbeddedStore,
) -> None:
    """query gave a node as the map of its properties, query_arrow as a struct that also held
    LadybugDB's internal _ID, _LABEL, _SRC and _DST (Neo4j's query_arrow has none)."""
    store.upsert_nodes("User", pd.DataFrame({"id": ["u1"], "name": ["Ann"]}))
    store.upsert_nodes("Product", pd.DataFrame({"id": ["p1"]}))
    store.upsert_relationships(
        "VIEWED", pd.DataFrame({"src": ["u1"], "dst": ["p1"], "weight": [2.0]}),
        start="User", end="Product",
    )  # fmt: skip

    def fields(t: pa.DataType) -> set[str]:
        out: set[str] = set()
        if pa.types.is_struct(t):
            for f in t:
                out |= {f.name} | fields(f.type)
        elif pa.types.is_list(t) or pa.types.is_large_list(t):
            out |= fields(t.value_type)
        return out

    query = (
        "MATCH (u:User)-[r:VIEWED]->(p:Product) "
        "RETURN u, r, collect(p) AS both, {rel: r} AS m, u.id AS id"
    )
    table = store.query_arrow(query)
    assert not {f for f in fields(table.schema.field("u").type) if f.startswith("_")}
    for name in ("r", "both", "m"):
        assert not {f for f in fields(table.schema.field(name).type) if f.startswith("_")}
    (row,) = table.to_pylist()
    (expected,) = store.query(query)

    def present(value: object) -> object:  # the properties that hold a value
        if isinstance(value, dict):
            return {k: present(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [present(v) for v in value]
        return value

    assert present(row) == expected
    assert expected["r"] == {"weight": 2.0} and expected["id"] == "u1"
    # a plain struct keeps its fields, _underscored ones too
    assert store.query_arrow("RETURN {_a: 1, b: 2} AS m").to_pylist() == [{"m": {"_a": 1, "b": 2}}]
    (path,) = store.query_arrow("MATCH p = (:User)-[:VIEWED]->(:Product) RETURN p").to_pylist()
    assert [n["id"] for n in path["p"]["_NODES"]] == ["u1", "p1"]
    assert [sorted(n) for n in path["p"]["_NODES"]] == [sorted(path["p"]["_NODES"][0])] * 2
    assert "_ID" not in path["p"]["_NODES"][0] and path["p"]["_RELS"][0]["weight"] == 2.0


def _write_in_another_process(path: Path, code: str) -> None:
    script = textwrap.dedent(f"""
        import pandas as pd
        from graphfusion.store import EmbeddedStore
        with EmbeddedStore({str(path)!r}) as store:
    """) + textwrap.indent(textwrap.dedent(code), "    ")
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip


def test_a_read_only_store_follows_what_another_process_writes(tmp_path: Path) -> None:
    """A reader opened beside a writer (the CLI's --read-only next to `graphfusion serve`)
    kept reading what the store held when it opened, and after the writer rewrote the file,
    failed with "Index contains an invalid node offset. Please drop and rebuild the index."
    (and may read wrong values). It reads the store as it is now."""
    path = tmp_path / "s"
    with EmbeddedStore(path) as store:
        store.upsert_nodes(
            "Product", pd.DataFrame({"id": [f"p{i}" for i in range(3000)], "title": "old"})
        )
    reader = EmbeddedStore(path, read_only=True)
    try:
        count = "MATCH (p:Product) RETURN count(p) AS n, max(p.title) AS t"
        assert reader.query(count) == [{"n": 3000, "t": "old"}]
        database = reader._db
        assert reader.query(count) == [{"n": 3000, "t": "old"}]
        assert reader._db is database  # nothing changed: not opened again
        _write_in_another_process(path, """
            ids = [f"p{i}" for i in range(6000)]
            store.upsert_nodes("Product", pd.DataFrame({"id": ids, "title": "new"}))
            store.query("MATCH (p:Product) WHERE p.id STARTS WITH 'p1' DETACH DELETE p")
        """)  # fmt: skip
        left = 6000 - 1111
        assert reader.query(count) == [{"n": left, "t": "new"}]
        assert reader.query("MATCH (p:Product {id: 'p5999'}) RETURN p.title AS t") == [{"t": "new"}]
        assert reader.query_read(count).rows == [{"n": left, "t": "new"}]
        assert reader.query_arrow(count).to_pylist() == [{"n": left, "t": "new"}]
        assert reader.existing_keys("Product", ["p5999", "p1"]) == {"p5999"}
        assert reader.counts().nodes["Product"] == left
    finally:
        reader.close()


def test_every_write_path_refuses_vectors_of_the_wrong_size_or_not_finite(
    store: EmbeddedStore,
) -> None:
    """upsert_nodes refused them, but write_node_rows and write_node_table (the writers behind
    the loaders and embed) stored a 3-value text_vec and one of NaN, which every similarity
    query then cast to FLOAT[384] or scored as NaN."""
    store.upsert_nodes("Product", pd.DataFrame({"id": ["p1"]}))
    good = [0.5] * 384
    for vector, match in (
        ([0.1] * 3, "row 0 .*p1.*3 values, the schema says 384"),
        ([math.nan] * 384, "row 0 .*p1.*NaN or infinite"),
        ([1e39] * 384, "row 0 .*p1.*NaN or infinite"),
    ):
        with pytest.raises(ValidationError, match=match):
            store.write_node_rows("Product", [{"id": "p1", "text_vec": vector}])
        table = pa.table({"id": ["p1"], "text_vec": pa.array([vector], pa.list_(pa.float64()))})
        with pytest.raises(ValidationError, match=match):
            store.write_node_table("Product", table)
    assert store.query("MATCH (p:Product) RETURN p.text_vec AS v") == [{"v": None}]
    assert store.write_node_rows("Product", [{"id": "p1", "text_vec": good}]) == 1
    assert store.write_node_rows("Product", [{"id": "p2", "text_vec": None}]) == 1
    with pytest.raises(ValidationError, match=r"Product\.price.*'abc'"):  # was ArrowInvalid
        store.write_node_rows("Product", [{"id": "p2", "price": "abc"}])
    with pytest.raises(ValidationError, match=r"Product\.price"):
        store.write_node_table("Product", pa.table({"id": ["p2"], "price": ["abc"]}))


def test_a_relationship_type_named_like_a_reverse_edge_type_is_not_overwritten(
    tmp_path: Path,
) -> None:
    """Types ``F`` and ``rev_F`` on (U, U): the export's reverse of ``F`` and the stored
    ``rev_F`` were both ``(U, rev_F, U)``, and the second silently replaced the first."""
    schema = parse_schema({
        "nodes": {"U": {"key": "id", "properties": {"id": "string"}}},
        "relationships": {"F": {"between": [["U", "U"]]}, "rev_F": {"between": [["U", "U"]]}},
    })  # fmt: skip
    with EmbeddedStore(tmp_path / "s", schema=schema) as store:
        store.upsert_nodes("U", pd.DataFrame({"id": ["a", "b", "c"]}))
        store.upsert_relationships("F", pd.DataFrame({"src": ["a"], "dst": ["b"]}), start="U",
                                   end="U")  # fmt: skip
        store.upsert_relationships(
            "rev_F", pd.DataFrame({"src": ["c"], "dst": ["a"]}), start="U", end="U"
        )
        with pytest.raises(ValidationError, match=r"rev_F.*reverse of F.*reverse=False"):
            to_heterodata(store)
        data = to_heterodata(store, reverse=False).data
        assert data["U", "F", "U"].edge_index.tolist() == [[0], [1]]
        assert data["U", "rev_F", "U"].edge_index.tolist() == [[2], [0]]


def test_edges_written_during_an_export_to_nodes_it_did_not_read_are_left_out(
    store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The export reads nodes, then edges: an edge written in between (another thread, or a
    reader following a writer) to a node the export had not read failed in
    ``to_numpy`` ("zero_copy_only") instead of being left out with its node."""
    store.upsert_nodes("User", pd.DataFrame({"id": ["u1"]}))
    store.upsert_nodes("Product", pd.DataFrame({"id": ["p1"]}))
    store.upsert_relationships(
        "VIEWED", pd.DataFrame({"src": ["u1"], "dst": ["p1"], "weight": [3.0]}),
        start="User", end="Product",
    )  # fmt: skip
    read = store.query_arrow

    def meanwhile(query: str, params: object = None) -> pa.Table:
        if "[r:VIEWED]" in query and not store.existing_keys("Product", ["p2"]):
            store.upsert_nodes("Product", pd.DataFrame({"id": ["p2"]}))
            store.upsert_relationships(
                "VIEWED", pd.DataFrame({"src": ["u1"], "dst": ["p2"], "weight": [5.0]}),
                start="User", end="Product",
            )  # fmt: skip
        return read(query, params)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "query_arrow", meanwhile)
    export = to_heterodata(store)
    assert export.ids["Product"] == ["p1"]
    viewed = export.data["User", "VIEWED", "Product"]
    assert viewed.edge_index.tolist() == [[0], [0]] and viewed.edge_weight.tolist() == [3.0]
    assert export.data["Product", "rev_VIEWED", "User"].edge_index.tolist() == [[0], [0]]


def test_a_sum_of_whole_numbers_is_a_whole_number(store: EmbeddedStore) -> None:
    """LadybugDB sums INT64 values as INT128, which came back as ``Decimal('6')`` (and as
    the text "6" in --json and the service); Neo4j gives 6. Real decimals stay decimals."""
    from decimal import Decimal

    store.upsert_nodes("Review", pd.DataFrame({"id": ["r1", "r2"], "helpful": [2, 4]}))
    query = "MATCH (r:Review) RETURN sum(r.helpful) AS total, collect(r.helpful) AS each"
    (row,) = store.query(query)
    assert row == {"total": 6, "each": [2, 4]} and type(row["total"]) is int
    assert store.query_arrow(query).to_pylist() == [row]
    assert store.query_arrow(query).schema.field("total").type == pa.int64()
    assert store.query_df(query)["total"].tolist() == [6]
    assert store.query_read(query).rows == [row]
    assert store.query("RETURN CAST(1.50 AS DECIMAL(10, 2)) AS d") == [{"d": Decimal("1.50")}]
    big = "RETURN CAST(170141183460469231731687303715884105727 AS INT128) AS big"
    assert store.query(big) == [{"big": 2**127 - 1}]
    assert store.query_arrow(big).to_pylist() == [{"big": Decimal(2**127 - 1)}]  # beyond int64


def test_numpy_values_are_query_parameters(store: EmbeddedStore) -> None:
    """An element of a DataFrame column (``np.int64``), or an array, given as a parameter was
    refused by the database ("Unknown parameter type numpy.int64")."""
    params = {"k": np.int64(3), "f": np.float32(0.5), "xs": np.array([1, 2, 3]),
              "m": {"n": np.int32(4), "ys": [np.bool_(True)]}}  # fmt: skip
    query = "UNWIND $xs AS x WITH $k + sum(x) AS a RETURN a, $f * 2 AS b, $m.n AS n, $m.ys AS y"
    want = {"a": 9, "b": 1.0, "n": 4, "y": [True]}
    assert store.query(query, params) == [want]
    assert store.query_read(query, params).rows == [want]
    assert store.query_arrow(query, params).to_pylist() == [want]
    assert isinstance(params["k"], np.int64)  # the caller's values are left as they were
