"""Loading sources into the store through a loader mapping, with validation and a report.

Every row is checked against the schema before anything is written: keys present, values of
the right type, no repeated keys in one table (for unique node specs), relationship ends that
exist in this load or in the store. Good rows are written (nodes first, then relationships,
in batches, idempotently); bad rows go to a report with their source, line, field and reason,
as do the rows of a table that no spec takes (when every spec reading it has a ``where``).
A row is whole or nothing: every spec reading its table (node and relationship specs alike)
is checked before any is kept, and a row that one of them rejects (a value of the wrong type
or out of range, a key missing or not acceptable, an empty end of a link that is not
``optional``, a transform that fails, a repeat in a ``unique`` spec) makes nothing in any of
them, and is reported once, with every spec's reason (the first spec's target and field).
What a spec's ``where`` does not take, and an empty value of a property, are no fault. A link
to a node that exists neither in this load nor in the store is reported on its own, after
the rows are kept. Every table's file is checked and read, and a ``report`` path checked,
before anything is written. Loading the same input again changes nothing.

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

import json
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
from graphfusion.mapping import Field, LoaderMapping, NodeSpec, RelSpec, check_columns, load_mapping
from graphfusion.readers import photo_source_problem, read_table, repeated_column
from graphfusion.reports import check_writable, default_report_path, write_rows
from graphfusion.schema import Property, Schema, union_properties
from graphfusion.store.base import DST, SRC, BaseStore
from graphfusion.table import Table
from graphfusion.values import home_path, is_missing, union_lists

__all__ = ["Reject", "LoadReport", "load", "check_sources", "check_report", "MAX_KEY_CHARS"]

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


def check_sources(mapping: LoaderMapping, sources: Mapping[str, Any]) -> None:
    """Check the sources given against the mapping, and that every table's file exists
    and is of its kind, before anything is read or written (or a store is opened).

    Args:
        mapping: The parsed mapping (:func:`graphfusion.mapping.load_mapping`).
        sources: Source name -> path (a file or folder) or pandas DataFrame.

    Raises:
        MappingError: A source unknown, missing, or a table's file absent or of the
            wrong kind.
        ValidationError: A source that is neither a path nor a DataFrame, or a DataFrame
            that names a column twice.
    """
    needed = {mapping.tables[t].source for t in _used_tables(mapping)}
    unknown = set(sources) - set(mapping.sources)
    if unknown:
        raise MappingError(
            f"mapping {mapping.name!r} has no source(s) {sorted(unknown)}; "
            f"it takes: {', '.join(mapping.sources)}"
        )
    missing = sorted(needed - set(sources))
    if missing:
        hints = ", ".join(f"--source {m}=PATH" for m in missing)
        raise MappingError(f"mapping {mapping.name!r} needs source(s) {missing} ({hints})")
    for name in needed:
        src = sources[name]
        if not isinstance(src, (str, os.PathLike, pd.DataFrame)):
            raise ValidationError(
                f"source {name!r} must be a path or a DataFrame, got {type(src).__name__}"
            )
        if isinstance(src, pd.DataFrame):
            _check_frame_columns(name, src)
    for table in _used_tables(mapping):
        _target(mapping, sources, table)
    for name in needed:  # once per source, not per table
        if not isinstance(sources[name], pd.DataFrame):
            _check_finished(name, home_path(sources[name], f"source {name!r}"))


def _check_frame_columns(name: str, frame: pd.DataFrame) -> None:
    """Refuse a DataFrame that names a column twice (as ``str`` names it; blank names may
    repeat), as a CSV header that does: which of the two a field means is not known.

    Raises:
        ValidationError: Naming the column and its two places.
    """
    repeat = repeated_column([str(c) if str(c).strip() else "" for c in frame.columns])
    if repeat is not None:
        col, first, second = repeat
        raise ValidationError(
            f"source {name!r}: the DataFrame has the column {col!r} twice "
            f"(columns {first} and {second}); rename one"
        )


def check_report(mapping: LoaderMapping, sources: Mapping[str, Any], report: str | Path) -> Path:
    """Check, before anything is read or written, that a load's ``report`` path can be
    written (:func:`graphfusion.reports.check_writable`) and names no file the load reads (a
    table's file or the mapping file), which writing the report would overwrite. The
    sources are checked too (:func:`check_sources`).

    Returns:
        The report path (``~`` expanded).

    Raises:
        MappingError: As :func:`check_sources`.
        ValidationError: The report cannot be written, or is a file the load reads.
    """
    out = check_writable(report)
    check_sources(mapping, sources)
    if not out.exists():
        return out
    read: list[tuple[str, Path]] = []
    if mapping.path != "<memory>":
        read.append(("the mapping file", Path(mapping.path)))
    for table in _used_tables(mapping):
        target = _target(mapping, sources, table)[1]
        if isinstance(target, Path):
            read.append((f"the source file of table {table!r}", target))
    for what, path in read:
        if path.is_file() and os.path.samefile(out, path):
            raise ValidationError(f"report {out}: is {what} ({path}); name another file")
    return out


def _used_tables(mapping: LoaderMapping) -> list[str]:
    specs: list[NodeSpec | RelSpec] = [*mapping.nodes, *mapping.relationships]
    return list(dict.fromkeys(s.table for s in specs))


def _target(
    mapping: LoaderMapping, sources: Mapping[str, Any], name: str
) -> tuple[str, Any, str | None]:
    """A table's source label (for the report), what to read (a path or a DataFrame) and
    the folder of its file (None for a DataFrame).

    Raises:
        MappingError: The file does not exist or is not of the table's kind (a folder for
            a file; a pipe or a device for ``images``, whose paths ``embed`` reads again).
    """
    spec = mapping.tables[name]
    src = sources[spec.source]
    if isinstance(src, pd.DataFrame):
        return f"{spec.source}:frame", src, None
    path = home_path(src, f"source {spec.source!r}")
    if spec.file:
        if not path.is_dir():
            kind = "does not exist" if not path.exists() else "is not a folder"
            raise MappingError(
                f"source {spec.source!r}: {path} {kind}; a folder holding {spec.file} was expected"
            )
        path = path / spec.file
    if not path.exists():
        raise MappingError(f"source {spec.source!r}: {path} does not exist")
    if path.is_dir() and spec.format not in ("images", "frame"):
        raise MappingError(
            f"source {spec.source!r}: {path} is a folder, a {spec.format} file was expected"
        )
    if spec.format == "images" and (problem := photo_source_problem(path)) is not None:
        raise MappingError(f"source {spec.source!r}: {problem}")
    if path.is_char_device() or path.is_block_device():  # /dev/zero would never end
        raise MappingError(
            f"source {spec.source!r}: {path} is a device, a {spec.format} file was expected"
            " (a pipe, such as /dev/stdin from a shell pipeline, is read)"
        )
    folder = str((path if path.is_dir() else path.parent).resolve())
    return str(path), path, folder


def _check_finished(source: str, folder: Path) -> None:
    """Refuse a shop folder whose generation stopped half-way (a full disk, Ctrl-C): its
    ``manifest.json``, written by :mod:`graphfusion.synthetic` or
    :mod:`graphfusion.catalog_shop`, still says ``complete: false`` (a source that is a file,
    or a folder without one, passes).

    Raises:
        MappingError: The folder holds an unfinished generated shop.
    """
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):  # no manifest, or not one of ours
        return
    if (
        isinstance(manifest, dict)
        and str(manifest.get("generator", "")).startswith("graphfusion.")
        and manifest.get("complete") is False
    ):
        raise MappingError(
            f"source {source!r}: {folder} holds an unfinished shop (its manifest.json says "
            "complete: false; its generation stopped half-way): run `graphfusion generate` "
            "with the same options again to finish it"
        )


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
        self._specs: list[NodeSpec | RelSpec] = [*mapping.nodes, *mapping.relationships]
        # id(spec) -> its rows, checked with its table's other specs, until collected
        self._checked: dict[int, _Checked] = {}
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
        """:func:`check_sources` of the loader's mapping and sources."""
        check_sources(self.mapping, self.sources)

    def _used_tables(self) -> list[str]:
        return _used_tables(self.mapping)

    def _target(self, name: str) -> tuple[str, Any, str | None]:
        return _target(self.mapping, self.sources, name)

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
        if len(table):  # a mistyped column would load as nothing, without a word
            check_columns(self.mapping, name, table.names, label)
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

    def rows(self, table: str, where: Field | None) -> tuple[str, np.ndarray, Table]:
        """The rows of ``table`` that ``where`` keeps (noted for :meth:`reject_untaken`): the
        source label, their positions in the table and the rows."""
        source, rows = self.table(table)
        if where is None:
            return source, np.arange(len(rows)), rows
        kept = columnar.keep(where, rows)
        taken = self._taken.get(table)
        self._taken[table] = kept if taken is None else taken | kept
        at = np.flatnonzero(kept)
        return source, at, rows.take(at)

    def reject_untaken(self) -> None:
        """Report the rows that no spec takes, of each table that every spec reading it
        reads through a ``where``."""
        wheres: dict[str, list[Field | None]] = {}
        for spec in self._specs:
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
    def check_table(self, name: str) -> None:
        """Check every spec reading table ``name`` (nodes and relationships), and keep for
        each the rows that no spec of the table rejects.

        A row that one spec rejects (a key or value it cannot take, a missing key, an empty
        end of a link that is not ``optional``, a repeat in a ``unique`` spec) makes nothing
        in any spec, and is reported once: the first spec's target and field, and every
        reason (the other specs' after the first, each named). Rows a spec's ``where`` does
        not take are not its to reject. Repeats are found in row order among the rows left:
        a row whose key (or pair) of a ``unique`` spec an earlier row loads is a repeat, and
        a repeat left out hides nothing after it.
        """
        source, table = self.table(name)
        specs = [s for s in self._specs if s.table == name]
        checked = [
            self._check_node(s) if isinstance(s, NodeSpec) else self._check_rel(s) for s in specs
        ]
        bad = np.zeros(len(table), dtype=bool)
        faults: dict[int, list[tuple[str, str, str]]] = {}
        for c in checked:
            for i, (fld, reason) in c.faults.items():
                row = int(c.at[i])
                bad[row] = True
                faults.setdefault(row, []).append((c.target, fld, reason))
        for c in checked:
            c.select(~bad[c.at])
        repeats = _repeats(checked, table.lines)
        if repeats:
            bad[np.fromiter(repeats, dtype=np.int64, count=len(repeats))] = True
            for c in checked:
                c.drop(bad[c.at])
            faults.update(repeats)
        for row in sorted(faults):
            target, fld, reason = _combined(faults[row])
            self.rejects.append(Reject(source, int(table.lines[row]), fld, reason, target))
        for s, c in zip(specs, checked, strict=True):
            self._checked[id(s)] = c

    def _checked_spec(self, spec: NodeSpec | RelSpec) -> _Checked:
        """A spec's rows, checked with its table's other specs (once, on first use)."""
        if id(spec) not in self._checked:
            self.check_table(spec.table)
        return self._checked.pop(id(spec))

    def _check_node(self, spec: NodeSpec) -> _Checked:
        """A node spec's keys and properties, and the first fault of each row it takes."""
        source, at, rows = self.rows(spec.table, spec.where)
        node = self.schema.node(spec.label)
        found = columnar.keys(columnar.evaluate(spec.key, rows))
        faults = {i: (node.key, reason) for i, reason in found.errors.items()}
        has_key = _valid(found.keys)
        has_key[list(found.many)] = True
        bad = ~has_key
        bad[list(faults)] = True
        reason = f"missing key ({', '.join(spec.key.needs()) or 'key'} is empty)"
        for i in np.flatnonzero(~has_key).tolist():
            faults.setdefault(i, (node.key, reason))
        props = self._props(spec.properties, node.prop, rows, faults, bad)
        target = f"{spec.label} node"
        return _Checked(spec, target, node.key, source, at, rows.lines, (found,), props, faults)

    def _check_rel(self, spec: RelSpec) -> _Checked:
        """A relationship spec's ends and properties, and the first fault of each row it
        takes (an empty end of an ``optional`` spec is none: the row makes no link)."""
        source, at, rows = self.rows(spec.table, spec.where)
        rel = self.schema.rel(spec.type)
        srcs = columnar.keys(columnar.evaluate(spec.start.key, rows))
        dsts = columnar.keys(columnar.evaluate(spec.end.key, rows))
        errors = {**dsts.errors, **srcs.errors}  # the start's reason first
        faults = {i: ("key", reason) for i, reason in errors.items()}
        bad = np.zeros(len(rows), dtype=bool)
        bad[list(faults)] = True
        has_src, has_dst = _valid(srcs.keys), _valid(dsts.keys)
        has_src[list(srcs.many)] = True
        has_dst[list(dsts.many)] = True
        empty = ~bad & ~(has_src & has_dst)
        if not spec.optional:
            # An optional link may be absent (a product without a brand); otherwise a row
            # that names no end is rejected.
            for i in np.flatnonzero(empty & ~has_src).tolist():
                faults[i] = ("from", f"missing {spec.start.label} key")
            for i in np.flatnonzero(empty & has_src).tolist():
                faults[i] = ("to", f"missing {spec.end.label} key")
        bad |= empty
        props = self._props(spec.properties, rel.prop, rows, faults, bad)
        target = f"{spec.type} relationship"
        ends = (srcs, dsts)
        return _Checked(spec, target, "key", source, at, rows.lines, ends, props, faults, empty)

    def collect_nodes(self, spec: NodeSpec) -> None:
        """One spec's nodes, of the rows its table keeps (see :meth:`check_table`); they wait
        for merge_nodes."""
        c = self._checked_spec(spec)
        node = self.schema.node(spec.label)
        parts = self._node_parts.setdefault(spec.label, [])
        keys = pa.table({node.key: c.columns[0], **_take(c.props, c.entries)})
        parts.append((keys, spec.unique))

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
        """One spec's relationships, of the rows its table keeps (see :meth:`check_table`);
        a pair the spec names again merges into its first row, as repeated node keys do.
        They wait for drop_dangling."""
        c = self._checked_spec(spec)
        rel = self.schema.rel(spec.type)
        parts = self._rel_parts.setdefault((spec.type, spec.start.label, spec.end.label), [])
        src, dst = c.columns
        entries = c.entries
        table = pa.table({SRC: src, DST: dst, **_take(c.props, entries)})
        if not spec.unique:  # a unique spec's repeats were rejected by check_table
            first = _first_of_groups([src, dst])
            dup = np.flatnonzero(first != np.arange(len(src)))
            if len(dup):
                union = union_properties(rel.properties)
                table = _first_non_null(table, [SRC, DST], first, union=union)
                entries = np.delete(entries, dup)
        parts.append(_RelPart(table, c.source, c.lines[entries], spec.skip_dangling))

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
        faults: dict[int, tuple[str, str]],
        bad: np.ndarray,
    ) -> dict[str, pa.Array]:
        """The properties, converted (each to its type, within its declared range); a row's
        first property that fails (in mapping order) is its fault, unless the row is ``bad``
        already. Updates ``faults`` and ``bad``."""
        out = {}
        for name, fld in fields.items():
            out[name], errors = columnar.convert(columnar.evaluate(fld, rows), prop(name))
            for i, reason in errors.items():
                if not bad[i]:
                    faults[i] = (name, reason)
                    bad[i] = True
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
        # A table that makes nodes is checked whole (its relationship specs too) before its
        # nodes are kept: a row any spec rejects makes none of them.
        for nspec in self.mapping.nodes:
            self.collect_nodes(nspec)
        self.merge_nodes()
        report = LoadReport(self.mapping.name, rejected=self.rejects, skipped=self.skipped)
        # The nodes are written by a worker while the tables that make only relationships
        # are checked and the links merged: the store runs one statement at a time and
        # releases the GIL while it does.
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


