"""Readers for the source formats a loader mapping can name.

Each reader yields :class:`Record` objects (a row with its 1-based line or row number) and,
for input it cannot read, :class:`BadRecord` objects with the reason, and goes on with the rest.

Formats: ``csv`` (a UTF-8 byte-order mark is dropped), ``jsonl`` (one JSON object per line),
``pylines`` (one Python literal dict per line, read with :func:`ast.literal_eval`), ``parquet``,
``images`` (a folder of image files or a tar archive of them; one row per image) and ``frame``
(a pandas DataFrame given in Python). Gzip compression is detected from the file's first bytes.

A row (CSV) or line (JSON lines, Python literals) holding bytes that are not UTF-8 is a bad
record of its own ("not UTF-8 text"); the rows around it load. A line over
:data:`MAX_LINE_BYTES` is never held whole: it is read past and its row is a bad record. A CSV
field may be that long (a value longer than a property takes is rejected with its row when
converted). A CSV quote never closed swallows the rest of the file: that is one bad record, on
the line of the row it opens in, naming the lines skipped. A CSV header that names a column
twice, or that has a single column whose name another usual delimiter (``,``, ``;``, tab,
``|``) would split (a ``;``-delimited file read with ``,``), is one bad record too, on the
header's line, naming the column (and the delimiter the file may have, which is never used
in its place); the rest of the file is skipped. The header is the first line with something
on it: blank lines before it are skipped. A Parquet file that names a column twice is one bad
record as well (on line 1), and a DataFrame that does is refused by the loader
(:func:`graphfusion.ingest.check_sources`).

:func:`read_table` reads a whole table into columns (:class:`graphfusion.table.Table`) with the
same values, line numbers and bad records as :func:`read_source`. CSV files are parsed by
pyarrow; a file whose line numbers, values or messages pyarrow cannot reproduce exactly (a
quoted value spanning lines, bare carriage returns, bad UTF-8, a truncated gzip stream, quotes
in the header, a single column, a line about as long as :data:`MAX_LINE_BYTES`, a byte-order
mark starting the first row) is read row by row instead.
"""

from __future__ import annotations

import ast
import csv
import gzip
import io
import json
import os
import re
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

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
]

FORMATS = ("csv", "jsonl", "pylines", "parquet", "images", "frame")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff")
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


#: Longest line accepted from a line-based source, and longest CSV field (in characters).
MAX_LINE_BYTES = 16 * 1024 * 1024

# Bytes that are not UTF-8 decode (errors="surrogateescape") to U+DC80..U+DCFF.
_UNDECODED = re.compile("[\udc80-\udcff]")
# What the csv reader is fed after the last line: a lone surrogate no decoded text holds,
# then a quote that closes a quoted value left open, so that such a value ends with it.
_END = "\ud800"
_END_LINE = _END + '"\n'
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


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _open_text(path: Path) -> io.TextIOBase:
    """The file as text; bytes that are not UTF-8 become lone surrogates
    (:func:`_not_utf8` finds them), so that one bad byte costs only its own row."""
    raw: Any = gzip.open(path, "rb") if _is_gzip(path) else path.open("rb")  # noqa: SIM115
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")


def _not_utf8(texts: Iterable[str]) -> str | None:
    """Why ``texts`` (read by :func:`_open_text`) cannot be loaded: the first byte that is not
    UTF-8; None when they are all good text."""
    for text in texts:
        if text.isascii():  # most text: no search needed
            continue
        bad = _UNDECODED.search(text)
        if bad is not None:
            return f"not UTF-8 text (byte 0x{ord(bad.group(0)) - 0xDC00:02x})"
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
        MappingError: The source does not exist or is not of the declared kind.
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
            yield start, f"malformed CSV: {exc}; the rest of the file is skipped"
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
        rows = _csv_rows(_bounded_lines(fh, MAX_LINE_BYTES), delimiter)
        # the header is the first row with something on it
        first = next((r for r in rows if isinstance(r[1], str) or not _blank(r[1])), None)
        if first is None:
            return
        line, header = first
        if isinstance(header, str):
            yield BadRecord(line, header)
            return
        bad = _not_utf8(header)
        if bad is not None:
            yield BadRecord(line, f"header is {bad}; the rest of the file is skipped")
            return
        header = [h.strip() for h in header]
        problem = _header_problem(header, delimiter)
        if problem is not None:
            yield BadRecord(line, f"{problem}; the rest of the file is skipped")
            return
        width = len(header)
        for start, row in rows:
            if isinstance(row, str):
                yield BadRecord(start, row)
            elif _blank(row):
                continue
            elif (bad := _not_utf8(row)) is not None:
                yield BadRecord(start, bad)
            elif len(row) != width:
                yield BadRecord(start, f"has {len(row)} fields, the header has {width}")
            else:
                yield Record(start, dict(zip(header, row, strict=True)))


def _blank(row: list[str]) -> bool:
    """Whether a CSV row is a blank line (nothing, or one field of spaces)."""
    return not row or (len(row) == 1 and not row[0].strip())


