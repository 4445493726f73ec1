"""Readers for the source formats a loader mapping can name.

Each reader yields :class:`Record` objects (a row with its 1-based line or row number) and,
for input it cannot read, :class:`BadRecord` objects with the reason, and goes on with the rest.

Formats: ``csv`` (a UTF-8 byte-order mark is dropped), ``jsonl`` (one JSON object per line),
``pylines`` (one Python literal dict per line, read with :func:`ast.literal_eval`), ``parquet``,
``images`` (a folder of image files or a tar archive of them; one row per image) and ``frame``
(a pandas DataFrame given in Python). Gzip compression is detected from the file's first bytes.
"""

from __future__ import annotations

import ast
import csv
import gzip
import io
import json
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from graphfusion.errors import MappingError

__all__ = ["Record", "BadRecord", "read_source", "FORMATS", "IMAGE_SUFFIXES", "ARCHIVE_SEP"]

FORMATS = ("csv", "jsonl", "pylines", "parquet", "images", "frame")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff")
#: Separator between an archive's path and a member's name in ``Image.path``.
ARCHIVE_SEP = "::"
#: Longest line accepted from a line-based source.
MAX_LINE_BYTES = 16 * 1024 * 1024


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
    raw: Any = gzip.open(path, "rb") if _is_gzip(path) else path.open("rb")  # noqa: SIM115
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="strict", newline="")


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
    if fmt == "frame" or isinstance(source, pd.DataFrame):
        if not isinstance(source, pd.DataFrame):
            raise MappingError(f"source {name!r} must be a pandas DataFrame")
        yield from _read_frame(source)
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


def _guard(path: Path, rows: Iterator[Record | BadRecord]) -> Iterator[Record | BadRecord]:
    """Turn a broken file (truncated gzip, bad encoding) into one bad record; keep what came."""
    last = 0
    try:
        for rec in rows:
            last = rec.line
            yield rec
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        yield BadRecord(last + 1, f"file is truncated or not valid gzip: {exc or 'unexpected end'}")
    except UnicodeDecodeError as exc:
        yield BadRecord(last + 1, f"not UTF-8 text ({exc.reason}); the rest of the file is skipped")
    except csv.Error as exc:
        yield BadRecord(last + 1, f"malformed CSV: {exc}; the rest of the file is skipped")


def _read_frame(frame: pd.DataFrame) -> Iterator[Record]:
    cols = [str(c) for c in frame.columns]
    for i, values in enumerate(frame.itertuples(index=False, name=None), start=1):
        yield Record(i, dict(zip(cols, values, strict=True)))


def _read_csv(path: Path, delimiter: str) -> Iterator[Record | BadRecord]:
    with _open_text(path) as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            return
        header = [h.strip() for h in header]
        width = len(header)
        line = reader.line_num
        for row in reader:
            line, start = reader.line_num, line + 1
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != width:
                yield BadRecord(start, f"has {len(row)} fields, the header has {width}")
                continue
            yield Record(start, dict(zip(header, row, strict=True)))


def _parse_json(text: str) -> Any:
    return json.loads(text)


def _parse_literal(text: str) -> Any:
    return ast.literal_eval(text)


def _read_lines(path: Path, parse: Any) -> Iterator[Record | BadRecord]:
    with _open_text(path) as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            if len(line) > MAX_LINE_BYTES:
                yield BadRecord(n, f"line longer than {MAX_LINE_BYTES} bytes")
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


def _read_parquet(path: Path) -> Iterator[Record | BadRecord]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:
        yield BadRecord(1, f"cannot read Parquet file: {exc}")
        return
    # ignore_metadata: a stored pandas index stays a plain column (e.g. a row id)
    yield from _read_frame(table.to_pandas(ignore_metadata=True))


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
                if not member.isfile() or not member.name.lower().endswith(IMAGE_SUFFIXES):
                    continue
                stem = Path(member.name).stem
                where = f"{path.resolve()}{ARCHIVE_SEP}{member.name}"
                yield Record(n, {"id": stem, "path": where, "file": member.name})
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        yield BadRecord(n + 1, f"archive is truncated or damaged: {exc}")
