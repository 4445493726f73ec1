"""Loading robustness, round 3: byte-order marks starting a row, a header repeated within a
file, photos that are broken links or come through a pipe, fullwidth digits, truncated gzip.

Every CSV case is read by both readers (:func:`read_source` row by row and
:func:`read_table` a column at a time), which must agree on rows, lines and reasons.
"""

from __future__ import annotations

import bz2
import gzip
import io
import os
import tarfile
import threading
import zipfile
import zlib
from pathlib import Path

import pandas as pd
import pytest
from builders import both_readers, through_fifo, users_mapping

from graphfusion.errors import MappingError
from graphfusion.ingest import check_sources, load
from graphfusion.mapping import LoaderMapping, parse_mapping
from graphfusion.readers import MAX_LINE_BYTES, BadRecord, Record, read_source, read_table
from graphfusion.store import EmbeddedStore

BOM = b"\xef\xbb\xbf"


def _photos(store: EmbeddedStore) -> LoaderMapping:
    raw = {
        "name": "photos",
        "sources": {"photos": {"description": "photos"}},
        "tables": {"photos": {"source": "photos", "format": "images"}},
        "nodes": [
            {"label": "Image", "table": "photos", "key": "id", "properties": {"path": "path"}}
        ],
    }
    return parse_mapping(raw, store.schema)


def _ids(store: EmbeddedStore) -> list[str]:
    return [r["id"] for r in store.query("MATCH (u:User) RETURN u.id AS id ORDER BY id")]


# ----------------------------------------------------------------------------- 1. byte-order marks


@pytest.mark.parametrize(
    "data",
    [
        BOM + b"id,name\nu1,Ann\n" + BOM + b"u2,Bob\n",
        b"id,name\r\nu1,Ann\r\n" + BOM + b"u2,Bob\r\n",
        b"id,name\nu1,Ann\n" + BOM + b'"u2",Bob\n',
        "id,name\nu1,Ann\n\ufeffu2,Bob\n".encode("utf-16"),
        gzip.compress(b"id,name\nu1,Ann\n" + BOM + b"u2,Bob\n"),
    ],
    ids=["joined", "crlf", "quoted", "utf16", "gzip"],
)
def test_a_byte_order_mark_starting_a_csv_row_is_dropped(tmp_path: Path, data: bytes) -> None:
    """Two files joined (``cat a.csv b.csv``), each written with a byte-order mark: the mark
    of the second was read into the first field of its row (``'\\ufeffu2'``), a key no
    link or lookup would ever match."""
    path = tmp_path / "users.csv"
    path.write_bytes(data)
    rows, bad = both_readers("csv", path)
    assert rows == [(2, {"id": "u1", "name": "Ann"}), (3, {"id": "u2", "name": "Bob"})]
    assert bad == []


def test_a_byte_order_mark_inside_a_value_is_kept(tmp_path: Path) -> None:
    """Only a mark that starts a line goes: one within a value is the value's."""
    path = tmp_path / "users.csv"
    path.write_bytes(b"id,name\nu1,A" + BOM + b"nn\nu2," + BOM + b"Bob\n")
    rows, _ = both_readers("csv", path)
    assert [r["name"] for _, r in rows] == ["A\ufeffnn", "\ufeffBob"]


@pytest.mark.parametrize(
    ("fmt", "lines"),
    [
        ("jsonl", [b'{"id": "u1", "age": 30}', b'{"id": "u2", "age": 31}']),
        ("pylines", [b"{'id': 'u1', 'age': 30}", b"{'id': 'u2', 'age': 31}"]),
    ],
)
def test_a_byte_order_mark_starting_each_line_is_dropped(
    tmp_path: Path, store: EmbeddedStore, fmt: str, lines: list[bytes]
) -> None:
    """A JSON-lines file whose every line was written with a mark (each appended by a tool
    that opens the file with ``utf-8-sig``): every line after the first was a malformed
    line."""
    path = tmp_path / f"users.{fmt}"
    path.write_bytes(b"".join(BOM + line + b"\n" for line in lines))
    records = list(read_source(fmt, path))
    assert [(r.line, type(r).__name__) for r in records] == [(1, "Record"), (2, "Record")]
    report = load(store, users_mapping(store, format=fmt), {"users": path})
    assert not report.rejected
    assert _ids(store) == ["u1", "u2"]


# ----------------------------------------------------------------------------- 2. header repeated


