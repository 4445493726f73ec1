"""The embedded store: LadybugDB (the maintained fork of Kuzu), in-process, in a folder.

Layout of a store folder (default ``./.graphfusion/``)::

    graph.lbug          the LadybugDB database file (with its WAL beside it)
    graphfusion.json    format version, LadybugDB version and schema digest
    reports/            load reports
    cache/              feature caches

New rows are bulk-loaded with ``COPY`` from Arrow tables; rows whose keys already exist are
updated with ``MATCH ... SET``. Relationship upserts match their two ends in separate ``MATCH``
clauses (a comma-joined pattern scans whole tables in LadybugDB).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import threading
from collections.abc import Collection, Iterable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from graphfusion.errors import QueryError, StoreError, StoreLockedError, ValidationError
from graphfusion.schema import NodeType, Property, RelType, Schema, load_schema, union_properties
from graphfusion.store import cypher
from graphfusion.store.base import DST, SRC, BaseStore, timed_out
from graphfusion.store.dialect import LADYBUG, ladybug_arrow_type
from graphfusion.values import arrow_type, union_lists

__all__ = ["EmbeddedStore", "DEFAULT_STORE_DIR", "STORE_FORMAT"]

log = logging.getLogger("graphfusion.store")

DEFAULT_STORE_DIR = ".graphfusion"
#: Version of the folder layout; a folder written by a newer graphfusion is refused.
STORE_FORMAT = 1
DB_FILE = "graph.lbug"
META_FILE = "graphfusion.json"


def _ladybug() -> Any:
    try:
        import ladybug
    except ImportError as exc:  # pragma: no cover - a dependency
        raise StoreError("the embedded store needs the 'ladybug' package") from exc
    return ladybug


class EmbeddedStore(BaseStore):
    """A graph store in a local folder, backed by LadybugDB.

    Args:
        path: The store folder; ``$GRAPHFUSION_STORE`` or ``./.graphfusion`` when None.
        schema: The graph schema; the built-in e-commerce schema when None.
        read_only: Open without write access (several readers may share a folder).
        buffer_pool_mb: LadybugDB's buffer pool size in MiB.
        create: Make a new store where the folder holds none (never when ``read_only``).

    Raises:
        StoreError: The folder cannot be created or written, holds something else, was made
            by an incompatible version, or holds no store and ``create`` is False.
        StoreLockedError: Another process holds the store.
    """

    dialect = LADYBUG
    # COPY costs per statement (benchmarks/ingest.py, the bench shop: 2.8 s in 20k-row
    # pieces, 1.3-1.6 s in 100k and 200k, where every table is one COPY)
    default_batch_size = 200_000

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        schema: Schema | None = None,
        read_only: bool = False,
        buffer_pool_mb: int = 2048,
        create: bool = True,
    ) -> None:
        self.schema = schema or load_schema()
        self.path = Path(path or os.environ.get("GRAPHFUSION_STORE") or DEFAULT_STORE_DIR)
        self.read_only = read_only
        self._prepare_folder(create and not read_only)
        ladybug = _ladybug()
        try:
            self._db = ladybug.Database(
                str(self.path / DB_FILE),
                read_only=read_only,
                buffer_pool_size=buffer_pool_mb * 1024 * 1024,
            )
        except RuntimeError as exc:
            raise _open_error(self.path, exc) from None
        self._conn = ladybug.Connection(self._db)
        # One statement at a time on the connection: the loader writes from a worker thread
        # while it checks the next tables (ladybug releases the GIL while it runs one).
        self._lock = threading.RLock()
        self._closed = False
        # relationship type -> its table's property columns (name, LadybugDB type), in the
        # stored order, which COPY follows (read on first use, by _stored_columns)
        self._rel_columns: dict[str, list[tuple[str, str]]] = {}
        if not read_only:
            self.ensure_schema()
            self._write_meta()

    # ----------------------------------------------------------------- folder
    def _prepare_folder(self, create: bool) -> None:
        p = self.path
        if p.exists() and not p.is_dir():
            raise StoreError(f"store path {p} exists and is not a folder")
        meta = p / META_FILE
        if not create and not meta.exists():
            raise StoreError(
                f"no graphfusion store at {p}; make one with `graphfusion load` (or `demo`)"
            )
        if p.is_dir():
            if meta.exists():
                self._check_meta(meta)
            elif any(p.iterdir()):
                raise StoreError(
                    f"{p} is not empty and is not a graphfusion store (no {META_FILE}); "
                    "name an empty or new folder"
                )
        else:
            try:
                p.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create store folder {p}: {exc.strerror or exc}") from None
        if not self.read_only and not os.access(p, os.W_OK):
            raise StoreError(f"store folder {p} is not writable")

    def _check_meta(self, meta: Path) -> None:
        try:
            info = json.loads(meta.read_text(encoding="utf-8"))
            fmt = int(info["format"])
        except (OSError, ValueError, KeyError, TypeError):
            raise StoreError(f"{meta} is damaged; it is not a graphfusion store file") from None
        if fmt > STORE_FORMAT:
            raise StoreError(
                f"{self.path} was written by a newer graphfusion (store format {fmt}; this one "
                f"reads up to {STORE_FORMAT}); upgrade graphfusion or use another folder"
            )
        made_by = info.get("ladybug")
        current = getattr(_ladybug(), "__version__", None)
        if made_by and current and made_by.split(".")[:2] != current.split(".")[:2]:
            raise StoreError(
                f"{self.path} was written by LadybugDB {made_by}; this is {current}, whose "
                "storage format may differ; export it with that version or use another folder"
            )

    def _write_meta(self) -> None:
        meta = {
            "format": STORE_FORMAT,
            "ladybug": getattr(_ladybug(), "__version__", None),
            "schema": self.schema.name,
            "schema_digest": self.schema.digest,
            "updated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        (self.path / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")

    @property
    def reports_dir(self) -> Path:
        """Folder for load reports inside the store."""
        return self.path / "reports"

    @property
    def cache_dir(self) -> Path:
        """Folder for feature caches inside the store."""
        return self.path / "cache"

    # ----------------------------------------------------------------- statements
    @staticmethod
    def query_check(query: Any, params: Any) -> None:
        """As :meth:`BaseStore.query_check`, and refuse parameter lists that LadybugDB cannot
        take whole: a list must hold one kind of value (numbers, strings, booleans, lists or
        maps; nulls anywhere), a list of lists one kind in all of them, and a list of maps the
        same keys, each of one kind (it read
        ``[1, "a"]`` as an error about ``int()``, and ``[{"a": 1}, {"b": 2}]`` as
        ``[{"b": 1}, {"b": 2}]``)."""
        BaseStore.query_check(query, params)
        for name, value in (params or {}).items():
            _check_parameter(value, f"${name}")

    def _run(self, cypher: str, params: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        if self._closed:
            raise StoreError("the store is closed")
        with self._lock:
            result = self._execute(cypher, params or {})
            try:
                names = _distinct_columns(result.get_column_names())
                return [dict(zip(names, row, strict=True)) for row in result.get_all()]
            finally:
                result.close()

    def _run_read(
        self, cypher: str, params: Mapping[str, Any], limit: int | None, timeout_s: float | None
    ) -> tuple[list[str], list[dict[str, Any]]]:
        if self._closed:
            raise StoreError("the store is closed")
        with self._lock:  # no other statement may run inside the transaction
            self._run("BEGIN TRANSACTION READ ONLY", {})
            try:
                if timeout_s is not None:
                    self._conn.set_query_timeout(max(1, round(timeout_s * 1000)))
                try:
                    result = self._execute(cypher, params)
                except QueryError as exc:
                    if timeout_s is not None and str(exc).startswith("Interrupted"):
                        raise timed_out(timeout_s) from None
                    raise
                finally:
                    if timeout_s is not None:
                        self._conn.set_query_timeout(0)  # 0: none, the connection's default
                try:
                    names = _distinct_columns(result.get_column_names())
                    rows: list[dict[str, Any]] = []
                    while result.has_next() and (limit is None or len(rows) < limit):
                        rows.append(dict(zip(names, result.get_next(), strict=True)))
                    return names, rows
                finally:
                    result.close()
            finally:
                with suppress(QueryError):  # a failed statement already ended the transaction
                    self._run("ROLLBACK", {})

    def _execute(self, cypher: str, params: Mapping[str, Any]) -> Any:
        """One statement's result (the lock held). LadybugDB raises RuntimeError for a failed
        query and ValueError for a parameter it cannot convert: both become QueryError."""
        try:
            result = self._conn.execute(cypher, dict(params))
        except (RuntimeError, ValueError) as exc:
            raise QueryError(_clean_message(exc)) from None
        if isinstance(result, list):  # several statements (query_check refuses them)
            for part in result:
                part.close()
            raise QueryError("one statement at a time: the query held several")
        return result

    def _run_arrow(self, cypher: str, params: Mapping[str, Any]) -> pa.Table:
        if self._closed:
            raise StoreError("the store is closed")
        with self._lock:
            result = self._execute(cypher, params)
            try:
                return result.get_as_arrow(0)
            finally:
                result.close()

    def ensure_schema(self) -> None:
        """Create missing node and relationship tables, and columns added to the schema."""
        existing = {r["name"]: r["type"] for r in self._run("CALL show_tables() RETURN *", {})}
        for node in self.schema.nodes.values():
            if node.label in existing:
                self._add_missing_columns(node.label, node.properties)
            else:
                self._run(self.dialect.node_table_ddl(node), {})
        for rel in self.schema.relationships.values():
            if rel.type in existing:
                self._add_missing_columns(rel.type, rel.properties)
            else:
                self._run(self.dialect.rel_table_ddl(rel), {})
            self._rel_columns.pop(rel.type, None)  # read again on the next write

    def _stored_columns(self, table: str) -> list[tuple[str, str]]:
        """A relationship table's property columns (name, type) in their stored order: a store
        made with an older schema may hold columns the schema no longer names (kept, with
        their values) and holds the ones added since last."""
        if table not in self._rel_columns:
            self._rel_columns[table] = [(r["name"], r["type"]) for r in self._columns(table)]
        return self._rel_columns[table]

    def _columns(self, table: str) -> list[dict[str, Any]]:
        # table_info takes a literal; `table` is a schema identifier (validated, never input).
        return self._run(f"CALL table_info('{table}') RETURN *", {})

    def _add_missing_columns(self, table: str, props: tuple[Property, ...]) -> None:
        have = {r["name"] for r in self._columns(table)}
        for prop in props:
            if prop.name not in have:
                self._run(self.dialect.add_column_ddl(table, prop), {})

    def reset(self) -> None:
        """Delete every node and relationship; the tables stay."""
        for rel in self.schema.relationships.values():
            self._run(f"MATCH ()-[r:{rel.type}]->() DELETE r", {})
        for node in self.schema.nodes.values():
            self._run(cypher.delete_nodes(node), {})

    def close(self) -> None:
        """Close the connection and the database (idempotent)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()
                self._db.close()

    # ----------------------------------------------------------------- batch writers
    # LadybugDB reads Arrow tables bound to a Python variable: ``COPY`` appends new rows and
    # ``LOAD FROM`` drives lookups and updates, ten times faster than ``UNWIND $rows`` (whose
    # parameters are converted value by value). Columns are named c0, c1, ... in LOAD FROM so
    # that no property name can clash with a Cypher keyword.
    @staticmethod
    def _arrow(batch: pa.Table, columns: list[str], types: list[pa.DataType]) -> pa.Table:
        """The ``columns`` of ``batch`` (nulls for those it lacks), named c0, c1, ..."""
        n = batch.num_rows
        have = set(batch.column_names)
        arrays = [
            batch.column(c) if c in have else pa.nulls(n, type=t)
            for c, t in zip(columns, types, strict=True)
        ]
        names = [f"c{i}" for i in range(len(columns))]
        # one chunk per column: LadybugDB's scan stops at an empty chunk (measured, 0.22.0)
        return pa.Table.from_arrays(arrays, names=names).combine_chunks()

    def _with_table(self, statement: str, tbl: pa.Table) -> pa.Table:
        """Run ``statement``, which reads the Arrow table ``tbl``; its result as a table."""
        if self._closed:
            raise StoreError("the store is closed")
        log.debug("cypher: %s (table of %d rows)", statement, tbl.num_rows)
        with self._lock:
            try:
                result = self._conn.execute(statement)
            except RuntimeError as exc:
                raise QueryError(f"bulk statement failed: {_clean_message(exc)}") from None
            try:
                if not result.get_column_names():  # COPY, SET: nothing to return
                    return pa.table({})
                return result.get_as_arrow(0)  # 0: one chunk
            finally:
                result.close()

    def existing_keys(self, label: str, keys: Iterable[str]) -> set[str]:
        """The subset of ``keys`` that exist as nodes of ``label``."""
        node = self.schema.node(label)
        unique = list(dict.fromkeys(str(k) for k in keys))
        if not unique:
            return set()
        found = self._stored_nodes(node, pa.array(unique, type=pa.string()), [])
        return set(found.column(0).to_pylist())

    def _stored_nodes(self, node: NodeType, keys: pa.Array, props: list[str]) -> pa.Table:
        """The nodes among ``keys`` that exist: their key (c0) and stored ``props`` (c1...)."""
        tbl = pa.table({"c0": keys})
        cols = "".join(f", n.{p} AS c{i}" for i, p in enumerate(props, start=1))
        return self._with_table(
            f"LOAD FROM tbl MATCH (n:{node.label} {{{node.key}: c0}}) "
            f"RETURN n.{node.key} AS c0{cols}",
            tbl,
        )

    def _stored_pairs(
        self, rel: RelType, start: NodeType, end: NodeType, srcs: pa.Array, props: list[str]
    ) -> pa.Table:
        """The relationships from ``srcs``: start key (c0), end key (c1), ``props`` (c2...)."""
        tbl = pa.table({"c0": srcs})
        cols = "".join(f", e.{p} AS c{i}" for i, p in enumerate(props, start=2))
        return self._with_table(
            f"LOAD FROM tbl MATCH (a:{start.label} {{{start.key}: c0}})-[e:{rel.type}]->"
            f"(b:{end.label}) RETURN a.{start.key} AS c0, b.{end.key} AS c1{cols}",
            tbl,
        )

    def _is_empty(self, count_query: str) -> bool:
        return int(self._run(count_query, {})[0]["count"]) == 0

    def _copy(self, table: str, tbl: pa.Table, columns: list[str], options: str = "") -> None:
        targets = "" if options else f"({', '.join(columns)})"
        self._with_table(f"COPY {table}{targets} FROM tbl{options}", tbl)

    @staticmethod
    def _sets(var: str, props: list[str], first: int) -> str:
        return ", ".join(
            f"{var}.{p} = coalesce(c{first + i}, {var}.{p})" for i, p in enumerate(props)
        )

    def _write_nodes(self, node: NodeType, batch: pa.Table, props: list[str], fresh: bool) -> None:
        key = node.key
        cols = [key, *props]
        types = [arrow_type(node.prop(c).type) for c in cols]
        new, old = batch, None
        if not fresh:
            scalars = [p for p in props if not node.prop(p).type.is_vector]
            stored = self._stored_nodes(node, batch.column(key).combine_chunks(), scalars)
            if stored.num_rows:
                union = union_properties(node.properties)
                new, old = _split(batch, [key], stored, props, scalars, union)
        if new.num_rows:
            self._copy(node.label, self._arrow(new, cols, types), cols)
        if old is not None and old.num_rows and props:
            self._with_table(
                f"LOAD FROM tbl MATCH (n:{node.label} {{{key}: c0}}) SET "
                + self._sets("n", props, 1),
                self._arrow(old, cols, types),
            )

    def _write_rels(
        self,
        rel: RelType,
        start: NodeType,
        end: NodeType,
        batch: pa.Table,
        props: list[str],
        fresh: bool,
    ) -> None:
        new, old = batch, None
        if not fresh:
            srcs = pc.unique(batch.column(SRC).combine_chunks())
            stored = self._stored_pairs(rel, start, end, srcs, props)
            if stored.num_rows:
                union = union_properties(rel.properties)
                new, old = _split(batch, [SRC, DST], stored, props, props, union)
        if new.num_rows:
            # COPY into a relationship table takes every property column, in the table's
            # order (absent ones null).
            stored = self._stored_columns(rel.type)
            types = [pa.string(), pa.string()] + [ladybug_arrow_type(t) for _, t in stored]
            tbl = self._arrow(new, [SRC, DST, *(name for name, _ in stored)], types)
            self._copy(rel.type, tbl, [], f" (from='{start.label}', to='{end.label}')")
        if old is not None and old.num_rows and props:
            types = [pa.string(), pa.string()] + [arrow_type(rel.prop(p).type) for p in props]
            self._with_table(
                f"LOAD FROM tbl MATCH (a:{start.label} {{{start.key}: c0}}) "
                f"MATCH (b:{end.label} {{{end.key}: c1}}) MATCH (a)-[e:{rel.type}]->(b) SET "
                + self._sets("e", props, 2),
                self._arrow(old, [SRC, DST, *props], types),
            )


