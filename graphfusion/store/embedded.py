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
import functools
import json
import logging
import os
import re
import threading
import weakref
from collections.abc import Callable, Collection, Iterable, Mapping
from contextlib import suppress
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from graphfusion.errors import QueryError, StoreError, StoreLockedError, ValidationError
from graphfusion.schema import NodeType, RelType, Schema, load_schema, union_properties
from graphfusion.store import cypher
from graphfusion.store.base import DST, SRC, BaseStore, lookup_keys, schema_arg, timed_out
from graphfusion.store.dialect import LADYBUG, ladybug_arrow_type
from graphfusion.values import arrow_type, home_path, union_lists

__all__ = ["EmbeddedStore", "DEFAULT_STORE_DIR", "STORE_FORMAT", "stored_schema"]

log = logging.getLogger("graphfusion.store")

DEFAULT_STORE_DIR = ".graphfusion"
#: Version of the folder layout; a folder written by a newer graphfusion is refused.
STORE_FORMAT = 1
DB_FILE = "graph.lbug"
_T = TypeVar("_T")
META_FILE = "graphfusion.json"
#: A copy of the store's schema when it is not the built-in one, read when it is opened
#: without a schema.
SCHEMA_FILE = "schema.yaml"


#: The stores open in this process, by the resolved path of their database file. LadybugDB
#: locks a database against other processes only: a second handle in the same process opened
#: beside a writer did not see its writes, and the writer's close dropped the other's.
_OPEN: dict[Path, weakref.WeakSet[EmbeddedStore]] = {}
_OPEN_LOCK = threading.Lock()


def _ladybug() -> Any:
    try:
        import ladybug
    except ImportError as exc:  # pragma: no cover - a dependency
        raise StoreError("the embedded store needs the 'ladybug' package") from exc
    return ladybug


@functools.cache
def _built_in_name() -> str:
    """The built-in schema's name (its file ships with the package: read once)."""
    return load_schema().name


def stored_schema(path: str | os.PathLike[str] | None = None) -> Schema:
    """The schema an embedded store opened without one takes: the schema of one's own the
    store in ``path`` was made with (the copy in its folder, ``schema.yaml``), else the
    built-in one (also for a folder that holds no store yet, and for a store made with an
    older version of the built-in schema, which this version's completes).

    Args:
        path: The store folder (as :class:`EmbeddedStore` reads it).

    Raises:
        SchemaError: The kept copy cannot be read (the message names it).
    """
    folder = _store_folder(path)
    kept = folder / SCHEMA_FILE
    try:
        made_with = json.loads((folder / META_FILE).read_text(encoding="utf-8"))["schema"]
    except (OSError, ValueError, KeyError, TypeError):  # no store yet, or _check_meta says
        return load_schema()
    if made_with != _built_in_name() and kept.is_file():
        return load_schema(kept)
    return load_schema()


