"""The ``GraphStore`` interface and what every store implementation shares."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import pandas as pd
from tqdm.auto import tqdm

from graphfusion.errors import SchemaError, ValidationError
from graphfusion.schema import NodeType, RelType, Schema
from graphfusion.store import cypher
from graphfusion.store.dialect import Dialect
from graphfusion.values import coerce, is_missing

__all__ = ["GraphStore", "BaseStore", "Counts", "DEFAULT_BATCH_SIZE", "MAX_BATCH_SIZE"]

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

    def existing_keys(self, label: str, keys: Iterable[str]) -> set[str]:
        """The subset of ``keys`` that exist as nodes of ``label``."""
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


def _batches(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


class BaseStore(ABC):
    """Shared logic: argument validation, value coercion, batching, progress and counts.

    Subclasses implement :meth:`_run` (one statement) and the two batch writers.
    """

    schema: Schema
    dialect: Dialect
    #: Rows per write when the caller gives none.
    default_batch_size: int = DEFAULT_BATCH_SIZE

    # ----------------------------------------------------------------- to implement
    @abstractmethod
    def _run(self, cypher: str, params: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        """Execute one statement and return its rows."""

    @abstractmethod
    def _write_nodes(
        self, node: NodeType, rows: list[dict[str, Any]], props: list[str], fresh: bool
    ) -> None:
        """Upsert one batch of node rows (each carries the key; a missing property is null).

        ``fresh`` says that no node of the label existed when the write began, so none of the
        (unique) rows can exist: a store may skip looking them up.
        """

    @abstractmethod
    def _write_rels(
        self,
        rel: RelType,
        start: NodeType,
        end: NodeType,
        rows: list[dict[str, Any]],
        props: list[str],
        fresh: bool,
    ) -> None:
        """Upsert one batch of relationship rows (``src``, ``dst`` and ``props``).

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
        if not isinstance(cypher, str) or not cypher.strip():
            raise ValidationError("a Cypher query must be a non-empty string")
        if params is not None and not isinstance(params, Mapping):
            raise ValidationError("query parameters must be a mapping of name -> value")
        log.debug("cypher: %s params: %s", cypher, _preview(params))
        return self._run(cypher, dict(params or {}))

    def query_df(self, cypher: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Run one Cypher statement; rows as a DataFrame (columns in the query's order)."""
        rows = self.query(cypher, params)
        return pd.DataFrame.from_records(rows) if rows else pd.DataFrame()

    def existing_keys(self, label: str, keys: Iterable[str]) -> set[str]:
        """The subset of ``keys`` that exist as nodes of ``label``.

        Raises:
            SchemaError: If ``label`` is not in the schema.
        """
        node = self.schema.node(label)
        unique = list(dict.fromkeys(str(k) for k in keys))
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
        columns = {node.key: keys}
        for prop in props:
            columns[prop] = _coerce_column(frame[prop], node.prop(prop).type, f"{label}.{prop}")
        return self.write_node_rows(
            label, _rows(columns, len(frame)), batch_size=batch_size, progress=progress
        )

    def write_node_rows(
        self,
        label: str,
        rows: list[dict[str, Any]],
        *,
        batch_size: int | None = None,
        progress: bool = False,
    ) -> int:
        """Upsert nodes given as rows that are already valid (unique keys, coerced values).

        This is the writer behind :meth:`upsert_nodes` and the loaders; every row has the
        label's key and any schema properties (a missing one is null). Returns the rows written.
        """
        node = self.schema.node(label)
        size = self._check_batch(batch_size)
        fresh = bool(rows) and self._is_empty(cypher.count_nodes(node))
        self._write_batches(
            rows,
            size,
            progress,
            f"{label} nodes",
            lambda batch, live: self._write_nodes(node, batch, live, fresh),
            [node.key],
        )
        return len(rows)

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
        columns: dict[str, list[Any]] = {SRC: src, DST: dst}
        for prop in props:
            columns[prop] = _coerce_column(frame[prop], rel.prop(prop).type, f"{rel_type}.{prop}")
        return self.write_rel_rows(
            rel_type,
            _rows(columns, len(frame)),
            start=start,
            end=end,
            batch_size=batch_size,
            progress=progress,
        )

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
        """Upsert relationships given as rows that are already valid.

        Rows carry ``src``, ``dst`` (existing end keys, unique pairs) and coerced properties;
        this is the writer behind :meth:`upsert_relationships` and the loaders.
        """
        rel = self.schema.rel(rel_type)
        start_node, end_node = self.schema.node(start), self.schema.node(end)
        size = self._check_batch(batch_size)
        count = cypher.count_rels_between(rel, start_node, end_node)
        fresh = bool(rows) and self._is_empty(count)
        self._write_batches(
            rows,
            size,
            progress,
            f"{rel_type} relationships",
            lambda batch, live: self._write_rels(rel, start_node, end_node, batch, live, fresh),
            [SRC, DST],
        )
        return len(rows)

    def _write_batches(
        self,
        rows: list[dict[str, Any]],
        batch_size: int,
        progress: bool,
        what: str,
        write: Any,
        fixed: list[str],
    ) -> None:
        if not rows:
            return
        bar = tqdm(total=len(rows), desc=what, unit="row", disable=not progress, leave=False)
        with bar:
            for part in _batches(len(rows), batch_size):
                batch = rows[part]
                # Only the properties with a value in this batch are written: the rest would
                # be coalesced to what is stored anyway, and an all-null column has no type.
                # Rows may lack keys (a missing key is a null).
                names: dict[str, None] = {}
                for row in batch:
                    names.update(dict.fromkeys(row))
                live = [
                    k for k in names if k not in fixed and any(r.get(k) is not None for r in batch)
                ]
                write(batch, live)
                bar.update(len(batch))

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
    def __enter__(self) -> BaseStore:
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


def _clean_keys(col: pd.Series, what: str, unique: bool = True) -> list[str]:
    keys: list[str] = []
    for i, v in enumerate(col.tolist()):
        if is_missing(v):
            raise ValidationError(f"{what}: row {i} has no key")
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        keys.append(str(v).strip())
    if unique:
        seen: set[str] = set()
        for i, k in enumerate(keys):
            if k in seen:
                raise ValidationError(f"{what}: duplicate key {k!r} (row {i})")
            seen.add(k)
    return keys


def _coerce_column(col: pd.Series, ptype: Any, what: str) -> list[Any]:
    out = []
    for i, v in enumerate(col.tolist()):
        try:
            out.append(coerce(v, ptype))
        except ValueError as exc:
            raise ValidationError(f"{what}: row {i}: {exc}") from None
    return out


def _rows(columns: dict[str, list[Any]], n: int) -> list[dict[str, Any]]:
    names = list(columns)
    return [{name: columns[name][i] for name in names} for i in range(n)]


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
