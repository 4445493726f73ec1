"""Converting raw values to the schema's property types, with a reason when they do not fit.

:func:`coerce` and :func:`converter` take a :class:`~graphfusion.schema.PropertyType`, or a
:class:`~graphfusion.schema.Property`: then a value outside the property's declared range
(``min`` and ``max`` in the schema) is refused too, with a reason such as ``"price -5.0 is
below its minimum 0"`` (:func:`range_fault`).

Dates and times have one accepted range whatever their spelling (ISO text, Unix seconds,
datetimes): from :data:`EARLIEST_TIME` to the current clock plus :data:`FUTURE_TOLERANCE`
(:func:`time_fault`); the converter's fast path for ISO text and the column path
(:mod:`graphfusion.columnar`) accept what :func:`coerce` accepts, with its reasons.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from graphfusion.errors import ValidationError
from graphfusion.schema import Property, PropertyType

__all__ = [
    "ascii_forms",
    "folded",
    "nfc_key",
    "count_arg",
    "real_arg",
    "arrow_type",
    "coerce",
    "converter",
    "vector_faults",
    "is_missing",
    "json_safe",
    "number_text",
    "range_bounds",
    "range_fault",
    "require_scalar",
    "union_lists",
    "MAX_STRING_BYTES",
    "EARLIEST_TIME",
    "FUTURE_TOLERANCE",
    "latest_time",
    "time_fault",
    "refuse_future_times",
]

#: Longest string property accepted (bytes of UTF-8); longer values are rejected, not cut.
MAX_STRING_BYTES = 1_000_000

#: Earliest date and time accepted (naive UTC). An earlier one is a placeholder
#: (``0001-01-01T00:00:00`` is .NET's ``DateTime.MinValue``) or a misread, no event of a shop;
#: it is refused as any other bad value: a row error in a load.
EARLIEST_TIME = dt.datetime(1000, 1, 1)
#: How far after the current clock (UTC) a date and time may be: enough for a clock a little
#: fast or a time zone the value did not name, not for a year typed wrong. A later one is bad
#: input: a row error in a load (a live update's row included), so it never reaches the store;
#: the behaviour features leave out those a store holds already
#: (:mod:`graphfusion.features.behaviour`).
FUTURE_TOLERANCE = dt.timedelta(days=1)

_NOT_FINITE = "vector holds NaN or infinite values"

# A number with commas: only as thousands separators (digits of any script Python's int and
# float read, as they read them).
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
# Fullwidth forms (U+FF01-U+FF5E: fullwidth digits, comma, full stop, plus, hyphen-minus,
# letters) as the ASCII characters they are wide forms of (Unicode's <wide> mapping), so that
# a number typed in fullwidth reads with its separators as it does with its digits.
# The minus sign (U+2212) as "-", as the ``number`` transform reads it.
_FULLWIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x2212: ord("-")}

_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "datetime": pa.timestamp("us"),
    "list[string]": pa.list_(pa.string()),
    "list[float]": pa.list_(pa.float64()),
    "list[int]": pa.list_(pa.int64()),
    "vector": pa.list_(pa.float32()),
}


def arrow_type(ptype: PropertyType) -> pa.DataType:
    """The Arrow type that holds values of ``ptype`` as :func:`coerce` returns them."""
    return _ARROW_TYPES[ptype.name]


def vector_faults(vectors: np.ndarray) -> list[str | None]:
    """Why each vector (a row of ``vectors``) cannot be stored, or None: it holds NaN or
    infinite values, or numbers beyond the range of the 32-bit floats vectors are stored as."""
    given: list[bool] = np.isfinite(vectors).all(axis=1).tolist()
    with np.errstate(over="ignore"):
        as_stored: np.ndarray = np.asarray(vectors, dtype=np.float32)
    stored: list[bool] = np.isfinite(as_stored).all(axis=1).tolist()
    return [
        None if ok else _NOT_FINITE if not finite else f"{_NOT_FINITE} (as 32-bit floats)"
        for finite, ok in zip(given, stored, strict=True)
    ]


def union_lists(
    lists: Sequence[Sequence[Any] | None], group: Sequence[int] | np.ndarray, n_groups: int
) -> list[list[Any] | None]:
    """The union of each group's lists: every element once, in order of appearance.

    This is how a ``merge: union`` property merges (:class:`graphfusion.schema.Property`).

    Args:
        lists: The lists, in order; None is no value.
        group: Each list's group, 0 to ``n_groups - 1``.
        n_groups: How many groups.

    Returns:
        One list per group, or None for a group without any list.

    Example:
        >>> union_lists([["a"], None, ["b", "a"], ["c"]], [0, 0, 0, 1], 2)
        [['a', 'b'], ['c']]
    """
    out: list[list[Any] | None] = [None] * n_groups
    for g, values in zip(np.asarray(group).tolist(), lists, strict=True):
        if values is None:
            continue
        have = out[g]
        if have is None:
            out[g] = list(dict.fromkeys(values))
        else:
            have.extend(v for v in dict.fromkeys(values) if v not in have)
    return out


def is_missing(value: Any) -> bool:
    """Whether ``value`` means "no value": None, NaN, NaT, pandas NA or an empty string."""
    if value is None:
        return True
    if type(value) is str:
        return not value.strip()
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str):
        return value.strip() == ""
    if isinstance(value, (list, tuple, np.ndarray)):
        return False
    try:
        import pandas as pd

        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def count_arg(name: str, value: object, high: int, low: int = 1) -> int:
    """An argument that counts (``k``, ``top``; a seed with ``low`` 0) as a Python int in
    ``low..high``; a numpy integer is taken, a boolean or a float is not.

    Raises:
        ValidationError: Not an integer in range.
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise ValidationError(f"{name} must be an integer in {low}..{high}, got {value!r}")
    if not low <= int(value) <= high:
        raise ValidationError(f"{name} must be an integer in {low}..{high}, got {value!r}")
    return int(value)


