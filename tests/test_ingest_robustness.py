"""Loading damaged or hostile input: each bad row costs itself only, and nothing is written
when a load cannot go through.

Every CSV case is also read by both readers (:func:`read_source` row by row and
:func:`read_table` a column at a time), which must agree on rows, lines and reasons.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from builders import users_mapping

from graphfusion import ingest, readers
from graphfusion.errors import MappingError, ValidationError
from graphfusion.features.embed import write_vectors
from graphfusion.ingest import LoadReport, load
from graphfusion.mapping import parse_mapping
from graphfusion.readers import BadRecord, Record, read_source, read_table
from graphfusion.store import EmbeddedStore
from graphfusion.values import MAX_STRING_BYTES


def _both_readers(path: Path) -> list[tuple[int, str]]:
    """The bad records, after checking that both readers give the same rows and reasons."""
    records = list(read_source("csv", path))
    table, bad = read_table("csv", path)
    expected = [(r.line, r.reason) for r in records if isinstance(r, BadRecord)]
    assert [(b.line, b.reason) for b in bad] == expected
    good = [r for r in records if isinstance(r, Record)]
    assert table.lines.tolist() == [r.line for r in good]
    for i, rec in enumerate(good):
        assert {n: table.column(n).values()[i] for n in table.names} == rec.data
    return expected


def _load_users(store: EmbeddedStore, path: Path) -> tuple[LoadReport, list[tuple[int, str]]]:
    _both_readers(path)
    report = load(store, users_mapping(store), {"users": path})
    return report, [(r.line, r.reason) for r in report.rejected]


def _users_csv(n: int) -> list[str]:
    return ["id,name,age", *(f"u{i},Name {i},{20 + i % 50}" for i in range(1, n + 1))]


def _empty(store: EmbeddedStore) -> bool:
    counts = store.counts()
    return not any(counts.nodes.values()) and not any(counts.relationships.values())


# ----------------------------------------------------------------------------- 1. bad bytes


def test_a_byte_that_is_not_utf8_rejects_its_row_only(tmp_path: Path, store: EmbeddedStore) -> None:
    path = tmp_path / "users.csv"
    lines = _users_csv(1000)
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(data.replace(b"Name 500,", b"Ren\xe9 500,"))  # line 501, Latin-1
    report, rejected = _load_users(store, path)
    assert rejected == [(501, "not UTF-8 text (byte 0xe9)")]
    assert report.nodes == {"User": 999}
    assert store.query("MATCH (u:User {id: 'u1000'}) RETURN u.name AS n") == [{"n": "Name 1000"}]


def test_bad_bytes_in_the_header_or_a_json_line(tmp_path: Path) -> None:
    header = tmp_path / "h.csv"
    header.write_bytes(b"id,n\xe9me\nu1,Ann\n")
    assert _both_readers(header) == [
        (1, "header is not UTF-8 text (byte 0xe9); the rest of the file is skipped")
    ]
    lines = tmp_path / "r.jsonl"
    lines.write_bytes(b'{"id": "a"}\n{"id": "\xff"}\n{"id": "c"}\n')
    got = [(r.line, getattr(r, "reason", None)) for r in read_source("jsonl", lines)]
    assert got == [(1, None), (2, "not UTF-8 text (byte 0xff)"), (3, None)]


# ----------------------------------------------------------------------------- 2. long fields


def test_a_field_over_the_csv_modules_limit_loads(tmp_path: Path, store: EmbeddedStore) -> None:
    path = tmp_path / "users.csv"
    long_name = "z" * 200_000  # over csv's default 131,072, under the string limit
    too_long = "y" * (MAX_STRING_BYTES + 1)
    rows = ["id,name,age", f"u1,{long_name},30", "u2,Bo,31", f"u3,{too_long},32", "u4,Di,33"]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    report, rejected = _load_users(store, path)
    assert report.nodes == {"User": 3}
    assert [(r.line, r.field) for r in report.rejected] == [(4, "name")]
    assert "string longer than" in rejected[0][1]
    assert store.query("MATCH (u:User {id: 'u1'}) RETURN size(u.name) AS n") == [{"n": 200_000}]


# ----------------------------------------------------------------------------- 3. where


def _copy_shop(tiny_shop: Path, tmp_path: Path) -> Path:
    shop = tmp_path / "shop"
    shutil.copytree(tiny_shop, shop, ignore=shutil.ignore_patterns("images"))
    return shop


def test_interactions_of_no_known_type_are_reported(
    tiny_shop: Path, tmp_path: Path, store: EmbeddedStore
) -> None:
    shop = _copy_shop(tiny_shop, tmp_path)
    inter = shop / "interactions.csv"
    have = inter.read_text().splitlines()
    pairs = {tuple(line.split(",")[:2]) for line in have[1:]}
    users = sorted({u for u, _ in pairs})
    products = sorted({p for _, p in pairs})
    free = [(u, p) for u in users for p in products if (u, p) not in pairs][:4]
    kinds = ["viewed", "CLICKED", "", " VIEWED"]
    extra = [f"{u},{p},{k},2024-01-01T00:00:00,1.0" for (u, p), k in zip(free, kinds, strict=True)]
    inter.write_text("\n".join([*have, *extra]) + "\n", encoding="utf-8")
    report = load(store, "synthetic", {"shop": shop})
    n = len(have)
    choices = "'VIEWED', 'PURCHASED', 'FAVORITED'"
    assert [(r.line, r.field, r.reason) for r in report.rejected] == [
        (n + 1, "type", f"type 'viewed' matches none of {choices}"),
        (n + 2, "type", f"type 'CLICKED' matches none of {choices}"),
        (n + 3, "type", f"type (empty) matches none of {choices}"),
    ]
    # ' VIEWED' is VIEWED: a value compared by `equals` is stripped, as keys are
    u, p = free[3]
    found = store.query(
        "MATCH (:User {id: $u})-[e:VIEWED]->(:Product {id: $p}) RETURN count(e) AS n",
        {"u": u, "p": p},
    )
    assert found == [{"n": 1}]


# ----------------------------------------------------------------------------- 4. missing files


def test_a_missing_relationship_file_writes_nothing(
    tiny_shop: Path, tmp_path: Path, store: EmbeddedStore
) -> None:
    shop = _copy_shop(tiny_shop, tmp_path)
    (shop / "follows.csv").unlink()
    with pytest.raises(MappingError, match=r"follows\.csv does not exist"):
        load(store, "synthetic", {"shop": shop})
    assert _empty(store)
    (shop / "follows.csv").mkdir()
    with pytest.raises(MappingError, match=r"follows\.csv is a folder"):
        load(store, "synthetic", {"shop": shop})
    assert _empty(store)


def test_a_device_is_no_source(store: EmbeddedStore) -> None:
    """Reading /dev/zero never ends: a device is refused before anything is read."""
    with pytest.raises(MappingError, match=r"/dev/zero is a device"):
        load(store, users_mapping(store), {"users": "/dev/zero"})
    assert _empty(store)


def test_a_relationship_table_that_fails_to_read_writes_nothing(
    tiny_shop: Path, tmp_path: Path, store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ingest.read_table

    def failing(fmt: str, source: Any, **kw: Any) -> Any:
        if Path(source).name == "follows.csv":
            raise OSError("disk gone")
        return real(fmt, source, **kw)

    monkeypatch.setattr(ingest, "read_table", failing)
    with pytest.raises(OSError, match="disk gone"):
        load(store, "synthetic", {"shop": _copy_shop(tiny_shop, tmp_path)})
    assert _empty(store)


# ----------------------------------------------------------------------------- 5. commas


def test_commas_in_numbers(tmp_path: Path, store: EmbeddedStore) -> None:
    path = tmp_path / "users.csv"
    path.write_text('id,name,age\nu1,A,"1,99"\nu2,B,"1,234"\nu3,C,"1,2,3"\nu4,D,12\n')
    _, rejected = _load_users(store, path)
    assert [line for line, _ in rejected] == [2, 3, 4]
    assert all("thousands separator" in reason for line, reason in rejected if line != 3)
    # "1,234" is read as 1234, which is more than the schema allows for an age
    assert rejected[1] == (3, "age 1234 is above its maximum 150")
    ages = store.query("MATCH (u:User) RETURN u.id AS id, u.age AS age ORDER BY id")
    assert ages == [{"id": "u4", "age": 12}]


def test_values_out_of_the_schemas_range_reject_their_row(
    tmp_path: Path, store: EmbeddedStore
) -> None:
    path = tmp_path / "users.csv"
    rows = ["u1,A,0", "u2,B,-1", "u3,C,150", "u4,D,151", "u5,E,", "u6,F,-0", "u7,G,-3.0"]
    path.write_text("\n".join(["id,name,age", *rows]) + "\n")
    report, rejected = _load_users(store, path)
    assert rejected == [
        (3, "age -1 is below its minimum 0"),
        (5, "age 151 is above its maximum 150"),
        (8, "age -3 is below its minimum 0"),
    ]
    assert {r.field for r in report.rejected} == {"age"}
    assert report.nodes == {"User": 4}
    ages = store.query("MATCH (u:User) RETURN u.id AS id, u.age AS age ORDER BY id")
    assert ages == [{"id": "u1", "age": 0}, {"id": "u3", "age": 150},
                    {"id": "u5", "age": None}, {"id": "u6", "age": 0}]  # fmt: skip


def test_live_products_with_a_negative_price_are_rejected(
    tmp_path: Path, store: EmbeddedStore
) -> None:
    # Engine.add_products loads through the live_products mapping
    store.write_node_rows("Category", [{"id": "c1", "name": "Mugs"}])
    store.write_node_rows("Product", [{"id": "old", "title": "Old mug", "price": 4.0}])
    frame = pd.DataFrame(
        {
            "id": ["p1", "p2", "p3", "p4", "old"],
            "title": ["Mug", "Refund", "Free", "Unpriced", "Old mug"],
            "price": [9.5, -5.0, 0.0, None, -0.01],
            "category_id": ["c1", "c1", None, "c1", "c1"],
        }
    )
    report = ingest.load(store, "live_products", {"products": frame})
    # a rejected row is reported once, and its links are left out with it (p2's link was
    # reported again, as a link to a product that does not exist; "old" exists, so the
    # rejected update of it added its link)
    assert [(r.line, r.target, r.field, r.reason) for r in report.rejected] == [
        (2, "Product node", "price", "price -5.0 is below its minimum 0"),
        (5, "Product node", "price", "price -0.01 is below its minimum 0"),
    ]
    assert report.nodes["Product"] == 3
    assert report.relationships["IN_CATEGORY"] == 2
    assert store.query("MATCH (:Product {id: 'old'})-[:IN_CATEGORY]->(c) RETURN c.id AS c") == []
    stored = store.query("MATCH (p:Product) RETURN p.id AS id, p.price AS price ORDER BY id")
    assert stored == [
        {"id": "old", "price": 4.0},  # the rejected update left it as it was
        {"id": "p1", "price": 9.5},
        {"id": "p3", "price": 0.0},
        {"id": "p4", "price": None},
    ]


# ----------------------------------------------------------------------------- 6. vectors


def test_vectors_too_large_for_32_bit_floats_are_rejected(store: EmbeddedStore) -> None:
    store.write_node_rows("Product", [{"id": "a"}, {"id": "b"}])
    good = np.full((2, 384), 0.05)
    big = good.copy()
    big[0, 3] = 1e39  # finite as a 64-bit float, infinite as a 32-bit one
    written, errors = write_vectors(store, "Product", "text_vec", ["a", "b"], big)
    assert written == 1
    assert [(e.key, e.reason) for e in errors] == [
        ("a", "vector holds NaN or infinite values (as 32-bit floats)")
    ]
    stored = store.query("MATCH (p:Product) WHERE p.text_vec IS NOT NULL RETURN p.id AS id")
    assert stored == [{"id": "b"}]


# ----------------------------------------------------------------------------- 7. report path


def test_a_report_that_cannot_be_written_stops_the_load_first(
    tmp_path: Path, store: EmbeddedStore
) -> None:
    path = tmp_path / "users.csv"
    path.write_text("id,name,age\nu1,Ann,30\nu2,Bo,old\n")
    mapping = users_mapping(store)
    for report in (path / "rej.csv", tmp_path):
        with pytest.raises(ValidationError, match="report"):
            load(store, mapping, {"users": path}, report=report)
        assert _empty(store)
    nested = tmp_path / "new" / "dir" / "rej.csv"
    result = load(store, mapping, {"users": path}, report=nested)
    assert result.report_path == nested and nested.exists()


# ----------------------------------------------------------------------------- 8. delimiter


@pytest.mark.parametrize("delimiter", [";;", 5, "", None, [","], '"', "\n"])
def test_a_bad_delimiter_is_a_mapping_error(delimiter: Any, store: EmbeddedStore) -> None:
    with pytest.raises(MappingError, match=r"tables\.users: delimiter"):
        users_mapping(store, delimiter=delimiter)


def test_a_good_delimiter(tmp_path: Path, store: EmbeddedStore) -> None:
    path = tmp_path / "users.csv"
    path.write_text("id;name;age\nu1;Ann;30\n")
    report = load(store, users_mapping(store, delimiter=";"), {"users": path})
    assert report.nodes == {"User": 1}


# ----------------------------------------------------------------------------- 9. open quote


def test_an_unclosed_quote_is_reported_where_it_opens(tmp_path: Path, store: EmbeddedStore) -> None:
    path = tmp_path / "q.csv"
    path.write_text('id,name,age\nu1,Ann,30\nu2,"Bob,31\nu3,Cy,40\nu4,Di,41\nu5,Ed,42\n')
    report, rejected = _load_users(store, path)
    assert rejected == [
        (3, "a quote in the row on line 3 is never closed: lines 3-6 are skipped "
            "(the rest of the file)")
    ]  # fmt: skip
    assert report.nodes == {"User": 1}
    # on the last line, without a line end: the row is not taken as closed
    path.write_text('id,name,age\nu1,Ann,30\nu2,"Bob,31')
    assert _both_readers(path) == [
        (3, "a quote in the row on line 3 is never closed: line 3 is skipped "
            "(the rest of the file)")
    ]  # fmt: skip


# ----------------------------------------------------------------------------- 10. keys


def test_keys_of_lists_dicts_and_booleans_are_rejected(
    tmp_path: Path, store: EmbeddedStore
) -> None:
    path = tmp_path / "reviews.jsonl"
    rows = [
        {"reviewerID": "U1", "asin": "P1"},
        {"reviewerID": ["U9", "U10"], "asin": "P2"},
        {"reviewerID": {"x": 1}, "asin": "P3"},
        {"reviewerID": True, "asin": "P4"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    raw = {
        "name": "keys",
        "sources": {"r": {}},
        "tables": {"r": {"source": "r", "format": "jsonl"}},
        "nodes": [
            {"label": "User", "table": "r", "key": "reviewerID", "unique": False},
            {"label": "Review", "table": "r", "key": {"template": "{reviewerID}:{asin}"}},
        ],
    }
    report = load(store, parse_mapping(raw, store.schema), {"r": path})
    got = [(r.line, r.target, r.field, r.reason) for r in report.rejected]
    key, text = "a key must be", "a value put into text must be"
    assert got == [  # once a row, with the reasons of every spec that rejects it
        (2, "Review node", "id", f"{text} text or a number, got list"),
        (3, "User node", "id", f"{key} text or a number, got dict; "
                               f"Review node id: {text} text or a number, got dict"),
        (4, "User node", "id", f"{key} text or a number, got bool; "
                               f"Review node id: {text} text or a number, got bool"),
    ]  # fmt: skip
    # a list key is one user per element, but line 2's review is rejected: so are its users
    assert store.query("MATCH (u:User) RETURN u.id AS id ORDER BY id") == [{"id": "U1"}]
    assert store.query("MATCH (r:Review) RETURN r.id AS id") == [{"id": "U1:P1"}]


# ----------------------------------------------------------------------------- 11. long lines


def test_a_json_line_over_the_limit_is_never_held_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "MAX_LINE_BYTES", 64)
    path = tmp_path / "r.jsonl"
    long = json.dumps({"id": "x" * 1000})
    cut = "y" * 60 + "\r\n"  # 62 characters: its \r\n falls across a piece of 65
    with path.open("w", newline="") as fh:
        fh.write(f'{{"id": "a"}}\n{long}\n{{"id": "b"}}\r\n{"z" * 63}{cut}{{"id": "c"}}\n')
    got = [(r.line, getattr(r, "reason", None)) for r in read_source("jsonl", path)]
    too_long = "line longer than 64 bytes"
    assert got == [(1, None), (2, too_long), (3, None), (4, too_long), (5, None)]


def test_bounded_lines_read_in_pieces() -> None:
    sizes: list[int] = []

    class Recording(io.StringIO):
        def readline(self, size: int | None = -1, /) -> str:
            out = super().readline(size)
            sizes.append(len(out))
            return out

    fh = Recording("a\n" + "b" * 10_000 + "\nc\n")
    lines = list(readers._bounded_lines(fh, 100))
    assert lines == ["a\n", None, "c\n"]
    assert max(sizes) <= 101


def test_a_csv_line_over_the_limit_is_skipped_by_both_readers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "MAX_LINE_BYTES", 64)
    path = tmp_path / "u.csv"
    long = "u2," + "n" * 100 + ",30"
    quoted = 'u4,"two\n' + "m" * 100 + '\nlines",32'
    path.write_text(f"id,name,age\nu1,Ann,30\n{long}\nu3,Cy,31\n{quoted}\nu5,Ed,33\n")
    too_long = "line longer than 64 bytes"
    assert _both_readers(path) == [(3, too_long), (5, too_long)]
    assert read_table("csv", path)[0].lines.tolist() == [2, 4, 8]
    path.write_text(f"{long}\nu1,Ann,30\n")  # the header
    assert _both_readers(path) == [(1, too_long)]


def test_photos_that_are_links_in_an_archive_are_listed(tmp_path: Path) -> None:
    """A tar archive stores a second name of a file as a link member: it is a photo too (the
    image encoder reads its target), not dropped without a word."""
    import tarfile

    archive = tmp_path / "images.tar"
    with tarfile.open(archive, "w") as tar:
        data = b"\x89PNG\r\n\x1a\n"  # the encoder reads it; the reader only lists it
        info = tarfile.TarInfo("images/p1.png")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for name, kind in (("images/p2.png", tarfile.LNKTYPE), ("images/p3.png", tarfile.SYMTYPE)):
            link = tarfile.TarInfo(name)
            link.type, link.linkname = (
                kind,
                "images/p1.png" if kind == tarfile.LNKTYPE else "p1.png",
            )
            tar.addfile(link)
        notes = tarfile.TarInfo("images/notes.txt")
        tar.addfile(notes)
    records = list(readers.read_source("images", archive))
    assert [(r.line, r.data["id"], r.data["file"]) for r in records] == [  # type: ignore[union-attr]
        (1, "p1", "images/p1.png"),
        (2, "p2", "images/p2.png"),
        (3, "p3", "images/p3.png"),
    ]


# ----------------------------------------------------------------------------- 6. text and files


def test_a_lone_surrogate_escape_in_a_json_line_rejects_its_row(
    tmp_path: Path, store: EmbeddedStore
) -> None:
    """JSON may escape half of a character (``\\ud83d``, as scraped text cut inside an
    emoji has): UTF-8 cannot store it, so the row is rejected with the field, and the rest
    of the file loads (it used to stop the load with a UnicodeEncodeError)."""
    path = tmp_path / "users.jsonl"
    lines = [
        {"id": "u1", "name": "Ann", "age": 30},
        {"id": "u2", "name": "cut \ud83d here", "age": 31},
        {"id": "u\udc803", "name": "Cy", "age": 32},
        {"id": "u4", "name": "whole \ud83d\ude00", "age": 33},
        {"id": "u5", "name": "Ed", "age": 34},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="ascii")
    report = load(store, users_mapping(store, format="jsonl"), {"users": path})
    assert [(r.line, r.field) for r in report.rejected] == [(2, "name"), (3, "id")]
    assert all("surrogate" in r.reason for r in report.rejected)
    assert report.nodes == {"User": 3}
    got = store.query("MATCH (u:User) RETURN u.id AS id, u.name AS name ORDER BY id")
    assert got == [
        {"id": "u1", "name": "Ann"},
        {"id": "u4", "name": "whole \U0001f600"},
        {"id": "u5", "name": "Ed"},
    ]


def test_a_report_holds_text_that_utf8_cannot(tmp_path: Path) -> None:
    """A reason that quotes a value with a lone surrogate is written, escaped, not lost with
    the whole report."""
    from graphfusion.reports import write_rows

    rows = [{"source": "s", "line": 2, "target": "t", "field": "type", "reason": "'\udc80x'"}]
    for name in ("r.csv", "r.jsonl"):
        path = write_rows(rows, tmp_path / name, ingest.REPORT_FIELDS)
        assert "\\udc80x" in path.read_text(encoding="utf-8")


def test_blank_lines_before_the_header_are_skipped(tmp_path: Path, store: EmbeddedStore) -> None:
    """The header is the first line with something on it (as pandas reads it): blank lines
    before it used to make an empty header, and every row was rejected as too wide."""
    path = tmp_path / "users.csv"
    path.write_bytes(b"\r\n  \r\nid,name,age\r\nu1,Ann,30\r\nu2,Bo,x\r\n\r\nu3,Cy,32\r\n")
    report, rejected = _load_users(store, path)
    assert rejected == [(5, "'x' is not an integer")]
    assert read_table("csv", path)[0].lines.tolist() == [4, 5, 7]
    assert report.nodes == {"User": 2}
    gz = tmp_path / "users.csv.gz"
    gz.write_bytes(gzip.compress(b"\n\nid;name\nu1;Ann\n"))  # the header's line is named
    assert _both_readers(gz) == [
        (
            3,
            "header has a single column 'id;name' read with the delimiter ','; the file's "
            "delimiter may be ';' (2 columns; set the table's 'delimiter' option); the rest of "
            "the file is skipped",
        )
    ]


def test_a_gzip_compressed_parquet_file_is_read(tmp_path: Path) -> None:
    """Gzip is detected by content for every format, Parquet too (it used to be reported as
    not a Parquet file); a truncated one is one bad record."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    plain = tmp_path / "users.parquet"
    pq.write_table(pa.table({"id": ["u1", "u2"], "age": [30, 31]}), plain)
    packed = gzip.compress(plain.read_bytes())
    path = tmp_path / "users.parquet.gz"
    path.write_bytes(packed)
    records = list(read_source("parquet", path))
    assert [(r.line, getattr(r, "data", None)) for r in records] == [
        (1, {"id": "u1", "age": 30}),
        (2, {"id": "u2", "age": 31}),
    ]
    table, bad = read_table("parquet", path)
    assert bad == [] and table.column("id").values() == ["u1", "u2"]
    path.write_bytes(packed[: len(packed) // 2])
    table, bad = read_table("parquet", path)
    assert len(table) == 0
    assert [b.line for b in bad] == [1] and "truncated or not valid gzip" in bad[0].reason


def test_a_parquet_integer_column_with_gaps_stays_whole(
    tmp_path: Path, store: EmbeddedStore
) -> None:
    """An integer column with a missing value read as floats made a text property ``"1.0"``
    (a zip code, a year); its numbers stay whole, and as numbers for number properties."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "users.parquet"
    columns = {
        "id": pa.array([1, 2, None, 2**62 + 1], pa.int64()),
        "location": pa.array([10001, None, 3, 2**53 + 1], pa.int64()),
        "age": pa.array([None, 40, 41, 42], pa.int8()),
    }
    pq.write_table(pa.table(columns), path)
    records = [r for r in read_source("parquet", path) if isinstance(r, Record)]
    assert [r.data["location"] for r in records] == [10001, None, 3, 2**53 + 1]
    raw = {
        "name": "mini_users",
        "sources": {"users": {"description": "parquet"}},
        "tables": {"users": {"source": "users", "format": "parquet"}},
        "nodes": [
            {
                "label": "User",
                "table": "users",
                "key": "id",
                "properties": {"location": "location", "age": "age"},
            }
        ],
    }
    report = load(store, parse_mapping(raw, store.schema), {"users": path})
    assert [(r.line, r.reason) for r in report.rejected] == [(3, "missing key (id is empty)")]
    got = store.query("MATCH (u:User) RETURN u.id AS id, u.location AS loc, u.age AS age")
    assert sorted(got, key=lambda row: row["id"]) == [
        {"id": "1", "loc": "10001", "age": None},
        {"id": "2", "loc": None, "age": 40},
        {"id": str(2**62 + 1), "loc": str(2**53 + 1), "age": 42},
    ]
