"""A table read from a source, held as columns, with the line (or row) number of every row.

A column holds exactly the values the row readers give for it (text from a CSV file, Python
numbers from a numeric DataFrame column, anything from a JSON line), so that code working on
single values and code working on whole columns see the same data. Columns of plain text or
numbers also keep an Arrow array of their values, for vectorised checks and conversions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = ["Column", "Table"]

_NUMERIC_KINDS = {"i": pa.int64(), "u": pa.int64(), "f": pa.float64(), "b": pa.bool_()}


class Column:
    """The values of one column.

    Args:
        values: The values as Python objects, as a row reader gives them. A list of ``str``
            only is also held as Arrow text, made when first asked for.
        arrow: The same values as an Arrow array: ``string`` (a null is None), or ``int64``,
            ``float64`` (NaN kept as NaN) or ``bool`` without nulls. When given, ``values``
            may be left out and is made from it on first use.
    """

    __slots__ = ("_arrow", "_probed", "_values")

    def __init__(self, values: list[Any] | None = None, arrow: pa.Array | None = None) -> None:
        if values is None and arrow is None:
            raise ValueError("a column needs values or an Arrow array")
        self._values = values
        self._arrow = arrow
        self._probed = arrow is not None

    @property
    def arrow(self) -> pa.Array | None:
        """The values as an Arrow array, when they are plain text or numbers; else None."""
        if not self._probed:
            self._probed = True
            values = self._values
            if values and all(type(v) is str for v in values):
                # (not for text that UTF-8 cannot hold, such as lone surrogates)
                with contextlib.suppress(pa.ArrowException, UnicodeEncodeError):
                    self._arrow = pa.array(values, type=pa.string())
        return self._arrow

    @property
    def kind(self) -> str:
        """``str``, ``int``, ``float`` or ``bool`` for Arrow-backed columns, else ``object``."""
        arrow = self.arrow
        if arrow is None:
            return "object"
        t = arrow.type
        if pa.types.is_string(t):
            return "str"
        if pa.types.is_integer(t):
            return "int"
        if pa.types.is_floating(t):
            return "float"
        return "bool"

    def values(self) -> list[Any]:
        """The values as Python objects."""
        if self._values is None:
            assert self._arrow is not None
            self._values = self._arrow.to_pylist()
        return self._values

    def __len__(self) -> int:
        if self._values is not None:
            return len(self._values)
        assert self._arrow is not None
        return len(self._arrow)

    def take(self, index: np.ndarray) -> Column:
        """The values at ``index`` (positions, in that order)."""
        if self._values is not None and (not self._probed or self._arrow is None):
            vals = self._values
            return Column([vals[i] for i in index.tolist()])
        assert self._arrow is not None
        return Column(arrow=self._arrow.take(pa.array(index, type=pa.int64())))

    @classmethod
    def constant(cls, value: Any, n: int) -> Column:
        """``n`` copies of ``value``."""
        types = {str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_()}
        arrow_type = types.get(type(value))
        if arrow_type is not None and not (type(value) is int and abs(value) >= 2**63):
            return cls(arrow=pa.array([value] * n, type=arrow_type))
        return cls([value] * n)

    @classmethod
    def from_series(cls, series: pd.Series) -> Column:
        """A DataFrame column, with the values that iterating over it gives."""
        values = series.to_numpy() if isinstance(series.dtype, np.dtype) else None
        if values is not None and values.dtype.kind in _NUMERIC_KINDS:
            kind = values.dtype.kind
            if kind == "u" and len(values) and values.max() > np.iinfo(np.int64).max:
                return cls(list(series))
            return cls(arrow=pa.array(values, type=_NUMERIC_KINDS[kind], from_pandas=False))
        return cls(list(series))


class Table:
    """Rows of one source table as named columns, with each row's line or row number.

    Args:
        columns: Column name -> column, all of the same length.
        lines: The 1-based line (CSV, JSON lines) or row number (DataFrame, Parquet) of
            each row.
        constants: Columns that hold one value in every row (made when first asked for).
    """

    def __init__(
        self,
        columns: Mapping[str, Column],
        lines: np.ndarray,
        constants: Mapping[str, Any] | None = None,
    ) -> None:
        self.lines = np.asarray(lines, dtype=np.int64)
        self.names = list(columns)
        self.constants = dict(constants or {})
        self._columns = dict(columns)
        self._parent: tuple[Table, np.ndarray] | None = None
        for name, col in self._columns.items():
            if len(col) != len(self.lines):
                raise ValueError(f"column {name!r} has {len(col)} values for {len(lines)} rows")

    def __len__(self) -> int:
        return len(self.lines)

    def column(self, name: str) -> Column:
        """A column by name; an absent column reads as None in every row, like a missing key
        in a row dict."""
        col = self._columns.get(name)
        if col is not None:
            return col
        if name in self.constants:
            col = Column.constant(self.constants[name], len(self))
        elif self._parent is not None and name in self.names:
            parent, index = self._parent
            col = parent.column(name).take(index)
        else:
            return Column([None] * len(self))
        self._columns[name] = col
        return col

    def take(self, index: np.ndarray) -> Table:
        """The rows at ``index`` (positions, in that order); columns are taken when first
        asked for."""
        index = np.asarray(index, dtype=np.int64)
        out = Table({}, self.lines[index], self.constants)
        out.names = [n for n in self.names if n not in self.constants]
        out._parent = (self, index)
        return out

    def with_constant(self, name: str, value: Any) -> Table:
        """This table with a column that holds ``value`` in every row (replacing any)."""
        out = Table({}, self.lines, {**self.constants, name: value})
        out.names = [n for n in self.names if n != name]
        out._parent = self._parent
        out._columns = {k: v for k, v in self._columns.items() if k != name}
        return out

    def rows(self, names: Iterable[str], index: Iterable[int]) -> list[dict[str, Any]]:
        """Row dicts (only the columns ``names``) for the rows at ``index``, for code that
        works on one row at a time."""
        names = list(names)
        values = [self.column(n).values() for n in names]
        return [{n: v[i] for n, v in zip(names, values, strict=True)} for i in index]

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Table:
        """A DataFrame's columns (named by ``str`` of the column label; of repeated names the
        last wins, as in a row dict), rows numbered from 1."""
        columns: dict[str, Column] = {}
        for i, name in enumerate(frame.columns):
            columns.pop(str(name), None)
            columns[str(name)] = Column.from_series(frame.iloc[:, i])
        return cls(columns, np.arange(1, len(frame) + 1, dtype=np.int64))

    @classmethod
    def from_rows(cls, rows: list[dict[str, Any]], lines: list[int]) -> Table:
        """Row dicts as columns: every name found in any row (first seen first); a row
        without a name holds None there."""
        names: dict[str, None] = {}
        for row in rows:
            names.update(dict.fromkeys(row))
        columns = {n: Column([row.get(n) for row in rows]) for n in names}
        return cls(columns, np.asarray(lines, dtype=np.int64))
