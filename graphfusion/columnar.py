"""A mapping field's values, keys and typed properties for a whole table at once.

Every function here gives, for each row, exactly what the single-value code gives for that
row's values (:meth:`graphfusion.mapping.Field.get`, :func:`key_list`,
:func:`graphfusion.values.converter`), reasons included. Plain text and numbers are checked
(from the bytes of Arrow arrays, or with a regular expression) and converted by pyarrow a
column at a time; the values such a rule cannot be sure of (text with spaces at its ends or
outside ASCII at them, numbers and dates in other spellings, anything that is not text or a
number) and fields that are not plain columns, templates over text or constants (most
transforms) go through the single-value code, one value at a time. One difference: a whole
number outside the 64-bit range, which no store can hold, is refused with a reason. A
property's declared range (``min``, ``max``) is checked on the converted column, with the
reasons the single-value code gives (:func:`graphfusion.values.range_fault`), and so is the
accepted range of dates and times (:data:`graphfusion.values.EARLIEST_TIME` to the clock plus
:data:`graphfusion.values.FUTURE_TOLERANCE`: :func:`graphfusion.values.time_fault`).
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from graphfusion.mapping import TRANSFORMS, Field
from graphfusion.schema import Property, PropertyType
from graphfusion.table import Column, Table
from graphfusion.values import (
    EARLIEST_TIME,
    MAX_STRING_BYTES,
    arrow_type,
    check_unicode,
    coerce,
    converter,
    is_missing,
    latest_time,
    nfc_key,
    range_bounds,
    range_fault,
    require_scalar,
    time_fault,
)

__all__ = [
    "Evaluated",
    "Keys",
    "MAX_KEY_CHARS",
    "convert",
    "equals",
    "evaluate",
    "find_key",
    "key_list",
    "keep",
    "keys",
]

#: Longest key accepted.
MAX_KEY_CHARS = 512
_STRING = PropertyType("string")

# Spellings that int() and pyarrow read alike, within int64.
_INT = r"^-?[0-9]{1,18}$"
# Spellings that float() and pyarrow read alike (both round correctly).
_FLOAT = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
# ISO dates and times without a zone that datetime.fromisoformat() and pyarrow read alike.
_DATETIME = (
    r"^[1-9][0-9]{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"(?:[T ](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{3}|\.[0-9]{6})?)?)?$"
)
_TRUE = ["true", "t", "yes", "y", "1"]
_FALSE = ["false", "f", "no", "n", "0"]
_EXACT_FLOAT = 2.0**53
# Half of a UTF-16 pair: valid in a Python str (a JSON "\ud83d" escape), not in UTF-8.


@dataclass
class Evaluated:
    """A field evaluated on every row of a table.

    Attributes:
        column: Each row's value (None where evaluating failed).
        errors: Row -> reason, for the rows where a transform rejected the value.
    """

    column: Column
    errors: dict[int, str] = field(default_factory=dict)


@dataclass
class Keys:
    """The keys a field gives in every row.

    Attributes:
        keys: One key per row (string; null where the row has none, several or an error).
        many: Row -> keys, for the rows with several keys.
        errors: Row -> reason, for the rows whose key is not acceptable.
    """

    keys: pa.Array
    many: dict[int, list[str]] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)


# ----------------------------------------------------------------------------- single values


def key_list(value: Any) -> list[str]:
    """The keys a field's value gives: none (missing), one, or one per element of a list.

    Text is stripped and put in Unicode's composed form, NFC
    (:func:`~graphfusion.values.nfc_key`): "Café" typed with a combining accent (NFD, as macOS
    file names and some exports give it) is the key "Café" typed with "é", so a link typed in
    one form finds a node typed in the other; a key in NFC already, ASCII included, is
    unchanged. A number that is whole (an id column with gaps) loses its ``.0``.

    Raises:
        ValueError: A key holds a NUL character or a lone surrogate, is longer than
            :data:`MAX_KEY_CHARS`, or is not text nor a number (a list in the list, a dict, a
            boolean, ...).
    """
    values = value if isinstance(value, list) else [value]
    out = []
    for v in values:
        if type(v) is str:
            key = v.strip()
            if not key:
                continue
            if "\x00" in key:
                raise ValueError("key contains a NUL character")
            check_unicode(key, "key")
        elif is_missing(v):
            continue
        else:
            require_scalar(v, "a key")
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            key = coerce(v, _STRING).strip()
        key = nfc_key(key)
        if len(key) > MAX_KEY_CHARS:
            raise ValueError(f"key longer than {MAX_KEY_CHARS} characters")
        out.append(key)
    return out


def find_key(index: Mapping[str, int], key: str) -> int | None:
    """The row of ``key`` in ``index`` (stored key -> row): the key exactly as given, else
    the key as loads store it (:func:`key_list`: spaces around it dropped, in the composed form,
    :func:`~graphfusion.values.nfc_key`), so that an id pasted with its spaces or a line end, or
    typed with a decomposed accent (``Cafe`` + U+0301), finds its stored key; None when neither
    is stored. Case is never folded: ``U0001`` is not ``u0001``."""
    row = index.get(key)
    if row is None:
        stored = nfc_key(key.strip())
        row = index.get(stored) if stored != key else None
    return row


def _unicode(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``fn`` (a converter to text or lists of text), refusing text with a lone surrogate."""

    def checked(value: Any) -> Any:
        out = fn(value)
        for text in out if isinstance(out, list) else [out]:
            if type(text) is str:
                check_unicode(text, "text")
        return out

    return checked