def real_arg(name: str, value: object, *, zero: bool = False, high: float = math.inf) -> float:
    """A finite real argument (a time limit, a learning rate) as a Python float, above 0 (at
    least 0 when ``zero``) and at most ``high``; numpy numbers are taken, booleans not.

    Raises:
        ValidationError: Not such a number.
    """
    bound = (">= 0" if zero else "> 0") + (f" and <= {high:g}" if math.isfinite(high) else "")
    if isinstance(value, bool | np.bool_) or not isinstance(
        value, int | float | np.integer | np.floating
    ):
        raise ValidationError(f"{name} must be a finite number {bound}, got {value!r}")
    try:
        out = float(value)
    except OverflowError:  # an integer beyond floats (10**400)
        out = math.inf
    if not math.isfinite(out) or out < 0 or (out == 0 and not zero) or out > high:
        raise ValidationError(f"{name} must be a finite number {bound}, got {value!r}")
    return out


_SURROGATE = re.compile("[\ud800-\udfff]")


def check_unicode(text: str, what: str) -> None:
    """Refuse ``text`` holding a lone surrogate, which UTF-8 (and so the store) cannot hold.

    Raises:
        ValueError: Naming the surrogate.
    """
    if not text.isascii() and (bad := _SURROGATE.search(text)) is not None:
        raise ValueError(
            f"{what} holds a lone surrogate (\\u{ord(bad.group(0)):04x}, half of a character), "
            "which is not valid Unicode"
        )


def home_path(path: str | os.PathLike[str], what: str = "path") -> Path:
    """``path`` with a leading ``~`` or ``~user`` made that home folder.

    Raises:
        ValidationError: The home folder is not known (``what`` says whose path it was).
    """
    try:
        return Path(path).expanduser()
    except RuntimeError:
        raise ValidationError(f"{what} {os.fspath(path)!r}: no such home folder") from None


def require_scalar(value: Any, what: str) -> None:
    """Refuse a value that is no text or number as such: a list, tuple, set, dict, array or
    boolean (whose Python spelling, ``['a']`` or ``True``, is not the data's).

    Raises:
        ValueError: ``"<what> must be text or a number, got <type>"``.
    """
    if isinstance(value, (bool, np.bool_, list, tuple, set, dict, np.ndarray)):
        raise ValueError(f"{what} must be text or a number, got {type(value).__name__}")


