"""Readers for the source formats a loader mapping can name.

Each reader yields :class:`Record` objects (a row with its 1-based line or row number) and,
for input it cannot read, :class:`BadRecord` objects with the reason, and goes on with the rest.

Formats: ``csv``, ``jsonl`` (one JSON object per line), ``pylines`` (one Python literal dict
per line, read with :func:`ast.literal_eval`), ``parquet``, ``images`` (a folder of image files
or a tar or zip archive of them; one row per image; the files macOS adds, ``__MACOSX/`` and
``._name``, are skipped; zip member names as :func:`zip_name` reads them) and ``frame`` (a
pandas DataFrame given in Python). Gzip compression is detected from the file's first bytes.
Text files are UTF-8 (a byte-order mark is dropped), or UTF-16 or UTF-32 with a byte-order
mark (as Excel's "Unicode text" and Windows PowerShell write them). A byte-order mark that
starts a later line is dropped too (files joined together, ``cat a.csv b.csv``, or JSON lines
each written with one; a line within a quoted CSV value too); one within a line is kept. A
CSV row that repeats the header (files joined with their headers) is a bad record ("repeats
the header").

Photos are listed, not opened: a file that is no image, or a ``path`` column naming a file
that does not exist, is found by ``embed`` (a line in its report). A photo of a folder that
is a symbolic link to nothing (a broken link, a loop of links) is a bad record, naming it. An
``images`` source must be a folder or an archive file (a pipe or a device is refused: the
photos' paths name it, and ``embed`` reads them again). A tar archive cut short is a bad
record on the member it cuts (named: its data is not all there), or on the member whose
header is cut short or damaged; the members before it are listed.

A row (CSV) or line (JSON lines, Python literals) holding bytes that do not decode is a bad
record of its own ("not UTF-8 text"); the rows around it load. A JSON or Python object that
names a key twice (at any depth) is a bad record too ("an object repeats the key 'name'"). A
line over :data:`MAX_LINE_BYTES` is never held whole: it is read past and its row is a bad
record. A CSV field may be that long (a value longer than a property takes is rejected with its
row when converted); a longer one (a quoted value spanning lines) is a bad record on the line
its row starts on, and the rest of the file is skipped. A CSV quote never closed swallows the
rest of the file: that is one bad record, on the line of the row it opens in, naming the lines
skipped. A CSV header that names a column twice, or that has a single column whose name another
usual delimiter (``,``, ``;``, tab, ``|``) would split (a ``;``-delimited file read with
``,``), is one bad record too, on the header's line, naming the column (and the delimiter the
file may have, which is never used in its place); the rest of the file is skipped. The header
is the first line with something on it: blank lines before it are skipped, and so is Excel's
``sep=,`` line naming the delimiter (one naming another delimiter than the table's is one bad
record, as a wrong delimiter is). A column whose header cell is blank has no name, so it is no
field of the rows: one before the last name (a pandas index, ``,id,name``) is left out; the
ones after it (``id,name,,``, as spreadsheets write) must be blank, and a row may leave them
out, but a value there rejects its row, naming the column's number (it is most likely a value
shifted by a delimiter inside a value that was not quoted). A Parquet file that
names a column twice is one bad record as well (on line 1), and a DataFrame that does is
refused by the loader (:func:`graphfusion.ingest.check_sources`).

:func:`read_table` reads a whole table into columns (:class:`graphfusion.table.Table`) with the
same values, line numbers and bad records as :func:`read_source`. CSV files are parsed by
pyarrow; a file whose line numbers, values or messages pyarrow cannot reproduce exactly (a
quoted value spanning lines, bare carriage returns, bad UTF-8, a truncated gzip stream, quotes
in the header, a single column, a line about as long as :data:`MAX_LINE_BYTES`, a byte-order
mark starting a line, Excel's ``sep=`` line, rows that leave out unnamed trailing fields) is
read row by row instead.
"""

from __future__ import annotations

import ast
import codecs
import contextlib
import csv
import errno
import gzip
import io
import json
import logging
import os
import re
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from graphfusion.errors import MappingError
from graphfusion.table import Column as _Col
from graphfusion.table import Table

__all__ = [
    "Record",
    "BadRecord",
    "read_source",
    "read_table",
    "FORMATS",
    "IMAGE_SUFFIXES",
    "ARCHIVE_SEP",
    "split_archive",
    "is_zip",
    "open_zip",
    "zip_name",
    "archive_problem",
    "photo_source_problem",
]

FORMATS = ("csv", "jsonl", "pylines", "parquet", "images", "frame")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff")
log = logging.getLogger("graphfusion.readers")

#: Separator between an archive's path and a member's name in ``Image.path``.
ARCHIVE_SEP = "::"


def split_archive(text: str) -> tuple[str, str] | None:
    """``(archive, member)`` for an ``archive::member`` path (:data:`ARCHIVE_SEP`): the first
    split whose left part names a file wins; None when none does."""
    parts = text.split(ARCHIVE_SEP)
    for k in range(1, len(parts)):
        archive = ARCHIVE_SEP.join(parts[:k])
        if os.path.isfile(archive):
            return archive, ARCHIVE_SEP.join(parts[k:])
    return None


#: Zip's general-purpose flag bit 11: the member's name is UTF-8.
_ZIP_UTF8 = 0x800


def is_zip(path: str | os.PathLike[str]) -> bool:
    """Whether a file is a zip archive: it ends with a zip's table of contents (its central
    directory) and is no tar archive (an uncompressed tar whose last member is a zip can end
    like one)."""
    try:
        return zipfile.is_zipfile(path) and not tarfile.is_tarfile(path)
    except OSError:
        return False


def open_zip(path: str | os.PathLike[str]) -> zipfile.ZipFile:
    """A zip archive, open for reading (zip64, any member names).

    Raises:
        zipfile.BadZipFile: It cannot be read; the message says why, starting "not a
            readable zip archive".
    """
    try:
        return zipfile.ZipFile(path)
    except UnicodeDecodeError as exc:  # flag bit 11 on a name that is not UTF-8
        reason = f"a member's name is marked as UTF-8 but is not ({exc.reason})"
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
    raise zipfile.BadZipFile(f"not a readable zip archive: {reason}")