class _Checked:
    """One spec's rows, checked (see :meth:`_Loader.check_table`).

    Attributes:
        spec: The spec.
        target: How the report names it (``Product node``, ``ABOUT relationship``).
        key: The field a repeated key is reported on (the node's key property, or ``key``).
        source: Its table's source, for the report.
        at: The table's rows that the spec takes (positions, ascending); "rows" below are
            positions in ``at``.
        lines: Their lines.
        found: Each row's key (a node spec) or its two ends (a relationship spec).
        props: Each row's properties, converted.
        faults: Row -> (field, reason): the first thing the spec finds wrong with the row.
        empty: The rows that make nothing without a fault (an optional link's missing end).
        entries: After :meth:`select`, the row of each key (or pair) made, in row order.
        columns: The keys made (one column), or the pairs (start and end columns).
    """

    def __init__(
        self,
        spec: NodeSpec | RelSpec,
        target: str,
        key: str,
        source: str,
        at: np.ndarray,
        lines: np.ndarray,
        found: tuple[columnar.Keys, ...],
        props: dict[str, pa.Array],
        faults: dict[int, tuple[str, str]],
        empty: np.ndarray | None = None,
    ) -> None:
        self.spec = spec
        self.target = target
        self.key = key
        self.source = source
        self.at = at
        self.lines = lines
        self.found = found
        self.props = props
        self.faults = faults
        self.empty = np.zeros(len(at), dtype=bool) if empty is None else empty
        self.entries = np.zeros(0, dtype=np.int64)
        self.columns: list[pa.Array] = []

    def select(self, ok: np.ndarray) -> None:
        """Make the keys (or pairs) of the rows where ``ok`` (a mask of rows)."""
        rows = np.flatnonzero(ok & ~self.empty)
        if len(self.found) == 1:
            self.entries, key = _explode(rows, self.found[0])
            self.columns = [key]
        else:
            self.entries, src, dst = _pairs(rows, *self.found)
            self.columns = [src, dst]

    def drop(self, bad: np.ndarray) -> None:
        """Leave out the keys (or pairs) of the rows where ``bad`` (a mask of rows)."""
        gone = bad[self.entries]
        if gone.any():
            keep = pa.array(~gone)
            self.entries = self.entries[~gone]
            self.columns = [col.filter(keep) for col in self.columns]

    def repeat(self, value: tuple[str, ...], line: int) -> tuple[str, str, str]:
        """The fault of a row that repeats ``value`` (a key, or a pair) first made on ``line``."""
        if len(value) == 1:
            return self.target, self.key, f"duplicate key {value[0]!r} (first at line {line})"
        src, dst = value
        return self.target, "key", f"duplicate relationship {src}->{dst} (first at line {line})"