def _split(
    batch: pa.Table,
    keys: list[str],
    stored: pa.Table,
    props: list[str],
    fetched: list[str],
    union: Collection[str],
) -> tuple[pa.Table, pa.Table]:
    """The rows of ``batch`` that are not stored yet, and the stored ones that writing would
    change. ``stored`` holds the keys (c0, c1...) and then the ``fetched`` properties; the
    stored rows' ``union`` lists come back merged with what is stored."""
    n = len(keys)
    right_keys = [f"__k{i}" for i in range(n)]
    left = batch.select(keys).append_column("__row", pa.array(np.arange(batch.num_rows)))
    right = pa.table(
        {
            **{k: stored.column(i) for i, k in enumerate(right_keys)},
            "__stored": pa.array(np.arange(stored.num_rows)),
        }
    )
    joined = left.join(right, keys=keys, right_keys=right_keys, join_type="inner")
    rows = joined.column("__row").to_numpy()
    at = joined.column("__stored").combine_chunks()
    is_old = np.zeros(batch.num_rows, dtype=bool)
    is_old[rows] = True
    old = batch.take(pa.array(rows))
    changed = np.zeros(len(rows), dtype=bool)
    for p in props:
        new_values = old.column(p)
        has = np.asarray(new_values.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        if p not in fetched:  # not fetched (vectors): a value counts as a change
            changed |= has
            continue
        was = stored.column(n + fetched.index(p)).take(at)
        if p in union:
            before = was.to_pylist()
            both = np.tile(np.arange(len(rows)), 2)
            after = union_lists(before + new_values.to_pylist(), both, len(rows))
            new_values = pa.array(after, new_values.type)
            old = old.set_column(old.schema.get_field_index(p), p, new_values)
            changed |= np.array([a != b for a, b in zip(after, before, strict=True)], dtype=bool)
            continue
        if pa.types.is_nested(new_values.type):
            differs = np.array(
                [a != b for a, b in zip(new_values.to_pylist(), was.to_pylist(), strict=True)],
                dtype=bool,
            )
        else:
            same = pc.equal(new_values, was.cast(new_values.type)).fill_null(False)
            differs = ~np.asarray(same.to_numpy(zero_copy_only=False), dtype=bool)
        changed |= has & differs
    return batch.filter(pa.array(~is_old)), old.filter(pa.array(changed))


def _clean_message(exc: BaseException) -> str:
    msg = str(exc).strip()
    return re.sub(r"\s*See the docs: \S+ for more information\.?", "", msg)


def _open_error(path: Path, exc: RuntimeError) -> StoreError:
    msg = _clean_message(exc)
    if "lock" in msg.lower():
        pid = re.search(r"PID (\d+)", msg)
        who = f"process {pid.group(1)}" if pid else "another process"
        return StoreLockedError(
            f"store {path} is in use by {who}; close it there, or open this one read-only"
        )
    if "not a valid" in msg.lower() or "version" in msg.lower() or "corrupt" in msg.lower():
        return StoreError(
            f"store {path} cannot be read by this LadybugDB version or is damaged: {msg}"
        )
    if "permission" in msg.lower() or "read-only" in msg.lower():
        return StoreError(f"store {path} is not writable: {msg}")
    return StoreError(f"cannot open store {path}: {msg}")


def _distinct_columns(names: list[str]) -> list[str]:
    """``names``, refused when one is given twice: rows keyed by column would keep only the
    last of them (LadybugDB runs ``RETURN 1 AS a, 2 AS a``; Neo4j refuses it)."""
    if len(set(names)) < len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise QueryError(f"the query returns the column(s) {', '.join(twice)} more than once")
    return names


#: Types of which a list is taken without looking further.
_SCALARS = {str, int, float, bool}


def _check_parameter(value: Any, where: str) -> None:
    """Raise ValidationError where ``value`` (a parameter, or a part of one named by
    ``where``) holds a list that LadybugDB cannot take (see :meth:`EmbeddedStore.query_check`)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            _check_parameter(item, f"{where}.{key}")
        return
    if not isinstance(value, list | tuple):
        return
    types = set(map(type, value)) - {type(None)}
    if (len(types) <= 1 and types <= _SCALARS) or types <= {int, float}:  # the common lists
        return
    items = [item for item in value if item is not None]
    kinds = {_kind(item) for item in items}
    if len(kinds) > 1:
        raise ValidationError(
            f"parameter {where} mixes {' and '.join(sorted(kinds))} in one list; the embedded "
            "store takes lists of one kind of value"
        )
    if kinds == {"maps"}:
        keys = {frozenset(item) for item in items}
        if len(keys) > 1:
            raise ValidationError(
                f"parameter {where} is a list of maps with different keys; the embedded store "
                "takes maps of the same keys in one list"
            )
        for key in next(iter(keys)):
            _check_parameter([item[key] for item in items], f"{where}[].{key}")
    elif kinds == {"lists"}:  # the lists' items are of one type too
        _check_parameter([x for item in items for x in item], f"{where}[]")


def _kind(value: Any) -> str:
    """What kind of value a parameter list holds (numbers of any type are one kind)."""
    if isinstance(value, bool | np.bool_):
        return "booleans"
    if isinstance(value, int | float | np.number):
        return "numbers"
    if isinstance(value, str):
        return "strings"
    if isinstance(value, list | tuple | np.ndarray):
        return "lists"
    if isinstance(value, Mapping):
        return "maps"
    return type(value).__name__
