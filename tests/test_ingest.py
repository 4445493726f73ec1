"""Loading through mappings into the real embedded store: counts, idempotency, bad input."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from graphfusion.errors import MappingError, ValidationError
from graphfusion.ingest import load
from graphfusion.mapping import builtin_mappings, load_mapping
from graphfusion.schema import load_schema
from graphfusion.store import EmbeddedStore


def _rows(path: Path) -> int:
    with path.open(newline="", encoding="utf-8") as fh:
        return sum(1 for _ in csv.DictReader(fh))


def _snapshot(store: EmbeddedStore) -> dict[str, Any]:
    """Everything in the graph, as comparable data."""
    out: dict[str, Any] = {"counts": store.counts().to_dict()}
    out["products"] = store.query(
        "MATCH (p:Product) RETURN p.id AS id, p.title AS t, p.price AS pr ORDER BY id"
    )
    out["views"] = store.query(
        "MATCH (u:User)-[e:VIEWED]->(p:Product) RETURN u.id AS uid, p.id AS pid, e.weight AS w, "
        "e.ts AS ts ORDER BY uid, pid"
    )
    return out


def test_synthetic_load_matches_the_files(tiny_shop: Path, store: EmbeddedStore) -> None:
    report = load(store, "synthetic", {"shop": tiny_shop})
    assert report.rejected == []
    counts = store.counts()
    for label, file in [("Product", "products"), ("User", "users"), ("Review", "reviews"),
                        ("Question", "questions"), ("Answer", "answers"),
                        ("Supplier", "suppliers"), ("Batch", "batches")]:  # fmt: skip
        assert counts.nodes[label] == _rows(tiny_shop / f"{file}.csv"), label
    assert counts.nodes["Image"] == counts.nodes["Product"]
    inter = pd.read_csv(tiny_shop / "interactions.csv")
    for kind in ("VIEWED", "PURCHASED", "FAVORITED"):
        assert counts.relationships[kind] == int((inter["type"] == kind).sum())
    assert counts.relationships["FOLLOWS"] == _rows(tiny_shop / "follows.csv")
    images = store.query("MATCH (p:Product)-[:HAS_IMAGE]->(i:Image) RETURN i.path AS path")
    assert all(Path(r["path"]).is_file() for r in images)
    price = store.query("MATCH (p:Product) RETURN p.price AS price LIMIT 1")[0]["price"]
    assert isinstance(price, float)


def test_second_load_changes_nothing(tiny_shop: Path, store: EmbeddedStore) -> None:
    load(store, "synthetic", {"shop": tiny_shop})
    first = _snapshot(store)
    report = load(store, "synthetic", {"shop": tiny_shop})
    assert report.rejected == []
    assert _snapshot(store) == first


def test_killed_load_rerun_equals_clean_load(tiny_shop: Path, tmp_path: Path) -> None:
    clean = tmp_path / "clean"
    with EmbeddedStore(clean) as s:
        load(s, "synthetic", {"shop": tiny_shop})
        expected = _snapshot(s)
    killed = tmp_path / "killed"
    # A real process that dies abruptly (os._exit, no cleanup) after a few relationship batches.
    script = textwrap.dedent(f"""
        import os
        from graphfusion.ingest import load
        from graphfusion.store import EmbeddedStore
        store = EmbeddedStore({str(killed)!r})
        original = store._write_rels
        calls = []
        def dying(*args, **kwargs):
            calls.append(1)
            if len(calls) == 4:
                os._exit(9)
            original(*args, **kwargs)
        store._write_rels = dying
        load(store, "synthetic", {{"shop": {str(tiny_shop)!r}}}, batch_size=200)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    with EmbeddedStore(killed) as s:
        half = s.counts()
        assert sum(half.relationships.values()) < sum(expected["counts"]["relationships"].values())
        load(s, "synthetic", {"shop": tiny_shop})
        assert _snapshot(s) == expected


def _copy_shop(tiny_shop: Path, tmp_path: Path) -> Path:
    shop = tmp_path / "shop"
    shutil.copytree(tiny_shop, shop, ignore=shutil.ignore_patterns("images"))
    return shop


def _append(path: Path, lines: list[str]) -> None:
    with path.open("a", encoding="utf-8") as fh:
        for line in lines:
            fh.write(line + "\n")


