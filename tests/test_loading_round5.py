"""Loading, fifth probe: keys in two Unicode forms, CSV headers with unnamed columns, numbers
in fullwidth forms, Excel's ``sep=`` line, column names in another Unicode form.

Each case is checked on the row path (:func:`read_source`, :func:`key_list`, the single-value
converter) and the column path (:func:`read_table`, :func:`keys`, :func:`convert`), which must
agree, and through a load into a real embedded store.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from builders import both_readers, users_mapping

from graphfusion.columnar import Evaluated, convert, key_list, keys
from graphfusion.errors import MappingError
from graphfusion.ingest import load
from graphfusion.mapping import LoaderMapping, parse_mapping
from graphfusion.readers import _csv_table
from graphfusion.schema import PropertyType
from graphfusion.store import EmbeddedStore
from graphfusion.table import Column
from graphfusion.values import coerce, converter

NFC = unicodedata.normalize("NFC", "Café")
NFD = unicodedata.normalize("NFD", "Café")


def _shop(store: EmbeddedStore) -> LoaderMapping:
    """Products (id, title), users (id) and purchases (user, product), all CSV."""
    raw = {
        "name": "mini_shop",
        "sources": {n: {"description": n} for n in ("products", "users", "purchases")},
        "tables": {n: {"source": n, "format": "csv"} for n in ("products", "users", "purchases")},
        "nodes": [
            {
                "label": "Product",
                "table": "products",
                "key": "id",
                "properties": {"title": "title"},
            },
            {"label": "User", "table": "users", "key": "id"},
        ],
        "relationships": [
            {
                "type": "PURCHASED",
                "table": "purchases",
                "from": {"label": "User", "key": "user"},
                "to": {"label": "Product", "key": "product"},
            }
        ],
    }
    return parse_mapping(raw, store.schema)


def _write(folder: Path, **files: str) -> dict[str, Path]:
    out = {}
    for name, text in files.items():
        out[name] = folder / f"{name}.csv"
        out[name].write_text(text, encoding="utf-8")
    return out


# ----------------------------------------------------------------------------- Unicode keys


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (NFD, NFC),
        (f" x{NFD}1 ", f"x{NFC}1"),  # ASCII at both ends: the column path's quick check
        (NFC, NFC),
        ("p0001", "p0001"),
        (unicodedata.normalize("NFD", "Ångström-ñ"), "Ångström-ñ"),
        ("\ufb01", "\ufb01"),  # a ligature: NFC keeps it (NFKC would not)
        ([NFD, "b"], [NFC, "b"]),
    ],
)
def test_keys_are_nfc_on_both_paths(value: Any, expected: Any) -> None:
    """A key is stored in one Unicode form, NFC, whatever form its file typed it in; a key
    in NFC already (ASCII included) is unchanged."""
    want = expected if isinstance(expected, list) else [expected]
    assert key_list(value) == want
    if isinstance(value, list):
        return
    found = keys(Evaluated(Column(arrow=pa.array([value, "p1", value]))))
    assert found.keys.to_pylist() == [expected, "p1", expected]
    assert not found.errors


def test_a_reference_typed_in_another_unicode_form_links(
    tmp_path: Path, store: EmbeddedStore
) -> None:
    """'Café' typed in NFC in products.csv and in NFD in purchases.csv is one product: the
    purchase links to it (it used to be rejected as "Product 'Café' does not exist")."""
    paths = _write(
        tmp_path,
        products=f"id,title\n{NFC},Coffee\nx{NFC}1,Mug\n",
        users="id\nu1\n",
        purchases=f"user,product\nu1,{NFD}\nu1,x{NFD}1\n",
    )
    report = load(store, _shop(store), paths)
    assert [(r.line, r.reason) for r in report.rejected] == []
    assert report.relationships == {"PURCHASED": 2}
    linked = store.query("MATCH (u:User)-[:PURCHASED]->(p:Product) RETURN p.id AS id ORDER BY id")
    assert [row["id"] for row in linked] == [NFC, f"x{NFC}1"]


def test_one_key_in_two_unicode_forms_is_a_repeat(tmp_path: Path, store: EmbeddedStore) -> None:
    """The two spellings of one key in one table are one node, the second a repeated key, as
    any other repeat is (they used to make two products that look the same)."""
    paths = _write(tmp_path, users=f"id,name,age\n{NFC},Ann,30\n{NFD},Bo,31\n")
    report = load(store, users_mapping(store), paths)
    assert [(r.line, r.reason) for r in report.rejected] == [
        (3, f"duplicate key {NFC!r} (first at line 2)")
    ]
    assert store.query("MATCH (u:User) RETURN u.id AS id, u.name AS name") == [
        {"id": NFC, "name": "Ann"}
    ]


# ----------------------------------------------------------------------------- unnamed columns


def test_trailing_unnamed_columns_are_no_fields(tmp_path: Path) -> None:
    """``id,name,,`` (as spreadsheets write) gives rows of ``id`` and ``name`` only, on both
    paths (an extra ``''`` key used to come with every row), and the column path reads it."""
    path = tmp_path / "t.csv"
    path.write_text("id,name,,\nu1,Ann,,\nu2,Bo, ,\n")
    assert both_readers("csv", path) == (
        [(2, {"id": "u1", "name": "Ann"}), (3, {"id": "u2", "name": "Bo"})],
        [],
    )
    assert _csv_table(path, ",") is not None  # not left to the row reader


def test_a_leading_unnamed_column_is_no_field(tmp_path: Path) -> None:
    """A pandas index written with the frame (``,id,name``) holds values under no name: it
    is left out (no mapping can name it), and its rows load."""
    path = tmp_path / "t.csv"
    path.write_text(",id,name\n0,u1,Ann\n1,u2,Bo\n")
    assert both_readers("csv", path) == (
        [(2, {"id": "u1", "name": "Ann"}), (3, {"id": "u2", "name": "Bo"})],
        [],
    )


def test_a_value_under_a_trailing_unnamed_column_rejects_its_row(
    tmp_path: Path, store: EmbeddedStore
) -> None:
    """A value where the header has no name after its last named column is most likely a
    value shifted by a delimiter that was not quoted (``Smith, John``): the row is rejected
    with the column's number, not loaded with its name cut (``Smith``)."""
    path = tmp_path / "users.csv"
    path.write_text("id,name,age,,\nu1,Smith, John,40,\nu2,Bo,31,,\nu3,Cy,32,, x \n")
    reason = (
        "column 4 has no name in the header but holds '40' in this row (a value holding the "
        "delimiter ',' without quotes?)"
    )
    reason5 = reason.replace("column 4", "column 5").replace("'40'", "' x '")
    assert both_readers("csv", path) == (
        [(3, {"id": "u2", "name": "Bo", "age": "31"})],
        [(2, reason), (4, reason5)],
    )
    report = load(store, users_mapping(store), {"users": path})
    assert [(Path(r.source).name, r.line, r.reason) for r in report.rejected] == [
        ("users.csv", 2, reason),
        ("users.csv", 4, reason5),
    ]
    assert report.nodes == {"User": 1}