def zip_name(info: zipfile.ZipInfo) -> str:
    """A zip member's name, as a photo's ``file`` and path give it. A name not marked UTF-8
    (flag bit 11) is the UTF-8 name of its Info-ZIP Unicode Path field when it has one for
    it (WinRAR and Info-ZIP write one beside a name in the system's code page), else UTF-8
    when its bytes are (as most tools write names), else code page 437 (the zip standard's,
    as :mod:`zipfile` reads it). A backslash in a name made on Windows separates folders (as
    Windows PowerShell 5 writes them)."""
    name = info.filename
    if not info.flag_bits & _ZIP_UTF8:
        raw = name.encode("cp437")  # the name's bytes: zipfile decoded them as code page 437
        unicode = _unicode_path(info.extra, raw)
        if unicode is not None:
            name = unicode
        else:
            with contextlib.suppress(UnicodeError):
                name = raw.decode("utf-8")
    if info.create_system == 0:  # MS-DOS and Windows
        name = name.replace("\\", "/")
    return name


def _unicode_path(extra: bytes, raw: bytes) -> str | None:
    """The name an Info-ZIP Unicode Path extra field (0x7075) in ``extra`` gives, when it
    was written for the name ``raw`` (the CRC-32 of its bytes, which a tool that renamed the
    member without updating the field does not match); None when there is none."""
    while len(extra) >= 4:
        tag, size = struct.unpack("<HH", extra[:4])
        body, extra = extra[4 : 4 + size], extra[4 + size :]
        if (
            tag == 0x7075
            and len(body) > 5
            and body[0] == 1  # the field's version
            and struct.unpack("<I", body[1:5])[0] == zlib.crc32(raw)
        ):
            with contextlib.suppress(UnicodeError):
                return body[5:].decode("utf-8")
    return None


def archive_problem(path: str | os.PathLike[str], exc: BaseException) -> str:
    """Why a file that is no zip archive (:func:`is_zip`) cannot be read as a tar archive
    (``exc``, tarfile's error): a zip that has lost its table of contents, at its end (a
    download cut short), says so."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError:
        head = b""
    if head == b"PK\x03\x04":
        return (
            "a damaged zip archive: its table of contents, at its end, is missing or broken "
            "(a download cut short? download it again)"
        )
    return f"not a readable tar archive: {' '.join(str(exc).split())}"


#: Longest line accepted from a line-based source, and longest CSV field (in characters).
MAX_LINE_BYTES = 16 * 1024 * 1024

# Bytes that do not decode become U+DC00..U+DCFF (:func:`_undecoded`; U+DC80..U+DCFF in UTF-8).
_UNDECODED = re.compile("[\udc00-\udcff]")
_UNDECODED_ERRORS = "graphfusion-undecoded"
#: Byte-order marks of the encodings read besides UTF-8, and the codec that reads each (the
#: codec drops the mark); UTF-32's first, as its little-endian mark starts with UTF-16's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# What the csv reader is fed after the last line: a lone surrogate no decoded text holds,
# then a quote that closes a quoted value left open, so that such a value ends with it.
_END = "\ud800"
_END_LINE = _END + '"\n'
#: A byte-order mark, as text (U+FEFF) and as UTF-8 bytes.
_MARK = "\ufeff"
_UTF8_MARK = codecs.BOM_UTF8
#: Delimiters that a header of one column is checked for (see :func:`_header_problem`).
_OTHER_DELIMITERS = (",", ";", "\t", "|")


@dataclass(frozen=True)
class Record:
    """One row of a source."""

    line: int
    data: dict[str, Any]


@dataclass(frozen=True)
class BadRecord:
    """A row (or the rest of a file) that could not be read."""

    line: int
    reason: str


_GZIP = b"\x1f\x8b"


def _is_gzip(path: Path) -> bool:
    """Whether a regular file is gzip (from its first bytes)."""
    with path.open("rb") as fh:
        return fh.read(2) == _GZIP


class _Gunzip(gzip.GzipFile):
    """A gzip stream over an open file, which it closes with itself."""

    def __init__(self, raw: io.BufferedReader) -> None:
        super().__init__(fileobj=raw, mode="rb")
        self._raw = raw

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()


def _open_bytes(path: Path) -> io.BufferedReader | _Gunzip:
    """The file's bytes, gunzipped when it is gzip (from its first bytes). The file is
    opened once, so that a pipe (``/dev/stdin``) is read as it comes."""
    raw = path.open("rb")
    return _Gunzip(raw) if raw.peek(2)[:2] == _GZIP else raw


def _undecoded(exc: UnicodeError) -> tuple[str, int]:
    """A decoding error handler: each byte that does not decode becomes U+DC00 + the byte
    (as ``surrogateescape`` does for UTF-8, for any byte and codec)."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return "".join(chr(0xDC00 + b) for b in exc.object[exc.start : exc.end]), exc.end


codecs.register_error(_UNDECODED_ERRORS, _undecoded)


def _encoding(head: bytes) -> str:
    """The codec of a text whose first bytes are ``head``: UTF-16 or UTF-32 after their
    byte-order mark (:data:`_BOMS`), else UTF-8 (a UTF-8 mark dropped)."""
    return next((codec for bom, codec in _BOMS if head.startswith(bom)), "utf-8-sig")


def _open_text(path: Path) -> io.TextIOWrapper:
    """The file as text (UTF-8, or UTF-16 or UTF-32 with a byte-order mark); bytes that do
    not decode become lone surrogates (:func:`_not_text` finds them), so that one bad byte
    costs only its own row."""
    raw = _open_bytes(path)
    codec = _encoding(raw.peek(4)[:4])
    return io.TextIOWrapper(raw, encoding=codec, errors=_UNDECODED_ERRORS, newline="")