def test_bad_rows_are_reported_and_the_good_ones_loaded(
    tiny_shop: Path, tmp_path: Path, store: EmbeddedStore
) -> None:
    shop = _copy_shop(tiny_shop, tmp_path)
    products = shop / "products.csv"
    n_lines = len(products.read_text().splitlines())
    evil = "p'}) MATCH (n) DETACH DELETE n //"
    _append(products, [
        "p9001,Cheap mug,desc,not-a-price,EUR,2024-01-01T00:00:00,c02,b01,s01,bt001,images/x.png",
        ",No key,desc,1.0,EUR,2024-01-01T00:00:00,c02,b01,s01,bt001,images/x.png",
        "p0001,Duplicate,desc,1.0,EUR,2024-01-01T00:00:00,c02,b01,s01,bt001,images/x.png",
        "p9002,Too,few,fields",
        f"\"{evil}\",Injected,desc,1.0,EUR,2024-01-01T00:00:00,c02,b01,s01,bt001,images/x.png",
        "p9003,Bad date,desc,1.0,EUR,yesterday-ish,c02,b01,s01,bt001,images/x.png",
    ])  # fmt: skip
    inter = shop / "interactions.csv"
    m_lines = len(inter.read_text().splitlines())
    _append(
        inter,
        ["u0001,p4040,VIEWED,2024-01-01T00:00:00,1", "u9999,p0001,VIEWED,2024-01-01T00:00:00,1"],
    )
    report_path = tmp_path / "report.csv"
    report = load(store, "synthetic", {"shop": shop}, report=report_path)
    # A rejected product line is reported once (its first spec is the Product node's, or
    # the reader's), whichever specs of the products table reject it.
    product_lines = [r.line for r in report.rejected if Path(r.source).name == "products.csv"]
    assert sorted(product_lines) == [n_lines + i for i in (1, 2, 3, 4, 6)]
    by_line = {
        (Path(r.source).name, r.line): r
        for r in report.rejected
        if r.target in ("Product node", "products")
    }
    by_line.update(
        {(Path(r.source).name, r.line): r for r in report.rejected if r.target.startswith("VIEWED")}
    )
    assert by_line[("products.csv", n_lines + 1)].field == "price"
    assert "not a number" in by_line[("products.csv", n_lines + 1)].reason
    assert "missing key" in by_line[("products.csv", n_lines + 2)].reason
    assert (
        "duplicate key 'p0001' (first at line 2)" in by_line[("products.csv", n_lines + 3)].reason
    )
    assert "fields" in by_line[("products.csv", n_lines + 4)].reason
    assert by_line[("products.csv", n_lines + 6)].field == "created_at"
    assert "Product 'p4040' does not exist" in by_line[("interactions.csv", m_lines + 1)].reason
    assert "User 'u9999' does not exist" in by_line[("interactions.csv", m_lines + 2)].reason
    # the injection attempt is a value like any other, loaded as text
    assert store.query("MATCH (p:Product {id: $id}) RETURN p.title AS t", {"id": evil}) == [
        {"t": "Injected"}
    ]
    assert store.counts().nodes["Product"] == _rows(tiny_shop / "products.csv") + 1
    # the duplicate did not overwrite the first row
    title = store.query("MATCH (p:Product {id: 'p0001'}) RETURN p.title AS t")[0]["t"]
    assert title != "Duplicate"
    with report_path.open(newline="") as fh:
        lines = list(csv.DictReader(fh))
    assert len(lines) == len(report.rejected)
    assert {"source", "line", "target", "field", "reason"} == set(lines[0])


def test_default_report_goes_to_the_store_folder(
    tiny_shop: Path, tmp_path: Path, store: EmbeddedStore
) -> None:
    shop = _copy_shop(tiny_shop, tmp_path)
    _append(shop / "brands.csv", [",Nameless"])
    report = load(store, "synthetic", {"shop": shop})
    assert report.report_path is not None
    assert report.report_path.parent == store.reports_dir
    entries = [json.loads(x) for x in report.report_path.read_text().splitlines()]
    assert entries[0]["source"].endswith("brands.csv")
    assert entries[0]["reason"].startswith("missing key")


def _gift_mapping(tmp_path: Path, fmt: str = "jsonl", extra: str = "") -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(
        textwrap.dedent(f"""
        name: mini
        sources: {{items: {{}}}}
        tables: {{items: {{source: items, format: {fmt}}}}}
        nodes:
          - label: Product
            table: items
            key: asin
            properties: {{title: title, price: {{column: price, transform: number}}}}
        {extra}
    """)
    )
    return path