def test_named_columns_repeated_beside_unnamed_ones_are_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("id,name,,name\nu1,Ann,,A\n")
    rows, bad = both_readers("csv", path)
    assert rows == []
    assert [line for line, _ in bad] == [1]
    assert "repeats column 'name'" in bad[0][1]


# ----------------------------------------------------------------------------- fullwidth numbers


@pytest.mark.parametrize(
    ("text", "ptype", "expected"),
    [
        ("１２３４", "int", 1234),  # read before too
        ("１,２３４", "int", 1234),
        ("１，２３４", "int", 1234),  # a fullwidth comma
        ("１，２３４", "float", 1234.0),
        ("１２３４．５", "float", 1234.5),  # a fullwidth full stop
        ("１,２３４.５", "float", 1234.5),
        ("－５", "int", -5),  # a fullwidth hyphen-minus
        ("\u22125.5", "float", -5.5),  # the minus sign, as the number transform reads it
        ("١,٢٣٤", "int", 1234),  # Arabic-Indic digits, which Python reads, with a comma
        ("1,234", "int", 1234),
    ],
)
def test_fullwidth_numbers_read_as_their_ascii_forms(text: str, ptype: str, expected: Any) -> None:
    """Fullwidth digits were read and fullwidth digits with a thousands separator were not:
    fullwidth forms now read as the ASCII characters they are wide forms of, on both paths."""
    target = PropertyType(ptype)
    assert coerce(text, target) == expected
    assert converter(target)(text) == expected
    arr, errors = convert(Evaluated(Column(arrow=pa.array([text, "7"]))), target)
    assert (arr.to_pylist(), errors) == ([expected, 7], {})