def _repeats(checked: list[_Checked], lines: np.ndarray) -> dict[int, list[tuple[str, str, str]]]:
    """The rows (positions in the table) that repeat a key (or pair) of a ``unique`` spec,
    with their faults. Rows are taken in order: a row is a repeat when a ``unique`` spec
    made one of its keys from an earlier row that is no repeat itself, or from the row
    already (``a;a``). Only the rows whose keys occur more than once in a spec are walked
    one by one."""
    clashes: list[tuple[_Checked, dict[int, list[tuple[str, ...]]]]] = []
    for c in checked:
        if not c.spec.unique or not len(c.entries):
            continue
        first = _first_of_groups(c.columns)
        size = np.bincount(first, minlength=len(first))
        clash = np.flatnonzero(size[first] > 1)
        if not len(clash):
            continue
        take = pa.array(clash)
        values = zip(*(col.take(take).to_pylist() for col in c.columns), strict=True)
        by_row: dict[int, list[tuple[str, ...]]] = {}
        rows = c.at[c.entries[clash]].tolist()
        for row, value in zip(rows, values, strict=True):
            by_row.setdefault(row, []).append(value)
        clashes.append((c, by_row))
    if not clashes:
        return {}
    seen: list[dict[tuple[str, ...], int]] = [{} for _ in clashes]
    out: dict[int, list[tuple[str, str, str]]] = {}
    for row in sorted(set().union(*(by_row for _, by_row in clashes))):
        line = int(lines[row])
        found: list[tuple[str, str, str]] = []
        made: list[dict[tuple[str, ...], int]] = []
        for (c, by_row), before in zip(clashes, seen, strict=True):
            mine: dict[tuple[str, ...], int] = {}
            for value in by_row.get(row, ()):
                at = before.get(value, mine.get(value))
                if at is None:
                    mine[value] = line
                else:
                    found.append(c.repeat(value, at))
            made.append(mine)
        if found:
            out[row] = found
        else:
            for before, mine in zip(seen, made, strict=True):
                before.update(mine)
    return out