def test_truncated_gzip_keeps_the_rows_before(tmp_path: Path, store: EmbeddedStore) -> None:
    lines = "".join(json.dumps({"asin": f"a{i}", "title": f"T{i}", "price": "$3.50"}) + "\n"
                    for i in range(2000))  # fmt: skip
    data = gzip.compress(lines.encode())
    src = tmp_path / "items.json.gz"
    src.write_bytes(data[: len(data) // 2])
    report = load(store, _gift_mapping(tmp_path), {"items": src})
    loaded = report.nodes["Product"]
    assert 0 < loaded < 2000
    assert len(report.rejected) == 1
    assert "truncated" in report.rejected[0].reason
    assert report.rejected[0].line == loaded + 1
    assert store.query("MATCH (p:Product {id: 'a0'}) RETURN p.price AS p") == [{"p": 3.5}]


def test_malformed_json_lines(tmp_path: Path, store: EmbeddedStore) -> None:
    src = tmp_path / "items.jsonl"
    src.write_text('{"asin": "a1", "title": "ok"}\n{"asin": "a2", "title": \n[1, 2]\n'
                   '{"asin": "a3", "title": "fine", "price": "n/a"}\n')  # fmt: skip
    report = load(store, _gift_mapping(tmp_path), {"items": src})
    assert report.nodes["Product"] == 2
    assert [(r.line, r.reason.split(":")[0]) for r in report.rejected] == [
        (2, "malformed line"),
        (3, "expected an object, got an array (a jsonl source has one object per line)"),
    ]


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ("relationships: [{type: LIKES, table: items, from: {label: User, key: u}, "
         "to: {label: Product, key: asin}}]", "relationship type 'LIKES' is not in the schema"),
        ("relationships: [{type: VIEWED, table: items, from: {label: Product, key: asin}, "
         "to: {label: User, key: u}}]", "VIEWED does not connect"),
        ("  - {label: Gadget, table: items, key: asin}", "label 'Gadget' is not in the schema"),
        ("  - {label: Brand, table: items, key: asin, properties: {colour: title}}",
         "Brand has no property 'colour'"),
        ("  - {label: Brand, table: nope, key: asin}", "table 'nope' is not declared"),
        ("  - {label: Brand, table: items, key: {column: a, transform: rot13}}",
         "unknown transform 'rot13'"),
    ],
)  # fmt: skip
def test_mapping_errors_name_the_place(
    tmp_path: Path, store: EmbeddedStore, extra: str, match: str
) -> None:
    src = tmp_path / "items.jsonl"
    src.write_text('{"asin": "a1"}\n')
    with pytest.raises(MappingError, match=match) as info:
        load(store, _gift_mapping(tmp_path, extra=extra), {"items": src})
    assert "m.yaml" in str(info.value)
    assert store.counts().nodes["Product"] == 0


def test_missing_sources(tmp_path: Path, store: EmbeddedStore) -> None:
    mapping = _gift_mapping(tmp_path)
    with pytest.raises(MappingError, match="does not exist"):
        load(store, mapping, {"items": tmp_path / "nope.jsonl"})
    with pytest.raises(MappingError, match=r"needs source\(s\) \['items'\]"):
        load(store, mapping, {})
    with pytest.raises(MappingError, match="has no source"):
        load(store, mapping, {"items": tmp_path, "other": tmp_path})
    with pytest.raises(MappingError, match="no mapping 'nope'"):
        load(store, "nope", {})
    with pytest.raises(ValidationError, match="must be a path or a DataFrame"):
        load(store, mapping, {"items": 42})
    with pytest.raises(ValidationError, match="sources must be a mapping"):
        load(store, mapping, ["items"])  # type: ignore[arg-type]


def test_dataframe_sources(tmp_path: Path, store: EmbeddedStore) -> None:
    frame = pd.DataFrame({"asin": ["a1", "a2", None], "title": ["x", "y", "z"], "price": [1, 2, 3]})
    report = load(store, _gift_mapping(tmp_path, fmt="frame"), {"items": frame})
    assert report.nodes == {"Product": 2}
    assert report.rejected[0].source == "items:frame"
    assert report.rejected[0].line == 3


def test_a_dataframe_that_names_a_column_twice_is_refused(
    tmp_path: Path, store: EmbeddedStore
) -> None:
    """As a CSV header that repeats a name: which column a field means is not known, so the
    load stops before anything is written (the last column used to win without a word)."""
    frame = pd.DataFrame([["a1", "x", "y", 1]], columns=["asin", "title", "title", "price"])
    with pytest.raises(ValidationError, match=r"column 'title' twice \(columns 2 and 3\)"):
        load(store, _gift_mapping(tmp_path, fmt="frame"), {"items": frame})
    named = pd.DataFrame([["a1", "x", 1, 2]], columns=["asin", "title", 0, "0"])
    with pytest.raises(ValidationError, match="column '0' twice"):
        load(store, _gift_mapping(tmp_path, fmt="frame"), {"items": named})
    assert store.counts().nodes["Product"] == 0
    unnamed = pd.DataFrame([["a1", "x", 1, 2]], columns=["asin", "title", "", ""])
    assert load(store, _gift_mapping(tmp_path, fmt="frame"), {"items": unnamed}).nodes == {
        "Product": 1
    }


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True, "10"])
def test_a_bad_batch_size_stops_the_load_before_anything_is_read(
    tmp_path: Path, store: EmbeddedStore, batch_size: Any
) -> None:
    """It used to be found only when the first batch was written, after every table was
    read and checked (here: after the missing file)."""
    with pytest.raises(ValidationError, match="batch_size"):
        load(store, _gift_mapping(tmp_path), {"items": tmp_path / "absent.jsonl"},
             batch_size=batch_size)  # fmt: skip