def _header_problem(header: list[str], delimiter: str) -> str | None:
    """Why a CSV header cannot be read; None when it can.

    Two problems are found: a column name given twice (which of the two columns a field
    means is not known; unnamed columns, as trailing delimiters make, may repeat), and a
    single column whose name splits into several names at another usual delimiter
    (:data:`_OTHER_DELIMITERS`), as when a file delimited by ``;`` is read with ``,``. The
    other delimiter is only named in the message, never used.

    Args:
        header: The header's names, stripped.
        delimiter: The delimiter the file is read with.

    Returns:
        The reason, or None.
    """
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


def _parse_json(text: str) -> Any:
    return json.loads(text)


def _parse_literal(text: str) -> Any:
    return ast.literal_eval(text)


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


def _read_lines(path: Path, parse: Any) -> Iterator[Record | BadRecord]:
    with _open_text(path) as fh:
        for n, line in enumerate(_bounded_lines(fh, MAX_LINE_BYTES), start=1):
            if line is None:
                yield BadRecord(n, f"line longer than {MAX_LINE_BYTES} bytes")
                continue
            if not line.strip():
                continue
            bad = _not_utf8([line])
            if bad is not None:
                yield BadRecord(n, bad)
                continue
            try:
                obj = parse(line)
            except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError) as exc:
                yield BadRecord(n, f"malformed line: {str(exc).splitlines()[0][:120]}")
                continue
            if not isinstance(obj, dict):
                yield BadRecord(n, f"expected an object, got {type(obj).__name__}")
                continue
            yield Record(n, obj)


def _parquet_frame(path: Path) -> tuple[pd.DataFrame | None, list[BadRecord]]:
    import pyarrow.parquet as pq

    source: Any = path
    if _is_gzip(path):
        try:
            source = pa.BufferReader(gzip.decompress(path.read_bytes()))
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
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        raw.decode("utf-8")  # strict, as the row reader decodes
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile, UnicodeDecodeError):
        return None
    start = 3 if raw.startswith(b"\xef\xbb\xbf") else 0
    # Line ends: \n or \r\n only (a bare \r ends a line for the csv module, not for pyarrow).
    if raw.find(b"\r", start) >= 0 and raw.count(b"\r", start) != raw.count(b"\r\n", start):
        return None
    if start == len(raw):
        return _empty(), []
    end = raw.find(b"\n", start)
    end = len(raw) if end < 0 else end
    head = raw[start:end].removesuffix(b"\r").decode("utf-8")
    if '"' in head:
        return None
    header = [h.strip() for h in next(csv.reader([head], delimiter=delimiter), [])]
    if len(header) < 2 or len(set(header)) != len(header):
        return None  # one column: the row reader's rule for blank rows; none or repeated names
    width = len(header)
    lines, longest = _nonempty_lines(raw, start)
    if longest + 2 > MAX_LINE_BYTES:  # (with its line end) maybe over the limit of a line
        return None
    if not len(lines):
        return Table({h: _Col(arrow=pa.array([], type=pa.string())) for h in header}, lines), []
    body = pa.py_buffer(raw)[min(end + 1, len(raw)) :]
    if raw.startswith(b"\xef\xbb\xbf", end + 1):
        return None  # pyarrow would drop a byte-order mark that starts the first row
    names = [f"f{i}" for i in range(width)]

    def parse(threads: bool) -> tuple[pa.Table, list[tuple[int | None, str]]]:
        invalid: list[tuple[int | None, str]] = []

        def on_invalid(row: Any) -> str:
            invalid.append((row.number, row.text))
            return "skip"

        table = pcsv.read_csv(
            body,
            read_options=pcsv.ReadOptions(column_names=names, use_threads=threads),
            parse_options=pcsv.ParseOptions(
                delimiter=delimiter,
                newlines_in_values=True,
                ignore_empty_lines=True,
                invalid_row_handler=on_invalid,
            ),
            convert_options=pcsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
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
        if len(row) == width:
            return None  # the two parsers disagree about this row
        reason = f"has {len(row)} fields, the header has {width}"
        bad.append(BadRecord(int(lines[number - 1]), reason))
    cols = {h: _Col(arrow=c) for h, c in zip(header, columns, strict=True)}
    return Table(cols, lines[keep]), bad


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


def _read_images(path: Path) -> Iterator[Record | BadRecord]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        for n, file in enumerate(files, start=1):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            rel = file.relative_to(path).as_posix()
            yield Record(n, {"id": file.stem, "path": str(file.resolve()), "file": rel})
        return
    try:
        archive = tarfile.open(path, "r:*")  # noqa: SIM115 - closed by the with below
    except (tarfile.TarError, OSError, EOFError) as exc:
        yield BadRecord(1, f"not a readable tar archive: {exc}")
        return
    n = 0
    try:
        with archive:
            for member in archive:
                n += 1
                # a second name of a file is a link member: the encoder reads its target
                photo = member.isfile() or member.islnk() or member.issym()
                if not photo or not member.name.lower().endswith(IMAGE_SUFFIXES):
                    continue
                stem = Path(member.name).stem
                where = f"{path.resolve()}{ARCHIVE_SEP}{member.name}"
                yield Record(n, {"id": stem, "path": where, "file": member.name})
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        yield BadRecord(n + 1, f"archive is truncated or damaged: {exc}")