def range_bounds(prop: Property) -> tuple[int | float | None, int | float | None]:
    """The property's ``(minimum, maximum)`` as values are compared with them: as floats for a
    float property (as a column of floats is), as declared otherwise; None where unbounded."""
    if prop.type.name != "float":
        return prop.minimum, prop.maximum
    low, high = prop.minimum, prop.maximum
    return (None if low is None else float(low)), (None if high is None else float(high))


def range_fault(prop: Property, value: Any) -> str | None:
    """Why ``value`` (already converted to the property's type) is outside the property's
    declared range, or None (in range, missing, or no range declared).

    Example:
        >>> from graphfusion.schema import load_schema
        >>> range_fault(load_schema().node("Product").prop("price"), -5.0)
        'price -5.0 is below its minimum 0'
    """
    if value is None:
        return None
    low, high = range_bounds(prop)
    if low is not None and value < low:
        return f"{prop.name} {value!r} is below its minimum {prop.minimum!r}"
    if high is not None and value > high:
        return f"{prop.name} {value!r} is above its maximum {prop.maximum!r}"
    return None


def _target(target: PropertyType | Property) -> tuple[PropertyType, Property | None]:
    """The type to convert to, and the property whose range applies (None: no range)."""
    if isinstance(target, Property):
        ranged = target.minimum is not None or target.maximum is not None
        return target.type, target if ranged else None
    return target, None


def coerce(value: Any, target: PropertyType | Property) -> Any:
    """Convert ``value`` to a plain Python value of a type, or of a property's type within
    its declared range.

    Args:
        value: The raw value (string from a file, number, list, numpy array, ...).
        target: The schema type to convert to, or a property: its type, and its range
            (``min``, ``max``) checked.

    Returns:
        ``str``, ``int``, ``float``, ``bool``, naive UTC ``datetime.datetime``, or a list of
        those; None when the value is missing (for a list, when it has no element that is
        not missing: ``[]``, ``""``, ``";"``).

    Raises:
        ValueError: With the reason, when the value does not fit the type or is out of the
            property's range, or is a date and time outside the accepted range
            (:func:`time_fault`: before the year 1000, or in the future).
    """
    ptype, ranged = _target(target)
    if ptype.is_list:
        return _coerce_list(value, ptype)
    if is_missing(value):
        return None
    out = _coerce_scalar(value, ptype.name)
    if ranged is not None:
        fault = range_fault(ranged, out)
        if fault is not None:
            raise ValueError(fault)
    return out


def converter(target: PropertyType | Property) -> Callable[[Any], Any]:
    """A function that does what :func:`coerce` does for ``target`` (a type, or a property:
    its type and range), with fast paths.

    Loaders convert millions of values; the common cases (text from a file that already is
    what the type wants) are handled without the general machinery, the rest falls back to
    :func:`coerce`, so both always agree.
    """
    ptype, ranged = _target(target)
    convert = _converter(ptype)
    if ranged is None:
        return convert
    prop = ranged

    def in_range(value: Any) -> Any:
        out = convert(value)
        fault = range_fault(prop, out)
        if fault is not None:
            raise ValueError(fault)
        return out

    return in_range


def _converter(ptype: PropertyType) -> Callable[[Any], Any]:
    """:func:`converter` for a type (no range)."""

    def general(value: Any) -> Any:
        return coerce(value, ptype)

    name = ptype.name
    if name == "string":

        def to_string(value: Any) -> Any:
            if type(value) is str and len(value) < MAX_STRING_BYTES // 4 and "\x00" not in value:
                check_unicode(value, "text")
                return value if value.strip() else None
            return coerce(value, ptype)

        return to_string
    if name == "float":

        def to_float(value: Any) -> Any:
            if type(value) is str and "_" not in value:
                try:
                    out = float(value)
                except ValueError:
                    return coerce(value, ptype)
                if math.isfinite(out):
                    return out
            elif type(value) is float and math.isfinite(value):
                return value
            return coerce(value, ptype)

        return to_float
    if name == "int":

        def to_int(value: Any) -> Any:
            if type(value) is int:
                return value
            if type(value) is str and "_" not in value:
                try:
                    return int(value)
                except ValueError:
                    pass
            return coerce(value, ptype)

        return to_int
    if name == "datetime":

        def to_datetime(value: Any) -> Any:
            # only the spellings pandas reads alike, in years that no time zone takes out of
            # range; anything else (and every fault) from coerce, so the reasons are its own
            if type(value) is str and _PLAIN_ISO.fullmatch(value) is not None:
                try:
                    out = dt.datetime.fromisoformat(value)
                except ValueError:
                    return coerce(value, ptype)
                if EARLIEST_TIME.year < out.year < 9999:
                    if out.tzinfo is not None:
                        out = out.astimezone(dt.UTC).replace(tzinfo=None)
                    if _not_future(out):
                        return out
            return coerce(value, ptype)

        return to_datetime
    return general


