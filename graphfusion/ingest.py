"""Loading sources into the store through a loader mapping, with validation and a report.

Every row is checked against the schema before anything is written: keys present, values of
the right type, no repeated keys in one table (for unique node specs), relationship ends that
exist in this load or in the store. Good rows are written (nodes first, then relationships,
in batches, idempotently); bad rows go to a report with their source, line, field and reason,
as do the rows of a table that no spec takes (when every spec reading it has a ``where``).
Every table's file is checked and read, and a ``report`` path checked, before anything is
written. Loading the same input again changes nothing.

Tables are read, checked and converted a column at a time (:func:`graphfusion.readers.read_table`,
:mod:`graphfusion.columnar`) and handed to the store as Arrow tables; the values a vectorised
rule cannot be sure of go through the single-value code, so the report, the line numbers and
the merge rules are exactly those of checking row by row: of a key repeated within a
``unique: false`` spec or across the specs of a label, the first non-null value of each
property wins, in mapping order, and the lists of a ``merge: union`` property add up (each
element once, in order); a relationship pair repeated within a ``unique: false`` spec or
across specs merges like nodes (a ``unique`` spec reports the repeats).

Example:
    >>> from graphfusion.store import EmbeddedStore
    >>> from graphfusion.ingest import load
    >>> with EmbeddedStore("shop.db") as store:  # doctest: +SKIP
    ...     report = load(store, "synthetic", {"shop": "data/shop"})
    ...     print(report.summary())
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from graphfusion import columnar
from graphfusion.columnar import MAX_KEY_CHARS
from graphfusion.errors import MappingError, ValidationError
from graphfusion.mapping import Field, LoaderMapping, NodeSpec, RelSpec, load_mapping
from graphfusion.readers import read_table
from graphfusion.reports import check_writable, default_report_path, write_rows
from graphfusion.schema import Property, Schema, union_properties
from graphfusion.store.base import DST, SRC, BaseStore
from graphfusion.table import Table
from graphfusion.values import is_missing, union_lists

__all__ = ["Reject", "LoadReport", "load", "MAX_KEY_CHARS"]

log = logging.getLogger("graphfusion.ingest")

REPORT_FIELDS = ("source", "line", "target", "field", "reason")


@dataclass(frozen=True)
class Reject:
    """A row that was not loaded, and why."""

    source: str
    line: int
    field: str
    reason: str
    target: str = ""

    def to_dict(self) -> dict[str, Any]:
        """As a plain dict (one line of the report)."""
        return {
            "source": self.source,
            "line": self.line,
            "target": self.target,
            "field": self.field,
            "reason": self.reason,
        }


@dataclass
class LoadReport:
    """What a load did.

    Attributes:
        mapping: The mapping's name.
        nodes: Nodes written, by label.
        relationships: Relationships written, by type.
        rejected: The rows that were not loaded.
        skipped: Links to nodes outside the data, left out quietly (``skip_dangling``), by type.
        report_path: The report file written, if any.
        seconds: Wall time.
    """

    mapping: str
    nodes: dict[str, int] = field(default_factory=dict)
    relationships: dict[str, int] = field(default_factory=dict)
    rejected: list[Reject] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    report_path: Path | None = None
    seconds: float = 0.0

    def summary(self) -> str:
        """A few lines for people."""
        n = sum(self.nodes.values())
        r = sum(self.relationships.values())
        lines = [
            f"loaded {n} nodes and {r} relationships with mapping {self.mapping!r} "
            f"in {self.seconds:.1f} s; {len(self.rejected)} rows rejected"
        ]
        if self.skipped:
            links = ", ".join(f"{n} {t}" for t, n in self.skipped.items())
            lines.append(f"links to nodes outside the data, left out: {links}")
        if self.rejected:
            where = f" (report: {self.report_path})" if self.report_path else ""
            lines.append(f"rejected rows{where}, first ones:")
            for rej in self.rejected[:5]:
                lines.append(f"  {rej.source}:{rej.line} {rej.target} {rej.field}: {rej.reason}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """As plain data (for ``--json``)."""
        return {
            "mapping": self.mapping,
            "nodes": self.nodes,
            "relationships": self.relationships,
            "rejected": len(self.rejected),
            "skipped": self.skipped,
            "report": str(self.report_path) if self.report_path else None,
            "seconds": round(self.seconds, 3),
        }


class _Loader:
    """One load: reads tables as columns, checks and converts them a column at a time
    (:mod:`graphfusion.columnar`), merges, drops dangling links, writes."""

    def __init__(
        self,
        store: BaseStore,
        mapping: LoaderMapping,
        sources: Mapping[str, Any],
        progress: bool,
    ) -> None:
        self.store = store
        self.schema: Schema = store.schema
        self.mapping = mapping
        self.sources = dict(sources)
        self.progress = progress
        self.rejects: list[Reject] = []
        self.skipped: dict[str, int] = {}
        self._tables: dict[str, tuple[str, Table]] = {}
        # table -> its bad rows, reported when the table is first used
        self._unread: dict[str, list[Reject]] = {}
        # table -> the rows some spec's ``where`` kept
        self._taken: dict[str, np.ndarray] = {}
        # label -> each spec's nodes (key and properties; keys unique or not), merged by
        # merge_nodes
        self._node_parts: dict[str, list[tuple[pa.Table, bool]]] = {}
        # label -> nodes: unique keys and properties
        self.nodes: dict[str, pa.Table] = {}
        # (type, start, end) -> each spec's relationships, merged by drop_dangling
        self._rel_parts: dict[tuple[str, str, str], list[_RelPart]] = {}
        # (type, start, end) -> relationships: unique (src, dst) pairs and properties
        self.rels: dict[tuple[str, str, str], pa.Table] = {}

    # ------------------------------------------------------------------ sources
    def check_sources(self) -> None:
        """Check the sources given against the mapping, and that every table's file exists
        and is of its kind, before anything is read or written.

        Raises:
            MappingError: A source unknown, missing, or a table's file absent or of the
                wrong kind.
            ValidationError: A source that is neither a path nor a DataFrame.
        """
        needed = {self.mapping.tables[t].source for t in self._used_tables()}
        unknown = set(self.sources) - set(self.mapping.sources)
        if unknown:
            raise MappingError(
                f"mapping {self.mapping.name!r} has no source(s) {sorted(unknown)}; "
                f"it takes: {', '.join(self.mapping.sources)}"
            )
        missing = sorted(needed - set(self.sources))
        if missing:
            hints = ", ".join(f"--source {m}=PATH" for m in missing)
            raise MappingError(f"mapping {self.mapping.name!r} needs source(s) {missing} ({hints})")
        for name in needed:
            src = self.sources[name]
            if not isinstance(src, (str, os.PathLike, pd.DataFrame)):
                raise ValidationError(
                    f"source {name!r} must be a path or a DataFrame, got {type(src).__name__}"
                )
        for table in self._used_tables():
            self._target(table)

    def _used_tables(self) -> list[str]:
        names = [s.table for s in self.mapping.nodes] + [
            s.table for s in self.mapping.relationships
        ]
        return list(dict.fromkeys(names))

    def _target(self, name: str) -> tuple[str, Any, str | None]:
        """A table's source label (for the report), what to read (a path or a DataFrame) and
        the folder of its file (None for a DataFrame).

        Raises:
            MappingError: The file does not exist or is not of the table's kind.
        """
        spec = self.mapping.tables[name]
        src = self.sources[spec.source]
        if isinstance(src, pd.DataFrame):
            return f"{spec.source}:frame", src, None
        path = Path(src)
        if spec.file:
            if not path.is_dir():
                kind = "does not exist" if not path.exists() else "is not a folder"
                raise MappingError(
                    f"source {spec.source!r}: {path} {kind}; a folder holding {spec.file} "
                    "was expected"
                )
            path = path / spec.file
        if not path.exists():
            raise MappingError(f"source {spec.source!r}: {path} does not exist")
        if path.is_dir() and spec.format not in ("images", "frame"):
            raise MappingError(
                f"source {spec.source!r}: {path} is a folder, a {spec.format} file was expected"
            )
        folder = str((path if path.is_dir() else path.parent).resolve())
        return str(path), path, folder

    def read_all(self) -> None:
        """Read every table the specs use (before anything is written: a file that fails to
        read leaves the store as it was)."""
        for name in self._used_tables():
            self._read(name)

    def _read(self, name: str) -> tuple[str, Table]:
        """A table of the mapping, read once; its bad rows wait for :meth:`table`."""
        if name in self._tables:
            return self._tables[name]
        spec = self.mapping.tables[name]
        label, target, folder = self._target(name)
        table, bad = read_table(spec.format, target, name=spec.source, options=dict(spec.options))
        self._unread[name] = [Reject(label, rec.line, "", rec.reason, name) for rec in bad]
        if folder is not None:
            table = table.with_constant("__dir__", folder)
        log.debug("read %s: %d rows, %d bad", label, len(table), len(bad))
        self._tables[name] = (label, table)
        return label, table

    def table(self, name: str) -> tuple[str, Table]:
        """A table of the mapping; its bad rows go to the report on first use."""
        label, table = self._read(name)
        self.rejects.extend(self._unread.pop(name, []))
        return label, table

    def rows(self, table: str, where: Field | None) -> tuple[str, Table]:
        """The rows of ``table`` that ``where`` keeps (noted for :meth:`reject_untaken`)."""
        source, rows = self.table(table)
        if where is None:
            return source, rows
        kept = columnar.keep(where, rows)
        taken = self._taken.get(table)
        self._taken[table] = kept if taken is None else taken | kept
        return source, rows.take(np.flatnonzero(kept))

    def reject_untaken(self) -> None:
        """Report the rows that no spec takes, of each table that every spec reading it
        reads through a ``where``."""
        wheres: dict[str, list[Field | None]] = {}
        specs: list[NodeSpec | RelSpec] = [*self.mapping.nodes, *self.mapping.relationships]
        for spec in specs:
            wheres.setdefault(spec.table, []).append(spec.where)
        for name, fields in wheres.items():
            if any(f is None for f in fields):
                continue
            source, rows = self.table(name)
            left = np.flatnonzero(~self._taken[name])
            if not len(left):
                continue
            field, reason = untaken_reason([f for f in fields if f is not None])
            values = rows.column(field).take(left).values()
            for line, value in zip(rows.lines[left].tolist(), values, strict=True):
                self.rejects.append(Reject(source, line, field, reason(value), name))

    # ------------------------------------------------------------------ nodes
    def collect_nodes(self, spec: NodeSpec) -> None:
        """Check and convert one spec's rows; the good ones wait for merge_nodes."""
        source, rows = self.rows(spec.table, spec.where)
        node = self.schema.node(spec.label)
        parts = self._node_parts.setdefault(spec.label, [])
        found = columnar.keys(columnar.evaluate(spec.key, rows))
        rejects = _Rejects(source, f"{spec.label} node", rows.lines)
        bad = rejects.add(found.errors, node.key)
        has_key = _valid(found.keys)
        has_key[list(found.many)] = True
        missing = np.flatnonzero(~has_key & ~bad)
        reason = f"missing key ({', '.join(spec.key.needs()) or 'key'} is empty)"
        bad |= rejects.add(dict.fromkeys(missing.tolist(), reason), node.key)
        props = self._props(spec.properties, node.prop, rows, rejects, bad)
        entries, keys = _explode(np.flatnonzero(~bad), found)
        if spec.unique:
            first = _first_of_groups([keys])
            dup = np.flatnonzero(first != np.arange(len(keys)))
            for e, key in zip(dup.tolist(), keys.take(pa.array(dup)).to_pylist(), strict=True):
                line = rows.lines[entries[first[e]]]
                reason = f"duplicate key {key!r} (first at line {line})"
                rejects.add_one(int(entries[e]), node.key, reason)
            keys, entries = _drop(keys, dup), np.delete(entries, dup)
        parts.append((pa.table({node.key: keys, **_take(props, entries)}), spec.unique))
        self.rejects.extend(rejects.sorted())

    def merge_nodes(self) -> None:
        """One row per key and label: of repeated keys (in ``unique: false`` specs, or in
        several specs of a label), the first non-null value of each property wins, in mapping
        order, and union lists add up."""
        for label, parts in self._node_parts.items():
            if len(parts) == 1 and parts[0][1]:  # one spec, its keys unique already
                self.nodes[label] = parts[0][0]
                continue
            node = self.schema.node(label)
            self.nodes[label] = _first_non_null(
                _concat([t for t, _ in parts]), [node.key], union=union_properties(node.properties)
            )

    # ------------------------------------------------------------------ relationships
    def collect_rels(self, spec: RelSpec) -> None:
        """Check and convert one spec's rows; the good ones wait for drop_dangling."""
        source, rows = self.rows(spec.table, spec.where)
        rel = self.schema.rel(spec.type)
        parts = self._rel_parts.setdefault((spec.type, spec.start.label, spec.end.label), [])
        srcs = columnar.keys(columnar.evaluate(spec.start.key, rows))
        dsts = columnar.keys(columnar.evaluate(spec.end.key, rows))
        rejects = _Rejects(source, f"{spec.type} relationship", rows.lines)
        bad = rejects.add({**dsts.errors, **srcs.errors}, "key")  # the start's reason first
        has_src, has_dst = _valid(srcs.keys), _valid(dsts.keys)
        has_src[list(srcs.many)] = True
        has_dst[list(dsts.many)] = True
        empty = ~bad & ~(has_src & has_dst)
        if not spec.optional:
            # An optional link may be absent (a product without a brand); otherwise a row
            # that names no end is reported.
            no_src = np.flatnonzero(empty & ~has_src).tolist()
            no_dst = np.flatnonzero(empty & has_src).tolist()
            rejects.add(dict.fromkeys(no_src, f"missing {spec.start.label} key"), "from")
            rejects.add(dict.fromkeys(no_dst, f"missing {spec.end.label} key"), "to")
        bad |= empty
        props = self._props(spec.properties, rel.prop, rows, rejects, bad)
        entries, src, dst = _pairs(np.flatnonzero(~bad), srcs, dsts)
        # A pair repeated in one spec: reported when the spec is unique, else merged into
        # its first row, as repeated node keys are.
        first = _first_of_groups([src, dst])
        dup = np.flatnonzero(first != np.arange(len(src)))
        table = pa.table({SRC: src, DST: dst, **_take(props, entries)})
        if spec.unique and len(dup):
            at = pa.array(dup)
            pairs = zip(src.take(at).to_pylist(), dst.take(at).to_pylist(), strict=True)
            for e, (s, d) in zip(dup.tolist(), pairs, strict=True):
                line = rows.lines[entries[first[e]]]
                reason = f"duplicate relationship {s}->{d} (first at line {line})"
                rejects.add_one(int(entries[e]), "key", reason)
            table = table.take(pa.array(np.delete(np.arange(len(src)), dup)))
        elif len(dup):
            table = _first_non_null(
                table, [SRC, DST], first, union=union_properties(rel.properties)
            )
        entries = np.delete(entries, dup)
        parts.append(_RelPart(table, source, rows.lines[entries], spec.skip_dangling))
        self.rejects.extend(rejects.sorted())

    def drop_dangling(self, key: tuple[str, str, str]) -> None:
        """Merge the specs of a relationship type between two labels (the first non-null
        value of each property wins, union lists add up) and drop the links to nodes that
        exist neither in this load nor in the store: reported, or only counted for
        ``skip_dangling`` specs (the spec that first named the pair decides)."""
        rtype, start, end = key
        parts = self._rel_parts[key]
        merged = _concat([p.table for p in parts])
        if len(parts) == 1:  # one spec's pairs are unique already
            first = np.arange(merged.num_rows)
        else:
            first = _first_of_groups([merged.column(SRC), merged.column(DST)])
        heads = np.flatnonzero(first == np.arange(merged.num_rows))
        group = _first_non_null(
            merged, [SRC, DST], first, union=union_properties(self.schema.rel(rtype).properties)
        )
        part_of = np.repeat(np.arange(len(parts)), [p.table.num_rows for p in parts])[heads]
        lines = np.concatenate([p.lines for p in parts])[heads]
        src, dst = group.column(SRC), group.column(DST)
        known_src, known_dst = self._known(start, src), self._known(end, dst)
        ok = known_src & known_dst
        target = f"{rtype} relationship"
        skipped = 0
        for i in np.flatnonzero(~ok).tolist():
            part = parts[int(part_of[i])]
            if part.skip:
                skipped += 1
            elif not known_src[i]:
                reason = f"{start} {src[i].as_py()!r} does not exist"
                self.rejects.append(Reject(part.source, int(lines[i]), "from", reason, target))
            else:
                reason = f"{end} {dst[i].as_py()!r} does not exist"
                self.rejects.append(Reject(part.source, int(lines[i]), "to", reason, target))
        if skipped:
            self.skipped[rtype] = self.skipped.get(rtype, 0) + skipped
        self.rels[key] = group if ok.all() else group.filter(pa.array(ok))

    def _known(self, label: str, keys: pa.ChunkedArray) -> np.ndarray:
        """Which ``keys`` are nodes of ``label``, loaded now or stored before."""
        here = self.nodes.get(label)
        known = np.zeros(len(keys), dtype=bool)
        if here is not None and here.num_rows:
            known = _mask(pc.is_in(keys, value_set=here.column(0).combine_chunks()))
        outside = pc.unique(keys.filter(pa.array(~known)).combine_chunks())
        if len(outside):
            found = self.store.existing_keys(label, outside.to_pylist())
            if found:
                known |= _mask(pc.is_in(keys, value_set=pa.array(list(found), pa.string())))
        return known

    # ------------------------------------------------------------------ values
    @staticmethod
    def _props(
        fields: Mapping[str, Field],
        prop: Callable[[str], Property],
        rows: Table,
        rejects: _Rejects,
        bad: np.ndarray,
    ) -> dict[str, pa.Array]:
        """The properties, converted (each to its type, within its declared range); a row's
        first property that fails (in mapping order) is reported, unless the row was rejected
        already. Updates ``bad``."""
        out = {}
        for name, fld in fields.items():
            out[name], errors = columnar.convert(columnar.evaluate(fld, rows), prop(name))
            bad |= rejects.add({i: r for i, r in errors.items() if not bad[i]}, name)
        return out

    # ------------------------------------------------------------------ run
    def write_nodes(self, report: LoadReport, batch_size: int | None) -> None:
        """Write the merged node tables; counts go to ``report``."""
        for label, nodes in self.nodes.items():
            n = self.store.write_node_table(
                label, nodes, batch_size=batch_size, progress=self.progress
            )
            report.nodes[label] = report.nodes.get(label, 0) + n

    def run(self, batch_size: int | None) -> LoadReport:
        started = time.perf_counter()
        self.check_sources()
        self.read_all()
        for nspec in self.mapping.nodes:
            self.collect_nodes(nspec)
        self.merge_nodes()
        report = LoadReport(self.mapping.name, rejected=self.rejects, skipped=self.skipped)
        # The nodes are written by a worker while the relationships are checked: the store
        # runs one statement at a time and releases the GIL while it does.
        with ThreadPoolExecutor(1, thread_name_prefix="graphfusion-load") as pool:
            nodes_written = pool.submit(self.write_nodes, report, batch_size)
            for rspec in self.mapping.relationships:
                self.collect_rels(rspec)
            self.reject_untaken()
            for key in self._rel_parts:
                self.drop_dangling(key)
            nodes_written.result()
        for (rtype, start, end), rels in self.rels.items():
            n = self.store.write_rel_table(
                rtype, rels, start=start, end=end, batch_size=batch_size, progress=self.progress
            )
            report.relationships[rtype] = report.relationships.get(rtype, 0) + n
        report.seconds = time.perf_counter() - started
        return report


