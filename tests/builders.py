"""Small inputs that several test files build alike: an Amazon QA file, a pipe, a store of
users linked to products, a mapping of users, a read that never ends; and the agreement check
of the two file readers."""

from __future__ import annotations

import gzip
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from graphfusion.mapping import LoaderMapping, parse_mapping
from graphfusion.readers import BadRecord, Record, read_source, read_table
from graphfusion.store import EmbeddedStore

#: A read that runs far longer than any test waits (10^10 rows) and that a time limit stops at
#: once. Its lists are short: LadybugDB builds a ``range()``'s whole list before a time limit
#: can stop it (README, limits), so a billion-long one takes a minute to stop.
ENDLESS_QUERY = (
    "UNWIND range(1, 100000) AS x UNWIND range(1, 100000) AS y "
    "WITH x * y AS z WHERE z % 7 = 3 RETURN count(*) AS n"
)


def qa_file(path: Path, rows: Sequence[tuple[str, str, str]], first_day: int = 0) -> Path:
    """An Amazon QA file (one Python-literal dict per line) of (asin, question, answer)."""
    lines = []
    for n, (asin, question, answer) in enumerate(rows):
        day = 1403852400 + 86400 * (first_day + n)
        line = {"questionType": "open-ended", "asin": asin, "answerTime": "Jun 27, 2014"}
        lines.append(repr({**line, "unixTime": day, "question": question, "answer": answer}))
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


def through_fifo(tmp_path: Path, data: bytes, done: threading.Event) -> Path:
    """A FIFO that a thread writes ``data`` into once (as a shell pipeline feeds /dev/stdin);
    a reader that opens it again, until ``done``, finds it empty (rather than waiting)."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def feed() -> None:
        with fifo.open("wb") as fh:
            fh.write(data)
        while not done.is_set():
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:  # no reader waiting
                time.sleep(0.01)

    threading.Thread(target=feed, daemon=True).start()
    return fifo


def linked_shop(folder: Path, per_user: int = 5, rtype: str = "PURCHASED") -> EmbeddedStore:
    """A store of 12 users who each have ``per_user`` ``rtype`` links to 12 products."""
    store = EmbeddedStore(folder)
    users, products = [f"u{i:02d}" for i in range(12)], [f"p{i:02d}" for i in range(12)]
    store.upsert_nodes("User", pd.DataFrame({"id": users}))
    store.upsert_nodes("Product", pd.DataFrame({"id": products}))
    pairs = [(u, products[(i + j) % 12]) for i, u in enumerate(users) for j in range(per_user)]
    store.upsert_relationships(
        rtype, pd.DataFrame(pairs, columns=["src", "dst"]), start="User", end="Product"
    )
    return store


def users_mapping(store: EmbeddedStore, **table: Any) -> LoaderMapping:
    """A mapping of one table ``users`` (csv unless ``format`` says otherwise; ``table``'s
    other settings too) to User nodes keyed by ``id`` with ``name`` and ``age``."""
    raw = {
        "name": "mini_users",
        "sources": {"users": {"description": "users"}},
        "tables": {"users": {"source": "users", "format": "csv", **table}},
        "nodes": [
            {
                "label": "User",
                "table": "users",
                "key": "id",
                "properties": {"name": "name", "age": "age"},
            }
        ],
    }
    return parse_mapping(raw, store.schema)


def both_readers(
    fmt: str, path: Path, **options: Any
) -> tuple[list[tuple[int, dict[str, Any]]], list[tuple[int, str]]]:
    """The good rows (line, data) and bad records (line, reason) of a file read with
    ``options``, after checking that the row and the column readers agree on them."""
    records = list(read_source(fmt, path, options=options or None))
    table, bad = read_table(fmt, path, options=options or None)
    rows = [(r.line, r.data) for r in records if isinstance(r, Record)]
    bads = [(r.line, r.reason) for r in records if isinstance(r, BadRecord)]
    columns = [(n, table.column(n).values()) for n in table.names]
    assert [(b.line, b.reason) for b in bad] == bads
    assert [
        (line, {n: values[i] for n, values in columns})
        for i, line in enumerate(table.lines.tolist())
    ] == rows
    return rows, bads
