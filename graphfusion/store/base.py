"""The ``GraphStore`` interface and what every store implementation shares."""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from graphfusion.columnar import key_list
from graphfusion.errors import QueryTimeoutError, SchemaError, ValidationError
from graphfusion.progress import progress_bar
from graphfusion.schema import (
    NodeType,
    Property,
    PropertyType,
    RelType,
    Schema,
    load_schema,
    union_properties,
)
from graphfusion.store import cypher
from graphfusion.store.dialect import Dialect
from graphfusion.values import (
    arrow_type,
    coerce,
    count_arg,
    is_missing,
    real_arg,
    require_scalar,
    union_lists,
    vector_faults,
)

__all__ = [
    "GraphStore",
    "BaseStore",
    "Counts",
    "ReadResult",
    "DEFAULT_BATCH_SIZE",
    "MAX_BATCH_SIZE",
]

log = logging.getLogger("graphfusion.store")

#: Rows per write when none is given (each store may choose its own, see ``default_batch_size``).
DEFAULT_BATCH_SIZE = 10_000
MAX_BATCH_SIZE = 200_000
#: Start and end key columns of a relationship frame.
SRC, DST = "src", "dst"


@dataclass(frozen=True)
class Counts:
    """Node counts by label and relationship counts by type."""

    nodes: dict[str, int]
    relationships: dict[str, int]

    def to_dict(self) -> dict[str, dict[str, int]]:
        """``{"nodes": {label: n}, "relationships": {type: n}}``."""
        return {"nodes": dict(self.nodes), "relationships": dict(self.relationships)}


@dataclass(frozen=True)
class ReadResult:
    """The answer of :meth:`BaseStore.query_read`.

    Attributes:
        columns: The result's column names, also when it has no rows.
        rows: One dict per row, keyed by column, at most ``max_rows`` of them.
        truncated: The query had more rows than ``max_rows``; the rest were not read.
    """

    columns: list[str]
    rows: list[dict[str, Any]]
    truncated: bool = False