def _coerce_scalar(value: Any, name: str) -> Any:
    if name == "string":
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError("bytes that are not UTF-8") from exc
        if isinstance(value, (list, dict, tuple, set)):
            raise ValueError(f"expected a string, got {type(value).__name__}")
        text = str(value)
        check_unicode(text, "text")
        if len(text.encode("utf-8", "surrogatepass")) > MAX_STRING_BYTES:
            raise ValueError(f"string longer than {MAX_STRING_BYTES} bytes")
        if "\x00" in text:
            raise ValueError("string contains a NUL character")
        return text
    if name == "int":
        return _to_int(value)
    if name == "float":
        return _to_float(value)
    if name == "bool":
        return _to_bool(value)
    if name == "datetime":
        return _to_datetime(value)
    raise ValueError(f"unsupported type {name}")  # pragma: no cover - schema forbids it


def _to_int(value: Any) -> int:
    if isinstance(value, bool):  # as _to_float: JSON's true is no age or count
        raise ValueError("expected a whole number, got a boolean")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value) or value != int(value):
            raise ValueError(f"{value!r} is not a whole number")
        return int(value)
    text = number_text(value)
    try:
        return int(text)
    except ValueError:
        try:
            f = float(text)
        except ValueError:
            raise ValueError(f"{str(value)[:40]!r} is not an integer") from None
        return _to_int(f)


def nfc_key(key: str) -> str:
    """``key`` in Unicode's normalization form C (composed), the one form keys are stored in;
    ASCII text, which every form leaves alone, is returned as it is."""
    return key if key.isascii() else unicodedata.normalize("NFC", key)


def folded(text: str) -> str:
    """``text`` as names and keys that differ only by case or spaces are compared: stripped,
    in one Unicode form (NFKC), case folded (``Straße`` is ``STRASSE``; an accent composed or
    not is the same letter). Recommendation names and "did you mean" hints use it."""
    return unicodedata.normalize("NFKC", text).strip().casefold()


def ascii_forms(text: str) -> str:
    """``text`` with its fullwidth forms (U+FF01-U+FF5E: ``１，２３４．５``) as the ASCII
    characters they are wide forms of, and the minus sign ``−`` (U+2212) as ``-``: the
    spelling :func:`number_text` reads numbers in."""
    return text if text.isascii() else text.translate(_FULLWIDTH)


def number_text(value: Any) -> str:
    """The text of a number, stripped, without its thousands separators: ``"1,234.5"`` gives
    ``"1234.5"``.

    Digits are read as Python's ``int`` and ``float`` read them, of any script (``"١٢٣"``
    is 123); fullwidth forms (``"１，２３４．５"``, ``"－５"``) are read as the ASCII
    characters they are wide forms of, so a fullwidth comma or full stop means what a comma
    or a full stop means, and the minus sign ``−`` (U+2212) as ``-``, as the ``number``
    transform reads it. Other scripts' own separators (the Arabic ``٬`` and ``٫``) are not
    read.

    Raises:
        ValueError: It has a comma that is not a thousands separator (``"1,99"``), or an
            underscore (which Python's ``int`` and ``float`` would skip: ``"2020_05"``), or
            it is a list or a mapping (a JSON array or object), not one number.
    """
    if isinstance(value, list | tuple | dict | np.ndarray):
        raise ValueError(f"expected one number, got a {type(value).__name__}: {str(value)[:40]}")
    given = str(value).strip()
    text = ascii_forms(given)
    if "_" in text:
        raise ValueError(f"{given[:40]!r} is not a number: it holds an underscore")
    if "," not in text:
        return text
    if _THOUSANDS.fullmatch(text) is None:
        raise ValueError(
            f"{given[:40]!r} is not a number: a comma is read only as a thousands separator "
            "(1,234.5)"
        )
    return text.replace(",", "")


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(value, (int, float, np.integer, np.floating)):
        out = float(value)
    else:
        text = number_text(value)
        try:
            out = float(text)
        except ValueError:
            raise ValueError(f"{str(value)[:40]!r} is not a number") from None
    if not math.isfinite(out):
        raise ValueError(f"{out} is not a finite number")
    return out


