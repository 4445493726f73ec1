"""Loading sources into the store through a loader mapping, with validation and a report.

Every row is checked against the schema before anything is written: keys present, values of
the right type, no repeated keys in one table (for unique node specs), relationship ends that
exist in this load or in the store. Good rows are written (nodes first, then relationships,
in batches, idempotently); bad rows go to a report with their source, line, field and reason.
Loading the same input again changes nothing.

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from graphfusion.errors import MappingError, ValidationError
from graphfusion.mapping import Field, LoaderMapping, NodeSpec, RelSpec, load_mapping
from graphfusion.readers import BadRecord, Record, read_source
from graphfusion.reports import default_report_path, write_rows
from graphfusion.schema import PropertyType, Schema
from graphfusion.store.base import DST, SRC, BaseStore
from graphfusion.values import coerce, converter, is_missing

__all__ = ["Reject", "LoadReport", "load", "MAX_KEY_CHARS"]

log = logging.getLogger("graphfusion.ingest")

#: Longest key accepted.
MAX_KEY_CHARS = 512
_STRING = PropertyType("string")
#: A relationship to check: source, line, (start key, end key), skip it quietly if dangling.
_Check = tuple[str, int, tuple[str, str], bool]
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
        self._tables: dict[str, tuple[str, list[Record]]] = {}
        self._groups: dict[tuple[str, str], dict[str, list[Record]]] = {}
        # label -> key -> properties
        self.nodes: dict[str, dict[str, dict[str, Any]]] = {}
        # (type, start, end) -> (src, dst) -> properties
        self.rels: dict[tuple[str, str, str], dict[tuple[str, str], dict[str, Any]]] = {}

    # ------------------------------------------------------------------ sources
    def check_sources(self) -> None:
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
            if isinstance(src, pd.DataFrame):
                continue
            if not isinstance(src, (str, os.PathLike)):
                raise ValidationError(
                    f"source {name!r} must be a path or a DataFrame, got {type(src).__name__}"
                )
            if not Path(src).exists():
                raise MappingError(f"source {name!r}: {src} does not exist")

    def _used_tables(self) -> list[str]:
        names = [s.table for s in self.mapping.nodes] + [
            s.table for s in self.mapping.relationships
        ]
        return list(dict.fromkeys(names))

    def table(self, name: str) -> tuple[str, list[Record]]:
        if name in self._tables:
            return self._tables[name]
        spec = self.mapping.tables[name]
        src = self.sources[spec.source]
        folder: str | None = None
        target: Any
        if isinstance(src, pd.DataFrame):
            label, target = f"{spec.source}:frame", src
        else:
            path = Path(src)
            if spec.file:
                if not path.is_dir():
                    raise MappingError(
                        f"source {spec.source!r} must be a folder holding {spec.file}"
                    )
                path = path / spec.file
            label, target = str(path), path
            folder = str((path if path.is_dir() else path.parent).resolve())
        rows: list[Record] = []
        reader = read_source(spec.format, target, name=spec.source, options=dict(spec.options))
        for rec in tqdm(
            reader, desc=f"read {name}", unit="row", disable=not self.progress, leave=False
        ):
            if isinstance(rec, BadRecord):
                self.rejects.append(Reject(label, rec.line, "", rec.reason, name))
            else:
                if folder is not None:
                    rec.data["__dir__"] = folder
                rows.append(rec)
        self._tables[name] = (label, rows)
        return label, rows

    # ------------------------------------------------------------------ values
    def _key(self, fld: Field, data: dict[str, Any]) -> list[str]:
        value = fld.get(data)
        values = value if isinstance(value, list) else [value]
        keys = []
        for v in values:
            if type(v) is str:
                key = v.strip()
                if not key:
                    continue
                if "\x00" in key:
                    raise ValueError("key contains a NUL character")
            elif is_missing(v):
                continue
            else:
                if isinstance(v, float) and v.is_integer():
                    v = int(v)
                key = coerce(v, _STRING).strip()
            if len(key) > MAX_KEY_CHARS:
                raise ValueError(f"key longer than {MAX_KEY_CHARS} characters")
            keys.append(key)
        return keys

    def _props(
        self,
        fields: Mapping[str, Field],
        convert: Mapping[str, Callable[[Any], Any]],
        data: dict[str, Any],
    ) -> dict[str, Any]:
        out = {}
        for name, fld in fields.items():
            try:
                out[name] = convert[name](fld.get(data))
            except ValueError as exc:
                raise _FieldError(name, str(exc)) from None
        return out

    def rows(self, table: str, where: Field | None) -> tuple[str, list[Record]]:
        """The rows of ``table`` that ``where`` keeps (a plain ``column`` + ``equals`` filter is
        answered from one grouping of the table, however many specs ask)."""
        source, rows = self.table(table)
        if where is None:
            return source, rows
        if where.column is not None and not where.transforms and "equals" in where.options:
            key = (table, where.column)
            if key not in self._groups:
                groups: dict[str, list[Record]] = {}
                for rec in rows:
                    value = rec.data.get(where.column)
                    if value is not None:
                        groups.setdefault(str(value), []).append(rec)
                self._groups[key] = groups
            return source, self._groups[key].get(str(where.options["equals"]), [])
        return source, [rec for rec in rows if self._keep(where, rec.data)]

    @staticmethod
    def _keep(where: Field | None, data: dict[str, Any]) -> bool:
        if where is None:
            return True
        try:
            value = where.get(data)
        except ValueError:
            return False
        if "equals" in where.options:
            return value is not None and str(value) == str(where.options["equals"])
        return not is_missing(value) and value is not False

    # ------------------------------------------------------------------ nodes
    def collect_nodes(self, spec: NodeSpec) -> None:
        source, rows = self.rows(spec.table, spec.where)
        node = self.schema.node(spec.label)
        types = {p: converter(node.prop(p).type) for p in spec.properties}
        target = f"{spec.label} node"
        store = self.nodes.setdefault(spec.label, {})
        first_line: dict[str, int] = {}
        for rec in rows:
            try:
                keys = self._key(spec.key, rec.data)
            except ValueError as exc:
                self.rejects.append(Reject(source, rec.line, node.key, str(exc), target))
                continue
            if not keys:
                reason = f"missing key ({', '.join(spec.key.needs()) or 'key'} is empty)"
                self.rejects.append(Reject(source, rec.line, node.key, reason, target))
                continue
            try:
                props = self._props(spec.properties, types, rec.data)
            except _FieldError as exc:
                self.rejects.append(Reject(source, rec.line, exc.field, exc.reason, target))
                continue
            for key in keys:
                if spec.unique and key in first_line:
                    reason = f"duplicate key {key!r} (first at line {first_line[key]})"
                    self.rejects.append(Reject(source, rec.line, node.key, reason, target))
                    continue
                first_line.setdefault(key, rec.line)
                _merge(store, key, props)

    # ------------------------------------------------------------------ relationships
    def collect_rels(self, spec: RelSpec) -> list[_Check]:
        """Collect one spec's relationships; returns (source, line, pair) for end checks."""
        source, rows = self.rows(spec.table, spec.where)
        rel = self.schema.rel(spec.type)
        types = {p: converter(rel.prop(p).type) for p in spec.properties}
        target = f"{spec.type} relationship"
        group = self.rels.setdefault((spec.type, spec.start.label, spec.end.label), {})
        seen: dict[tuple[str, str], int] = {}
        lines: list[_Check] = []
        for rec in rows:
            try:
                srcs = self._key(spec.start.key, rec.data)
                dsts = self._key(spec.end.key, rec.data)
            except ValueError as exc:
                self.rejects.append(Reject(source, rec.line, "key", str(exc), target))
                continue
            if not srcs or not dsts:
                # An optional link may be absent (a product without a brand); otherwise a
                # row that names no end is reported.
                if not spec.optional:
                    side, label = ("from", spec.start.label) if not srcs else ("to", spec.end.label)
                    reason = f"missing {label} key"
                    self.rejects.append(Reject(source, rec.line, side, reason, target))
                continue
            try:
                props = self._props(spec.properties, types, rec.data)
            except _FieldError as exc:
                self.rejects.append(Reject(source, rec.line, exc.field, exc.reason, target))
                continue
            for s in srcs:
                for d in dsts:
                    pair = (s, d)
                    if pair in seen:
                        if spec.unique:
                            reason = f"duplicate relationship {s}->{d} (first at line {seen[pair]})"
                            self.rejects.append(Reject(source, rec.line, "key", reason, target))
                        continue
                    seen[pair] = rec.line
                    if pair not in group:
                        lines.append((source, rec.line, pair, spec.skip_dangling))
                    _merge(group, pair, props)
        return lines

    def drop_dangling(self, key: tuple[str, str, str], checks: list[_Check]) -> None:
        rtype, start, end = key
        group = self.rels[key]
        known_start = self._known(start, {p[0] for p in group})
        known_end = self._known(end, {p[1] for p in group})
        target = f"{rtype} relationship"
        for source, line, (s, d), skip in checks:
            if s in known_start and d in known_end:
                continue
            group.pop((s, d), None)
            if skip:
                self.skipped[rtype] = self.skipped.get(rtype, 0) + 1
            elif s not in known_start:
                reason = f"{start} {s!r} does not exist"
                self.rejects.append(Reject(source, line, "from", reason, target))
            else:
                reason = f"{end} {d!r} does not exist"
                self.rejects.append(Reject(source, line, "to", reason, target))

    def _known(self, label: str, keys: set[str]) -> set[str]:
        here = self.nodes.get(label, {})
        outside = [k for k in keys if k not in here]
        found = self.store.existing_keys(label, outside) if outside else set()
        return {k for k in keys if k in here} | found

    # ------------------------------------------------------------------ run
    def run(self, batch_size: int | None) -> LoadReport:
        started = time.perf_counter()
        self.check_sources()
        for nspec in self.mapping.nodes:
            self.collect_nodes(nspec)
        pending: dict[tuple[str, str, str], list[_Check]] = {}
        for rspec in self.mapping.relationships:
            key = (rspec.type, rspec.start.label, rspec.end.label)
            pending.setdefault(key, []).extend(self.collect_rels(rspec))
        for key, checks in pending.items():
            self.drop_dangling(key, checks)
        report = LoadReport(self.mapping.name, rejected=self.rejects, skipped=self.skipped)
        for label, entries in self.nodes.items():
            node = self.schema.node(label)
            rows = [{node.key: k, **p} for k, p in entries.items()]
            report.nodes[label] = report.nodes.get(label, 0) + self.store.write_node_rows(
                label, rows, batch_size=batch_size, progress=self.progress
            )
        for (rtype, start, end), pairs in self.rels.items():
            rows = [{SRC: s, DST: d, **p} for (s, d), p in pairs.items()]
            n = self.store.write_rel_rows(
                rtype, rows, start=start, end=end, batch_size=batch_size, progress=self.progress
            )
            report.relationships[rtype] = report.relationships.get(rtype, 0) + n
        report.seconds = time.perf_counter() - started
        return report


class _FieldError(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def _merge(store: dict[Any, dict[str, Any]], key: Any, props: dict[str, Any]) -> None:
    """Add an entry; for a repeated one, the first non-null value of each property wins."""
    have = store.get(key)
    if have is None:
        store[key] = dict(props)
        return
    for name, value in props.items():
        if have.get(name) is None and value is not None:
            have[name] = value


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
        ValidationError: Bad arguments.
    """
    if not isinstance(sources, Mapping):
        raise ValidationError("sources must be a mapping of source name -> path or DataFrame")
    if not isinstance(mapping, LoaderMapping):
        mapping = load_mapping(mapping, store.schema)
    loader = _Loader(store, mapping, sources, progress)
    result = loader.run(batch_size)
    if report is not None or result.rejected:
        path = report or default_report_path(store, f"load-{mapping.name}")
        rows = [r.to_dict() for r in result.rejected]
        result.report_path = write_rows(rows, path, REPORT_FIELDS)
    log.info(result.summary())
    return result
