"""Clear messages for loader input that used to load wrongly or report every row.

A CSV file read with the wrong delimiter and a CSV header that names a column twice are one
bad record each, on the header's line (both readers agree); the ``number`` transform reads a
hyphen inside a text as a hyphen, not as a minus sign; a recall row that is rejected leaves
nothing of itself behind.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

import graphfusion.mapping
from graphfusion.ingest import load
from graphfusion.mapping import parse_mapping
from graphfusion.readers import BadRecord, Record, read_source, read_table
from graphfusion.store import EmbeddedStore
from graphfusion.transforms import TRANSFORMS

try:
    import formats
    from builders import users_mapping as _users_mapping
except ImportError:  # tests/ imported as a package
    from tests import formats
    from tests.builders import users_mapping as _users_mapping


def _read(path: Path, **options: Any) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    """The rows and the bad records (line, reason) of a CSV file, after checking that both
    readers give the same."""
    records = list(read_source("csv", path, options=options))
    table, bad = read_table("csv", path, options=options)
    expected = [(r.line, r.reason) for r in records if isinstance(r, BadRecord)]
    assert [(b.line, b.reason) for b in bad] == expected
    rows = [r.data for r in records if isinstance(r, Record)]
    assert [
        {n: table.column(n).values()[i] for n in table.names} for i in range(len(table))
    ] == rows
    return rows, expected


# ----------------------------------------------------------------------------- delimiter


def test_a_file_read_with_the_wrong_delimiter_is_one_clear_reject(
    tmp_path: Path, store: EmbeddedStore
) -> None:
    path = tmp_path / "users.csv"
    path.write_text("id;name;age\nu1;Ann;30\nu2;Bo;31\nu3;Cy;32\n")
    reason = (
        "header has a single column 'id;name;age' read with the delimiter ','; the file's "
        "delimiter may be ';' (3 columns; set the table's 'delimiter' option); "
        "the rest of the file is skipped"
    )
    assert _read(path) == ([], [(1, reason)])
    report = load(store, _users_mapping(store), {"users": path})
    assert [(r.source, r.line, r.field, r.reason) for r in report.rejected] == [
        (str(path), 1, "", reason)
    ]  # one reject, not "missing key" on every row
    assert not any(report.nodes.values())
    # the delimiter is never guessed: the mapping's own loads the file
    report = load(store, _users_mapping(store, delimiter=";"), {"users": path})
    assert report.rejected == [] and report.nodes == {"User": 3}


@pytest.mark.parametrize(
    ("text", "delimiter", "other", "columns"),
    [
        ("id,name,age\nu1,Ann,30\n", ";", ",", 3),
        ("id\tname\nu1\tAnn\n", ",", "\t", 2),
        ("id|name|age|x\nu1|Ann|30|y\n", ",", "|", 4),
        ("id;name|age\nu1;Ann|30\n", ",", ";", 2),  # the first of equally many
        ('"id";"name"\nu1;Ann\n', ",", ";", 2),
    ],
)
def test_the_delimiter_the_file_may_have_is_named(
    tmp_path: Path, text: str, delimiter: str, other: str, columns: int
) -> None:
    path = tmp_path / "t.csv"
    path.write_text(text)
    rows, bad = _read(path, delimiter=delimiter)
    assert rows == [] and len(bad) == 1 and bad[0][0] == 1
    assert f"read with the delimiter {delimiter!r}" in bad[0][1]
    assert f"the file's delimiter may be {other!r} ({columns} columns;" in bad[0][1]


@pytest.mark.parametrize(
    ("text", "rows"),
    [
        ("id\nu1\nu2\n", [{"id": "u1"}, {"id": "u2"}]),  # one column, nothing to split
        ("id;\nu1;\n", [{"id;": "u1;"}]),  # a split would leave a name empty
        ("note\na;b\n", [{"note": "a;b"}]),  # only the header is looked at
        ("id,name,age\nu1,Ann;Bo,30\n", [{"id": "u1", "name": "Ann;Bo", "age": "30"}]),
    ],
)
def test_correct_files_are_untouched(tmp_path: Path, text: str, rows: list[dict[str, str]]) -> None:
    path = tmp_path / "t.csv"
    path.write_text(text)
    assert _read(path) == (rows, [])


def test_a_file_read_with_its_own_delimiter_loads(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("id;name\nu1;Ann\n")
    assert _read(path, delimiter=";") == ([{"id": "u1", "name": "Ann"}], [])


# ----------------------------------------------------------------------------- repeated names


def test_a_repeated_column_name_is_reported(tmp_path: Path, store: EmbeddedStore) -> None:
    path = tmp_path / "users.csv"
    path.write_text("id,name,age, name \nu1,Ann,30,Annie\nu2,Bo,31,Bob\n")
    reason = "header repeats column 'name' (columns 2 and 4); the rest of the file is skipped"
    assert _read(path) == ([], [(1, reason)])
    report = load(store, _users_mapping(store), {"users": path})
    assert [(r.source, r.line, r.field, r.reason) for r in report.rejected] == [
        (str(path), 1, "", reason)
    ]  # the source file and the column are named; no row loads with either column's value
    assert not any(report.nodes.values())


def test_a_repeated_name_is_found_in_gzip_and_after_a_byte_order_mark(tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "t.csv.gz"
    path.write_bytes(gzip.compress("\ufeffid,id\nu1,u2\n".encode()))
    assert _read(path) == (
        [],
        [(1, "header repeats column 'id' (columns 1 and 2); the rest of the file is skipped")],
    )


def test_a_parquet_file_that_repeats_a_column_name_is_reported(
    tmp_path: Path, store: EmbeddedStore
) -> None:
    """As a CSV header: one reject naming the column (it used to be pyarrow's message over
    nine lines, listing its own internal fields)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "users.parquet"
    columns = [pa.array(["u1"]), pa.array(["Ann"]), pa.array([30]), pa.array(["Annie"])]
    pq.write_table(pa.Table.from_arrays(columns, names=["id", "name", "age", "name"]), path)
    reason = "Parquet file repeats column 'name' (columns 2 and 4); the file is skipped"
    assert [(r.line, getattr(r, "reason", "")) for r in read_source("parquet", path)] == [
        (1, reason)
    ]
    table, bad = read_table("parquet", path)
    assert (len(table), [(b.line, b.reason) for b in bad]) == (0, [(1, reason)])
    mapping = _users_mapping(store, format="parquet")
    report = load(store, mapping, {"users": path})
    assert [(r.line, r.field, r.reason) for r in report.rejected] == [(1, "", reason)]
    assert not any(report.nodes.values())