class EmbeddedStore(BaseStore):
    """A graph store in a local folder, backed by LadybugDB.

    Args:
        path: The store folder (a leading ``~`` is the home folder);
            ``$GRAPHFUSION_STORE`` or ``./.graphfusion`` when None.
        schema: The graph schema. When None: the schema of one's own the store was made
            with (a copy is kept in its folder, ``schema.yaml``), else the built-in
            e-commerce schema (:func:`stored_schema`).
        read_only: Open without write access. Several readers may share a folder, also
            beside a writer in another process (LadybugDB locks only writers out): each
            statement then reads the store as that writer has committed it.
        buffer_pool_mb: LadybugDB's buffer pool size in MiB.
        create: Make a new store where the folder holds none (never when ``read_only``).

    Attributes:
        made_folder: Whether opening made the folder (it did not exist before).

    Raises:
        ValidationError: ``path`` is not a folder path, or is blank.
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
        self.path = _store_folder(path)
        self.schema = schema_arg(schema) if schema is not None else stored_schema(self.path)
        self.read_only = read_only
        self.made_folder = False
        self._prepare_folder(create and not read_only)
        # One statement at a time on the connection: the loader writes from a worker thread
        # while it checks the next tables (ladybug releases the GIL while it runs one).
        self._lock = threading.RLock()
        self._closed = False
        self._buffer_pool = buffer_pool_mb * 1024 * 1024
        self._depth = 0  # statements running (one may run others: a transaction's steps)
        db_file = (self.path / DB_FILE).resolve()
        with _OPEN_LOCK:
            others = [s for s in _OPEN.get(db_file, ()) if not s._closed]
            if others and not (read_only and all(s.read_only for s in others)):
                raise StoreLockedError(
                    f"store {self.path} is already open in this process"
                    + ("" if others[0].read_only else " for writing")
                    + "; close it there first (store.close(), engine.close()), or use that one"
                )
            self._open_database()
            _OPEN.setdefault(db_file, weakref.WeakSet()).add(self)
        # relationship type -> its table's property columns (name, LadybugDB type), in the
        # stored order, which COPY follows (read on first use, by _stored_columns)
        self._rel_columns: dict[str, list[tuple[str, str]]] = {}
        try:
            if read_only:
                self._fit_schema(create=False)
            else:
                self.ensure_schema()
                self._write_meta()
        except BaseException:
            self.close()
            raise

    def _open_database(self) -> None:
        """Open the database file and a connection to it (again, for a reader that follows
        a writer)."""
        ladybug = _ladybug()
        # what the files were before opening: a write after this is seen on the next statement
        self._stamp = self._files_stamp()
        try:
            self._db = ladybug.Database(
                str(self.path / DB_FILE),
                read_only=self.read_only,
                buffer_pool_size=self._buffer_pool,
            )
        except RuntimeError as exc:
            raise _open_error(self.path, exc) from None
        self._conn = ladybug.Connection(self._db)

    def _files_stamp(self) -> tuple[tuple[str, int, int, int], ...]:
        """Name, inode, size and modification time of the database's files (its WAL too)."""
        out = []
        with suppress(OSError), os.scandir(self.path) as entries:
            for entry in entries:
                if entry.name.startswith(DB_FILE):
                    with suppress(OSError):  # gone since the listing
                        st = entry.stat()
                        out.append((entry.name, st.st_ino, st.st_size, st.st_mtime_ns))
        return tuple(sorted(out))

    def _statement(self, run: Callable[[], _T]) -> _T:
        """``run()``, which executes statements, with the connection to itself.

        A read-only store reads the store as it is now: LadybugDB lets another process write
        beside a reader, whose handle kept the state it opened (and, once the writer rewrote
        the file, failed with "Index contains an invalid node offset" or could read wrong
        values). So when the database's files changed since it was opened, it is opened again
        first, and a statement during which they changed is run again.

        Raises:
            StoreError: The store is closed, or kept changing over three tries.
        """
        if self._closed:
            raise StoreError("the store is closed")
        with self._lock:
            if not self.read_only or self._depth:
                self._depth += 1
                try:
                    return run()
                finally:
                    self._depth -= 1
            for _ in range(3):
                if self._files_stamp() != self._stamp:
                    log.debug("store %s changed on disk: opening it again", self.path)
                    self._conn.close()
                    self._db.close()
                    self._rel_columns.clear()
                    self._open_database()
                stamp = self._stamp
                self._depth += 1
                try:
                    out = run()
                except QueryError:
                    if self._files_stamp() == stamp:
                        raise
                    continue  # the store changed under the statement: read it again
                finally:
                    self._depth -= 1
                if self._files_stamp() == stamp:
                    return out
            raise StoreError(
                f"store {self.path} kept changing while it was read (another process is "
                "writing it); try again"
            )

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
            self.made_folder = True
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
        if made_by is not None and not isinstance(made_by, str):
            raise StoreError(f"{meta} is damaged; it is not a graphfusion store file")
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
        if self.schema.raw and self.schema.name != _built_in_name():
            text = yaml.safe_dump(dict(self.schema.raw), sort_keys=False, allow_unicode=True)
            (self.path / SCHEMA_FILE).write_text(text, encoding="utf-8")

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

    def _run_columns(
        self, cypher: str, params: Mapping[str, Any] | None
    ) -> tuple[list[str], list[dict[str, Any]]]:
        def run() -> tuple[list[str], list[dict[str, Any]]]:
            result = self._execute(cypher, params or {})
            try:
                names = _distinct_columns(result.get_column_names())
                return names, [_row(names, row) for row in result.get_all()]
            finally:
                result.close()

        return self._statement(run)

    def _run_read(
        self, cypher: str, params: Mapping[str, Any], limit: int | None, timeout_s: float | None
    ) -> tuple[list[str], list[dict[str, Any]]]:
        # one run: no other statement may run inside the transaction
        return self._statement(lambda: self._read_transaction(cypher, params, limit, timeout_s))

    def _read_transaction(
        self, cypher: str, params: Mapping[str, Any], limit: int | None, timeout_s: float | None
    ) -> tuple[list[str], list[dict[str, Any]]]:
        """:meth:`_run_read`'s statement in a read-only transaction (the lock held)."""
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
                    rows.append(_row(names, result.get_next()))
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
        def run() -> pa.Table:
            result = self._execute(cypher, params)
            try:
                return result.get_as_arrow(0)
            finally:
                result.close()

        table = self._statement(run)
        return pa.table(
            [_arrow_graph_values(column) for column in table.columns], names=table.column_names
        )

    def ensure_schema(self) -> None:
        """Create missing node and relationship tables, and the columns and (start, end)
        pairs added to the schema since the store was made.

        Raises:
            StoreError: A stored table conflicts with the schema (a property of another type,
                a label keyed by another property, a label stored as a relationship type).
        """
        self._fit_schema(create=True)

    def _fit_schema(self, create: bool) -> None:
        """Check that the stored tables hold the schema: with ``create``, add what is missing
        first (tables, columns, pairs); columns the schema no longer names stay.

        Raises:
            StoreError: Naming every conflict, and, when not ``create``, what is missing.
        """
        tables = {
            r["name"].lower(): (r["name"], r["type"])
            for r in self._run("CALL show_tables() RETURN *", {})
        }
        missing: list[str] = []
        conflicts: list[str] = []
        for name, kind in [(n, "NODE") for n in self.schema.nodes] + [
            (r, "REL") for r in self.schema.relationships
        ]:
            found = tables.get(name.lower())
            if found is None:
                if create:
                    node = self.schema.nodes.get(name)
                    self._run(
                        self.dialect.node_table_ddl(node)
                        if node is not None
                        else self.dialect.rel_table_ddl(self.schema.rel(name)),
                        {},
                    )
                else:
                    missing.append(f"no table {name}")
                continue
            if found[1] != kind:
                what = "label" if kind == "NODE" else "relationship type"
                conflicts.append(f"{found[0]} is a {found[1].lower()} table, the schema's a {what}")
                continue
            props = (
                self.schema.nodes[name].properties
                if kind == "NODE"
                else self.schema.rel(name).properties
            )
            columns = {r["name"].lower(): r for r in self._columns(name)}
            if kind == "NODE":
                key = self.schema.nodes[name].key
                stored_key = next((r["name"] for r in columns.values() if r["primary key"]), None)
                if stored_key is not None and stored_key.lower() != key.lower():
                    conflicts.append(f"{name} is keyed by {stored_key}, the schema's by {key}")
            else:
                rel = self.schema.rel(name)
                pairs = {
                    (r["source table name"].lower(), r["destination table name"].lower())
                    for r in self._run(f"CALL show_connection('{name}') RETURN *", {})
                }
                for start, end in rel.between:
                    if (start.lower(), end.lower()) in pairs:
                        continue
                    if create:
                        self._run(self.dialect.add_rel_pair_ddl(rel, start, end), {})
                    else:
                        missing.append(f"{name} lacks ({start})->({end})")
                self._rel_columns.pop(rel.type, None)  # read again on the next write
            for prop in props:
                column = columns.get(prop.name.lower())
                want = self.dialect.column_type(prop)
                if column is None:
                    if create:
                        self._run(self.dialect.add_column_ddl(name, prop), {})
                    else:
                        missing.append(f"{name} lacks the property {prop.name}")
                elif column["type"] != want:
                    conflicts.append(
                        f"{name}.{prop.name} is {column['type']}, the schema's "
                        f"{prop.type.name} ({want})"
                    )
        if conflicts or missing:
            fix = (
                "open it with the schema it was made with, or use another folder"
                if conflicts
                else "open it once for writing to add them"
            )
            raise StoreError(
                f"store {self.path} does not fit the schema {self.schema.name} "
                f"({self.schema.source}): {'; '.join(conflicts + missing)}; {fix}"
            )

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
        log.debug("cypher: %s (table of %d rows)", statement, tbl.num_rows)

        def run() -> pa.Table:
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

        return self._statement(run)

    def existing_keys(self, label: str, keys: Iterable[Any]) -> set[str]:
        """As :meth:`BaseStore.existing_keys`, in one lookup through Arrow."""
        node = self.schema.node(label)
        unique = lookup_keys(keys)
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


