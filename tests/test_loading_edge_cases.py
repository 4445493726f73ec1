"""Loading edge cases: repeated keys in JSON objects, a report that would overwrite a source,
macOS metadata files among photos, UTF-16 and UTF-32 files, empty lists."""

from __future__ import annotations

import gzip
import io
import logging
import os
import tarfile
import threading
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from builders import through_fifo

from graphfusion.errors import ValidationError
from graphfusion.ingest import load
from graphfusion.mapping import LoaderMapping, parse_mapping
from graphfusion.readers import BadRecord, Record, read_source, read_table
from graphfusion.schema import Schema, parse_schema
from graphfusion.store import EmbeddedStore


def _mapping(schema: Schema, fmt: str, properties: dict[str, Any] | None = None) -> LoaderMapping:
    raw = {
        "name": "mini_users",
        "sources": {"users": {"description": "users"}},
        "tables": {"users": {"source": "users", "format": fmt}},
        "nodes": [
            {
                "label": "User",
                "table": "users",
                "key": "id",
                "properties": properties or {"name": "name", "age": "age"},
            }
        ],
    }
    return parse_mapping(raw, schema)


def _names(store: EmbeddedStore) -> dict[str, Any]:
    rows = store.query("MATCH (u:User) RETURN u.id AS id, u.name AS name ORDER BY id")
    return {r["id"]: r["name"] for r in rows}


def _same_rows(fmt: str, path: Path, **options: Any) -> list[Record | BadRecord]:
    """The records, after checking that the row and column readers agree."""
    records = list(read_source(fmt, path, options=options))
    table, bad = read_table(fmt, path, options=options)
    assert [(b.line, b.reason) for b in bad] == [
        (r.line, r.reason) for r in records if isinstance(r, BadRecord)
    ]
    good = [r for r in records if isinstance(r, Record)]
    assert table.lines.tolist() == [r.line for r in good]
    for i, rec in enumerate(good):
        assert {n: table.column(n).values()[i] for n in table.names} == rec.data
    return records


# ----------------------------------------------------------------------------- 1. repeated keys


@pytest.mark.parametrize(
    ("fmt", "line"),
    [
        ("jsonl", '{"id": "u2", "name": "Ann", "name": "Bob"}'),
        ("pylines", "{'id': 'u2', 'name': 'Ann', 'name': 'Bob'}"),
        ("jsonl", '{"id": "u2", "name": "Ann", "extra": {"a": 1, "a": 2}}'),
        ("pylines", "{'id': 'u2', 'name': 'Ann', 'extra': [{'a': 1, 'a': 2}]}"),
    ],
)
def test_an_object_that_repeats_a_key_is_a_rejected_row(
    tmp_path: Path, store: EmbeddedStore, fmt: str, line: str
) -> None:
    path = tmp_path / f"users.{fmt}"
    first = '{"id": "u1", "name": "Cy"}' if fmt == "jsonl" else "{'id': 'u1', 'name': 'Cy'}"
    path.write_text(f"{first}\n{line}\n", encoding="utf-8")
    report = load(store, _mapping(store.schema, fmt), {"users": path})
    assert [(r.source, r.line) for r in report.rejected] == [(str(path), 2)]
    reason = report.rejected[0].reason
    assert "repeats the key" in reason and ("'name'" in reason or "'a'" in reason)
    assert _names(store) == {"u1": "Cy"}


# ----------------------------------------------------------------------------- 2. report = source


def test_a_report_that_would_overwrite_a_source_is_refused(
    tmp_path: Path, store: EmbeddedStore
) -> None:
    path = tmp_path / "users.csv"
    text = "id,name,age\nu1,Ann,30\nu2,Bob,abc\n"
    path.write_text(text, encoding="utf-8")
    link = tmp_path / "alias.csv"
    link.symlink_to(path)
    mapping = _mapping(store.schema, "csv")
    for report in (path, link, tmp_path / "." / "users.csv"):
        with pytest.raises(ValidationError, match="is the source file"):
            load(store, mapping, {"users": path}, report=report)
    assert path.read_text(encoding="utf-8") == text
    assert _names(store) == {}


def test_a_report_that_would_overwrite_the_mapping_is_refused(
    tmp_path: Path, store: EmbeddedStore
) -> None:
    import yaml

    source = tmp_path / "users.csv"
    source.write_text("id,name,age\nu1,Ann,30\n", encoding="utf-8")
    mine = tmp_path / "mine.yaml"
    raw = {
        "name": "mine",
        "sources": {"users": {"description": "users"}},
        "tables": {"users": {"source": "users", "format": "csv"}},
        "nodes": [{"label": "User", "table": "users", "key": "id"}],
    }
    mine.write_text(yaml.safe_dump(raw), encoding="utf-8")
    before = mine.read_text(encoding="utf-8")
    with pytest.raises(ValidationError, match="is the mapping file"):
        load(store, mine, {"users": source}, report=mine)
    assert mine.read_text(encoding="utf-8") == before


