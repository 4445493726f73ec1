"""Converting raw values to schema types."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from graphfusion.schema import Property, PropertyType, load_schema
from graphfusion.transforms import TRANSFORMS
from graphfusion.values import (
    MAX_STRING_BYTES,
    coerce,
    converter,
    range_bounds,
    range_fault,
    union_lists,
)

S, INT, F, B, D = (PropertyType(n) for n in ("string", "int", "float", "bool", "datetime"))
LS = PropertyType("list[string]")
V3 = PropertyType("vector", dim=3, similarity="cosine")


@pytest.mark.parametrize(
    ("value", "ptype", "expected"),
    [
        ("  ", S, None),
        (None, F, None),
        (math.nan, INT, None),
        (12, S, "12"),
        ("1,234", INT, 1234),
        ("-1,234,567", INT, -1234567),
        (" 1,234.5 ", F, 1234.5),
        ("+12,345", F, 12345.0),
        ("3.0", INT, 3),
        (np.int64(7), INT, 7),
        ("$", S, "$"),
        ("2.5", F, 2.5),
        (3, F, 3.0),
        ("yes", B, True),
        ("0", B, False),
        (np.bool_(True), B, True),
        ("2024-03-05T14:22:10", D, dt.datetime(2024, 3, 5, 14, 22, 10)),
        ("2024-03-05T14:22:10+02:00", D, dt.datetime(2024, 3, 5, 12, 22, 10)),
        (1_700_000_000, D, dt.datetime(2023, 11, 14, 22, 13, 20)),
        ("a; b;;c", LS, ["a", "b", "c"]),
        (["x", None, "y"], LS, ["x", "y"]),
        (np.array([1, 2, 3]), V3, [1.0, 2.0, 3.0]),
    ],
)
def test_coerce(value: object, ptype: PropertyType, expected: object) -> None:
    assert coerce(value, ptype) == expected
    assert converter(ptype)(value) == expected  # the fast path agrees


@pytest.mark.parametrize(
    ("value", "ptype", "match"),
    [
        ("abc", INT, "not an integer"),
        ("2.5", INT, "not a whole number"),
        ("inf", F, "not a finite number"),
        (True, F, "boolean"),
        ("maybe", B, "not a boolean"),
        ("next tuesday-ish", D, "not a date"),
        (b"\xff\xfe", S, "not UTF-8"),
        ("a\x00b", S, "NUL"),
        ("cut \ud83d emoji", S, "lone surrogate"),  # as the column path refuses it
        ("x" * (MAX_STRING_BYTES + 1), S, "longer than"),
        ([1.0, math.nan, 2.0], V3, "NaN"),
        ([1.0, 2.0], V3, "has 2 values"),
        ("1,2,3", V3, "got a string"),
        (["a", "b", "c"], V3, "not numbers"),
        ({"a": 1}, S, "expected a string"),
        # a comma is only a thousands separator: "1,99" is not 199
        ("1,99", F, "a comma is read only as a thousands separator"),
        ("12,50", F, "a comma is read only as a thousands separator"),
        ("1,2,3", F, "a comma is read only as a thousands separator"),
        ("1,2,3", INT, "a comma is read only as a thousands separator"),
        (",5", INT, "a comma is read only as a thousands separator"),
        ("1234,567", F, "a comma is read only as a thousands separator"),
        # Python's digit grouping is no number in data: "2020_05" is not 202005
        ("1_000", INT, "an underscore"),
        ("2020_05", F, "an underscore"),
        ("1_0.5", INT, "an underscore"),
        # finite as given, infinite as the 32-bit floats vectors are stored as
        ([1e39, 0.0, 1.0], V3, r"NaN or infinite values \(as 32-bit floats\)"),
        # pandas reads "2024\x00" as 2024-01-01
        ("2024\x00", D, "holds a control character"),
        ("2024-05-01T10:00\x1b", D, "holds a control character"),
        # JSON's true is no count (it loaded as 1, where a float refused it)
        (True, INT, "got a boolean"),
        # pandas dates these on the day of the load, or in the year 1
        ("12:30", D, "not a date"),
        ("9am", D, "not a date"),
        ("now", D, "not a date"),
        ("Today", D, "not a date"),
        ("Dec 5", D, "not a date"),
        # a list said "'[19.99, 24.99]' is not a number: a comma is read only as a ..."
        ([19.99, 24.99], F, "expected one number, got a list"),
        ((1, 2), INT, "expected one number, got a tuple"),
        ({"amount": 5}, F, "expected one number, got a dict"),
    ],
)
def test_coerce_rejects_with_a_reason(value: object, ptype: PropertyType, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        coerce(value, ptype)
    with pytest.raises(ValueError, match=match):
        converter(ptype)(value)


PRICE = Property("price", F, minimum=0)
AGE = Property("age", INT, minimum=0, maximum=150)
RATING = Property("rating", F, minimum=1, maximum=5)
SHARE = Property("share", F, minimum=-0.5, maximum=0.5)


@pytest.mark.parametrize(
    ("value", "prop", "expected"),
    [
        ("0", PRICE, 0.0),
        ("-0", PRICE, -0.0),  # not below 0
        (0, PRICE, 0.0),
        ("1,234.5", PRICE, 1234.5),
        (1e300, PRICE, 1e300),
        ("", PRICE, None),  # missing is not out of range
        (None, AGE, None),
        (math.nan, AGE, None),
        ("150", AGE, 150),
        (" 0 ", AGE, 0),
        (np.int64(42), AGE, 42),
        (42.0, AGE, 42),
        ("5", RATING, 5.0),
        (1, RATING, 1.0),
        ("0.5", SHARE, 0.5),
        (-0.5, SHARE, -0.5),
    ],
)
def test_a_property_in_range_converts_as_its_type(
    value: object, prop: Property, expected: object
) -> None:
    got = coerce(value, prop)
    assert got == expected and type(got) is type(expected)
    fast = converter(prop)(value)
    assert fast == expected and type(fast) is type(expected)


@pytest.mark.parametrize(
    ("value", "prop", "reason"),
    [
        ("-5", PRICE, "price -5.0 is below its minimum 0"),
        (-0.01, PRICE, "price -0.01 is below its minimum 0"),
        ("-1,234.5", PRICE, "price -1234.5 is below its minimum 0"),
        ("-3", AGE, "age -3 is below its minimum 0"),
        (-3.0, AGE, "age -3 is below its minimum 0"),
        ("151", AGE, "age 151 is above its maximum 150"),
        (np.int64(2**40), AGE, "age 1099511627776 is above its maximum 150"),
        (True, RATING, None),  # not a number at all: the type's reason comes first
        ("11", RATING, "rating 11.0 is above its maximum 5"),
        (11, RATING, "rating 11.0 is above its maximum 5"),
        ("-3", RATING, "rating -3.0 is below its minimum 1"),
        (0.999, RATING, "rating 0.999 is below its minimum 1"),
        ("0.75", SHARE, "share 0.75 is above its maximum 0.5"),
        ("-0.51", SHARE, "share -0.51 is below its minimum -0.5"),
    ],
)
def test_a_property_out_of_range_is_refused_with_a_reason(
    value: object, prop: Property, reason: str | None
) -> None:
    for convert in (lambda v: coerce(v, prop), converter(prop)):
        with pytest.raises(ValueError) as info:
            convert(value)
        if reason is not None:
            assert str(info.value) == reason
        else:
            assert str(info.value) == "expected a number, got a boolean"


def test_a_type_alone_has_no_range() -> None:
    # a PropertyType (as Store.add_nodes converts with) checks the type only
    assert coerce("-5", F) == -5.0
    assert converter(INT)("-3") == -3
    assert coerce("-5", Property("price", F)) == -5.0  # a property without a range


def test_range_fault_and_bounds() -> None:
    price = load_schema().node("Product").prop("price")
    assert range_fault(price, -5.0) == "price -5.0 is below its minimum 0"
    assert range_fault(price, 0.0) is None
    assert range_fault(price, None) is None
    assert range_bounds(price) == (0.0, None)  # compared as a float column is
    assert type(range_bounds(price)[0]) is float
    assert range_bounds(AGE) == (0, 150) and type(range_bounds(AGE)[0]) is int
    assert range_fault(AGE, 151) == "age 151 is above its maximum 150"


def test_union_lists() -> None:
    lists = [["a", "b"], None, ["b", "c", "a"], None, ["c", "c"]]
    assert union_lists(lists, [0, 1, 0, 2, 1], 4) == [["a", "b", "c"], ["c"], None, None]
    assert union_lists([], [], 0) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$1,299.00", 1299.0),
        ("-$5.00", -5.0),
        ("$ -3.5", -3.5),
        ("USD 7.99 (was 9.99)", 7.99),
        ("costs 1,299, or less", 1299.0),
        ("no price here", None),  # documented: None when there is no number
        (".a-box{color:#fff}", None),
    ],
)
def test_number_transform(text: str, expected: float | None) -> None:
    assert TRANSFORMS["number"](text, {}) == expected


@pytest.mark.parametrize("text", ["1,99", "EUR 12,50", "1,2,3"])
def test_number_transform_rejects_commas_that_are_not_thousands(text: str) -> None:
    with pytest.raises(ValueError, match="thousands separator"):
        TRANSFORMS["number"](text, {})


def test_json_safe_gives_what_strict_json_holds() -> None:
    import datetime as dt
    import json
    from pathlib import Path

    import pandas as pd

    from graphfusion.values import json_safe

    value = {
        "price": np.float32(2.5), "n": np.int64(3), "ok": np.bool_(True), "nan": float("nan"),
        "inf": np.float64("inf"), "when": pd.Timestamp("2024-05-01 12:30"),
        "day": dt.date(2024, 5, 1), "missing": pd.NaT, "na": pd.NA, "raw": b"caf\xc3\xa9\xff",
        "vec": np.array([1.0, np.nan]), 7: ("a", None), "other": Path("x"),
    }  # fmt: skip
    got = json_safe(value)
    assert got == {
        "price": 2.5, "n": 3, "ok": True, "nan": None, "inf": None,
        "when": "2024-05-01T12:30:00", "day": "2024-05-01", "missing": None, "na": None,
        "raw": "café\ufffd", "vec": [1.0, None], "7": ["a", None], "other": "x",
    }  # fmt: skip
    assert type(got["n"]) is int and type(got["ok"]) is bool
    json.dumps(got, allow_nan=False)  # strict JSON


@pytest.mark.parametrize(
    ("field", "firms"),
    [
        # the one field of the real export that named two firms as one
        ("Anaheim Manufacturing Co. and Moen Inc., of North Olmsted, Ohio",
         ["Anaheim Manufacturing", "Moen"]),
        ("Acme Inc. & Beta Corp.", ["Acme", "Beta"]),
        ("Procter & Gamble Co. and Gillette", ["Procter & Gamble", "Gillette"]),
        ("Bed Bath & Beyond Inc.", ["Bed Bath & Beyond"]),
        ("Crate and Barrel", ["Crate and Barrel"]),
    ],
)  # fmt: skip
def test_companies_splits_firms_joined_after_a_legal_form(field: str, firms: list[str]) -> None:
    """Firms joined after a legal form ("A Inc. and B Corp.") were one firm, keyed
    ``aincandb``; an "and" inside a name is kept."""
    assert TRANSFORMS["companies"](field, {}) == firms