@runtime_checkable
class GraphStore(Protocol):
    """What graphfusion needs of a graph database.

    Two implementations: :class:`graphfusion.store.EmbeddedStore` (LadybugDB, the default) and
    :class:`graphfusion.store.Neo4jStore`.
    """

    schema: Schema
    dialect: Dialect

    def query(self, cypher: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run one Cypher statement with parameters; rows as dicts keyed by column."""
        ...

    def query_df(self, cypher: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Run one Cypher statement; rows as a DataFrame."""
        ...

    def query_arrow(self, cypher: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        """Run one Cypher statement; the result as an Arrow table."""
        ...

    def ensure_schema(self) -> None:
        """Create the schema's tables, constraints and indexes where missing."""
        ...

    def upsert_nodes(
        self, label: str, frame: pd.DataFrame, *, batch_size: int = ..., progress: bool = ...
    ) -> int:
        """Insert or update nodes of ``label`` from a frame keyed by the label's key column."""
        ...

    def upsert_relationships(
        self,
        rel_type: str,
        frame: pd.DataFrame,
        *,
        start: str,
        end: str,
        batch_size: int = ...,
        progress: bool = ...,
    ) -> int:
        """Insert or update relationships from a frame with ``src``, ``dst`` and properties."""
        ...

    def existing_keys(self, label: str, keys: Iterable[Any]) -> set[str]:
        """The keys among ``keys`` (read as the upserts read them) that exist as nodes of
        ``label``."""
        ...

    def counts(self) -> Counts:
        """Node counts by label and relationship counts by type."""
        ...

    def reset(self) -> None:
        """Delete every node and relationship (the schema stays)."""
        ...

    def close(self) -> None:
        """Release the database."""
        ...


def _plain_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Query parameters with numpy's numbers and arrays as Python's (``np.int64(3)``, an
    element of a DataFrame's column, was refused by the database: "Unknown parameter
    type")."""
    return {name: _plain(value) for name, value in (params or {}).items()}


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def schema_arg(schema: Any) -> Schema:
    """The schema a store is opened with: ``schema``, or the built-in one when None.

    Raises:
        ValidationError: ``schema`` is not a :class:`~graphfusion.schema.Schema`.
    """
    if schema is None:
        return load_schema()
    if not isinstance(schema, Schema):
        raise ValidationError(
            f"schema must be a Schema (graphfusion.schema.load_schema), got {type(schema).__name__}"
        )
    return schema


def timed_out(timeout_s: float) -> QueryTimeoutError:
    """The error of a read stopped at its time limit (both stores raise it)."""
    return QueryTimeoutError(f"the query ran past its limit of {timeout_s:g} s and was stopped")


def _batches(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


class BaseStore(ABC):
    """Shared logic: argument validation, value coercion, batching, progress and counts.

    Subclasses implement :meth:`_run` (one statement) and the two batch writers.
    """

    schema: Schema
    dialect: Dialect
    #: Opened without write access (the stores set it when they open).
    read_only: bool = False
    #: Rows per write when the caller gives none.
    default_batch_size: int = DEFAULT_BATCH_SIZE

    def check_writable(self, what: str) -> None:
        """Refuse to ``what`` on a store opened read-only, before anything is read (the
        database's own refusal comes at the first write, after the sources were read).

        Raises:
            ValidationError: The store is open read-only.
        """
        if self.read_only:
            raise ValidationError(f"the store is open read-only; {what} writes to it")

    # ----------------------------------------------------------------- to implement
    @abstractmethod
    def _run_columns(
        self, cypher: str, params: Mapping[str, Any] | None
    ) -> tuple[list[str], list[dict[str, Any]]]:
        """Execute one statement and return its columns and its rows."""

    def _run(self, cypher: str, params: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        """Execute one statement and return its rows."""
        return self._run_columns(cypher, params)[1]

    @abstractmethod
    def _run_read(
        self, cypher: str, params: Mapping[str, Any], limit: int | None, timeout_s: float | None
    ) -> tuple[list[str], list[dict[str, Any]]]:
        """Execute one statement in a transaction that the database keeps from writing:
        ``(its columns, at most limit of its rows)``, the statement stopped after
        ``timeout_s`` seconds (:func:`timed_out`); None: no limit."""

    @abstractmethod
    def _write_nodes(self, node: NodeType, batch: pa.Table, props: list[str], fresh: bool) -> None:
        """Upsert one batch of nodes: a table with the key column and the ``props`` columns
        (and maybe others, to ignore), of the schema's Arrow types; a null is no value.

        ``fresh`` says that no node of the label existed when the write began, so none of the
        (unique) rows can exist: a store may skip looking them up.
        """

    @abstractmethod
    def _write_rels(
        self,
        rel: RelType,
        start: NodeType,
        end: NodeType,
        batch: pa.Table,
        props: list[str],
        fresh: bool,
    ) -> None:
        """Upsert one batch of relationships: a table with ``src``, ``dst`` and the ``props``
        columns (and maybe others, to ignore).

        ``fresh``: no relationship of the type existed between the two labels when the write
        began.
        """

    @abstractmethod
    def ensure_schema(self) -> None:
        """Create the schema's tables, constraints and indexes where missing."""

    @abstractmethod
    def reset(self) -> None:
        """Delete every node and relationship (the schema stays)."""

    @abstractmethod
    def close(self) -> None:
        """Release the database."""

    # ----------------------------------------------------------------- queries
    def query(self, cypher: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run one Cypher statement with parameters.

        Args:
            cypher: The statement. Values must be passed as ``$parameters``, never pasted in.
            params: Parameter values by name.

        Returns:
            One dict per row, keyed by column name.

        Raises:
            ValidationError: If ``cypher`` is not a non-empty string or ``params`` not a mapping.
            QueryError: If the store rejects or fails the statement.
        """
        self.query_check(cypher, params)
        return self._run(cypher, _plain_params(params))

    def query_read(
        self,
        cypher: str,
        params: Mapping[str, Any] | None = None,
        *,
        max_rows: int | None = None,
        timeout_s: float | None = None,
    ) -> ReadResult:
        """Run one Cypher statement that may only read: the database itself refuses a write in
        it (the embedded store runs it in a read-only transaction; Neo4j in a read
        transaction, routed to a reader in a cluster). For statements from outside, such as
        the REST service's ``/cypher``.

        Args:
            cypher: The statement, as for :meth:`query`.
            params: Parameter values by name.
            max_rows: Read at most this many rows (and one more, to tell ``truncated``); the
                rest are never read. None: all.
            timeout_s: Stop the query after this many seconds. None: no limit.

        Returns:
            The columns, the rows and whether rows were left out.

        Raises:
            ValidationError: As for :meth:`query`, or a limit that is not positive.
            QueryTimeoutError: The query ran past ``timeout_s``.
            QueryError: The store rejects or fails the statement (a write, too).
        """
        self.query_check(cypher, params)
        if max_rows is not None:
            max_rows = count_arg("max_rows", max_rows, 2**63 - 2)
        if timeout_s is not None:
            timeout_s = real_arg("timeout_s", timeout_s)
        limit = None if max_rows is None else max_rows + 1  # one more tells there were more
        columns, rows = self._run_read(cypher, _plain_params(params), limit, timeout_s)
        if max_rows is not None and len(rows) > max_rows:
            return ReadResult(columns, rows[:max_rows], truncated=True)
        return ReadResult(columns, rows)

    @staticmethod
    def query_check(query: Any, params: Any) -> None:
        """Raise ValidationError unless ``query`` is one non-empty Cypher statement and
        ``params`` a mapping or None that gives every ``$parameter`` the statement names
        (LadybugDB would read a missing one as null when no parameter is given at all)."""
        if not isinstance(query, str) or not query.strip():
            raise ValidationError("a Cypher query must be a non-empty string")
        if params is not None and not isinstance(params, Mapping):
            raise ValidationError("query parameters must be a mapping of name -> value")
        masked = cypher.single_statement(query)
        missing = sorted(set(cypher.parameter_names(query, masked)) - set(params or {}))
        if missing:
            raise ValidationError(
                "the query names parameters with no value: "
                + ", ".join(f"${name}" for name in missing)
            )
        log.debug("cypher: %s params: %s", query, _preview(params))

    def query_arrow(self, cypher: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        """Run one Cypher statement; the result as an Arrow table (for large results).

        Same arguments and errors as :meth:`query`; a node or relationship is the struct of
        its properties (null where one holds no value).
        """
        self.query_check(cypher, params)
        return self._run_arrow(cypher, _plain_params(params))

    def _run_arrow(self, cypher: str, params: Mapping[str, Any]) -> pa.Table:
        """One statement's result as Arrow; stores with a native Arrow path override this."""
        rows = self._run(cypher, params)
        return pa.Table.from_pylist(rows)

    def query_df(self, cypher: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Run one Cypher statement; rows as a DataFrame (columns in the query's order, also
        when there are no rows)."""
        self.query_check(cypher, params)
        columns, rows = self._run_columns(cypher, _plain_params(params))
        return pd.DataFrame.from_records(rows, columns=columns)

    def existing_keys(self, label: str, keys: Iterable[Any]) -> set[str]:
        """The keys among ``keys`` that exist as nodes of ``label``.

        Keys are read as the upserts read them (:func:`lookup_keys`): `` p1 `` is ``p1`` and
        ``12.0`` is ``12``, and the set holds them so; a missing key (None, NaN, blank) is
        no node.

        Raises:
            SchemaError: If ``label`` is not in the schema.
            ValidationError: ``keys`` is one string, or holds a value that is no key.
        """
        node = self.schema.node(label)
        unique = lookup_keys(keys)
        found: set[str] = set()
        for part in _batches(len(unique), 50_000):
            rows = self._run(cypher.existing_keys(node), {"keys": unique[part]})
            found.update(r["key"] for r in rows)
        return found

    def counts(self) -> Counts:
        """Node counts by label and relationship counts by type, for every schema entry."""
        nodes = {
            label: int(self._run(cypher.count_nodes(node), {})[0]["count"])
            for label, node in self.schema.nodes.items()
        }
        rels = {
            name: int(self._run(cypher.count_rels(rel), {})[0]["count"])
            for name, rel in self.schema.relationships.items()
        }
        return Counts(nodes, rels)

    # ----------------------------------------------------------------- writes
    def upsert_nodes(
        self,
        label: str,
        frame: pd.DataFrame,
        *,
        batch_size: int | None = None,
        progress: bool = False,
    ) -> int:
        """Insert or update nodes of ``label``.

        Loading the same frame twice changes nothing. A null value never erases a stored one.

        Args:
            label: A node label of the schema.
            frame: One row per node: the key column (``id``) and any schema properties.
            batch_size: Rows per write (1 to 200,000).
            progress: Show a progress bar.

        Returns:
            The number of rows written.

        Raises:
            SchemaError: Unknown label or column.
            ValidationError: Missing, null or duplicate keys; values that do not fit the type.
        """
        node = self.schema.node(label)
        self._check_batch(batch_size)
        frame = _check_frame(frame, required=[node.key])
        props = [c for c in frame.columns if c != node.key]
        for prop in props:
            node.prop(prop)
        keys = _clean_keys(frame[node.key], f"{label}.{node.key}")
        columns = {node.key: pa.array(keys, type=pa.string())}
        for prop in props:
            columns[prop] = _coerce_column(frame[prop], node.prop(prop), f"{label}.{prop}")
        return self.write_node_table(
            label, pa.table(columns), batch_size=batch_size, progress=progress
        )

    def write_node_table(
        self,
        label: str,
        table: pa.Table,
        *,
        batch_size: int | None = None,
        progress: bool = False,
    ) -> int:
        """Upsert nodes given as columns that are already valid.

        This is the writer behind :meth:`upsert_nodes`, :meth:`write_node_rows` and the
        loaders. The table has the label's key column (unique, non-null keys) and any schema
        properties, with values of the types :func:`graphfusion.values.arrow_type` names
        (columns of other types are cast); a null is no value, and never erases a stored one.

        Returns:
            The rows written.
        """
        node = self.schema.node(label)
        size = self._check_batch(batch_size)
        types = {p.name: p.type for p in node.properties}
        table = _conform(table, types, label, union_properties(node.properties))
        _check_vectors(table, node)
        fresh = table.num_rows > 0 and self._is_empty(cypher.count_nodes(node))
        self._write_batches(
            table,
            size,
            progress,
            f"{label} nodes",
            lambda batch, live: self._write_nodes(node, batch, live, fresh),
            [node.key],
        )
        return table.num_rows

    def write_node_rows(
        self,
        label: str,
        rows: list[dict[str, Any]],
        *,
        batch_size: int | None = None,
        progress: bool = False,
    ) -> int:
        """:meth:`write_node_table` for rows given as dicts (the key and any properties; a
        missing property is null). Returns the rows written."""
        node = self.schema.node(label)
        types = {p.name: p.type for p in node.properties}
        return self.write_node_table(
            label,
            _rows_table(rows, [node.key], types, label),
            batch_size=batch_size,
            progress=progress,
        )

    def upsert_relationships(
        self,
        rel_type: str,
        frame: pd.DataFrame,
        *,
        start: str,
        end: str,
        batch_size: int | None = None,
        progress: bool = False,
    ) -> int:
        """Insert or update relationships ``(start)-[:rel_type]->(end)``.

        A relationship is unique per (type, start node, end node); loading it again updates
        its properties. Both ends must exist.

        Args:
            rel_type: A relationship type of the schema.
            frame: One row per relationship: ``src`` and ``dst`` (the end nodes' keys) and any
                properties of the type.
            start: Label of the start nodes.
            end: Label of the end nodes.
            batch_size: Rows per write (1 to 200,000).
            progress: Show a progress bar.

        Returns:
            The number of rows written.

        Raises:
            SchemaError: Unknown type, labels or column, or a pair the type does not connect.
            ValidationError: Null or duplicate (src, dst) pairs, ends that do not exist, values
                that do not fit the type.
        """
        rel = self.schema.rel(rel_type)
        for label in (start, end):
            self.schema.node(label)  # raises SchemaError for an unknown label
        if not rel.connects(start, end):
            allowed = ", ".join(f"({a})->({b})" for a, b in rel.between)
            raise SchemaError(
                f"{rel_type} does not connect ({start})->({end}); it connects {allowed}"
            )
        self._check_batch(batch_size)
        frame = _check_frame(frame, required=[SRC, DST])
        props = [c for c in frame.columns if c not in (SRC, DST)]
        for prop in props:
            rel.prop(prop)
        src = _clean_keys(frame[SRC], f"{rel_type}.src", unique=False)
        dst = _clean_keys(frame[DST], f"{rel_type}.dst", unique=False)
        pairs = pd.Series(list(zip(src, dst, strict=True)))
        dup = pairs.duplicated()
        if dup.any():
            first = pairs[dup].iloc[0]
            raise ValidationError(
                f"{rel_type}: {int(dup.sum())} duplicate (src, dst) pairs, e.g. {first}"
            )
        for label, keys in ((start, src), (end, dst)):
            missing = set(keys) - self.existing_keys(label, keys)
            if missing:
                raise ValidationError(
                    f"{rel_type}: {len(missing)} {label} ends do not exist, "
                    f"e.g. {sorted(missing)[:3]}"
                )
        columns = {SRC: pa.array(src, type=pa.string()), DST: pa.array(dst, type=pa.string())}
        for prop in props:
            columns[prop] = _coerce_column(frame[prop], rel.prop(prop), f"{rel_type}.{prop}")
        return self.write_rel_table(
            rel_type,
            pa.table(columns),
            start=start,
            end=end,
            batch_size=batch_size,
            progress=progress,
        )

    def write_rel_table(
        self,
        rel_type: str,
        table: pa.Table,
        *,
        start: str,
        end: str,
        batch_size: int | None = None,
        progress: bool = False,
    ) -> int:
        """Upsert relationships given as columns that are already valid.

        The table has ``src`` and ``dst`` (keys of existing end nodes, unique pairs) and any
        properties of the type, typed as for :meth:`write_node_table`; this is the writer
        behind :meth:`upsert_relationships`, :meth:`write_rel_rows` and the loaders.

        Returns:
            The rows written.
        """
        rel = self.schema.rel(rel_type)
        start_node, end_node = self.schema.node(start), self.schema.node(end)
        size = self._check_batch(batch_size)
        types = {p.name: p.type for p in rel.properties}
        table = _conform(
            table,
            {SRC: _KEY_TYPE, DST: _KEY_TYPE, **types},
            rel_type,
            union_properties(rel.properties),
        )
        count = cypher.count_rels_between(rel, start_node, end_node)
        fresh = table.num_rows > 0 and self._is_empty(count)
        self._write_batches(
            table,
            size,
            progress,
            f"{rel_type} relationships",
            lambda batch, live: self._write_rels(rel, start_node, end_node, batch, live, fresh),
            [SRC, DST],
        )
        return table.num_rows

    def write_rel_rows(
        self,
        rel_type: str,
        rows: list[dict[str, Any]],
        *,
        start: str,
        end: str,
        batch_size: int | None = None,
        progress: bool = False,
    ) -> int:
        """:meth:`write_rel_table` for rows given as dicts (``src``, ``dst`` and any
        properties). Returns the rows written."""
        types = {p.name: p.type for p in self.schema.rel(rel_type).properties}
        return self.write_rel_table(
            rel_type,
            _rows_table(rows, [SRC, DST], {SRC: _KEY_TYPE, DST: _KEY_TYPE, **types}, rel_type),
            start=start,
            end=end,
            batch_size=batch_size,
            progress=progress,
        )

    def _write_batches(
        self,
        table: pa.Table,
        batch_size: int,
        progress: bool,
        what: str,
        write: Any,
        fixed: list[str],
    ) -> None:
        if not table.num_rows:
            return
        bar = progress_bar(
            total=table.num_rows, desc=what, unit="row", progress=progress, leave=False
        )
        with bar:
            for offset in range(0, table.num_rows, batch_size):
                batch = table.slice(offset, batch_size)
                # Only the properties with a value in this batch are written: the rest would
                # be coalesced to what is stored anyway, and an all-null column has no type.
                live = [
                    name
                    for name in batch.column_names
                    if name not in fixed and batch.column(name).null_count < batch.num_rows
                ]
                write(batch, live)
                bar.update(batch.num_rows)

    def _is_empty(self, count_query: str) -> bool:
        """Whether ``count_query`` counts 0, for stores that skip lookups into empty tables.

        The default (for stores whose writes need no such hint, like Neo4j's ``MERGE``) sends
        nothing and answers False.
        """
        return False

    def _check_batch(self, batch_size: int | None) -> int:
        """The batch size to use: ``batch_size`` checked, or the store's default."""
        if batch_size is None:
            return self.default_batch_size
        if not isinstance(batch_size, int) or isinstance(batch_size, bool):
            raise ValidationError("batch_size must be an integer")
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ValidationError(f"batch_size must be in 1..{MAX_BATCH_SIZE}, got {batch_size}")
        return batch_size

    # ----------------------------------------------------------------- context manager
    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_frame(frame: Any, required: Sequence[str]) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise ValidationError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValidationError(f"frame lacks the column(s) {missing}; it has {list(frame.columns)}")
    if frame.columns.duplicated().any():
        raise ValidationError("frame has duplicate column names")
    return frame.reset_index(drop=True)


def _key_of(value: Any, what: str, row: int) -> str | None:
    """``value`` as a key, as the loaders read it (:func:`graphfusion.columnar.key_list`):
    text stripped, a whole number without its ``.0``; None when it is missing.

    Raises:
        ValidationError: A value that is not text nor a finite number.
    """
    if is_missing(value):
        return None
    try:
        require_scalar(value, "a key")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{value} is not a finite number")
        (key,) = key_list(value)
    except ValueError as exc:
        raise ValidationError(f"{what}: row {row}: {exc}") from None
    return key


def lookup_keys(keys: Any) -> list[str]:
    """The distinct keys of ``keys`` (any iterable) to look up, read as :func:`_key_of`
    reads them, the missing ones left out.

    Raises:
        ValidationError: ``keys`` is one string or not iterable, or holds a value that is
            no key.
    """
    if isinstance(keys, str | bytes) or not isinstance(keys, Iterable):
        raise ValidationError(f"keys must be a list of keys, got {type(keys).__name__}")
    found = (_key_of(v, "keys", i) for i, v in enumerate(keys))
    return list(dict.fromkeys(k for k in found if k is not None))


def _clean_keys(col: pd.Series, what: str, unique: bool = True) -> list[str]:
    """The keys of ``col`` (:func:`_key_of`); a row without one is refused."""
    keys: list[str] = []
    for i, v in enumerate(col.tolist()):
        key = _key_of(v, what, i)
        if key is None:
            raise ValidationError(f"{what}: row {i} has no key")
        keys.append(key)
    if unique:
        seen: set[str] = set()
        for i, k in enumerate(keys):
            if k in seen:
                raise ValidationError(f"{what}: duplicate key {k!r} (row {i})")
            seen.add(k)
    return keys


def _coerce_column(col: pd.Series, prop: Property, what: str) -> pa.Array:
    """``col``'s values of ``prop``'s type, each within the property's range."""
    out = []
    for i, v in enumerate(col.tolist()):
        try:
            out.append(coerce(v, prop))
        except ValueError as exc:
            raise ValidationError(f"{what}: row {i}: {exc}") from None
    return pa.array(out, type=arrow_type(prop.type))


_KEY_TYPE = PropertyType("string")


def _conform(
    table: pa.Table, types: Mapping[str, PropertyType], owner: str, union: Collection[str] = ()
) -> pa.Table:
    """``table`` with each column of the schema's Arrow type (cast where it is not), and the
    lists of the ``union`` columns holding each element once.

    Raises:
        SchemaError: A column that is not a property (of ``owner``, a label or type).
        ValidationError: A column whose values cannot be cast.
    """
    for i, name in enumerate(table.column_names):
        if name not in types:
            raise SchemaError(f"no property {name!r} to write")
        want = arrow_type(types[name])
        if table.schema.field(i).type != want:
            try:
                column = table.column(i).cast(want)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
                raise ValidationError(f"{owner}.{name}: {exc}") from None
            table = table.set_column(i, name, column)
        if name in union:
            lists = union_lists(
                table.column(i).to_pylist(), np.arange(table.num_rows), table.num_rows
            )
            table = table.set_column(i, name, pa.array(lists, want))
    return table


def _rows_table(
    rows: list[dict[str, Any]], first: list[str], types: Mapping[str, PropertyType], owner: str
) -> pa.Table:
    """Row dicts as a typed table: the columns ``first``, then every other name in the rows
    (a row without a name holds null there).

    Raises:
        SchemaError: A name that is not a property (of ``owner``, a label or type).
        ValidationError: Values that are not of their property's type.
    """
    names: dict[str, None] = dict.fromkeys(first)
    for row in rows:
        names.update(dict.fromkeys(row))
    columns = {}
    for name in names:
        if name not in types:
            raise SchemaError(f"no property {name!r} to write")
        try:
            columns[name] = pa.array([r.get(name) for r in rows], type=arrow_type(types[name]))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise ValidationError(f"{owner}.{name}: {exc}") from None
    return pa.table(columns)


def _check_vectors(table: pa.Table, node: NodeType) -> None:
    """Refuse a vector of another size than its property's or with values that are not
    finite as 32-bit floats (the last check of every node write; ``table`` conformed).

    Raises:
        ValidationError: Naming the first such row, its key and why.
    """
    for prop in node.vectors:
        if prop.name not in table.column_names:
            continue
        column = table.column(prop.name).combine_chunks()
        lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
        bad = set(np.flatnonzero(np.nan_to_num(lengths, nan=prop.dim or 0) != prop.dim).tolist())
        flat = pc.list_flatten(column).to_numpy(zero_copy_only=False)
        parents = pc.list_parent_indices(column).to_numpy(zero_copy_only=False)
        bad.update(np.unique(parents[~np.isfinite(flat)]).tolist())
        if not bad:
            continue
        row = min(bad)
        values = column[row].as_py()
        reason = (
            f"vector has {len(values)} values, the schema says {prop.dim}"
            if len(values) != prop.dim
            else vector_faults(np.asarray([values], dtype=np.float64))[0]
        )
        key = table.column(node.key)[row].as_py()
        raise ValidationError(
            f"{node.label}.{prop.name}: row {row} ({node.key} {key!r}): {reason}"
            + (f" (and {len(bad) - 1} more rows)" if len(bad) > 1 else "")
        )


def _preview(params: Mapping[str, Any] | None) -> str:
    if not params:
        return "{}"
    parts = []
    for k, v in params.items():
        if isinstance(v, list) and len(v) > 3:
            parts.append(f"{k}: [{len(v)} items]")
        else:
            parts.append(f"{k}: {str(v)[:80]}")
    return "{" + ", ".join(parts) + "}"