@pytest.mark.parametrize(
    "data",
    [
        b"id,name,age\nu1,Ann,30\nid,name,age\nu2,Bob,31\n",
        BOM + b"id,name,age\nu1,Ann,30\n" + BOM + b"id,name,age\nu2,Bob,31\n",
        b"id, name,age\r\nu1,Ann,30\r\n id , name,age \r\nu2,Bob,31\r\n",
    ],
    ids=["plain", "with-marks", "spaces"],
)
def test_a_header_repeated_within_the_file_is_a_bad_record(
    tmp_path: Path, store: EmbeddedStore, data: bytes
) -> None:
    """Files joined with their headers: the second header was loaded as a row, a User whose
    key is ``id`` and whose name is ``name``."""
    path = tmp_path / "users.csv"
    path.write_bytes(data)
    rows, bad = both_readers("csv", path)
    assert [line for line, _ in rows] == [2, 4]
    assert len(bad) == 1 and bad[0][0] == 3
    assert "repeats the header" in bad[0][1]
    report = load(store, users_mapping(store), {"users": path})
    assert [(r.line, r.source) for r in report.rejected] == [(3, str(path))]
    assert _ids(store) == ["u1", "u2"]


def test_a_header_repeated_among_many_rows_is_found_by_both_readers(tmp_path: Path) -> None:
    rows = [f"u{i},Name {i},{20 + i % 50}" for i in range(1, 3001)]
    rows[1500] = "id,name,age"
    path = tmp_path / "users.csv"
    path.write_text("id,name,age\n" + "\n".join(rows) + "\n", encoding="utf-8")
    good, bad = both_readers("csv", path)
    assert len(good) == 2999
    assert [line for line, _ in bad] == [1502]


def test_a_row_like_the_header_in_one_column_only_is_a_row(tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    path.write_bytes(b"id,name\nid,Ann\nu2,name\n")
    good, bad = both_readers("csv", path)
    assert [r["id"] for _, r in good] == ["id", "u2"]
    assert bad == []


# ----------------------------------------------------------------------------- 3. photos


def test_a_broken_link_among_photos_is_a_bad_record(tmp_path: Path, store: EmbeddedStore) -> None:
    """A photo that is a link to a file no longer there (or a loop of links) was left out of
    the listing without a word."""
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"\xff\xd8\xff")
    os.symlink(folder / "gone.jpg", folder / "b.jpg")
    os.symlink("c2.jpg", folder / "c1.jpg")
    os.symlink("c1.jpg", folder / "c2.jpg")
    os.symlink(folder / "gone.txt", folder / "notes.txt")  # no photo: no word
    records = list(read_source("images", folder))
    good = [r.data["file"] for r in records if isinstance(r, Record)]
    bad = [(r.line, r.reason) for r in records if isinstance(r, BadRecord)]
    assert good == ["a.jpg"]
    assert [line for line, _ in bad] == [2, 3, 4]
    assert "b.jpg" in bad[0][1] and "gone.jpg" in bad[0][1] and "broken" in bad[0][1]
    assert "c1.jpg" in bad[1][1] and "c2.jpg" in bad[2][1]
    report = load(store, _photos(store), {"photos": folder})
    assert [(r.source, r.line) for r in report.rejected] == [(str(folder), n) for n in (2, 3, 4)]
    assert store.query("MATCH (i:Image) RETURN i.id AS id") == [{"id": "a"}]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs (POSIX)")
def test_photos_through_a_pipe_are_refused_by_name(tmp_path: Path, store: EmbeddedStore) -> None:
    """A tar of photos piped in (``tar c photos | graphfusion load ... photos=/dev/stdin``):
    the reader opened the pipe twice (once to tell zip from tar, then to list it), and hung
    on the second when nothing was left to read; the photos' paths (``/dev/stdin::p1.jpg``)
    could never be read again by ``embed`` either."""
    archive = tmp_path / "photos.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(_photo(tmp_path), arcname="p1.jpg")
    done = threading.Event()
    try:
        pipe = through_fifo(tmp_path, archive.read_bytes(), done)
        with pytest.raises(MappingError, match=r"source 'photos': .*pipe.* folder or .*archive"):
            check_sources(_photos(store), {"photos": pipe})  # before anything is read
        with pytest.raises(MappingError, match=r"source 'photos': .*pipe.* folder or .*archive"):
            load(store, _photos(store), {"photos": pipe})
        with pytest.raises(MappingError, match=r"source 'photos': .*pipe"):
            list(read_source("images", pipe, name="photos"))
    finally:
        done.set()
    assert store.query("MATCH (n) RETURN count(n) AS n") == [{"n": 0}]


def _photo(tmp_path: Path) -> Path:
    photo = tmp_path / "p1.jpg"
    photo.write_bytes(b"\xff\xd8\xff")
    return photo


# ----------------------------------------------------------------------------- 4. digits


