"""Converting raw values to schema types."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from graphfusion.schema import PropertyType
from graphfusion.transforms import TRANSFORMS
from graphfusion.values import MAX_STRING_BYTES, coerce, converter, union_lists

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
        # finite as given, infinite as the 32-bit floats vectors are stored as
        ([1e39, 0.0, 1.0], V3, r"NaN or infinite values \(as 32-bit floats\)"),
    ],
)
def test_coerce_rejects_with_a_reason(value: object, ptype: PropertyType, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        coerce(value, ptype)
    with pytest.raises(ValueError, match=match):
        converter(ptype)(value)


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