def _to_bool(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{str(value)[:40]!r} is not a boolean")


#: Control characters (tab, line feed and carriage return aside), never part of a date.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: Words pandas reads as the day they are read on.
_RELATIVE_DAYS = frozenset({"now", "today", "tomorrow", "yesterday"})
#: An ISO date, and maybe a time and a zone, as Python's ``fromisoformat`` and pandas read
#: alike (``fromisoformat`` reads week dates, any separator and offsets in seconds too).
_PLAIN_ISO = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?(?:Z|[+-][0-9]{2}:[0-9]{2})?)?"
)
#: Four digits in a row: a text that spells its year (pandas gives "Dec 5" the year 1).
_YEAR = re.compile(r"[0-9]{4}")
#: A time of day alone, which pandas dates today.
_TIME_ONLY = re.compile(
    r"\s*T?\d{1,2}(:\d{2}){1,2}(\.\d+)?\s*([ap]\.?m\.?)?\s*(Z|[+-]\d{2}:?\d{2})?\s*", re.I
)


def _to_datetime(value: Any) -> dt.datetime:
    out = _read_datetime(value)
    fault = time_fault(out)
    if fault is not None:
        raise ValueError(fault)
    return out


def _read_datetime(value: Any) -> dt.datetime:
    """``value`` as a naive UTC datetime, checked for being a date and time but not for
    being in the accepted range (years before 1000 aside, which Python cannot always hold)."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return _from_unix(value)
    if isinstance(value, str) and _CONTROL.search(value):  # pandas reads "2024\x00" as 2024
        raise ValueError(f"{value[:40]!r} is not a date or time (it holds a control character)")
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        raise ValueError(f"{str(value)[:40]!r} is not a date or time") from None
    if ts is pd.NaT or pd.isna(ts):
        raise ValueError(f"{str(value)[:40]!r} is not a date or time")
    if isinstance(value, str) and (
        value.strip().lower() in _RELATIVE_DAYS
        or _TIME_ONLY.fullmatch(value)
        or (ts.year < EARLIEST_TIME.year and _YEAR.search(value) is None)
    ):  # pandas fills in today ("12:30", "now") or the year 1 ("Dec 5"): the load's day
        raise ValueError(f"{value[:40]!r} is not a date (it gives no day, or no year)")
    try:
        if ts.tzinfo is not None:
            ts = ts.tz_convert("UTC").tz_localize(None)
        early = ts.year < EARLIEST_TIME.year
    except (ValueError, OverflowError):  # a zone took it out of pandas' range
        raise ValueError(f"{str(value)[:40]!r} is not a date or time") from None
    if early:  # before Python's year 1, maybe
        raise ValueError(_before(ts.year, ts.month, ts.day))
    try:
        out: dt.datetime = ts.to_pydatetime(warn=False)  # nanoseconds cut, as fromisoformat
    except (ValueError, OverflowError):  # after 9999
        raise ValueError(f"{str(value)[:40]!r} is not a date or time") from None
    return out


#: Unix seconds of :data:`EARLIEST_TIME`.
_EARLIEST_UNIX = (EARLIEST_TIME - dt.datetime(1970, 1, 1)).total_seconds()


def _from_unix(value: float | np.integer | np.floating) -> dt.datetime:
    """A number of Unix seconds as a naive UTC datetime."""
    seconds = float(value)
    if not math.isfinite(seconds) or not seconds < 1e11:  # milliseconds, most likely
        raise ValueError(f"{value!r} is not a Unix time in seconds")
    if seconds < _EARLIEST_UNIX:
        raise ValueError(f"Unix time {value!r} is before the year {EARLIEST_TIME.year}")
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).replace(tzinfo=None)


def _before(year: int, month: int, day: int) -> str:
    return f"{year:04d}-{month:02d}-{day:02d} is before the year {EARLIEST_TIME.year}"


def _span(delta: dt.timedelta) -> str:
    """``1 day``, ``2 days`` or, for a span that is no whole number of days, its ``str``."""
    if delta % dt.timedelta(days=1):
        return str(delta)
    return f"{delta.days} day" + ("" if delta.days == 1 else "s")


def latest_time() -> dt.datetime:
    """The latest date and time accepted now (naive UTC): the clock plus
    :data:`FUTURE_TOLERANCE`."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None) + FUTURE_TOLERANCE