def equals(value: Any, text: str) -> bool:
    """Whether a ``where`` field's value matches its ``equals`` text: its text, with spaces
    at its ends stripped as they are from keys, is that text (case counts)."""
    return value is not None and str(value).strip() == text


# ----------------------------------------------------------------------------- helpers


def _mask(arr: pa.Array) -> np.ndarray:
    """A boolean Arrow array as numpy (null as False)."""
    return np.asarray(arr.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _match(arr: pa.Array, pattern: str) -> np.ndarray:
    return _mask(pc.match_substring_regex(arr, pattern))


def _nulls(n: int, type: pa.DataType) -> pa.Array:
    return pa.nulls(n, type=type)


def _patch(base: pa.Array, rows: np.ndarray, values: list[Any]) -> pa.Array:
    """``base`` with the values at ``rows`` (ascending) replaced."""
    if not len(rows):
        return base
    if pa.types.is_nested(base.type):  # no replace_with_mask for lists
        out = base.to_pylist()
        for i, v in zip(rows.tolist(), values, strict=True):
            out[i] = v
        return pa.array(out, type=base.type)
    mask = np.zeros(len(base), dtype=bool)
    mask[rows] = True
    return pc.replace_with_mask(base, pa.array(mask), pa.array(values, type=base.type))


def _each(
    fn: Callable[[Any], Any], values: list[Any], rows: np.ndarray, errors: dict[int, str]
) -> list[Any]:
    """``fn`` on ``values`` (those of ``rows``); a ValueError becomes the row's reason and a
    None value."""
    out = []
    for i, v in zip(rows.tolist(), values, strict=True):
        try:
            out.append(fn(v))
        except ValueError as exc:
            errors[i] = str(exc)
            out.append(None)
    return out


def _valid(arr: pa.Array) -> np.ndarray:
    return _mask(pc.is_valid(arr))


class _Text:
    """Facts about each value of a string array, read from its bytes.

    Attributes:
        blank: Null or empty.
        trimmed: Starts and ends with printable ASCII other than space: ``str.strip()`` leaves
            it as it is (UTF-8 puts no such byte inside a longer character).
        visible: Starts with printable ASCII other than space, so it is not blank.
        nbytes: Length in bytes (never less than the length in characters).
        nul: Holds a NUL character.
    """

    def __init__(self, arr: pa.Array) -> None:
        n = len(arr)
        _, offsets_buf, data_buf = arr.buffers()
        offsets = np.frombuffer(offsets_buf, dtype=np.int32)[arr.offset : arr.offset + n + 1]
        self.starts = offsets[:-1].astype(np.int64)
        self.data = (
            np.frombuffer(data_buf, dtype=np.uint8)
            if data_buf is not None
            else np.zeros(0, dtype=np.uint8)
        )
        self.nbytes = np.diff(offsets).astype(np.int64)
        self.valid = _valid(arr)
        filled = self.valid & (self.nbytes > 0)
        self.first = self.byte(filled, 0)
        self.last = self.byte(filled, -1)
        self.blank = ~filled
        self.visible = filled & (self.first >= 0x21) & (self.first <= 0x7E)
        self.trimmed = self.visible & (self.last >= 0x21) & (self.last <= 0x7E)
        used = self.data[offsets[0] : offsets[-1]] if n else self.data[:0]
        has_nul = bool((used == 0).any())
        self.nul = _mask(pc.match_substring(arr, "\x00")) if has_nul else np.zeros(n, dtype=bool)

    def byte(self, rows: np.ndarray, at: int) -> np.ndarray:
        """Byte ``at`` (from the end when negative) of the values in ``rows`` (a mask of
        values that long); 0 elsewhere."""
        out = np.zeros(len(rows), dtype=np.uint8)
        where = self.starts[rows] + (at if at >= 0 else self.nbytes[rows] + at)
        out[rows] = self.data[where]
        return out

    def matrix(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """The values ``size`` bytes long: their positions, and their bytes (one row each)."""
        rows = np.flatnonzero(self.valid & (self.nbytes == size))
        starts = self.starts[rows]
        if len(rows) and (np.diff(starts) == size).all():  # side by side: a view
            return rows, self.data[starts[0] : starts[0] + len(rows) * size].reshape(-1, size)
        return rows, self.data[starts[:, None] + np.arange(size)]

    def count(self, rows: np.ndarray, flags: np.ndarray) -> np.ndarray:
        """How many bytes of each value in ``rows`` (positions) ``flags`` (one per byte of
        the data) marks."""
        total = np.concatenate(([0], np.cumsum(flags, dtype=np.int64)))
        return total[self.starts[rows] + self.nbytes[rows]] - total[self.starts[rows]]

    def decimal(self, dot: bool) -> np.ndarray:
        """Which values read ``-?[0-9]+`` (and, when ``dot``, maybe ``.[0-9]+`` after)."""
        out = np.zeros(len(self.nbytes), dtype=bool)
        rows = np.flatnonzero(self.valid & (self.nbytes > 0))
        if not len(rows):
            return out
        digit = (self.data >= 0x30) & (self.data <= 0x39)
        point = self.data == 0x2E
        others = self.count(rows, ~digit & ~point)
        points = self.count(rows, point)
        size = self.nbytes[rows]
        minus = self.first[rows] == 0x2D
        body = minus.astype(np.int64)  # where the digits start
        second = self.data[self.starts[rows] + np.minimum(body, size - 1)]
        last = self.last[rows]
        ok = (
            (others == body)  # a leading minus is the only byte besides digits and points
            & (size > body)
            & (second >= 0x30)
            & (second <= 0x39)
            & (last >= 0x30)
            & (last <= 0x39)
            & ((points <= 1) if dot else (points == 0))
        )
        out[rows[ok]] = True
        return out


# ----------------------------------------------------------------------------- fields


def evaluate(fld: Field, table: Table) -> Evaluated:
    """The field's value in every row, as :meth:`Field.get` gives it on the row's dict."""
    n = len(table)
    if fld.column is None and not fld.columns and fld.template is None:
        try:
            value = fld.get({})  # a constant: the same in every row
        except ValueError as exc:
            return Evaluated(Column([None] * n), dict.fromkeys(range(n), str(exc)))
        return Evaluated(Column.constant(value, n))
    joined = _template(fld, table) if fld.template is not None else None
    if fld.column is None and joined is None:
        rows = table.rows(fld.needs(), range(n))
        errors: dict[int, str] = {}
        values = _each(fld.get, rows, np.arange(n), errors)
        return Evaluated(Column(values), errors)
    col = joined if joined is not None else table.column(str(fld.column))
    for i, name in enumerate(fld.transforms):
        step = _VECTOR_TRANSFORMS.get(name)
        out = step(col, fld) if step is not None and col.arrow is not None else None
        if out is None:
            return _transform_each(col, fld.transforms[i:], fld)
        col = out
    return Evaluated(col)


def _template(fld: Field, table: Table) -> Column | None:
    """A template over text columns, joined by pyarrow (None when it needs the single-row
    code: fields with formats or conversions, columns that are not all text)."""
    assert fld.template is not None
    try:
        parts = list(string.Formatter().parse(fld.template))
    except ValueError:
        return None
    names = [name for _, name, _, _ in parts if name is not None]
    simple = all(
        name and not name.isdigit() and not set(name) & set(".[") and not spec and not conv
        for _, name, spec, conv in parts
        if name is not None
    )
    if not names or not simple or names != fld.needs():
        return None
    cols = {name: table.column(name).arrow for name in names}
    if any(c is None or not pa.types.is_string(c.type) for c in cols.values()):
        return None
    n = len(table)
    blank = np.zeros(n, dtype=bool)
    unsure = np.zeros(n, dtype=bool)
    pieces: list[Any] = []
    for literal, name, _, _ in parts:
        if literal:
            pieces.append(pa.scalar(literal))
        if name is not None:
            col = cols[name]
            text = _Text(col)
            blank |= text.blank  # a missing value: the template gives None
            unsure |= ~text.visible & ~text.blank  # missing only if str.strip() says so
            pieces.append(col)
    out = pc.binary_join_element_wise(*pieces, "")
    out = _blank_to_null(out, blank)
    rows = np.flatnonzero(unsure & ~blank)
    plain = Field(template=fld.template)
    fixed = [plain.get(r) for r in table.rows(names, rows.tolist())]
    return Column(arrow=_patch(out, rows, fixed))


def _transform_each(col: Column, names: tuple[str, ...], fld: Field) -> Evaluated:
    def apply(value: Any) -> Any:
        for name in names:
            if value is None:
                break
            value = TRANSFORMS[name](value, fld.options)
        return value

    errors: dict[int, str] = {}
    values = _each(apply, col.values(), np.arange(len(col)), errors)
    return Evaluated(Column(values), errors)


def _strip(col: Column, fld: Field) -> Column | None:
    arr = col.arrow
    if col.kind != "str" or arr is None:
        return None
    text = _Text(arr)
    rows = np.flatnonzero(~text.trimmed & ~text.blank)
    fixed = [v.strip() for v in arr.take(pa.array(rows)).to_pylist()]
    return Column(arrow=_patch(arr, rows, fixed))


def _prefix(col: Column, fld: Field) -> Column | None:
    arr = col.arrow
    assert arr is not None
    pre = str(fld.options.get("prefix", ""))
    kind = col.kind
    if kind == "int":
        return Column(arrow=pc.binary_join_element_wise(pre, arr.cast(pa.string()), ""))
    if kind != "str":
        return None
    text = _Text(arr)
    joined = pc.binary_join_element_wise(pre, arr, "")
    out = pc.if_else(pa.array(text.blank), pa.scalar(None, pa.string()), joined)
    rows = np.flatnonzero(~text.visible & ~text.blank)
    fixed = [TRANSFORMS["prefix"](v, fld.options) for v in arr.take(pa.array(rows)).to_pylist()]
    return Column(arrow=_patch(out, rows, fixed))


_VECTOR_TRANSFORMS: dict[str, Callable[[Column, Field], Column | None]] = {
    "strip": _strip,
    "prefix": _prefix,
}


# ----------------------------------------------------------------------------- keys


def keys(ev: Evaluated) -> Keys:
    """The keys of every row (see :func:`key_list`); a row whose field failed keeps its
    reason."""
    col = ev.column
    arr = col.arrow
    n = len(col)
    kind = col.kind
    if arr is not None and kind == "str":
        text = _Text(arr)
        # ASCII only: anything else goes through key_list, which puts it in NFC
        ascii_only = _mask(pc.string_is_ascii(arr))
        sure = text.trimmed & ~text.nul & (text.nbytes <= MAX_KEY_CHARS) & ascii_only
        base = arr if not text.blank.any() else _blank_to_null(arr, text.blank)
        rows = np.flatnonzero(~sure & ~text.blank)
        values = arr.take(pa.array(rows)).to_pylist()
    elif arr is not None and kind == "int":
        return Keys(arr.cast(pa.string()), {}, dict(ev.errors))
    elif arr is not None and kind == "float":
        nums = arr.to_numpy(zero_copy_only=False)
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(nums) & (np.floor(nums) == nums) & (np.abs(nums) < _EXACT_FLOAT)
        nan = np.isnan(nums)
        ints = pa.array(np.where(whole, nums, 0).astype(np.int64)).cast(pa.string())
        base = pc.if_else(pa.array(whole), ints, pa.scalar(None, pa.string()))
        rows = np.flatnonzero(~whole & ~nan)
        values = [float(v) for v in nums[rows]]
    else:
        base = _nulls(n, pa.string())
        rows = np.arange(n)
        values = col.values()
    errors = dict(ev.errors)
    rows = np.asarray([i for i in rows.tolist() if i not in errors], dtype=np.int64)
    values = values if len(rows) == len(values) else col.take(rows).values()
    many: dict[int, list[str]] = {}
    single: list[str | None] = []
    for i, v in zip(rows.tolist(), values, strict=True):
        try:
            found = key_list(v)
        except ValueError as exc:
            errors[i] = str(exc)
            found = []
        if len(found) > 1:
            many[i] = found
        single.append(found[0] if len(found) == 1 else None)
    base = _patch(base, rows, single)
    if errors:
        base = _patch(base, np.asarray(sorted(errors), dtype=np.int64), [None] * len(errors))
    return Keys(base, many, errors)


# ----------------------------------------------------------------------------- properties


def convert(ev: Evaluated, target: PropertyType | Property) -> tuple[pa.Array, dict[int, str]]:
    """Every row's value converted to ``target`` (a type, or a property: its type, and its
    declared range) as :func:`graphfusion.values.converter` does it (whole numbers outside
    the 64-bit range refused); returns the typed Arrow array (null where missing or failed)
    and row -> reason."""
    ptype = target.type if isinstance(target, Property) else target
    col = ev.column
    typed = arrow_type(ptype)
    n = len(col)
    fast = _FAST.get((col.kind, ptype.name)) if col.arrow is not None else None
    if fast is not None:
        assert col.arrow is not None
        base, rows = fast(col.arrow)
    else:
        base, rows = _nulls(n, typed), np.arange(n)
    errors = dict(ev.errors)
    if errors:
        rows = np.asarray([i for i in rows.tolist() if i not in errors], dtype=np.int64)
    if len(rows):
        fn = converter(target)  # the range first, as the single-value code checks it
        if ptype.name == "int":
            fn = _int64(fn)
        elif ptype.name in ("string", "list[string]"):
            fn = _unicode(fn)
        values = _each(fn, col.take(rows).values(), rows, errors)
        base = _patch(base, rows, values)
    if isinstance(target, Property):
        base = _in_range(base, target, errors)
    if ptype.name == "datetime":
        base = _in_time(base, errors)
    if ev.errors:
        bad = np.asarray(sorted(ev.errors), dtype=np.int64)
        base = _patch(base, bad, [None] * len(bad))
    return base, errors


def _in_range(arr: pa.Array, prop: Property, errors: dict[int, str]) -> pa.Array:
    """``arr`` (of the property's type) with the values outside the property's range made
    null, each with its reason in ``errors`` (rows there already are left alone)."""
    low, high = range_bounds(prop)
    if low is None and high is None:
        return arr
    out = np.zeros(len(arr), dtype=bool)
    if low is not None:
        out |= _mask(pc.less(arr, pa.scalar(low, arr.type)))
    if high is not None:
        out |= _mask(pc.greater(arr, pa.scalar(high, arr.type)))
    return _null_faults(arr, out, errors, lambda v: range_fault(prop, v))


def _in_time(arr: pa.Array, errors: dict[int, str]) -> pa.Array:
    """``arr`` (of datetimes) with the values outside the accepted range (before
    :data:`~graphfusion.values.EARLIEST_TIME`, or in the future:
    :func:`~graphfusion.values.time_fault`) made null, each with its reason in ``errors``."""
    latest = latest_time()
    out = _mask(pc.less(arr, pa.scalar(EARLIEST_TIME, arr.type)))
    out |= _mask(pc.greater(arr, pa.scalar(latest, arr.type)))
    return _null_faults(arr, out, errors, lambda v: time_fault(v, latest))


def _null_faults(
    arr: pa.Array, out: np.ndarray, errors: dict[int, str], fault: Callable[[Any], str | None]
) -> pa.Array:
    """``arr`` with the rows ``out`` marks made null, each with its reason ``fault(value)`` in
    ``errors`` (rows there already are left alone)."""
    rows = np.asarray([i for i in np.flatnonzero(out).tolist() if i not in errors], np.int64)
    if not len(rows):
        return arr
    for i, v in zip(rows.tolist(), arr.take(pa.array(rows)).to_pylist(), strict=True):
        errors[i] = fault(v) or ""
    return _patch(arr, rows, [None] * len(rows))


def _int64(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``fn``, refusing whole numbers that a 64-bit integer property cannot hold."""

    def checked(value: Any) -> Any:
        out = fn(value)
        if out is not None and not -(2**63) <= out < 2**63:
            raise ValueError(f"{str(value)[:40]!r} is out of the 64-bit integer range")
        return out

    return checked


def _blank_to_null(arr: pa.Array, blank: np.ndarray) -> pa.Array:
    return pc.if_else(pa.array(blank), pa.scalar(None, arr.type), arr)


def _text_blank(arr: pa.Array) -> np.ndarray:
    return _Text(arr).blank


def _cast_where(
    arr: pa.Array, sure: np.ndarray, blank: np.ndarray, target: pa.DataType
) -> tuple[pa.Array, np.ndarray]:
    """``arr`` cast to ``target`` where ``sure``, null where ``blank``; the other rows are
    left (null) for the single-value converter."""
    picked = pc.if_else(pa.array(sure), arr, pa.scalar(None, pa.string()))
    try:
        out = picked.cast(target)
    except pa.ArrowInvalid:  # e.g. 31 April: let the converter give the reason
        return _nulls(len(arr), target), np.flatnonzero(~blank)
    return out, np.flatnonzero(~sure & ~blank)


def _str_to_string(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    text = _Text(arr)
    sure = text.visible & ~text.nul & (text.nbytes < MAX_STRING_BYTES // 4)
    base = arr if sure.all() else pc.if_else(pa.array(sure), arr, pa.scalar(None, pa.string()))
    return base, np.flatnonzero(~sure & ~text.blank)


def _sure(arr: pa.Array, quick: np.ndarray, blank: np.ndarray, pattern: str) -> np.ndarray:
    """``quick`` (a byte-level check stricter than ``pattern``), and ``pattern`` on the values
    it leaves (neither quick nor blank)."""
    rest = np.flatnonzero(~quick & ~blank)
    if not len(rest):
        return quick
    sure = quick.copy()
    sure[rest] = _match(arr.take(pa.array(rest)), pattern)
    return sure


def _str_to_int(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    text = _Text(arr)
    quick = text.decimal(dot=False) & (text.nbytes <= 18)
    return _cast_where(arr, _sure(arr, quick, text.blank, _INT), text.blank, pa.int64())


def _str_to_float(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    text = _Text(arr)
    blank = text.blank
    sure = _sure(arr, text.decimal(dot=True), blank, _FLOAT)
    out, rows = _cast_where(arr, sure, blank, pa.float64())
    infinite = _mask(pc.is_inf(out))
    if infinite.any():
        out = pc.if_else(pa.array(infinite), pa.scalar(None, pa.float64()), out)
        rows = np.union1d(rows, np.flatnonzero(infinite))
    return out, rows


def _iso_datetimes(text: _Text) -> np.ndarray:
    """Which values are ISO dates or times that _DATETIME matches, read from their bytes:
    ``YYYY-MM-DD``, then maybe ``THH:MM`` (or a space for T), ``:SS``, ``.fff`` or
    ``.ffffff``, with a year from 1000 and months, days, hours, minutes, seconds in range."""
    out = np.zeros(len(text.nbytes), dtype=bool)
    layout = "dddd-dd-ddTdd:dd:dd.dddddd"
    for size in (10, 16, 19, 23, 26):
        rows, chars = text.matrix(size)
        if not len(rows):
            continue
        shape = layout[:size]
        lo = np.array([0x30 if c == "d" else 0x20 if c == "T" else ord(c) for c in shape], np.uint8)
        hi = np.array([0x39 if c == "d" else 0x54 if c == "T" else ord(c) for c in shape], np.uint8)
        good = ((chars >= lo) & (chars <= hi)).all(axis=1) & (chars[:, 0] != 0x30)

        def two(at: int, chars: np.ndarray = chars) -> np.ndarray:
            return np.asarray((chars[:, at] - 0x30).astype(np.int16) * 10 + chars[:, at + 1] - 0x30)

        good &= (two(5) >= 1) & (two(5) <= 12) & (two(8) >= 1) & (two(8) <= 31)
        if size > 10:
            good &= ((chars[:, 10] == 0x54) | (chars[:, 10] == 0x20)) & (two(11) <= 23)
            good &= two(14) <= 59
        if size > 16:
            good &= two(17) <= 59
        out[rows[good]] = True
    return out


def _str_to_datetime(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    text = _Text(arr)
    sure = _sure(arr, _iso_datetimes(text), text.blank, _DATETIME)
    return _cast_where(arr, sure, text.blank, pa.timestamp("us"))


def _str_to_bool(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    lower = pc.ascii_lower(arr)
    yes = _mask(pc.is_in(lower, value_set=pa.array(_TRUE)))
    no = _mask(pc.is_in(lower, value_set=pa.array(_FALSE)))
    blank = _text_blank(arr)
    base = pa.array(np.where(yes | no, yes, False), mask=~(yes | no), type=pa.bool_())
    return base, np.flatnonzero(~yes & ~no & ~blank)


def _int_to_int(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    return arr, np.zeros(0, dtype=np.int64)


def _int_to_float(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    nums = arr.to_numpy(zero_copy_only=False)
    exact = np.abs(nums) < _EXACT_FLOAT
    out = pa.array(np.where(exact, nums, 0).astype(np.float64), mask=~exact)
    return out, np.flatnonzero(~exact)


def _int_to_string(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    return arr.cast(pa.string()), np.zeros(0, dtype=np.int64)


def _float_to_float(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    nums = arr.to_numpy(zero_copy_only=False)
    finite = np.isfinite(nums)
    out = pa.array(np.where(finite, nums, 0.0), mask=~finite, type=pa.float64())
    return out, np.flatnonzero(~finite & ~np.isnan(nums))


def _float_to_int(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    nums = arr.to_numpy(zero_copy_only=False)
    with np.errstate(invalid="ignore"):
        whole = np.isfinite(nums) & (np.floor(nums) == nums) & (np.abs(nums) < _EXACT_FLOAT)
    out = pa.array(np.where(whole, nums, 0).astype(np.int64), mask=~whole, type=pa.int64())
    return out, np.flatnonzero(~whole & ~np.isnan(nums))


def _bool_to_bool(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    return arr, np.zeros(0, dtype=np.int64)


#: (column kind, property type) -> vectorised conversion: (values, rows left to the converter).
_FAST: dict[tuple[str, str], Callable[[pa.Array], tuple[pa.Array, np.ndarray]]] = {
    ("str", "string"): _str_to_string,
    ("str", "int"): _str_to_int,
    ("str", "float"): _str_to_float,
    ("str", "datetime"): _str_to_datetime,
    ("str", "bool"): _str_to_bool,
    ("int", "int"): _int_to_int,
    ("int", "float"): _int_to_float,
    ("int", "string"): _int_to_string,
    ("float", "float"): _float_to_float,
    ("float", "int"): _float_to_int,
    ("bool", "bool"): _bool_to_bool,
}


# ----------------------------------------------------------------------------- filters


def keep(where: Field, table: Table) -> np.ndarray:
    """Which rows a spec's ``where`` field keeps: those where it is non-empty (and not
    False), or, with ``equals``, where its text, stripped, equals that value (see
    :func:`equals`); a row where the field fails is left out."""
    ev = evaluate(where, table)
    col = ev.column
    arr = col.arrow
    n = len(col)
    if "equals" in where.options:
        text = str(where.options["equals"])
        if arr is not None and col.kind == "str":
            facts = _Text(arr)
            out = _mask(pc.equal(arr, text))
            rows = np.flatnonzero(facts.valid & ~facts.trimmed)
            for i, v in zip(rows.tolist(), arr.take(pa.array(rows)).to_pylist(), strict=True):
                out[i] = equals(v, text)
        elif arr is not None and col.kind == "int":
            canonical = re.fullmatch(r"-?[0-9]{1,18}", text) is not None and str(int(text)) == text
            out = _mask(pc.equal(arr, int(text))) if canonical else np.zeros(n, dtype=bool)
        else:
            out = np.fromiter((equals(v, text) for v in col.values()), dtype=bool, count=n)
    elif arr is not None and col.kind == "str":
        facts = _Text(arr)
        out = facts.visible.copy()
        rows = np.flatnonzero(~facts.visible & ~facts.blank)
        for i, v in zip(rows.tolist(), arr.take(pa.array(rows)).to_pylist(), strict=True):
            out[i] = not is_missing(v)
    else:
        out = np.fromiter(
            (not is_missing(v) and v is not False for v in col.values()), dtype=bool, count=n
        )
    if ev.errors:
        out[np.fromiter(ev.errors, dtype=np.int64)] = False
    return out