@dataclass
class _RelPart:
    """One spec's relationships (unique pairs), with the source and line of each."""

    table: pa.Table
    source: str
    lines: np.ndarray
    skip: bool


class _Rejects:
    """A spec's rejected rows, given back in row order however they were found."""

    def __init__(self, source: str, target: str, lines: np.ndarray) -> None:
        self.source = source
        self.target = target
        self.lines = lines
        self._found: list[tuple[int, int, Reject]] = []

    def add(self, reasons: Mapping[int, str], field: str) -> np.ndarray:
        """Reject rows (row -> reason) on ``field``; returns the mask of those rows."""
        mask = np.zeros(len(self.lines), dtype=bool)
        for row, reason in reasons.items():
            self.add_one(row, field, reason)
            mask[row] = True
        return mask

    def add_one(self, row: int, field: str, reason: str) -> None:
        rej = Reject(self.source, int(self.lines[row]), field, reason, self.target)
        self._found.append((row, len(self._found), rej))

    def sorted(self) -> list[Reject]:
        return [r for _, _, r in sorted(self._found, key=lambda f: (f[0], f[1]))]


# ----------------------------------------------------------------------------- column helpers


def _mask(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(arr.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _valid(arr: pa.Array) -> np.ndarray:
    return _mask(arr.is_valid())


def _take(columns: Mapping[str, pa.Array], rows: np.ndarray) -> dict[str, pa.Array]:
    """The values at ``rows`` (ascending) of each column."""
    if (
        len(rows)
        and rows[-1] == len(rows) - 1
        and all(len(c) == len(rows) for c in columns.values())
    ):
        return dict(columns)  # every row
    take = pa.array(rows, type=pa.int64())
    return {name: col.take(take) for name, col in columns.items()}


def _drop(arr: pa.Array, rows: np.ndarray) -> pa.Array:
    if not len(rows):
        return arr
    keep = np.ones(len(arr), dtype=bool)
    keep[rows] = False
    return arr.filter(pa.array(keep))


def _explode(rows: np.ndarray, found: columnar.Keys) -> tuple[np.ndarray, pa.Array]:
    """(row, key) entries for ``rows``: one per key, in row order."""
    if not found.many:
        return rows, found.keys.take(pa.array(rows, type=pa.int64()))
    keys = found.keys.to_pylist()
    entries: list[int] = []
    out: list[str] = []
    for i in rows.tolist():
        values = found.many.get(i) or [keys[i]]
        entries.extend([i] * len(values))
        out.extend(values)
    return np.asarray(entries, dtype=np.int64), pa.array(out, type=pa.string())


def _pairs(
    rows: np.ndarray, srcs: columnar.Keys, dsts: columnar.Keys
) -> tuple[np.ndarray, pa.Array, pa.Array]:
    """(row, start key, end key) entries for ``rows``: every start with every end."""
    if not srcs.many and not dsts.many:
        take = pa.array(rows, type=pa.int64())
        return rows, srcs.keys.take(take), dsts.keys.take(take)
    src_keys, dst_keys = srcs.keys.to_pylist(), dsts.keys.to_pylist()
    entries: list[int] = []
    out_src: list[str] = []
    out_dst: list[str] = []
    for i in rows.tolist():
        for s in srcs.many.get(i) or [src_keys[i]]:
            for d in dsts.many.get(i) or [dst_keys[i]]:
                entries.append(i)
                out_src.append(s)
                out_dst.append(d)
    return (
        np.asarray(entries, dtype=np.int64),
        pa.array(out_src, type=pa.string()),
        pa.array(out_dst, type=pa.string()),
    )


def _first_of_groups(columns: list[Any]) -> np.ndarray:
    """For each row, the position of the first row with the same values in ``columns``
    (string arrays without nulls)."""
    n = len(columns[0]) if columns else 0
    combined = np.zeros(n, dtype=np.int64)
    if not n:
        return combined
    for col in columns:
        arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        enc = arr.dictionary_encode()
        codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        combined = combined * len(enc.dictionary) + codes
    codes, _ = pd.factorize(combined)  # numbered in order of first appearance, so a row is
    # the first of its group where the running maximum of the codes grows
    grows = np.ones(n, dtype=bool)
    top = np.maximum.accumulate(codes)
    grows[1:] = top[1:] > top[:-1]
    return np.flatnonzero(grows)[codes]


def _concat(tables: list[pa.Table]) -> pa.Table:
    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables, promote_options="default")


def _first_non_null(
    table: pa.Table,
    keys: list[str],
    first: np.ndarray | None = None,
    union: Collection[str] = (),
) -> pa.Table:
    """One row per distinct ``keys`` (in order of first appearance), each other column
    holding its first non-null value among the rows of that key (``first``: the rows'
    :func:`_first_of_groups`, when known), or for the list columns named in ``union``, the
    elements of all its rows' lists, each once, in order."""
    if first is None:
        first = _first_of_groups([table.column(k) for k in keys])
    heads = np.flatnonzero(first == np.arange(len(first)))
    if len(heads) == table.num_rows:
        return table
    group = np.searchsorted(heads, first)  # each row's group, numbered in order of appearance
    columns = {}
    for name in table.column_names:
        col = table.column(name)
        if name in union:
            columns[name] = pa.array(union_lists(col.to_pylist(), group, len(heads)), col.type)
            continue
        if name in keys or col.null_count == 0:
            columns[name] = col.take(pa.array(heads))
            continue
        rows = np.flatnonzero(_valid(col))
        groups, at = np.unique(group[rows], return_index=True)
        index = np.full(len(heads), -1, dtype=np.int64)
        index[groups] = rows[at]
        columns[name] = col.take(pa.array(index, mask=index < 0))
    return pa.table(columns)


def untaken_reason(wheres: list[Field]) -> tuple[str, Callable[[Any], str]]:
    """The field to name, and the reason (from the row's value of that field), for a row that
    none of ``wheres`` keeps: ``type 'CLICKED' matches none of 'VIEWED', 'PURCHASED'`` when
    they all compare one column to a value, else the conditions the row meets none of."""
    names = {"/".join(w.needs()) for w in wheres}
    field = names.pop() if len(names) == 1 else ""
    if field and all(w.column and not w.transforms and "equals" in w.options for w in wheres):
        choices = ", ".join(repr(str(w.options["equals"])) for w in wheres)

        def matches_none(value: Any) -> str:
            shown = "(empty)" if is_missing(value) else repr(value)
            return f"{field} {shown} matches none of {choices}"

        return field, matches_none
    reason = f"taken by no spec: it meets none of {'; '.join(map(_condition, wheres))}"
    return field, lambda value: reason


def _condition(where: Field) -> str:
    """What a ``where`` field asks of a row, in words."""
    name = "/".join(where.needs()) or "value"
    if where.transforms:
        name = f"{name} ({', '.join(where.transforms)})"
    if "equals" in where.options:
        return f"{name} = {str(where.options['equals'])!r}"
    return f"{name} not empty"


def load(
    store: BaseStore,
    mapping: str | Path | LoaderMapping,
    sources: Mapping[str, Any],
    *,
    report: str | Path | None = None,
    batch_size: int | None = None,
    progress: bool = False,
) -> LoadReport:
    """Load sources into the store through a mapping.

    Args:
        store: The graph store to write to.
        mapping: A built-in mapping name (see :func:`graphfusion.mapping.builtin_mappings`), a
            mapping file, or a parsed mapping.
        sources: Source name -> path (a file or folder) or pandas DataFrame.
        report: Where to write rejected rows (``.csv`` or ``.jsonl``); by default, when rows
            were rejected, ``reports/load-<mapping>-<time>.jsonl`` in the store folder (or in
            the working folder for Neo4j).
        batch_size: Rows per write (the store's default when None).
        progress: Show progress bars.

    Returns:
        What was loaded and rejected.

    Raises:
        MappingError: The mapping is wrong or a source is missing.
        ValidationError: Bad arguments, or a ``report`` path that cannot be written (checked
            before anything is read or written).
    """
    if not isinstance(sources, Mapping):
        raise ValidationError("sources must be a mapping of source name -> path or DataFrame")
    if not isinstance(mapping, LoaderMapping):
        mapping = load_mapping(mapping, store.schema)
    if report is not None:
        check_writable(report)
    loader = _Loader(store, mapping, sources, progress)
    result = loader.run(batch_size)
    if report is not None or result.rejected:
        path = report or default_report_path(store, f"load-{mapping.name}")
        rows = [r.to_dict() for r in result.rejected]
        result.report_path = write_rows(rows, path, REPORT_FIELDS)
    log.info(result.summary())
    return result