def _store_folder(path: Any) -> Path:
    """The folder ``path`` names (``$GRAPHFUSION_STORE`` or ``./.graphfusion`` when None),
    with a leading ``~`` made the home folder, as the engine and the settings read it.

    Raises:
        ValidationError: ``path`` is no folder path, or it (or the variable) is blank.
    """
    where = "the store"
    if path is None:
        where, path = "$GRAPHFUSION_STORE", os.environ.get("GRAPHFUSION_STORE") or DEFAULT_STORE_DIR
    if not isinstance(path, str | os.PathLike) or isinstance(os.fspath(path), bytes):
        raise ValidationError(f"the store must be a folder path, got {type(path).__name__}")
    if not os.fspath(path).strip():
        raise ValidationError(f"{where} is empty; name a store folder")
    return home_path(path, where)


def _clean_message(exc: BaseException) -> str:
    msg = str(exc).strip()
    return re.sub(r"\s*See the docs: \S+ for more information\.?", "", msg)


def _open_error(path: Path, exc: RuntimeError) -> StoreError:
    msg = _clean_message(exc)
    if "lock" in msg.lower():
        pid = re.search(r"PID (\d+)", msg)
        who = f"process {pid.group(1)}" if pid else "another process"
        return StoreLockedError(
            f"store {path} is in use by {who}; close it there (a reader may open it read-only)"
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


def _row(names: list[str], values: list[Any]) -> dict[str, Any]:
    """One result row keyed by column, with nodes, relationships and whole numbers as Neo4j
    gives them."""
    return {
        name: _graph_value(v) if isinstance(v, dict | list | Decimal) else v
        for name, v in zip(names, values, strict=True)
    }


def _graph_value(value: Any) -> Any:
    """A node or relationship (a dict with LadybugDB's ``_ID`` and ``_LABEL``) as the map of
    its properties that hold a value; a whole number of LadybugDB's INT128 (a sum of
    integers), which comes as a ``Decimal``, as an int; inside lists and maps alike; else
    ``value``."""
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        return int(value) if isinstance(exponent, int) and exponent == 0 else value
    if isinstance(value, dict):
        if "_LABEL" in value and "_ID" in value:
            return {k: v for k, v in value.items() if not k.startswith("_") and v is not None}
        return {k: _graph_value(v) for k, v in value.items()}
    if isinstance(value, list) and value and isinstance(value[0], dict | list | Decimal):
        return [_graph_value(v) for v in value]
    return value


def _is_graph_struct(t: pa.DataType) -> bool:
    """Whether ``t`` is LadybugDB's struct of a node or relationship (``_ID``, ``_LABEL``)."""
    return (
        pa.types.is_struct(t) and t.get_field_index("_ID") >= 0 and t.get_field_index("_LABEL") >= 0
    )


def _holds_graph_struct(t: pa.DataType) -> bool:
    if pa.types.is_struct(t):
        return _is_graph_struct(t) or any(_holds_graph_struct(f.type) for f in t)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _holds_graph_struct(t.value_type)
    return False


def _arrow_graph_values(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """``column`` with nodes and relationships as the struct of their properties, as
    :func:`_row` gives them (LadybugDB's internal ``_ID``, ``_LABEL``, ``_SRC`` and ``_DST``
    left out), in lists and structs alike; whole numbers of INT128 as int64 where they fit."""
    t = column.type
    if pa.types.is_decimal(t) and t.scale == 0:
        with suppress(pa.ArrowInvalid):  # beyond int64: stays a decimal
            return column.cast(pa.int64())
        return column
    if not _holds_graph_struct(t):
        return column
    return pa.chunked_array([_strip_internal(chunk) for chunk in column.chunks])


def _strip_internal(array: pa.Array) -> pa.Array:
    t = array.type
    if pa.types.is_struct(t):
        internal = _is_graph_struct(t)
        kept = [
            (f.name, _strip_internal(child))
            for f, child in zip(t, array.flatten(), strict=True)
            if not (internal and f.name.startswith("_"))
        ]
        return pa.StructArray.from_arrays(
            [child for _, child in kept],
            names=[name for name, _ in kept],
            mask=array.is_null() if array.null_count else None,
        )
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        offsets = array.offsets  # of a slice too, into the whole of array.values
        first = offsets[0].as_py()
        values = array.values.slice(first, offsets[-1].as_py() - first)
        return type(array).from_arrays(
            pc.subtract(offsets, pa.scalar(first, offsets.type)),
            _strip_internal(values),
            mask=array.is_null() if array.null_count else None,
        )
    return array


#: Types of which a list is taken without looking further.
_SCALARS = {str, int, float, bool}


def _check_parameter(value: Any, where: str) -> None:
    """Raise ValidationError where ``value`` (a parameter, or a part of one named by
    ``where``) holds a list that LadybugDB cannot take (see :meth:`EmbeddedStore.query_check`),
    or an integer outside 64 bits (it failed with pybind11's "Unable to cast Python
    instance")."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            _check_parameter(item, f"{where}.{key}")
        return
    ints = [v for v in (value if isinstance(value, list | tuple) else [value]) if type(v) is int]
    if ints and (min(ints) < -(2**63) or max(ints) >= 2**63):
        raise ValidationError(
            f"parameter {where} holds an integer outside 64 bits; the store takes integers "
            "from -2**63 to 2**63 - 1"
        )
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