def _combined(faults: list[tuple[str, str, str]]) -> tuple[str, str, str]:
    """One report line for a row's faults (target, field, reason), in spec order: the first
    fault's target and field, and its reason followed by the others (each once, named)."""
    distinct = list(dict.fromkeys(faults))
    target, fld, reason = distinct[0]
    more = [f"{t} {f}: {r}" for t, f, r in distinct[1:]]
    return target, fld, "; ".join([reason, *more])


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
    mapping: str | Path | LoaderMapping | Mapping[str, Any],
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
            mapping file, a parsed mapping, or a mapping as plain data (a dict).
        sources: Source name -> path (a file or folder; ``~`` is the home folder) or pandas
            DataFrame.
        report: Where to write rejected rows (``.csv`` or ``.jsonl``); by default, when rows
            were rejected, ``reports/load-<mapping>-<time>.jsonl`` in the store folder (or in
            the working folder for Neo4j).
        batch_size: Rows per write (the store's default when None).
        progress: Show progress bars.

    Returns:
        What was loaded and rejected (the rejects of each source in line order).

    Raises:
        MappingError: The mapping is wrong or a source is missing.
        ValidationError: Bad arguments (a ``batch_size`` that is not a whole number in the
            store's range), or a ``report`` path that cannot be written or that names a file
            the load reads, a source's or the mapping's (checked before anything is read or
            written).
    """
    if not isinstance(sources, Mapping):
        raise ValidationError("sources must be a mapping of source name -> path or DataFrame")
    if batch_size is not None:
        store._check_batch(batch_size)  # before the sources are read, not at the first write
    if not isinstance(mapping, LoaderMapping):
        mapping = load_mapping(mapping, store.schema)
    if report is not None:
        check_report(mapping, sources, report)
    loader = _Loader(store, mapping, sources, progress)
    result = loader.run(batch_size)
    # each file's rejects in line order (unreadable lines are found before the values)
    order: dict[str, int] = {}
    for rej in result.rejected:
        order.setdefault(rej.source, len(order))
    result.rejected.sort(key=lambda rej: (order[rej.source], rej.line))
    if report is not None or result.rejected:
        path = report or default_report_path(store, f"load-{mapping.name}")
        rows = [r.to_dict() for r in result.rejected]
        result.report_path = write_rows(rows, path, REPORT_FIELDS)
    log.info(result.summary())
    return result