#: Files that are no text, by their first bytes: (where the mark starts, the mark, what).
_SIGNATURES = (
    (0, b"PK\x03\x04", "a zip archive (an Excel .xlsx workbook?)"),
    (0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel .xls workbook (or another OLE2 file)"),
    (0, b"PAR1\x15", "a Parquet file (set the table's format to parquet)"),
    (0, b"\xfd7zXZ\x00", "xz-compressed (only gzip is read: decompress it first)"),
    (0, b"\x28\xb5\x2f\xfd", "zstd-compressed (only gzip is read: decompress it first)"),
    (0, b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (4, b"1AY&SY", "bzip2-compressed (only gzip is read: decompress it first)"),  # after BZh1-9
    (257, b"ustar", "a tar archive"),
)


def _kind_of(head: bytes) -> str | None:
    """What a file whose first bytes are ``head`` (gunzipped) is when it is no text: an
    Excel workbook, a Parquet file, an archive, another compression
    (:data:`_SIGNATURES`); None otherwise (text, or bytes no mark names)."""
    for at, mark, kind in _SIGNATURES:
        if head.startswith(mark, at) and (at != 4 or re.fullmatch(rb"BZh[1-9]", head[:4])):
            return kind
    return None


def _binary_file(fh: io.TextIOWrapper) -> str | None:
    """:func:`_kind_of` the file ``fh`` (:func:`_open_text`) reads, from its first bytes
    (before anything is read from it)."""
    raw = fh.buffer
    if not isinstance(raw, io.BufferedReader | gzip.GzipFile):
        return None
    return _kind_of(raw.peek(512)[:512])


def _not_text_record(kind: str, fmt: str) -> BadRecord:
    """The one bad record of a file that is ``kind`` (:func:`_kind_of`), read as ``fmt``."""
    return BadRecord(1, f"the file is {kind}, not {fmt} text; the file is skipped")


def _not_text(texts: Iterable[str], fh: io.TextIOWrapper) -> str | None:
    """Why ``texts`` (read from ``fh``, opened by :func:`_open_text`) cannot be loaded: the
    first byte that does not decode; None when they are all good text."""
    for text in texts:
        if text.isascii():  # most text: no search needed
            continue
        bad = _UNDECODED.search(text)
        if bad is not None:
            name = fh.encoding.upper().removesuffix("-SIG")
            return f"not {name} text (byte 0x{ord(bad.group(0)) - 0xDC00:02x})"
    return None


def _field_limit() -> int:
    """The csv module's field size limit, raised to :data:`MAX_LINE_BYTES` (it is global to
    the module; the readers only ever raise it)."""
    if csv.field_size_limit() < MAX_LINE_BYTES:
        csv.field_size_limit(MAX_LINE_BYTES)
    return csv.field_size_limit()


def read_source(
    fmt: str, source: Any, *, name: str = "", options: dict[str, Any] | None = None
) -> Iterator[Record | BadRecord]:
    """Read one table.

    Args:
        fmt: One of :data:`FORMATS`.
        source: A path (or, for ``frame``, a DataFrame).
        name: The source's name, for messages.
        options: Format options: ``delimiter`` for csv.

    Yields:
        Records and bad records, in file order.

    Raises:
        MappingError: The source does not exist or is not of the declared kind (a pipe or
            a device given as ``images``).
    """
    options = options or {}
    frame = _frame_source(fmt, source, name)
    if frame is not None:
        yield from _read_frame(frame)
        return
    path = Path(source)
    if not path.exists():
        raise MappingError(f"source {name!r}: {path} does not exist")
    if fmt == "images":
        problem = photo_source_problem(path)
        if problem is not None:
            raise MappingError(f"source {name!r}: {problem}")
        yield from _read_images(path)
        return
    if path.is_dir():
        raise MappingError(f"source {name!r}: {path} is a folder, a {fmt} file was expected")
    if fmt == "csv":
        yield from _guard(path, _read_csv(path, options.get("delimiter", ",")))
    elif fmt == "jsonl":
        yield from _guard(path, _read_lines(path, _parse_json))
    elif fmt == "pylines":
        yield from _guard(path, _read_lines(path, _parse_literal))
    elif fmt == "parquet":
        yield from _read_parquet(path)
    else:
        raise MappingError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def read_table(
    fmt: str, source: Any, *, name: str = "", options: dict[str, Any] | None = None
) -> tuple[Table, list[BadRecord]]:
    """Read one table into columns.

    Same arguments, values, line numbers and bad records as :func:`read_source`; CSV files,
    Parquet files and DataFrames are read a column at a time, other formats row by row.

    Returns:
        The table of good rows and the bad records, in file order.

    Raises:
        MappingError: The source does not exist or is not of the declared kind.
    """
    options = options or {}
    frame = _frame_source(fmt, source, name)
    if frame is not None:
        return Table.from_frame(frame), []
    path = Path(source)
    if fmt == "csv" and path.is_file():
        fast = _csv_table(path, options.get("delimiter", ","))
        if fast is not None:
            return fast
    elif fmt == "parquet" and path.is_file():
        frame, bad = _parquet_frame(path)
        return (Table.from_frame(frame) if frame is not None else _empty()), bad
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    bad = []
    for rec in read_source(fmt, source, name=name, options=options):
        if isinstance(rec, BadRecord):
            bad.append(rec)
        else:
            rows.append(rec.data)
            lines.append(rec.line)
    return Table.from_rows(rows, lines), bad


def _frame_source(fmt: str, source: Any, name: str) -> pd.DataFrame | None:
    """The DataFrame a ``frame`` source (or any DataFrame) is; None for a file source."""
    if fmt != "frame" and not isinstance(source, pd.DataFrame):
        return None
    if not isinstance(source, pd.DataFrame):
        raise MappingError(f"source {name!r} must be a pandas DataFrame")
    return source


def _empty() -> Table:
    return Table({}, np.zeros(0, dtype=np.int64))


def _guard(path: Path, rows: Iterator[Record | BadRecord]) -> Iterator[Record | BadRecord]:
    """Turn a broken file (truncated gzip) into one bad record; keep what came."""
    last = 0
    try:
        for rec in rows:
            last = rec.line
            yield rec
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        yield BadRecord(last + 1, f"file is truncated or not valid gzip: {exc or 'unexpected end'}")


def _read_frame(frame: pd.DataFrame) -> Iterator[Record]:
    cols = [str(c) for c in frame.columns]
    for i, values in enumerate(frame.itertuples(index=False, name=None), start=1):
        yield Record(i, dict(zip(cols, values, strict=True)))


def _csv_rows(lines: Iterable[str | None], delimiter: str) -> Iterator[tuple[int, list[str] | str]]:
    """The rows of CSV text (its lines, None for a line over :data:`MAX_LINE_BYTES`), each
    with the line it starts on; a row that cannot be read is a reason instead. A quote never
    closed or a field over the size limit ends the rows (where the next row starts is not
    known); a row with a line over the limit is skipped."""
    _field_limit()
    long: list[int] = []
    reader = csv.reader(_ended(lines, long), delimiter=delimiter)
    line = 0
    while True:
        start = line + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, f"{_csv_problem(exc, start)}; the rest of the file is skipped"
            return
        line = reader.line_num
        if row and row[-1].endswith(_END):
            skipped = f"line {start} is" if line - 1 == start else f"lines {start}-{line - 1} are"
            yield (
                start,
                (
                    f"a quote in the row on line {start} is never closed: {skipped} skipped "
                    "(the rest of the file)"
                ),
            )
            return
        if long and long[-1] >= start:
            yield start, f"line longer than {MAX_LINE_BYTES} bytes"
        elif row != [_END_LINE[:-1]]:
            yield start, row


def _csv_problem(exc: csv.Error, start: int) -> str:
    """What the csv module's error ``exc``, in the row starting on line ``start``, means."""
    if "field larger than field limit" in str(exc):  # a quoted value spanning lines
        return (
            f"a field longer than {_field_limit()} characters (the most a CSV field may hold) "
            f"starts in the row on line {start}"
        )
    return f"malformed CSV: {exc}"


def _ended(lines: Iterable[str | None], long: list[int]) -> Iterator[str]:
    """``lines`` for the csv reader: a line over the limit as an empty one (its number goes
    to ``long``), and :data:`_END_LINE` after the last."""
    for n, line in enumerate(lines, start=1):
        if line is None:
            long.append(n)
            yield "\n"
        else:
            yield line
    yield _END_LINE


def _read_csv(path: Path, delimiter: str) -> Iterator[Record | BadRecord]:
    with _open_text(path) as fh:
        kind = _binary_file(fh)
        if kind is not None:
            yield _not_text_record(kind, "csv")
            return
        rows = _csv_rows(_unmarked(_bounded_lines(fh, MAX_LINE_BYTES)), delimiter)
        # the header is the first row with something on it (after Excel's "sep=," line)
        first = _first_row(rows)
        note = _sep_note(first[1], delimiter) if first is not None else None
        if first is not None and note is not None:
            if note != delimiter:
                yield BadRecord(first[0], _sep_problem(first[0], note, delimiter))
                return
            first = _first_row(rows)
        if first is None:
            return
        line, header = first
        if isinstance(header, str):
            yield BadRecord(line, header)
            return
        bad = _not_text(header, fh)
        if bad is not None:
            yield BadRecord(line, f"header is {bad}; the rest of the file is skipped")
            return
        header = [h.strip() for h in header]
        problem = _header_problem(header, delimiter)
        if problem is not None:
            yield BadRecord(line, f"{problem}; the rest of the file is skipped")
            return
        named = [i for i, name in enumerate(header) if name]
        tail = _unnamed_tail(header)
        for start, row in rows:
            if isinstance(row, str):
                yield BadRecord(start, row)
            elif _blank(row):
                continue
            elif (bad := _not_text(row, fh)) is not None:
                yield BadRecord(start, bad)
            else:
                yield _csv_record(start, row, header, (named, tail), delimiter)


def _csv_record(
    start: int,
    row: list[str],
    header: list[str],
    columns: tuple[list[int], int],
    delimiter: str,
) -> Record | BadRecord:
    """The record of a CSV row (starting on line ``start``) under ``header`` (stripped), or
    why it is rejected: a number of fields other than the header's (a row may leave out the
    unnamed columns that end the header), a repeat of the header, a value in an unnamed
    column that ends it. ``columns`` are the header's named columns (positions) and where its
    unnamed trailing ones start (:func:`_unnamed_tail`)."""
    (named, tail), width = columns, len(header)
    if len(row) != width:
        if not tail <= len(row) < width:
            return BadRecord(start, f"has {len(row)} fields, the header has {width}")
        row = row + [""] * (width - len(row))
    if _is_header(row, header):
        return BadRecord(start, _HEADER_AGAIN)
    held = next((i for i in range(tail, width) if row[i].strip()), None)
    if held is not None:
        return BadRecord(start, _unnamed_value(held, row[held], delimiter))
    if len(named) == width:
        return Record(start, dict(zip(header, row, strict=True)))
    return Record(start, {header[i]: row[i] for i in named})


#: Excel's first line naming a file's delimiter (``sep=,``, ``sep=;``), which it writes and
#: reads.
_SEP_LINE = re.compile(r"sep=(.)", re.IGNORECASE | re.DOTALL)


def _first_row(
    rows: Iterator[tuple[int, list[str] | str]],
) -> tuple[int, list[str] | str] | None:
    """The next row of ``rows`` with something on it (or a reason), with its line."""
    return next((r for r in rows if isinstance(r[1], str) or not _blank(r[1])), None)


def _sep_note(row: list[str] | str, delimiter: str) -> str | None:
    """The delimiter a row that is Excel's ``sep=`` line names; None for any other row."""
    if isinstance(row, str):
        return None
    found = _SEP_LINE.fullmatch(delimiter.join(row))
    return found.group(1) if found is not None else None


def _sep_problem(line: int, note: str, delimiter: str) -> str:
    """The reason of a file whose ``sep=`` line names another delimiter than the table's."""
    return (
        f"line {line}, {_short('sep=' + note)}, says the file's delimiter is {note!r}, but the "
        f"table reads it with {delimiter!r} (set the table's 'delimiter' option); the rest of "
        "the file is skipped"
    )


def _unnamed_tail(header: list[str]) -> int:
    """Where the unnamed columns after the header's last name start (its width if none).

    A column without a name (a blank header cell) is no field: no mapping can name it.
    Before the last name it is left out (a pandas index written with its frame, ``,id,name``);
    after it (``id,name,,``, as spreadsheets write cells once used) it must be blank in every
    row, as a value there is most likely one shifted by a delimiter inside a value that was
    not quoted (:func:`_unnamed_value`).
    """
    return max((i + 1 for i, name in enumerate(header) if name), default=0)


def _unnamed_value(column: int, value: str, delimiter: str) -> str:
    """The reason of a row that holds ``value`` in the unnamed column ``column`` (0-based)
    after the header's last name."""
    return (
        f"column {column + 1} has no name in the header but holds {_short(value)} in this row "
        f"(a value holding the delimiter {delimiter!r} without quotes?)"
    )


#: The reason of a row that repeats the header.
_HEADER_AGAIN = "repeats the header (files joined together?); the row is skipped"


def _is_header(row: list[str], header: list[str]) -> bool:
    """Whether a row of the header's width repeats the header (stripped, as the header's
    names are), as files joined together with their headers do; a header of blank names
    only is never repeated."""
    return row[0].strip() == header[0] and any(header) and [v.strip() for v in row] == header


def _header_rows(columns: list[pa.Array], header: list[str]) -> np.ndarray:
    """The rows (positions) of columns parsed by pyarrow that repeat the header
    (:func:`_is_header`): the rows whose first named column holds its name are checked."""
    named = next((i for i, name in enumerate(header) if name), None)
    if named is None:
        return np.zeros(0, dtype=np.int64)
    hits = pc.match_substring(columns[named], header[named], ignore_case=False)
    maybe = np.flatnonzero(hits.to_numpy(zero_copy_only=False))
    if not len(maybe):
        return maybe
    take = pa.array(maybe)
    rows = zip(*(c.take(take).to_pylist() for c in columns), strict=True)
    return maybe[np.fromiter((_is_header(list(r), header) for r in rows), dtype=bool)]


def _blank(row: list[str]) -> bool:
    """Whether a CSV row is a blank line (nothing, or one field of spaces)."""
    return not row or (len(row) == 1 and not row[0].strip())


def _header_problem(header: list[str], delimiter: str) -> str | None:
    """Why a CSV header cannot be read; None when it can.

    Three problems are found: NUL characters (UTF-16 or UTF-32 text read as UTF-8), a
    column name given twice (which of the two columns a field means is not known; unnamed
    columns, as trailing delimiters make, may repeat), and a single column whose name splits
    into several names at another usual delimiter (:data:`_OTHER_DELIMITERS`), as when a file
    delimited by ``;`` is read with ``,``. The other delimiter is only named in the message,
    never used.

    Args:
        header: The header's names, stripped.
        delimiter: The delimiter the file is read with.

    Returns:
        The reason, or None.
    """
    if any("\x00" in name for name in header):
        return (
            "header holds NUL characters: the file may be UTF-16 or UTF-32 without a "
            "byte-order mark (save it as UTF-8)"
        )
    repeat = _repeated_name(header)
    if repeat is not None:
        return f"header {repeat}"
    if len(header) != 1:
        return None
    best: tuple[int, str] | None = None
    for other in _OTHER_DELIMITERS:
        if other == delimiter or other not in header[0]:
            continue
        try:
            names = next(csv.reader([header[0]], delimiter=other), [])
        except csv.Error:
            continue
        if (
            len(names) > 1
            and all(n.strip() for n in names)
            and (best is None or len(names) > best[0])
        ):
            best = (len(names), other)
    if best is None:
        return None
    return (
        f"header has a single column {_short(header[0])} read with the delimiter {delimiter!r}; "
        f"the file's delimiter may be {best[1]!r} ({best[0]} columns; set the table's "
        "'delimiter' option)"
    )


def _repeated_name(names: list[str]) -> str | None:
    """``repeats column 'name' (columns 2 and 4)`` for the first name given twice (blank
    names may repeat); None when none is."""
    repeat = repeated_column(names)
    if repeat is None:
        return None
    name, first, second = repeat
    return f"repeats column {_short(name)} (columns {first} and {second})"


def repeated_column(names: list[str]) -> tuple[str, int, int] | None:
    """The first name given twice and its two places (1-based; empty names may repeat), or
    None: a header (or a DataFrame's columns) that names a column twice."""
    seen: dict[str, int] = {}
    for i, name in enumerate(names, start=1):
        if name and name in seen:
            return name, seen[name], i
        seen.setdefault(name, i)
    return None


def _short(text: str, limit: int = 80) -> str:
    """``text`` quoted for a message, cut after ``limit`` characters."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


class _RepeatedKey(ValueError):
    """An object (at any depth) that names a key twice: which value is meant is not known."""

    def __init__(self, key: Any) -> None:
        super().__init__(f"an object repeats the key {_short(str(key))}")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's pairs as a dict, refusing a key given twice."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _RepeatedKey(key)
            seen.add(key)
    return obj


_JSON = json.JSONDecoder(object_pairs_hook=_unique_keys)


def _parse_json(text: str) -> Any:
    return _JSON.decode(text)


def _parse_literal(text: str) -> Any:
    """A Python literal (:func:`ast.literal_eval`), refusing a dict that names a key twice."""
    tree = ast.parse(text.lstrip(" \t"), mode="eval")
    nodes = [tree.body]
    while nodes:  # the containers only: a literal's other nodes hold no dict
        node = nodes.pop()
        if isinstance(node, ast.Dict):
            seen: set[Any] = set()
            for key in node.keys:
                if key is None:  # ``**x``: literal_eval refuses it below
                    continue
                value = key.value if isinstance(key, ast.Constant) else ast.literal_eval(key)
                if value in seen:
                    raise _RepeatedKey(value)
                seen.add(value)
            nodes.extend(node.values)
        elif isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            nodes.extend(node.elts)
    return ast.literal_eval(tree)


def _bounded_lines(fh: io.TextIOBase, limit: int) -> Iterator[str | None]:
    """The lines of ``fh``, never holding more than ``limit + 1`` characters of one: a longer
    line is read past in pieces and given as None."""
    size = limit + 1
    line = fh.readline(size)
    while line:
        if len(line) <= limit:
            yield line
            line = fh.readline(size)
            continue
        while line and not line.endswith(("\n", "\r")):
            line = fh.readline(size)
        yield None
        # a piece cut at the limit may end between the \r and the \n of one line end
        split = len(line) == size and line.endswith("\r")
        line = fh.readline(size)
        if split and line == "\n":
            line = fh.readline(size)


def _unmarked(lines: Iterable[str | None]) -> Iterator[str | None]:
    """``lines`` without a byte-order mark (U+FEFF) starting one: files joined together
    (``cat a.csv b.csv``), or lines each appended with a mark, hold one at the start of a
    line, where it would end up inside the first field's value or before a JSON object."""
    for line in lines:
        yield line[1:] if line and line[0] == _MARK else line


#: What a JSON value that is no object is, in JSON's words.
_JSON_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number"}
_ONE_PER_LINE = "a jsonl source has one object per line"


def _read_lines(path: Path, parse: Any) -> Iterator[Record | BadRecord]:
    """The objects of a file of one object per line (``parse``: :func:`_parse_json` or
    :func:`_parse_literal`). A JSON file whose first line opens a document spread over
    lines (``[`` or ``{`` alone, as pretty-printed JSON) is one bad record."""
    json_lines = parse is _parse_json
    first = True
    with _open_text(path) as fh:
        kind = _binary_file(fh)
        if kind is not None:
            yield _not_text_record(kind, "jsonl" if json_lines else "pylines")
            return
        for n, line in enumerate(_unmarked(_bounded_lines(fh, MAX_LINE_BYTES)), start=1):
            if line is None:
                yield BadRecord(n, f"line longer than {MAX_LINE_BYTES} bytes")
                first = False
                continue
            if not line.strip():
                continue
            if first and json_lines and line.strip() in ("[", "{"):
                yield BadRecord(
                    n,
                    f"the file is one JSON document spread over lines, not JSON lines: "
                    f"{_ONE_PER_LINE} (jq -c '.[]' writes an array so); the file is skipped",
                )
                return
            first = False
            bad = _not_text([line], fh)
            if bad is not None:
                yield BadRecord(n, bad)
                continue
            try:
                obj = parse(line)
            except _RepeatedKey as exc:
                yield BadRecord(n, str(exc))
                continue
            except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError) as exc:
                yield BadRecord(n, f"malformed line: {str(exc).splitlines()[0][:120]}")
                continue
            if not isinstance(obj, dict):
                if not json_lines:
                    yield BadRecord(n, f"expected an object, got {type(obj).__name__}")
                elif isinstance(obj, list):
                    yield BadRecord(n, f"expected an object, got an array ({_ONE_PER_LINE})")
                else:
                    kind = "null" if obj is None else _JSON_KINDS.get(type(obj), "true or false")
                    yield BadRecord(n, f"expected an object, got {kind}")
                continue
            yield Record(n, obj)


def _parquet_frame(path: Path) -> tuple[pd.DataFrame | None, list[BadRecord]]:
    import pyarrow.parquet as pq

    source: Any = path
    if not path.is_file() or _is_gzip(path):  # a pipe is read once, whole
        data = path.read_bytes()
        try:
            source = pa.BufferReader(gzip.decompress(data) if data[:2] == _GZIP else data)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            reason = f"file is truncated or not valid gzip: {exc or 'unexpected end'}"
            return None, [BadRecord(1, reason)]
    try:
        names = pq.read_schema(source).names
        repeat = _repeated_name(names)
        if repeat is not None:
            return None, [BadRecord(1, f"Parquet file {repeat}; the file is skipped")]
        table = pq.read_table(source)
    except Exception as exc:
        return None, [BadRecord(1, f"cannot read Parquet file: {exc}")]
    # ignore_metadata: a stored pandas index stays a plain column (e.g. a row id);
    # integer_object_nulls: an integer column with gaps keeps whole numbers (as floats, a
    # large id would lose its last digits and a number read as text would end in ".0")
    return table.to_pandas(ignore_metadata=True, integer_object_nulls=True), []


def _read_parquet(path: Path) -> Iterator[Record | BadRecord]:
    frame, bad = _parquet_frame(path)
    yield from bad
    if frame is not None:
        yield from _read_frame(frame)


def _csv_table(path: Path, delimiter: Any) -> tuple[Table, list[BadRecord]] | None:
    """A CSV file parsed by pyarrow, with the rows, line numbers and bad records that
    :func:`_read_csv` gives; None when only the row reader can tell them exactly."""
    import pyarrow.csv as pcsv

    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '"\r\n':
        return None
    try:
        raw = path.read_bytes()
        if raw[:2] == _GZIP:
            raw = gzip.decompress(raw)
        if _kind_of(raw[:512]) is not None:
            return None  # the row reader names what the file is
        codec = _encoding(raw[:4])
        text = raw.decode(codec)  # strict: the row reader tells bad bytes
        if codec != "utf-8-sig":  # UTF-16 or UTF-32, read as UTF-8 without the mark
            raw = text.encode("utf-8")
            if raw.startswith(_UTF8_MARK):
                return None  # a second mark: the row reader drops it (a mark starting a line)
        del text
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile, UnicodeDecodeError):
        return None
    start = 3 if raw.startswith(_UTF8_MARK) else 0
    # Line ends: \n or \r\n only (a bare \r ends a line for the csv module, not for pyarrow).
    if raw.find(b"\r", start) >= 0 and raw.count(b"\r", start) != raw.count(b"\r\n", start):
        return None
    if start == len(raw):
        return _empty(), []
    end = raw.find(b"\n", start)
    end = len(raw) if end < 0 else end
    head = raw[start:end].removesuffix(b"\r").decode("utf-8")
    if '"' in head or "\x00" in head or _SEP_LINE.fullmatch(head):
        return None  # the row reader's rules for quotes, NULs and Excel's sep= line
    header = [h.strip() for h in next(csv.reader([head], delimiter=delimiter), [])]
    names = [h for h in header if h]  # unnamed columns are no fields (see _unnamed_tail)
    if len(header) < 2 or not names or len(set(names)) != len(names):
        return None  # one column: the row reader's rule for blank rows; none or repeated names
    width = len(header)
    lines, longest = _nonempty_lines(raw, start)
    if longest + 2 > MAX_LINE_BYTES:  # (with its line end) maybe over the limit of a line
        return None
    if not len(lines):
        return Table({h: _Col(arrow=pa.array([], type=pa.string())) for h in names}, lines), []
    body = pa.py_buffer(raw)[min(end + 1, len(raw)) :]
    if raw.find(b"\n" + _UTF8_MARK, start) >= 0:
        return None  # a byte-order mark starting a line: the row reader drops it
    fields = [f"f{i}" for i in range(width)]

    def parse(threads: bool) -> tuple[pa.Table, list[tuple[int | None, str]]]:
        invalid: list[tuple[int | None, str]] = []

        def on_invalid(row: Any) -> str:
            invalid.append((row.number, row.text))
            return "skip"

        table = pcsv.read_csv(
            body,
            read_options=pcsv.ReadOptions(column_names=fields, use_threads=threads),
            parse_options=pcsv.ParseOptions(
                delimiter=delimiter,
                newlines_in_values=True,
                ignore_empty_lines=True,
                invalid_row_handler=on_invalid,
            ),
            convert_options=pcsv.ConvertOptions(
                column_types=dict.fromkeys(fields, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        return table, invalid

    try:
        table, invalid = parse(threads=True)
        if invalid:  # row numbers are known only to a serial parse
            table, invalid = parse(threads=False)
    except (pa.ArrowException, ValueError):
        return None
    # A quoted value that spans lines makes one row of two or more non-empty lines (its first
    # and the one with its closing quote), so fewer rows than lines; only a quote left open at
    # the end of the file can span lines without, in the last row.
    if len(lines) != table.num_rows + len(invalid) or any(n is None for n, _ in invalid):
        return None
    columns = [c.chunk(0) if c.num_chunks == 1 else c.combine_chunks() for c in table.columns]
    if table.num_rows and any("\n" in c[-1].as_py() for c in columns):
        return None
    if (invalid and "\n" in invalid[-1][1]) or _ends_in_quote(raw, delimiter):
        return None
    bad: list[BadRecord] = []
    keep = np.ones(len(lines), dtype=bool)
    for number, text in invalid:
        assert number is not None
        keep[number - 1] = False
        try:
            row = next(csv.reader([text], delimiter=delimiter), [])
        except csv.Error:
            return None
        if _blank(row):
            continue
        if _unnamed_tail(header) <= len(row) <= width:
            return None  # the parsers disagree, or a row without the unnamed trailing fields
        reason = f"has {len(row)} fields, the header has {width}"
        bad.append(BadRecord(int(lines[number - 1]), reason))
    lines = lines[keep]
    dropped = {i: _HEADER_AGAIN for i in _header_rows(columns, header).tolist()}
    for at, reason in _unnamed_values(columns, _unnamed_tail(header), delimiter).items():
        dropped.setdefault(at, reason)
    if dropped:
        bad.extend(BadRecord(int(lines[i]), reason) for i, reason in dropped.items())
        bad.sort(key=lambda rec: rec.line)
        rest = np.ones(len(lines), dtype=bool)
        rest[list(dropped)] = False
        columns = [c.filter(pa.array(rest)) for c in columns]
        lines = lines[rest]
    cols = {h: _Col(arrow=c) for h, c in zip(header, columns, strict=True) if h}
    return Table(cols, lines), bad


def _unnamed_values(columns: list[pa.Array], tail: int, delimiter: str) -> dict[int, str]:
    """Row (position) -> reason, for the rows of columns parsed by pyarrow that hold a value
    in an unnamed column from ``tail`` on (:func:`_unnamed_tail`), the first such column
    named, as :func:`_read_csv` rejects them."""
    out: dict[int, str] = {}
    for at in range(tail, len(columns)):
        col = columns[at]
        filled = np.flatnonzero(pc.greater(pc.binary_length(col), 0).to_numpy(False))
        if not len(filled):
            continue
        for row, value in zip(filled.tolist(), col.take(pa.array(filled)).to_pylist(), strict=True):
            if row not in out and value.strip():
                out[row] = _unnamed_value(at, value, delimiter)
    return out


def _ends_in_quote(raw: bytes, delimiter: str) -> bool:
    """Whether the last non-empty line of ``raw`` leaves a quoted value open (read as the
    row reader reads it, after a line that ends a row)."""
    text = raw.rstrip(b"\r\n")
    last = text[text.rfind(b"\n") + 1 :].decode("utf-8", errors="surrogateescape")
    return any(isinstance(row, str) for _, row in _csv_rows([last], delimiter))


def _nonempty_lines(raw: bytes, start: int) -> tuple[np.ndarray, int]:
    """The 1-based numbers of the non-empty lines after the first (header) line, and the
    length of the longest line in bytes; lines end at \n (with \r\n counted as one end)."""
    buf = np.frombuffer(raw, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10)
    starts = np.concatenate(([start], ends + 1))
    stops = np.concatenate((ends, [len(buf)]))
    if raw.endswith(b"\n"):
        starts, stops = starts[:-1], stops[:-1]
    length = stops - starts
    has_cr = length > 0
    has_cr[has_cr] = buf[stops[has_cr] - 1] == 13
    length -= has_cr
    numbers = np.arange(1, len(starts) + 1, dtype=np.int64)
    return numbers[1:][length[1:] > 0], int(length.max(initial=0))


def _macos_metadata(name: str) -> bool:
    """Whether a photo's path (``/``-separated) names a file macOS adds beside the real ones:
    anything under ``__MACOSX/`` (as zip tools put them) or an AppleDouble ``._name``."""
    parts = name.split("/")
    return "__MACOSX" in parts[:-1] or parts[-1].startswith("._")


def photo_source_problem(path: Path) -> str | None:
    """Why ``path`` (which exists) cannot be an ``images`` source; None when it can: a
    folder or a file. A pipe (``/dev/stdin`` fed by a shell pipeline, a FIFO) or a device
    cannot: the photos' paths name the archive, which ``embed`` reads again."""
    if path.is_dir() or path.is_file():
        return None
    return (
        f"{path} is a pipe or a device, not a folder or a tar or zip archive file: the photos "
        "are read again by embed, from the paths the load stores (save the archive to a file)"
    )


def _read_images(path: Path) -> Iterator[Record | BadRecord]:
    """One row per image file of a folder or a tar or zip archive (``id``: the name without
    its suffix, ``path``, ``file``: the path inside the folder or archive); macOS metadata
    files (:func:`_macos_metadata`) are no images, and how many were skipped is logged. A
    photo of a folder that is a symbolic link to nothing (a broken link, a loop of links) is
    a bad record."""
    mac = 0
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() or _dead_link(p))
        for n, file in enumerate(files, start=1):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            rel = file.relative_to(path).as_posix()
            if _macos_metadata(rel):
                mac += 1
                continue
            dead = _dead_link(file)
            if dead is not None:
                yield BadRecord(n, f"photo {rel!r} {dead}")
                continue
            yield Record(n, {"id": file.stem, "path": str(file.resolve()), "file": rel})
    else:
        where = f"{path.resolve()}{ARCHIVE_SEP}"
        for entry in _zip_files(path) if is_zip(path) else _tar_files(path):
            if isinstance(entry, BadRecord):
                yield entry
                continue
            n, name = entry
            if not name.lower().endswith(IMAGE_SUFFIXES):
                continue
            if _macos_metadata(name):
                mac += 1
                continue
            yield Record(n, {"id": PurePosixPath(name).stem, "path": where + name, "file": name})
    if mac:
        log.info("%s: skipped %d macOS metadata files (__MACOSX/, ._name)", path, mac)


def _dead_link(path: Path) -> str | None:
    """What is wrong with ``path`` when it is a symbolic link that leads to no file or
    folder (``is a broken link: ...``); None for anything else."""
    if not path.is_symlink():
        return None
    try:
        path.stat()
    except OSError as exc:
        target = os.readlink(path)
        if exc.errno == errno.ELOOP:
            return f"is a symbolic link in a loop of links (to {target})"
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return f"is a broken link: its target {target} does not exist"
        return f"is a symbolic link that cannot be followed (to {target}): {exc.strerror}"
    return None


def _tar_files(path: Path) -> Iterator[tuple[int, str] | BadRecord]:
    """(member number, name) of the files of a tar archive, and a bad record for one that
    cannot be read (whole or from some member on)."""
    try:
        archive = tarfile.open(path, "r:*")  # noqa: SIM115 - closed by the with below
    except (tarfile.TarError, OSError, EOFError) as exc:
        yield BadRecord(1, archive_problem(path, exc))
        return
    with archive:
        yield from _tar_members(archive)


_TAR_ERRORS = (tarfile.TarError, EOFError, zlib.error, OSError)


def _tar_members(archive: tarfile.TarFile) -> Iterator[tuple[int, str] | BadRecord]:
    """The files of an open tar archive (see :func:`_tar_files`). A member is given once
    the archive is read past it (reading the next header checks that its data is all
    there): a member whose data an archive cut short ends within is the bad record, named,
    and a listing that stops at a header cut short or damaged (which :mod:`tarfile` takes
    for the archive's end) ends with one."""
    n = 0
    held: tarfile.TarInfo | None = None
    try:
        for member in archive:
            if held is not None:
                yield n, held.name
            n += 1
            # a second name of a file is a link member: the encoder reads its target
            held = member if member.isfile() or member.islnk() or member.issym() else None
        problem = _tar_end_problem(archive, n + 1)
    except _TAR_ERRORS as exc:
        if held is not None and _cut_short(archive, held):
            yield BadRecord(
                n,
                f"archive is truncated or damaged: member {_short(held.name)} is cut short "
                f"({exc}); the rest of the archive is skipped",
            )
            return
        problem = f"archive is truncated or damaged: {exc}"
    if held is not None:
        yield n, held.name
    if problem is not None:
        yield BadRecord(n + 1, problem)


def _cut_short(archive: tarfile.TarFile, member: tarfile.TarInfo) -> bool:
    """Whether the data of a member of a damaged archive runs past what can be read of it
    (a compressed archive is read again from its start to tell)."""
    if member.size <= 0 or archive.fileobj is None:
        return False
    try:
        archive.fileobj.seek(member.offset_data + member.size - 1)
        return not archive.fileobj.read(1)
    except _TAR_ERRORS:
        return True


def _tar_end_problem(archive: tarfile.TarFile, number: int) -> str | None:
    """Why the listing of a tar archive, which :mod:`tarfile` ended without an error, did
    not end where the archive does: at the header of member ``number``, cut short or not
    a tar header; None at the end-of-archive block (zeros) or where the file ends."""
    fh = archive.fileobj
    if fh is None:
        return None
    read = fh.tell() - archive.offset  # the block read where the listing stopped
    if read <= 0:
        return None
    if read < tarfile.BLOCKSIZE:
        return f"archive is truncated or damaged: it ends within the header of member {number}"
    fh.seek(archive.offset)  # within the block just read: no reading again
    if fh.read(tarfile.BLOCKSIZE) == tarfile.NUL * tarfile.BLOCKSIZE:
        return None
    return (
        f"archive is truncated or damaged: the header of member {number} is not a tar "
        "header; the rest of the archive is skipped"
    )


def _zip_files(path: Path) -> Iterator[tuple[int, str] | BadRecord]:
    """(member number, name) of the files of a zip archive (:func:`zip_name`; a symbolic
    link too: the encoder reads its target), read from its table of contents; a bad record
    when that cannot be read."""
    try:
        with open_zip(path) as archive:
            infos = archive.infolist()
    except zipfile.BadZipFile as exc:
        yield BadRecord(1, str(exc))
        return
    for n, info in enumerate(infos, start=1):
        if not info.is_dir():
            yield n, zip_name(info)