def test_fullwidth_digits_are_numbers_on_both_paths(tmp_path: Path, store: EmbeddedStore) -> None:
    """Fullwidth digits (Japanese shop exports) are numbers, as Python's ``int`` reads them,
    whether a column holds only them (each read alone) or a mix (ASCII ones read by Arrow)."""
    path = tmp_path / "users.csv"
    path.write_text(
        "id,name,age\nu1,Ann,３０\nu2,Bob,31\nu3,Cy,\u3000４２\u3000\n", encoding="utf-8"
    )
    assert not load(store, users_mapping(store), {"users": path}).rejected
    only = tmp_path / "only.jsonl"
    only.write_text('{"id": "u4", "age": "５"}\n', encoding="utf-8")
    assert not load(store, users_mapping(store, format="jsonl"), {"users": only}).rejected
    ages = store.query("MATCH (u:User) RETURN u.id AS id, u.age AS age ORDER BY id")
    assert ages == [
        {"id": "u1", "age": 30},
        {"id": "u2", "age": 31},
        {"id": "u3", "age": 42},
        {"id": "u4", "age": 5},
    ]


# ----------------------------------------------------------------------------- 5. truncated gzip


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_truncated_gzip_file_loads_its_whole_rows_and_a_rerun_mends_it(
    tmp_path: Path, store: EmbeddedStore, fmt: str
) -> None:
    """A download cut short: the rows before the cut load, the row it cuts does not (not
    even a prefix of it that would parse, ``u2,Bob,3`` of ``u2,Bob,35``), the cut is a bad
    record, and loading the whole file again loads the rest."""
    n = 3000
    if fmt == "csv":
        text = "id,name,age\n" + "".join(f"u{i},Name {i},{10 + i % 80}\n" for i in range(n))
    else:
        text = "".join(f'{{"id": "u{i}", "age": {10 + i % 80}}}\n' for i in range(n))
    whole = gzip.compress(text.encode(), mtime=0)
    path = tmp_path / f"users.{fmt}.gz"
    path.write_bytes(whole[: len(whole) // 2])
    report = load(store, users_mapping(store, format=fmt), {"users": path})
    assert [r.reason for r in report.rejected] == [
        "file is truncated or not valid gzip: Compressed file ended before the end-of-stream "
        "marker was reached"
    ]
    loaded = store.query("MATCH (u:User) RETURN u.id AS id, u.age AS age")
    assert 0 < len(loaded) < n
    assert all(r["age"] == 10 + int(r["id"][1:]) % 80 for r in loaded)
    path.write_bytes(whole)
    assert not load(store, users_mapping(store, format=fmt), {"users": path}).rejected
    assert store.query("MATCH (u:User) RETURN count(u) AS n") == [{"n": n}]


def _tar_of_photos(tmp_path: Path, mode: str, count: int = 6, size: int = 5000) -> bytes:
    archive = tmp_path / "whole.tar"
    with tarfile.open(archive, mode) as tar:
        for i in range(1, count + 1):
            info = tarfile.TarInfo(f"p{i}.jpg")
            info.size = size
            tar.addfile(info, io.BytesIO(bytes([i]) * size))
    return archive.read_bytes()


@pytest.mark.parametrize("mode", ["w", "w:gz"])
def test_a_photo_cut_short_in_a_truncated_tar_is_the_bad_record(tmp_path: Path, mode: str) -> None:
    """A tar cut short within the data of its third photo: that photo was listed as whole
    (and stored as an Image), and the bad record fell on the fourth member."""
    whole = _tar_of_photos(tmp_path, mode)
    member = 512 + 5120  # a header and the data in whole blocks
    cut = 2 * member + 512 + 2000  # within the third photo's data
    if mode == "w:gz":  # the same cut, in compressed bytes: a prefix that decompresses to it
        cut = _gzip_prefix_for(whole, cut)
    path = tmp_path / "photos.tar"
    path.write_bytes(whole[:cut])
    records = list(read_source("images", path))
    assert [r.data["file"] for r in records if isinstance(r, Record)] == ["p1.jpg", "p2.jpg"]
    bad = [(r.line, r.reason) for r in records if isinstance(r, BadRecord)]
    assert len(bad) == 1 and bad[0][0] == 3
    assert "'p3.jpg'" in bad[0][1] and "cut short" in bad[0][1]


def _gzip_prefix_for(data: bytes, size: int) -> int:
    """The length of the shortest prefix of gzip ``data`` that decompresses to more than
    ``size`` bytes (the decompressed length grows with the prefix)."""
    low, high = 0, len(data)
    while low < high:
        mid = (low + high) // 2
        if len(zlib.decompressobj(wbits=31).decompress(data[:mid])) > size:
            high = mid
        else:
            low = mid + 1
    assert low < len(data)
    return low


def test_a_tar_cut_within_a_members_header_is_a_bad_record(tmp_path: Path) -> None:
    """A tar cut within the header of its fourth member (or with that header damaged)
    ended the listing without a word, as if the archive held three photos."""
    whole = _tar_of_photos(tmp_path, "w")
    member = 512 + 5120
    path = tmp_path / "photos.tar"
    path.write_bytes(whole[: 3 * member + 300])
    records = list(read_source("images", path))
    assert [r.line for r in records if isinstance(r, Record)] == [1, 2, 3]
    bad = [(r.line, r.reason) for r in records if isinstance(r, BadRecord)]
    assert len(bad) == 1 and bad[0][0] == 4 and "truncated or damaged" in bad[0][1]
    damaged = bytearray(whole)
    damaged[3 * member + 148 : 3 * member + 156] = b"9999999\x00"  # the header's checksum
    path.write_bytes(bytes(damaged))
    records = list(read_source("images", path))
    assert [r.line for r in records if isinstance(r, Record)] == [1, 2, 3]
    bad = [(r.line, r.reason) for r in records if isinstance(r, BadRecord)]
    assert len(bad) == 1 and bad[0][0] == 4 and "truncated or damaged" in bad[0][1]


def test_a_whole_tar_without_its_end_blocks_is_read_whole(tmp_path: Path) -> None:
    whole = _tar_of_photos(tmp_path, "w")
    path = tmp_path / "photos.tar"
    path.write_bytes(whole[: 6 * (512 + 5120)])
    records = list(read_source("images", path))
    assert [r.line for r in records if isinstance(r, Record)] == [1, 2, 3, 4, 5, 6]
    assert not [r for r in records if isinstance(r, BadRecord)]


# ----------------------------------------------------------------------------- 6. huge fields


def test_a_field_over_the_limit_across_lines_is_named_as_such(tmp_path: Path) -> None:
    """A quoted value spanning lines, each short, but longer in all than a CSV field may be:
    the reason was the csv module's ("malformed CSV: field larger than field limit"), as if
    the file were broken rather than the value too long."""
    line = "x" * 999 + "\n"
    value = line * (MAX_LINE_BYTES // len(line) + 2)
    path = tmp_path / "users.csv"
    path.write_text(f'id,name\nu1,Ann\nu2,"{value}"\nu3,Cy\n', encoding="utf-8")
    rows, bad = both_readers("csv", path)
    assert rows == [(2, {"id": "u1", "name": "Ann"})]
    assert bad == [
        (
            3,
            f"a field longer than {MAX_LINE_BYTES} characters (the most a CSV field may hold) "
            "starts in the row on line 3; the rest of the file is skipped",
        )
    ]


# ----------------------------------------------------------------------------- 7. not text


def _workbook() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>" * 50)
    return buf.getvalue()


def _parquet() -> bytes:
    buf = io.BytesIO()
    pd.DataFrame({"id": ["u1"], "name": ["Ann"]}).to_parquet(buf)
    return buf.getvalue()


def _tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("users.csv")
        info.size = 8
        tar.addfile(info, io.BytesIO(b"id\nu1\nu2"))
    return buf.getvalue()


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (_workbook(), "a zip archive (an Excel .xlsx workbook?)"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "an Excel .xls workbook"),
        (_parquet(), "a Parquet file (set the table's format to parquet)"),
        (_tar(), "a tar archive"),
        (bz2.compress(b"id,name\nu1,Ann\n"), "bzip2-compressed (only gzip is read"),
        (gzip.compress(_workbook()), "a zip archive (an Excel .xlsx workbook?)"),
    ],
    ids=["xlsx", "xls", "parquet", "tar", "bzip2", "gzip-xlsx"],
)
@pytest.mark.parametrize("fmt", ["csv", "jsonl", "pylines"])
def test_a_file_that_is_no_text_is_named_for_what_it_is(
    tmp_path: Path, data: bytes, kind: str, fmt: str
) -> None:
    """An Excel workbook (or a Parquet file, an archive) given as a CSV file was "not UTF-8
    text (byte 0x81)" (or a header of NUL characters, "UTF-16 without a byte-order mark?"),
    sending the user after an encoding; in JSON lines, one bad record per line of bytes."""
    path = tmp_path / f"users.{fmt}"
    path.write_bytes(data)
    records = list(read_source(fmt, path))
    assert len(records) == 1 and isinstance(records[0], BadRecord)
    assert records[0].line == 1
    assert kind in records[0].reason
    assert records[0].reason.endswith(f"not {fmt} text; the file is skipped")
    if fmt == "csv":
        table, bad = read_table(fmt, path)
        assert not len(table) and [(b.line, b.reason) for b in bad] == [(1, records[0].reason)]