def test_unnamed_columns_may_repeat(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("id,name,,\nu1,Ann,,\n")  # trailing delimiters, as spreadsheets write
    assert _read(path) == ([{"id": "u1", "name": "Ann"}], [])


# ----------------------------------------------------------------------------- number


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Model X-5", 5.0),  # a hyphen after a letter
        ("X-5 pack", 5.0),
        ("USD-7.50", 7.5),
        ("Size 10-12", 10.0),  # the first number; the hyphen after a digit
        ("Pack of 2-3", 2.0),
        ("--5", 5.0),  # after a hyphen: not a minus sign either
        # a minus sign that starts the number
        ("-5", -5.0),
        ("  -7.5 ", -7.5),
        ("was -3", -3.0),
        ("(-2)", -2.0),
        ("[-1,250.5]", -1250.5),
        ("$-4", -4.0),
        ("€-4", -4.0),
        ("-$5.00", -5.0),
        ("$ -3.5", -3.5),
        ("Temp:-5", -5.0),  # after a colon or an equals sign
        ("offset=-0.5", -0.5),
        ("- 6", -6.0),  # as before: space between the sign and the digits
        # kept: currency, thousands, first number
        ("$1,299.00", 1299.0),
        ("USD 7.99 (was 9.99)", 7.99),
        ("no price here", None),
    ],
)
def test_a_minus_sign_counts_only_where_it_starts_the_number(
    text: str, expected: float | None
) -> None:
    assert TRANSFORMS["number"](text, {}) == expected


def test_number_still_rejects_commas_that_are_not_thousands() -> None:
    with pytest.raises(ValueError, match="thousands separator"):
        TRANSFORMS["number"]("Model X-1,99", {})


# ----------------------------------------------------------------------------- recalls


def test_a_rejected_recall_row_leaves_nothing_behind(tmp_path: Path, store: EmbeddedStore) -> None:
    sources = formats.write_cpsc_recalls(tmp_path / "cpsc")
    report = load(store, "cpsc_recalls", sources)
    # reported once, not once per spec that reads the date (two Recall specs)
    line_10 = [(Path(r.source).name, r.target, r.field) for r in report.rejected if r.line == 10]
    assert line_10 == [("recalls.csv", "Recall node", "ts")]
    assert store.query("MATCH (r:Recall {id: '01-001'}) RETURN r.id AS id") == []
    # line 10 ("sometime in 2001") makes no product and no link of its own
    assert store.query("MATCH (p:Product {id: 'cpsc:01-001'}) RETURN p.id AS id") == []


def test_the_mapping_format_example_loads(tiny_shop: Path, store: EmbeddedStore) -> None:
    """The example in graphfusion.mapping's docstring (the README points to it) loads."""
    doc = graphfusion.mapping.__doc__ or ""
    example = doc.split("::\n\n", 1)[1].split("\n\n", 1)[0]
    mapping = parse_mapping(yaml.safe_load(textwrap.dedent(example)), store.schema)
    load(store, "synthetic", {"shop": tiny_shop})  # the categories its links lead to
    report = load(store, mapping, {"shop": tiny_shop})
    assert not report.rejected
    priced = store.query("MATCH (p:Product) WHERE p.price > 0 RETURN count(p) AS n")
    assert priced == [{"n": 40}]