def test_the_report_lists_each_files_rejects_in_line_order(
    tmp_path: Path, store: EmbeddedStore
) -> None:
    """A line the reader cannot read (bad JSON) and a key that is not acceptable are found
    at different times; the report still goes down the file (it used to list the unreadable
    lines first)."""
    lines = ['{"asin": true, "price": "1"}', "{bad", '{"asin": "a2", "price": "2"}', "[1]"]
    src = tmp_path / "items.jsonl"
    src.write_text("\n".join(lines) + "\n")
    path = tmp_path / "r.csv"
    report = load(store, _gift_mapping(tmp_path), {"items": src}, report=path)
    assert [r.line for r in report.rejected] == [1, 2, 4]
    with path.open(newline="", encoding="utf-8") as fh:
        assert [int(row["line"]) for row in csv.DictReader(fh)] == [1, 2, 4]


def test_a_home_folder_path_is_expanded(tmp_path: Path, store: EmbeddedStore, home: Path) -> None:
    """``~/items.jsonl`` (from Python, or a shell such as zsh that leaves ``shop=~/...``
    alone) names the file in the home folder; the report went to a folder named ``~``."""
    (home / "items.jsonl").write_text('{"asin": "a1"}\n{"asin": true}\n')
    report = load(store, _gift_mapping(tmp_path), {"items": "~/items.jsonl"}, report="~/r.csv")
    assert report.nodes == {"Product": 1}
    assert report.report_path == home / "r.csv"
    assert (home / "r.csv").is_file() and not (Path.cwd() / "~").exists()
    assert report.rejected[0].source == str(home / "items.jsonl")


def test_every_builtin_mapping_fits_the_schema() -> None:
    schema = load_schema()
    names = builtin_mappings()
    assert "synthetic" in names
    for name in names:
        mapping = load_mapping(name, schema)
        assert mapping.name == name  # built-ins are found by the name they declare
        assert mapping.nodes or mapping.relationships
    assert {"amazon_reviews", "amazon_qa", "movielens", "myntra", "cpsc_recalls",
            "clothing_reviews"} <= set(names)  # fmt: skip


def test_links_to_nodes_of_an_earlier_load(tmp_path: Path, store: EmbeddedStore) -> None:
    """Relationships are checked while the new nodes are written (from a worker thread), so
    the check of ends stored by an earlier load runs beside a write on the same store."""
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        textwrap.dedent("""
        name: mini-events
        sources: {items: {}, users: {}, events: {}}
        tables:
          items: {source: items, format: frame}
          users: {source: users, format: frame}
          events: {source: events, format: frame}
        nodes:
          - {label: Product, table: items, key: asin, properties: {title: title}}
          - {label: User, table: users, key: uid}
        relationships:
          - {type: PURCHASED, table: events, from: {label: User, key: uid},
             to: {label: Product, key: asin}}
    """)
    )
    empty = pd.DataFrame({"uid": pd.Series([], dtype=str), "asin": pd.Series([], dtype=str)})
    items = pd.DataFrame({"asin": [f"old{i}" for i in range(500)], "title": "t"})
    first = load(store, mapping, {"items": items, "users": pd.DataFrame({"uid": ["u0"]}),
                                  "events": empty})  # fmt: skip
    assert first.nodes == {"Product": 500, "User": 1}
    new_items = pd.DataFrame({"asin": [f"new{i}" for i in range(5000)], "title": "t"})
    events = pd.DataFrame(
        {"uid": ["u0", "u1", "u1", "u1"], "asin": ["old3", "new7", "old499", "gone"]}
    )
    report = load(store, mapping, {"items": new_items, "users": pd.DataFrame({"uid": ["u1"]}),
                                   "events": events})  # fmt: skip
    assert report.nodes == {"Product": 5000, "User": 1}
    assert report.relationships == {"PURCHASED": 3}
    assert [(r.line, r.reason) for r in report.rejected] == [(4, "Product 'gone' does not exist")]
    pairs = store.query(
        "MATCH (u:User)-[:PURCHASED]->(p:Product) RETURN u.id AS uid, p.id AS pid ORDER BY uid, pid"
    )
    assert [(r["uid"], r["pid"]) for r in pairs] == [
        ("u0", "old3"),
        ("u1", "new7"),
        ("u1", "old499"),
    ]
    assert store.counts().nodes["Product"] == 5500