# A latest_time() read before: never later than the one now (the clock runs forward), so a
# value up to it is in range without reading the clock again.
_checked_latest = [dt.datetime.min]


def _not_future(value: dt.datetime) -> bool:
    """Whether ``value`` (naive UTC) is no later than :func:`latest_time`."""
    if value <= _checked_latest[0]:
        return True
    _checked_latest[0] = latest = latest_time()
    return value <= latest


def time_fault(value: dt.datetime, latest: dt.datetime | None = None) -> str | None:
    """Why ``value`` (naive UTC) is outside the accepted range, or None: before
    :data:`EARLIEST_TIME`, or after ``latest`` (by default :func:`latest_time`: the clock
    plus :data:`FUTURE_TOLERANCE`).

    Example:
        >>> time_fault(dt.datetime(3000, 1, 1))
        '3000-01-01T00:00:00 UTC is in the future (more than 1 day after the current time)'
    """
    if value < EARLIEST_TIME:
        return _before(value.year, value.month, value.day)
    if (value <= latest) if latest is not None else _not_future(value):
        return None
    return (
        f"{value.isoformat()} UTC is in the future "
        f"(more than {_span(FUTURE_TOLERANCE)} after the current time)"
    )


def refuse_future_times(values: Sequence[Any] | pd.Series, what: str) -> None:
    """Refuse a batch holding a date and time in the future (later than the clock plus
    :data:`FUTURE_TOLERANCE`), before anything of it is written; other bad values are left to
    the load, which reports them row by row.

    Args:
        values: The raw values (text, numbers, datetimes; missing ones are skipped).
        what: What they are, for the message (``"ts"``).

    Raises:
        ValidationError: Naming the first value in the future and its position (1 = first).
    """
    latest = latest_time()
    for line, value in enumerate(values, start=1):
        if is_missing(value):
            continue
        try:
            out = _read_datetime(value)
        except ValueError:
            continue
        if out > latest:
            raise ValidationError(f"{what} {value!r} (item {line}): {time_fault(out, latest)}")


def _coerce_list(value: Any, ptype: PropertyType) -> list[Any] | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        if ptype.is_vector:
            raise ValueError("expected a vector of numbers, got a string")
        items: Sequence[Any] = [s for s in (p.strip() for p in value.split(";")) if s]
    elif isinstance(value, np.ndarray):
        items = value.tolist()
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise ValueError(f"expected a list, got {type(value).__name__}")
    element = ptype.element or "string"
    if ptype.is_vector:
        if len(items) != ptype.dim:
            raise ValueError(f"vector has {len(items)} values, the schema says {ptype.dim}")
        try:
            arr = np.asarray(items, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("vector holds values that are not numbers") from None
        if arr.ndim != 1:
            raise ValueError("vector must be one-dimensional")
        fault = vector_faults(arr[np.newaxis])[0]
        if fault is not None:
            raise ValueError(fault)
        return [float(x) for x in arr]
    out = [_coerce_scalar(item, element) for item in items if not is_missing(item)]
    return out or None  # no element is no value, as an empty text is (a null erases nothing)


def json_safe(value: Any) -> Any:
    """A copy of ``value`` that strict JSON can hold, as the CLI's ``--json`` and the service
    answer: numpy scalars and arrays as Python numbers and lists, NaN, infinities, ``NaT``
    and ``NA`` as None, dates and times in ISO 8601, bytes as UTF-8 text (bad bytes replaced),
    dict keys as text, anything else as its ``str``."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return [json_safe(v) for v in value.tolist()]
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, str | int | bool):
        return value
    return str(value)