# ----------------------------------------------------------------------------- 3. macOS files


_MAC = ["__MACOSX/photos/._p1.jpg", "photos/._p2.jpg", "__MACOSX/p3.jpg"]


def test_macos_metadata_files_in_an_archive_are_no_photos(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    archive = tmp_path / "photos.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in ["photos/p1.jpg", *_MAC, "photos/p2.jpg"]:
            info = tarfile.TarInfo(name)
            info.size = 3
            tar.addfile(info, io.BytesIO(b"abc"))
    with caplog.at_level(logging.INFO, logger="graphfusion.readers"):
        records = list(read_source("images", archive))
    assert [r.data["file"] for r in records if isinstance(r, Record)] == [
        "photos/p1.jpg",
        "photos/p2.jpg",
    ]
    assert not [r for r in records if isinstance(r, BadRecord)]
    assert "3 macOS metadata files" in caplog.text


def test_macos_metadata_files_in_a_folder_are_no_photos(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    for name in ["p1.jpg", "p2.jpg", *_MAC]:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"abc")
    records = list(read_source("images", folder))
    assert sorted(r.data["file"] for r in records if isinstance(r, Record)) == ["p1.jpg", "p2.jpg"]


def test_a_zip_of_photos_is_read(tmp_path: Path) -> None:
    """Zips are read now (tests/test_zip_photos.py); this was their refusal."""
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("p1.jpg", b"abc")
    (rec,) = list(read_source("images", archive))
    assert isinstance(rec, Record) and rec.data["file"] == "p1.jpg"


# ----------------------------------------------------------------------------- 4. UTF-16 / 32


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-32-be"])
def test_utf16_and_utf32_files_with_a_byte_order_mark_are_read(
    tmp_path: Path, store: EmbeddedStore, encoding: str
) -> None:
    bom = {"utf-16-be": "\ufeff", "utf-32-be": "\ufeff"}.get(encoding, "")
    # as Excel saves "Unicode text": tab-delimited, \r\n line ends
    text = bom + 'id\tname\tage\r\nu1\tZoë\t30\r\nu2\tBjörn 😀\tabc\r\n\r\nu3\t"a\r\nb"\t40\r\n'
    path = tmp_path / "users.txt"
    path.write_bytes(text.encode(encoding))
    records = _same_rows("csv", path, delimiter="\t")
    assert [(r.line, r.data["name"]) for r in records if isinstance(r, Record)] == [
        (2, "Zoë"),
        (3, "Björn 😀"),
        (5, "a\r\nb"),
    ]
    table = {"users": {"source": "users", "format": "csv", "delimiter": "\t"}}
    raw = {
        "name": "m",
        "sources": {"users": {"description": "users"}},
        "tables": table,
        "nodes": [{"label": "User", "table": "users", "key": "id", "properties": {"name": "name"}}],
    }
    report = load(store, parse_mapping(raw, store.schema), {"users": path})
    assert not report.rejected
    assert _names(store) == {"u1": "Zoë", "u2": "Björn 😀", "u3": "a\r\nb"}

    lines = tmp_path / "users.jsonl"
    lines.write_bytes((bom + '{"id": "u4", "name": "Ève"}\n').encode(encoding))
    (rec,) = read_source("jsonl", lines)
    assert isinstance(rec, Record) and rec.data == {"id": "u4", "name": "Ève"}


def test_a_bad_unit_in_a_utf16_file_rejects_its_row_only(tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    raw = "id,name\nu1,Ann\n".encode("utf-16") + b"\x00\xd8" + "x\nu2,Bob\n".encode("utf-16-le")
    path.write_bytes(raw)
    records = _same_rows("csv", path)
    assert [(r.line, r.data["id"]) for r in records if isinstance(r, Record)] == [
        (2, "u1"),
        (4, "u2"),
    ]
    (bad,) = [r for r in records if isinstance(r, BadRecord)]
    assert bad.line == 3 and "not UTF-16 text" in bad.reason


# ----------------------------------------------------------------------------- 5. empty lists


def test_an_empty_list_is_no_value(tmp_path: Path) -> None:
    schema = parse_schema(
        {
            "version": 1,
            "name": "t",
            "nodes": {
                "User": {
                    "key": "id",
                    "properties": {"id": "string", "name": "string", "tags": "list[string]"},
                }
            },
            "relationships": {},
        }
    )
    first = tmp_path / "a.jsonl"
    first.write_text('{"id": "u1", "tags": ["x", "y"]}\n{"id": "u2", "tags": ["z"]}\n')
    again = tmp_path / "b.jsonl"
    again.write_text(
        '{"id": "u1", "tags": []}\n{"id": "u2", "tags": ""}\n{"id": "u3", "tags": [""]}\n'
    )
    csv = tmp_path / "c.csv"
    csv.write_text("id,tags\nu4,\nu5,;\nu6,a;b\n")
    with EmbeddedStore(tmp_path / "store", schema=schema) as store:
        props = {"tags": "tags"}
        load(store, _mapping(schema, "jsonl", props), {"users": first})
        load(store, _mapping(schema, "jsonl", props), {"users": again})
        load(store, _mapping(schema, "csv", props), {"users": csv})
        rows = store.query("MATCH (u:User) RETURN u.id AS id, u.tags AS tags ORDER BY id")
    assert {r["id"]: r["tags"] for r in rows} == {
        "u1": ["x", "y"],  # an empty list erases nothing, as an empty text does not
        "u2": ["z"],
        "u3": None,
        "u4": None,
        "u5": None,
        "u6": ["a", "b"],
    }


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-32-be"])
def test_a_utf16_file_without_a_byte_order_mark_is_named(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "users.csv"
    path.write_bytes("id,name\nu1,Ann\n".encode(encoding))
    (bad,) = _same_rows("csv", path)
    assert isinstance(bad, BadRecord) and bad.line == 1
    assert "NUL" in bad.reason and "UTF-16" in bad.reason and "\x00" not in bad.reason


# ----------------------------------------------------------------------------- JSON documents


def test_a_json_document_given_as_json_lines_is_one_clear_bad_record(tmp_path: Path) -> None:
    import json

    rows = [{"id": "u1", "name": "Ann"}, {"id": "u2", "name": "Bob"}]
    path = tmp_path / "users.json"
    path.write_text("\n" + json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    (bad,) = list(read_source("jsonl", path))
    assert isinstance(bad, BadRecord) and bad.line == 2
    assert "one JSON document" in bad.reason and "one object per line" in bad.reason
    path.write_text(json.dumps(rows), encoding="utf-8")
    (bad,) = list(read_source("jsonl", path))
    assert isinstance(bad, BadRecord) and bad.line == 1
    assert "got an array" in bad.reason and "one object per line" in bad.reason


# ----------------------------------------------------------------------------- pipes


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs (POSIX)")
@pytest.mark.parametrize(
    ("fmt", "data"),
    [
        ("csv", b"id,name\nu1,Ann\nu2,Bob\n"),
        ("csv", gzip.compress(b'id,name\nu1,Ann\nu2,"B\nob"\n')),
        ("jsonl", b'{"id": "u1", "name": "Ann"}\n{"id": "u2", "name": "Bob"}\n'),
        ("jsonl", gzip.compress('{"id": "u1"}\n{"id": "u2"}\n'.encode("utf-16"))),
        ("pylines", b"{'id': 'u1'}\n{'id': 'u2'}\n"),
        ("parquet", None),
        ("parquet", "gzip"),
    ],
    ids=["csv", "csv-gzip", "jsonl", "jsonl-gzip-utf16", "pylines", "parquet", "parquet-gzip"],
)
def test_a_pipe_is_read_whole(tmp_path: Path, fmt: str, data: bytes | str | None) -> None:
    if fmt == "parquet":
        buf = io.BytesIO()
        pd.DataFrame({"id": ["u1", "u2"]}).to_parquet(buf)
        data = gzip.compress(buf.getvalue()) if data == "gzip" else buf.getvalue()
    assert isinstance(data, bytes)
    done = threading.Event()
    try:
        table, bad = read_table(fmt, through_fifo(tmp_path, data, done))
    finally:
        done.set()
    assert not bad
    assert table.column("id").values() == ["u1", "u2"]


def test_an_unfinished_generated_shop_is_refused(
    tiny_shop: Path, tmp_path: Path, store: EmbeddedStore
) -> None:
    """A generated shop whose writing stopped half-way (its manifest says ``complete: false``)
    loaded without a word, as a shop with files missing or cut short; a finished one, and a
    folder with a manifest of someone else's, load."""
    import json
    import shutil

    from graphfusion.errors import MappingError

    shop = tmp_path / "shop"
    shutil.copytree(tiny_shop, shop)
    manifest = json.loads((shop / "manifest.json").read_text())
    (shop / "manifest.json").write_text(json.dumps({**manifest, "complete": False}))
    with pytest.raises(MappingError, match=r"unfinished shop .*graphfusion generate"):
        load(store, "synthetic", {"shop": shop})
    assert store.query("MATCH (n) RETURN count(n) AS n")[0]["n"] == 0
    (shop / "manifest.json").write_text(json.dumps({"generator": "acme", "complete": False}))
    assert not load(store, "synthetic", {"shop": shop}).rejected
    (shop / "manifest.json").write_text(json.dumps(manifest))
    assert not load(store, "synthetic", {"shop": shop}).rejected
