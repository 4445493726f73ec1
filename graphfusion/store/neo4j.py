"""The Neo4j 5 store, through the official ``neo4j`` driver.

Every statement goes through ``driver.execute_query`` (a managed transaction with retries)
with ``database_`` always given. Writes are ``UNWIND $rows`` batches of ``MERGE``; a uniqueness
constraint on every key and a vector index on every vector property are created first.

Settings come from the arguments or the usual variables ``NEO4J_URI``, ``NEO4J_USERNAME``,
``NEO4J_PASSWORD`` and ``NEO4J_DATABASE``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

import pyarrow as pa

from graphfusion.errors import QueryError, SchemaError, StoreError
from graphfusion.schema import NodeType, RelType, Schema
from graphfusion.store import cypher
from graphfusion.store.base import DST, SRC, BaseStore, schema_arg, timed_out
from graphfusion.store.dialect import NEO4J, SHOW_INDEXES, vector_index_faults

__all__ = ["Neo4jStore", "neo4j_settings"]

log = logging.getLogger("graphfusion.store")


def neo4j_settings(
    uri: str | None = None,
    user: str | None = None,
    password: str | None = None,
    database: str | None = None,
) -> dict[str, str]:
    """Connection settings: the arguments, else ``NEO4J_*`` variables, else defaults.

    Raises:
        StoreError: When no URI is given or set.
    """
    uri = uri or os.environ.get("NEO4J_URI")
    if not uri:
        raise StoreError("no Neo4j URI: pass --neo4j URI or set NEO4J_URI")
    return {
        "uri": uri,
        "user": user or os.environ.get("NEO4J_USERNAME") or "neo4j",
        "password": password or os.environ.get("NEO4J_PASSWORD") or "",
        "database": database or os.environ.get("NEO4J_DATABASE") or "neo4j",
    }


def _native(value: Any) -> Any:
    """Neo4j temporal and graph values as plain Python values: a node or relationship as the
    map of its properties, as the embedded store gives it."""
    to_native = getattr(value, "to_native", None)
    if callable(to_native):
        out = to_native()
        if isinstance(out, dt.datetime) and out.tzinfo is not None:
            out = out.astimezone(dt.UTC).replace(tzinfo=None)
        return out
    if isinstance(value, list):
        return [_native(v) for v in value]
    if isinstance(value, dict):
        return {k: _native(v) for k, v in value.items()}
    items = getattr(value, "items", None)
    if callable(items) and hasattr(value, "element_id"):  # Node or Relationship
        return {k: _native(v) for k, v in items()}
    return value


def _row(record: Any) -> dict[str, Any]:
    """One record as a dict keyed by column, its values :func:`_native`: read from the
    record's own values, since ``record.data()`` makes a relationship the tuple of its two end
    nodes and its type, its properties lost."""
    return {k: _native(v) for k, v in record.items()}


def _mixed_column(keys: list[str], rows: list[dict[str, Any]]) -> QueryError:
    """The error of a result that no Arrow table holds: the first column whose values are of
    several kinds (Neo4j is schemaless: a graph written by other tools may hold a property as
    text on one node and as a number on another), or hold a number beyond 64 bits."""
    for key in keys:
        values = [row.get(key) for row in rows]
        try:
            pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            kinds = sorted({type(v).__name__ for v in values if v is not None})
            return QueryError(
                f"Neo4j returned column {key!r} with values that no table column holds "
                f"together ({', '.join(kinds)}: several types, or an integer beyond 64 bits); "
                "store one type in the property on every node, as graphfusion's loads do"
            )
    return QueryError("Neo4j returned rows that no table holds")


class Neo4jStore(BaseStore):
    """A graph store on a Neo4j 5 server.

    Args:
        uri: ``neo4j://``, ``neo4j+s://``, ``bolt://`` ... (default ``$NEO4J_URI``).
        user: User name (default ``$NEO4J_USERNAME`` or ``neo4j``).
        password: Password (default ``$NEO4J_PASSWORD``).
        database: Database name (default ``$NEO4J_DATABASE`` or ``neo4j``).
        schema: The graph schema; the built-in e-commerce schema when None.
        driver: An already made driver (or a stand-in with ``execute_query``); when given,
            ``uri``, ``user`` and ``password`` are not used.
        create_schema: Create constraints and vector indexes on connect (not when
            ``read_only``).
        read_only: Send every statement in a read transaction (routed to a reader in a
            cluster; the server refuses writes in it).

    Raises:
        SchemaError: Two of the schema's constraints or vector indexes would have one name,
            or (``create_schema``) the database holds a vector index of the schema's name or
            property that is not the schema's (:meth:`ensure_schema`).
        StoreError: No URI, or the server cannot be reached or refuses the credentials.
    """

    dialect = NEO4J

    def __init__(
        self,
        uri: str | None = None,
        *,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        schema: Schema | None = None,
        driver: Any | None = None,
        create_schema: bool = True,
        read_only: bool = False,
    ) -> None:
        self.schema = schema_arg(schema)
        self.dialect.check_names(self.schema)
        if driver is None:
            settings = neo4j_settings(uri, user, password, database)
            try:
                import neo4j
            except ImportError as exc:  # pragma: no cover - a dependency
                raise StoreError("the Neo4j store needs the 'neo4j' package") from exc
            try:
                driver = neo4j.GraphDatabase.driver(
                    settings["uri"], auth=(settings["user"], settings["password"])
                )
                driver.verify_connectivity()
            except Exception as exc:
                raise StoreError(f"cannot connect to Neo4j at {settings['uri']}: {exc}") from None
            self.database = settings["database"]
            self.uri = settings["uri"]
        else:
            self.database = database or os.environ.get("NEO4J_DATABASE") or "neo4j"
            self.uri = uri or "<driver>"
        self._driver = driver
        self._closed = False
        self.read_only = read_only
        if create_schema and not read_only:
            self.ensure_schema()

    def _run_columns(
        self, cypher: str, params: Mapping[str, Any] | None
    ) -> tuple[list[str], list[dict[str, Any]]]:
        return self._send(cypher, params, read=self.read_only)

    def _run_read(
        self, cypher: str, params: Mapping[str, Any], limit: int | None, timeout_s: float | None
    ) -> tuple[list[str], list[dict[str, Any]]]:
        def first_rows(result: Any) -> tuple[list[str], list[dict[str, Any]]]:
            rows: list[dict[str, Any]] = []
            for record in result:  # the records not read are discarded by the server
                rows.append(_row(record))
                if limit is not None and len(rows) >= limit:
                    break
            return list(result.keys()), rows

        return self._send(cypher, params, read=True, transformer=first_rows, timeout_s=timeout_s)

    def _run_arrow(self, cypher: str, params: Mapping[str, Any]) -> pa.Table:
        """The rows as an Arrow table; with no rows, the result's columns, empty (null typed),
        so a caller can read a column of an empty result as on the embedded store."""
        keys, rows = self._send(cypher, params, read=self.read_only)
        if not rows:
            return pa.table({key: pa.array([], pa.null()) for key in keys})
        try:
            return pa.Table.from_pylist(rows)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            raise _mixed_column(keys, rows) from None

    def _send(
        self,
        cypher: str,
        params: Mapping[str, Any] | None,
        *,
        read: bool,
        transformer: Callable[[Any], tuple[list[str], list[dict[str, Any]]]] | None = None,
        timeout_s: float | None = None,
    ) -> tuple[list[str], list[dict[str, Any]]]:
        """``(the result's column names, its rows)``: all rows, or what ``transformer`` reads
        of the driver's result; a query with ``timeout_s`` is stopped by the server then."""
        if self._closed:
            raise StoreError("the store is closed")
        from neo4j import Query, RoutingControl  # a dependency, imported on use (about 1 s)

        extra: dict[str, Any] = {} if transformer is None else {"result_transformer_": transformer}
        try:
            result = self._driver.execute_query(
                cypher if timeout_s is None else Query(cypher, timeout=timeout_s),
                parameters_=dict(params or {}),
                database_=self.database,
                routing_=RoutingControl.READ if read else RoutingControl.WRITE,
                **extra,
            )
        except Exception as exc:
            if timeout_s is not None and "TimedOut" in str(getattr(exc, "code", "")):
                raise timed_out(timeout_s) from None
            raise QueryError(f"Neo4j: {getattr(exc, 'message', None) or exc}") from None
        if transformer is not None:
            return result
        rows = [_row(rec) for rec in result.records]
        return list(result.keys), rows

    def ensure_schema(self) -> None:
        """Create the key uniqueness constraints and the vector indexes where missing, then
        check that Neo4j's vector indexes are the schema's.

        Raises:
            SchemaError: ``IF NOT EXISTS`` kept an index that is not the schema's: one of the
                name with another size, similarity or target (an earlier schema's), or
                another vector index on the property (which Neo4j keeps one of); named, with
                the ``DROP INDEX`` that mends it.
        """
        for stmt in self.dialect.schema_ddl(self.schema):
            self._run(stmt, {})
        self._check_vector_indexes()

    def _check_vector_indexes(self) -> None:
        """Raise SchemaError where Neo4j's vector indexes differ from the schema's; a user who
        may not list indexes is warned, and nothing is checked."""
        if not any(True for _ in self.schema.vector_properties()):
            return
        try:
            rows = self._run(SHOW_INDEXES, {})
        except QueryError as exc:
            log.warning("cannot list Neo4j's indexes to check the vector indexes: %s", exc)
            return
        faults = vector_index_faults(self.schema, rows)
        if faults:
            raise SchemaError(
                f"Neo4j at {self.uri} (database {self.database!r}) holds vector indexes that "
                f"are not those of schema {self.schema.source}: {'; '.join(faults)}"
            )

    def reset(self) -> None:
        """Delete every node and relationship of the schema's labels."""
        for node in self.schema.nodes.values():
            self._run(cypher.delete_nodes(node), {})

    def close(self) -> None:
        """Close the driver (idempotent)."""
        if not self._closed:
            self._closed = True
            self._driver.close()

    def _write_nodes(self, node: NodeType, batch: pa.Table, props: list[str], fresh: bool) -> None:
        rows = batch.select([node.key, *props]).to_pylist()
        self._run(cypher.merge_nodes(node, props), {"rows": rows})

    def _write_rels(
        self,
        rel: RelType,
        start: NodeType,
        end: NodeType,
        batch: pa.Table,
        props: list[str],
        fresh: bool,
    ) -> None:
        rows = batch.select([SRC, DST, *props]).to_pylist()
        self._run(cypher.merge_rels(rel, start, end, props), {"rows": rows})