@pytest.mark.parametrize("text", ["１,９９", "１，９９", "１２_３４", "１２３４，５"])
def test_fullwidth_numbers_keep_the_comma_rule(text: str) -> None:
    """A comma (of either width) is still only a thousands separator, and an underscore is
    still refused."""
    target = PropertyType("float")
    with pytest.raises(ValueError, match="is not a number"):
        coerce(text, target)
    _, errors = convert(Evaluated(Column(arrow=pa.array([text]))), target)
    assert "is not a number" in errors[0]


# ----------------------------------------------------------------------------- Excel's sep= line


def test_excels_sep_line_is_read_as_the_delimiter_note(
    tmp_path: Path, store: EmbeddedStore
) -> None:
    """Excel writes (and reads) ``sep=,`` as a first line naming the delimiter: it is no
    header (every row used to be rejected as "has 3 fields, the header has 2")."""
    path = tmp_path / "users.csv"
    path.write_text("sep=,\nid,name,age\nu1,Ann,30\n\nu2,Bo,31\n")
    assert both_readers("csv", path) == (
        [
            (3, {"id": "u1", "name": "Ann", "age": "30"}),
            (5, {"id": "u2", "name": "Bo", "age": "31"}),
        ],
        [],
    )
    report = load(store, users_mapping(store), {"users": path})
    assert (report.nodes, report.rejected) == ({"User": 2}, [])


def test_an_excel_sep_line_naming_another_delimiter_is_one_clear_reject(tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    path.write_text("sep=;\nid;name;age\nu1;Ann;30\n")
    reason = (
        "line 1, 'sep=;', says the file's delimiter is ';', but the table reads it with ',' "
        "(set the table's 'delimiter' option); the rest of the file is skipped"
    )
    assert both_readers("csv", path) == ([], [(1, reason)])
    path.write_text("sep=;\nid;name;age\nu1;Ann;30\n")
    assert _both_with(path, delimiter=";") == [(3, {"id": "u1", "name": "Ann", "age": "30"})]


def _both_with(path: Path, **options: Any) -> list[tuple[int, dict[str, Any]]]:
    """The good rows of a CSV file read with ``options``, the same from both readers, with no
    bad record."""
    rows, bad = both_readers("csv", path, **options)
    assert bad == []
    return rows


# ----------------------------------------------------------------------------- column names


def test_a_column_named_in_another_unicode_form_is_named_as_such(
    tmp_path: Path, store: EmbeddedStore
) -> None:
    """A header typed in NFD (as macOS exports may) against a mapping typed in NFC: the
    message said the file lacks a column it lists, spelled alike; it now says why."""
    path = tmp_path / "users.csv"
    path.write_text(f"id,{unicodedata.normalize('NFD', 'nämé')},age\nu1,Ann,30\n")
    raw = {
        "name": "m",
        "sources": {"users": {"description": "users"}},
        "tables": {"users": {"source": "users", "format": "csv"}},
        "nodes": [{"label": "User", "table": "users", "key": "id", "properties": {"name": "nämé"}}],
    }
    with pytest.raises(MappingError, match="another Unicode form") as info:
        load(store, parse_mapping(raw, store.schema), {"users": path})
    assert "no column 'nämé'" in str(info.value)
    nfd = unicodedata.normalize("NFD", "nämé")
    assert f"the file's {nfd!r} is the same name in Unicode form NFD" in str(info.value)


def test_rows_without_the_unnamed_trailing_fields_load(tmp_path: Path) -> None:
    """A header with trailing delimiters over rows without them (``id,name,,`` then
    ``u1,Ann``): the fields a row lacks are the unnamed ones, so it loads; a row that lacks a
    named field is still rejected."""
    path = tmp_path / "t.csv"
    path.write_text("id,name,,\nu1,Ann\nu2,Bo,\nu3,Cy,,\nu4\nu5,Di,,,\n")
    assert both_readers("csv", path) == (
        [
            (2, {"id": "u1", "name": "Ann"}),
            (3, {"id": "u2", "name": "Bo"}),
            (4, {"id": "u3", "name": "Cy"}),
        ],
        [(5, "has 1 fields, the header has 4"), (6, "has 5 fields, the header has 4")],
    )
