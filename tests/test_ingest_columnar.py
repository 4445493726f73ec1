"""The columnar loader against the row-by-row loader it replaced, on messy data.

``_RowLoader`` below is the loader as it was before it worked a column at a time (one dict per
row, every value through the single-value code, which checks the schema's value ranges): the
reference. Both load the same sources
into fresh stores; the rejected rows (source, line, target, field, reason, in order), the
counts, the skipped links and everything stored must be the same, on a first load and on a
second one (the update path).
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import math
import re
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from graphfusion.columnar import MAX_KEY_CHARS, convert, equals, evaluate, keep, key_list, keys
from graphfusion.ingest import LoadReport, Reject, load, untaken_reason
from graphfusion.mapping import Field, LoaderMapping, NodeSpec, RelSpec, parse_mapping
from graphfusion.readers import BadRecord, Record, read_source, read_table
from graphfusion.schema import Property, PropertyType, Schema, union_properties
from graphfusion.store import EmbeddedStore
from graphfusion.table import Column, Table
from graphfusion.values import converter, is_missing

# ----------------------------------------------------------------------------- the reference


class _FieldError(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def _merge(
    store: dict[Any, dict[str, Any]], key: Any, props: dict[str, Any], union: frozenset[str]
) -> None:
    have = store.get(key)
    if have is None:
        have = store[key] = {}
    for name, value in props.items():
        if name in union and value is not None:
            have[name] = list(dict.fromkeys([*(have.get(name) or []), *value]))
        elif have.get(name) is None and value is not None:
            have[name] = value


def _target(spec: NodeSpec | RelSpec) -> str:
    return f"{spec.label} node" if isinstance(spec, NodeSpec) else f"{spec.type} relationship"


class _RowLoader:
    """The row-by-row loader (the code before the columnar one, reading with read_source)."""

    def __init__(self, store: EmbeddedStore, mapping: LoaderMapping, sources: dict[str, Any]):
        self.store = store
        self.schema: Schema = store.schema
        self.mapping = mapping
        self.sources = sources
        self.rejects: list[Reject] = []
        self.skipped: dict[str, int] = {}
        self._tables: dict[str, tuple[str, list[Record]]] = {}
        self.nodes: dict[str, dict[str, dict[str, Any]]] = {}
        self.rels: dict[tuple[str, str, str], dict[tuple[str, str], dict[str, Any]]] = {}
        self.taken: dict[str, set[int]] = {}
        # id(spec) -> (source, line, keys or pairs, properties) of the rows its table keeps
        self.kept: dict[int, list[tuple[str, int, list[Any], dict[str, Any]]]] = {}

    def table(self, name: str) -> tuple[str, list[Record]]:
        if name in self._tables:
            return self._tables[name]
        spec = self.mapping.tables[name]
        src = self.sources[spec.source]
        folder = None
        if isinstance(src, pd.DataFrame):
            label, target = f"{spec.source}:frame", src
        else:
            path = Path(src) / spec.file if spec.file else Path(src)
            label, target = str(path), path
            folder = str((path if path.is_dir() else path.parent).resolve())
        rows = []
        for rec in read_source(spec.format, target, name=spec.source, options=dict(spec.options)):
            if isinstance(rec, BadRecord):
                self.rejects.append(Reject(label, rec.line, "", rec.reason, name))
            else:
                if folder is not None:
                    rec.data["__dir__"] = folder
                rows.append(rec)
        self._tables[name] = (label, rows)
        return label, rows

    @staticmethod
    def _props(
        fields: Mapping[str, Field], convert: Mapping[str, Callable[[Any], Any]], data: dict
    ) -> dict[str, Any]:
        out = {}
        for name, fld in fields.items():
            try:
                out[name] = convert[name](fld.get(data))
            except ValueError as exc:
                raise _FieldError(name, str(exc)) from None
        return out

    def reject_untaken(self) -> None:
        wheres: dict[str, list[Field | None]] = {}
        every: list[NodeSpec | RelSpec] = [*self.mapping.nodes, *self.mapping.relationships]
        for spec in every:
            wheres.setdefault(spec.table, []).append(spec.where)
        for name, fields in wheres.items():
            if any(f is None for f in fields):
                continue
            source, rows = self.table(name)
            field, reason = untaken_reason([f for f in fields if f is not None])
            for rec in rows:
                if rec.line not in self.taken[name]:
                    why = reason(rec.data.get(field))
                    self.rejects.append(Reject(source, rec.line, field, why, name))

    @staticmethod
    def _keep(where: Field, data: dict[str, Any]) -> bool:
        try:
            value = where.get(data)
        except ValueError:
            return False
        if "equals" in where.options:
            return equals(value, str(where.options["equals"]))
        return not is_missing(value) and value is not False

    def check_table(self, name: str) -> None:
        """Every spec reading the table, row by row. A row that any spec rejects, or that
        repeats a key (or pair) of a unique spec that an earlier row kept made, makes nothing
        in any spec and is reported once: the first fault's target and field, every reason."""
        source, rows = self.table(name)
        every: list[NodeSpec | RelSpec] = [*self.mapping.nodes, *self.mapping.relationships]
        specs = [s for s in every if s.table == name]
        seen: list[dict[Any, int]] = [{} for _ in specs]
        for spec in specs:
            self.kept[id(spec)] = []
        for rec in rows:
            faults: list[tuple[str, str, str]] = []
            made: list[tuple[int, list[Any], dict[str, Any]]] = []
            out: tuple[list[Any], dict[str, Any]] | None
            for k, spec in enumerate(specs):
                if spec.where is not None:
                    if not self._keep(spec.where, rec.data):
                        continue
                    self.taken.setdefault(name, set()).add(rec.line)
                try:
                    if isinstance(spec, NodeSpec):
                        out = self._node_row(spec, rec.data)
                    else:
                        out = self._rel_row(spec, rec.data)
                except _FieldError as exc:
                    faults.append((_target(spec), exc.field, exc.reason))
                    continue
                if out is not None:
                    made.append((k, *out))
            if not faults:
                mine: dict[int, dict[Any, int]] = {}
                for k, found, _ in made:
                    spec = specs[k]
                    if not spec.unique:
                        continue
                    for key in found:
                        at = seen[k].get(key, mine.get(k, {}).get(key))
                        if at is None:
                            mine.setdefault(k, {})[key] = rec.line
                        elif isinstance(spec, NodeSpec):
                            field = self.schema.node(spec.label).key
                            why = f"duplicate key {key!r} (first at line {at})"
                            faults.append((_target(spec), field, why))
                        else:
                            why = f"duplicate relationship {key[0]}->{key[1]} (first at line {at})"
                            faults.append((_target(spec), "key", why))
                if not faults:
                    for k, first in mine.items():
                        seen[k].update(first)
            if faults:
                distinct = list(dict.fromkeys(faults))
                target, field, reason = distinct[0]
                reason = "; ".join([reason, *(f"{t} {f}: {r}" for t, f, r in distinct[1:])])
                self.rejects.append(Reject(source, rec.line, field, reason, target))
                continue
            for k, found, props in made:
                self.kept[id(specs[k])].append((source, rec.line, found, props))

    def _kept(self, spec: NodeSpec | RelSpec) -> list[tuple[str, int, list[Any], dict[str, Any]]]:
        if id(spec) not in self.kept:
            self.check_table(spec.table)
        return self.kept.pop(id(spec))

    def _node_row(self, spec: NodeSpec, data: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        node = self.schema.node(spec.label)
        try:
            found = key_list(spec.key.get(data))
        except ValueError as exc:
            raise _FieldError(node.key, str(exc)) from None
        if not found:
            needs = ", ".join(spec.key.needs()) or "key"
            raise _FieldError(node.key, f"missing key ({needs} is empty)")
        types = {p: converter(node.prop(p)) for p in spec.properties}  # type and range
        return found, self._props(spec.properties, types, data)

    def _rel_row(
        self, spec: RelSpec, data: dict[str, Any]
    ) -> tuple[list[Any], dict[str, Any]] | None:
        try:
            srcs = key_list(spec.start.key.get(data))
            dsts = key_list(spec.end.key.get(data))
        except ValueError as exc:
            raise _FieldError("key", str(exc)) from None
        if not srcs or not dsts:
            if spec.optional:
                return None  # no link, and nothing wrong
            side, label = ("from", spec.start.label) if not srcs else ("to", spec.end.label)
            raise _FieldError(side, f"missing {label} key")
        rel = self.schema.rel(spec.type)
        types = {p: converter(rel.prop(p)) for p in spec.properties}
        props = self._props(spec.properties, types, data)
        return [(s, d) for s in srcs for d in dsts], props

    def collect_nodes(self, spec: NodeSpec) -> None:
        node = self.schema.node(spec.label)
        store = self.nodes.setdefault(spec.label, {})
        for _, _, found, props in self._kept(spec):
            for key in found:
                _merge(store, key, props, union_properties(node.properties))

    def collect_rels(self, spec: RelSpec) -> list[tuple[str, int, tuple[str, str], bool]]:
        rel = self.schema.rel(spec.type)
        group = self.rels.setdefault((spec.type, spec.start.label, spec.end.label), {})
        lines = []
        for source, line, pairs, props in self._kept(spec):
            for pair in pairs:
                if pair not in group:
                    lines.append((source, line, pair, spec.skip_dangling))
                _merge(group, pair, props, union_properties(rel.properties))
        return lines

    def drop_dangling(self, key: tuple[str, str, str], checks: list[Any]) -> None:
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

    def _known(self, label: str, found: set[str]) -> set[str]:
        here = self.nodes.get(label, {})
        outside = [k for k in found if k not in here]
        stored = self.store.existing_keys(label, outside) if outside else set()
        return {k for k in found if k in here} | stored

    def run(self) -> LoadReport:
        for nspec in self.mapping.nodes:
            self.collect_nodes(nspec)
        pending: dict[tuple[str, str, str], list[Any]] = {}
        for rspec in self.mapping.relationships:
            key = (rspec.type, rspec.start.label, rspec.end.label)
            pending.setdefault(key, []).extend(self.collect_rels(rspec))
        self.reject_untaken()
        for key, checks in pending.items():
            self.drop_dangling(key, checks)
        order: dict[str, int] = {}
        for rej in self.rejects:  # each file's rejects in line order, as load() gives them
            order.setdefault(rej.source, len(order))
        self.rejects.sort(key=lambda rej: (order[rej.source], rej.line))
        report = LoadReport(self.mapping.name, rejected=self.rejects, skipped=self.skipped)
        for label, entries in self.nodes.items():
            node = self.schema.node(label)
            rows = [{node.key: k, **p} for k, p in entries.items()]
            report.nodes[label] = report.nodes.get(label, 0) + self.store.write_node_rows(
                label, rows, batch_size=7
            )
        for (rtype, start, end), pairs in self.rels.items():
            rows = [{"src": s, "dst": d, **p} for (s, d), p in pairs.items()]
            n = self.store.write_rel_rows(rtype, rows, start=start, end=end, batch_size=7)
            report.relationships[rtype] = report.relationships.get(rtype, 0) + n
        return report


# ----------------------------------------------------------------------------- messy sources

MAPPING = textwrap.dedent("""
    name: messy
    sources: {shop: {}, users: {}, reviews: {}}
    tables:
      products: {source: shop, file: products.csv, format: csv}
      views: {source: shop, file: views.csv, format: csv}
      users: {source: users, format: frame}
      reviews: {source: reviews, format: jsonl}
    nodes:
      - label: Product
        table: products
        key: id
        properties:
          title: title
          price: price
          created_at: created_at
      - label: Product            # named in reviews, merged: first non-null wins
        table: reviews
        key: product
        unique: false
        properties: {title: {column: product_title, transform: strip}}
      - label: Brand
        table: products
        key: brand
        unique: false
        where: brand
        properties: {name: {column: brand, transform: capitalize}}
      - label: Category
        table: products
        key: {column: category, transform: prefix, prefix: "cat:"}
        unique: false
        properties: {name: category, level: {value: 0}}
      - label: Supplier           # union lists: what every spec and row says adds up
        table: products
        key: brand
        unique: false
        where: brand
        properties: {roles: {value: [maker]}}
      - label: Supplier
        table: products
        key: brand
        unique: false
        where: brand
        properties: {roles: {column: title, transform: split}}
      - label: User
        table: users
        key: id
        properties: {name: name, age: age, location: {template: "{city}/{zip}"}}
      - label: Review             # from text columns: bools and whole numbers
        table: views
        key: {template: "v:{user}:{product}"}
        unique: false
        properties: {verified: flag, helpful: weight, ts: ts}
      - label: Review
        table: reviews
        key: {template: "{user}:{product}"}
        properties:
          rating: rating
          verified: verified
          helpful: helpful
          ts: {column: time, transform: unix_s}
          text: text
    relationships:
      - {type: OF_BRAND, table: products, optional: true,
         from: {label: Product, key: id}, to: {label: Brand, key: brand}}
      - {type: IN_CATEGORY, table: products,
         from: {label: Product, key: id},
         to: {label: Category, key: {column: category, transform: prefix, prefix: "cat:"}}}
      - {type: ALSO_BOUGHT, table: products, optional: true, skip_dangling: true,
         from: {label: Product, key: id}, to: {label: Product, key: {column: bought,
         transform: split}}}
      - {type: SUPPLIES, table: products, where: category, optional: true,
         from: {label: Supplier, key: brand}, to: {label: Product, key: id},
         properties: {roles: {column: category, transform: split}}}
      - {type: SUPPLIES, table: products, where: brand, optional: true,
         from: {label: Supplier, key: brand}, to: {label: Product, key: {column: bought,
         transform: split}}, properties: {roles: {column: title, transform: split}}}
      - {type: VIEWED, table: views, unique: true, where: {column: kind, equals: VIEWED},
         from: {label: User, key: user}, to: {label: Product, key: product},
         properties: {ts: ts, weight: weight}}
      - {type: VIEWED, table: reviews,
         from: {label: User, key: user}, to: {label: Product, key: product},
         properties: {ts: {column: time, transform: unix_s}, weight: {value: 0.5}}}
      - {type: PURCHASED, table: views, where: {column: kind, equals: PURCHASED},
         from: {label: User, key: user}, to: {label: Product, key: product},
         properties: {weight: weight}}
      - {type: WROTE, table: reviews,
         from: {label: User, key: user}, to: {label: Review, key: {template: "{user}:{product}"}}}
      - {type: ABOUT, table: reviews,
         from: {label: Review, key: {template: "{user}:{product}"}}, to: {label: Product,
         key: product}}
""")

PRODUCTS = [
    "id,title,price,created_at,brand,category,bought",
    "p1,Mug,9.5,2024-01-01T10:00:00,acme,kitchen,p2;p9",
    'p2,Lamp,"1,234.5",2024-02-30,lumen,home,',
    " p3 ,Hat,abc,2024-01-01,acme,,p1",
    "3.0,Numbered,3,2024-01-01,,kitchen,",
    ",No key,1,2024-01-01,acme,kitchen,",
    "p1,Duplicate,2,2024-01-01,acme,kitchen,",
    "p4,  , nan ,2024-01-01 10:00,acme,kitchen,",
    "p5,Inf,inf,2024-01-01,acme,kitchen,",
    "p6,Big,1e400,2024-01-01,acme,kitchen,",
    'p7,"Quoted, title",+5,2024-01-01T10:00:00.123,Acme,kitchen,p1; p7',
    "p8,Nul\x00title,1,2024-01-01,acme,kitchen,",
    "p\x009,Nul key,1,2024-01-01,acme,kitchen,",
    "k" * (MAX_KEY_CHARS + 1) + ",Long key,1,2024-01-01,acme,kitchen,",
    "p10,Zoned,2.5,2024-01-01T10:00:00+02:00,,garden,",
    "p11,Number date,2.5,1700000000,,garden,",
    "p12,Row with, too many, fields,1,2,3,4",
    "p13\t,Tabbed,-0,2024-01-01,  ,garden,",
    "é1,Café,.5,2024-01-01,émile,jardin,",
    "   ",
    "",
    "p14,Short",
    "p15,Five,5.,2024-12-31T23:59:59,acme,kitchen,p1;p1",
    "p16,Sci,1.5e3,0000-01-01,acme,kitchen,",
    "p17,Plain,17,2024-01-01T10:00:00.1,acme,kitchen,",
    "p40,Negative,-5.5,2024-01-01,acme,kitchen,",  # below the price's minimum 0
    "p41,Free,0,2024-01-01,acme,kitchen,p40",  # the minimum itself loads
]

VIEWS = [
    "user,product,kind,ts,weight,flag",
    "u1,p1,VIEWED,2024-01-01T00:00:00,1.0,true",
    "u1,p1,VIEWED,2024-01-02T00:00:00,2.0,False",
    "u1,p2,VIEWED,,,",
    "u2,p3,VIEWED,yesterday,1,YES",
    "u2,p4,VIEWED,2024-01-01,one,n",
    "u9,p1,VIEWED,2024-01-01,1,maybe",
    "u1,p99,VIEWED,2024-01-01,1, y ",
    ",p1,VIEWED,2024-01-01,1,1",
    "u1,,VIEWED,2024-01-01,1,0",
    "u3,3.0,VIEWED,2024-01-01,1.5,2",
    "u1,p1,PURCHASED,2024-01-01,1,t",
    "u1,p1,PURCHASED,2024-01-01,,f",
    "u2,p7,PURCHASED,2024-01-01,3,",
    "u1,p5,viewed,2024-01-01,1e2,no",
]

USERS = pd.DataFrame(
    {
        "id": ["u1", "u2", " u3 ", None, "u1", "u4", "u5", "u6"],
        "name": ["Ann", None, "Cy", "Nobody", "Again", np.nan, "  ", "Eve"],
        "age": [30.0, 41.5, np.nan, 20.0, 30.0, 22.0, 2.0**40, -3.0],
        "city": ["Paris", "Rome", None, "Oslo", "Paris", "", "Lima", "Kyiv"],
        "zip": [75001, 100, 0, 1, 2, 3, 4, 5],
    }
)

REVIEWS = [
    {"user": "u1", "product": "p1", "rating": 5, "verified": True, "helpful": "1,234",
     "time": 1529193600, "text": "Great", "product_title": " Mug from reviews "},
    {"user": "u2", "product": "p2", "rating": "4.5", "verified": "yes", "helpful": 3,
     "time": "1529193600", "text": None, "product_title": "Lamp again"},
    {"user": "u1", "product": "p1", "rating": 1, "verified": False, "time": 1},
    {"user": "u2", "product": "p20", "rating": "five", "verified": True, "time": 2},
    {"user": "u2", "product": "p21", "rating": 3.0, "verified": "maybe", "time": 3},
    {"user": "u9", "product": "p22", "rating": 3.0, "verified": 1, "helpful": 2.0, "time": -5,
     "product_title": "Gadget"},
    {"user": "u1", "product": ["p1", "p2"], "rating": 2},
    {"user": "u4", "product": 3.0, "rating": 1.5, "verified": 0, "helpful": 2.5, "time": 5},
    {"user": "u4", "product": "p23", "rating": float("nan"), "verified": None, "time": 1e12},
    {"user": "u5", "product": "p24", "text": "x" * 10, "time": 6, "helpful": True},
    # out of the schema's ranges: rating 1..5, helpful 0 and up
    {"user": "u1", "product": "p25", "rating": 11, "time": 7},
    {"user": "u1", "product": "p26", "rating": "-3", "helpful": 4, "time": 8},
    {"user": "u2", "product": "p27", "rating": 0.5, "time": 9},
    {"user": "u2", "product": "p28", "rating": 5.0, "helpful": -1, "time": 10},
    {"user": "u2", "product": "p29", "rating": "5", "helpful": "0", "time": 11},
]  # fmt: skip


def _write_sources(folder: Path, products: list[str] = PRODUCTS) -> dict[str, Any]:
    shop = folder / "shop"
    shop.mkdir(parents=True, exist_ok=True)
    (shop / "products.csv").write_text("\n".join(products) + "\n", encoding="utf-8")
    (shop / "views.csv").write_bytes(("\r\n".join(VIEWS) + "\r\n").encode())
    reviews = folder / "reviews.jsonl.gz"
    with gzip.open(reviews, "wt", encoding="utf-8") as fh:
        for row in REVIEWS:
            fh.write(json.dumps(row) + "\n")
        fh.write('{"user": "broken"\n')
    return {"shop": shop, "users": USERS, "reviews": reviews}


def _snapshot(store: EmbeddedStore) -> dict[str, Any]:
    out: dict[str, Any] = {"counts": store.counts().to_dict()}
    for label, node in store.schema.nodes.items():
        props = [p.name for p in node.properties if not p.type.is_vector]
        cols = ", ".join(f"n.{p} AS {p}" for p in props)
        out[label] = store.query(f"MATCH (n:{label}) RETURN {cols} ORDER BY n.{node.key}")
    for rtype, rel in store.schema.relationships.items():
        for start, end in rel.between:
            cols = "".join(f", e.{p.name} AS {p.name}" for p in rel.properties)
            out[f"{rtype}:{start}:{end}"] = store.query(
                f"MATCH (a:{start})-[e:{rtype}]->(b:{end}) RETURN a.id AS src, b.id AS dst{cols} "
                "ORDER BY src, dst"
            )
    return out


def _faults(reject: Reject) -> list[tuple[str, str, str]]:
    """A rejected row's faults (target, field, reason): the first is the reject's own, the
    others follow in its reason as ``; <target> <field>: <reason>``."""
    first, *others = reject.reason.split("; ")
    out = [(reject.target, reject.field, first)]
    for part in others:
        found = re.fullmatch(r"(\S+ (?:node|relationship)) (\S*): (.*)", part)
        assert found, part
        out.append((found[1], found[2], found[3]))
    return out


def _compare(tmp_path: Path, sources: dict[str, Any], mapping: LoaderMapping) -> LoadReport:
    """Load twice with both loaders; everything must agree. Returns the columnar report."""
    with (
        EmbeddedStore(tmp_path / "rows") as by_rows,
        EmbeddedStore(tmp_path / "columns") as by_columns,
    ):
        for _ in range(2):
            expected = _RowLoader(by_rows, mapping, sources).run()
            got = load(by_columns, mapping, sources, report=tmp_path / "r.jsonl", batch_size=7)
            assert [r.to_dict() for r in got.rejected] == [r.to_dict() for r in expected.rejected]
            assert got.nodes == expected.nodes
            assert got.relationships == expected.relationships
            assert got.skipped == expected.skipped
            assert _snapshot(by_columns) == _snapshot(by_rows)
    return got


@pytest.fixture
def messy(tmp_path: Path, store: EmbeddedStore) -> tuple[dict[str, Any], LoaderMapping]:
    import yaml

    return _write_sources(tmp_path / "src"), parse_mapping(yaml.safe_load(MAPPING), store.schema)


def test_messy_sources_load_as_row_by_row(
    tmp_path: Path, messy: tuple[dict[str, Any], LoaderMapping]
) -> None:
    sources, mapping = messy
    report = _compare(tmp_path, sources, mapping)
    # the data really is messy: every kind of reject is there
    reasons = {r.reason.split(" (")[0].split(":")[0] for r in report.rejected}
    for expected in (
        "missing key",
        "key contains a NUL character",
        "has 8 fields, the header has 7",
        "'abc' is not a number",
        "inf is not a finite number",
        "string contains a NUL character",
        "malformed line",
    ):
        assert any(expected in r for r in reasons), expected
    assert any(r.reason.startswith("duplicate key 'p1'") for r in report.rejected)
    assert any(r.reason.startswith("duplicate relationship u1->p1") for r in report.rejected)
    assert any("does not exist" in r.reason for r in report.rejected)
    # p9, and p40 (its row is rejected); p3's row is rejected, so it makes no link at all
    assert report.skipped == {"ALSO_BOUGHT": 2}
    out_of_range = [(Path(r.source).name, r.line, r.field, r.reason) for r in report.rejected
                    if "its m" in r.reason]  # fmt: skip
    reviews, users = "reviews.jsonl.gz", "users:frame"
    assert sorted(out_of_range) == sorted([
        ("products.csv", 26, "price", "price -5.5 is below its minimum 0"),
        (users, 7, "age", "age 1099511627776 is above its maximum 150"),
        (users, 8, "age", "age -3 is below its minimum 0"),
        (reviews, 11, "rating", "rating 11.0 is above its maximum 5"),
        (reviews, 12, "rating", "rating -3.0 is below its minimum 1"),
        (reviews, 13, "rating", "rating 0.5 is below its minimum 1"),
        (reviews, 14, "helpful", "helpful -1 is below its minimum 0"),
    ])  # fmt: skip
    # union lists add up over rows and specs, each element once, loaded twice; of a
    # rejected row, nothing: not Hat (p3: its price), nor lumen (p2: its date)
    with EmbeddedStore(tmp_path / "columns") as store:
        roles = store.query("MATCH (s:Supplier) RETURN s.id AS id, s.roles AS r ORDER BY id")
        supplies = store.query(
            "MATCH (:Supplier {id: 'acme'})-[e:SUPPLIES]->(:Product {id: 'p1'}) RETURN e.roles AS r"
        )
    assert roles == [
        {"id": "Acme", "r": ["maker", "Quoted, title"]},
        {"id": "acme", "r": ["maker", "Mug", "Five", "Plain", "Free"]},
        {"id": "émile", "r": ["maker", "Café"]},
    ]
    assert supplies == [{"r": ["kitchen", "Five"]}]


def test_a_multiline_csv_value_reads_row_by_row_with_the_same_lines(
    tmp_path: Path, messy: tuple[dict[str, Any], LoaderMapping]
) -> None:
    _, mapping = messy
    products = [*PRODUCTS[:3], 'p30,"Two\nlines",1,2024-01-01,acme,kitchen,', *PRODUCTS[3:]]
    sources = _write_sources(tmp_path / "src", products)
    report = _compare(tmp_path, sources, mapping)
    # the row after the two-line value is on line 6
    assert any(r.line == 6 and r.reason.startswith("'abc'") for r in report.rejected)


def test_sources_of_every_shape_agree(tmp_path: Path, store: EmbeddedStore) -> None:
    # the same rows as a typed DataFrame, a Parquet file and JSON lines
    frame = pd.DataFrame(
        {
            "id": [1, 2, 3, 2, 5, 6],
            "score": [1.5, float("nan"), 3.0, 2.0, float("inf"), 7.5],  # rating 1..5
            "count": [-1.0, 2.0, float("nan"), 4.5, 5.0, 6.0],  # helpful and price >= 0
            "flag": [True, False, True, True, False, True],
            "when": pd.to_datetime(
                ["2024-01-01", None, "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-06"]
            ),
            "name": ["a", None, " c ", "d", "", "f"],
            "ref": [2.0, 3.0, float("nan"), 1.0, 9.0, 1.0],
        }
    )
    frame.to_parquet(tmp_path / "t.parquet")
    with (tmp_path / "t.jsonl").open("w") as fh:
        for row in frame.astype(object).where(frame.notna(), None).to_dict("records"):
            fh.write(json.dumps(row, default=str) + "\n")
    import yaml

    for fmt, source in [
        ("frame", frame),
        ("parquet", tmp_path / "t.parquet"),
        ("jsonl", tmp_path / "t.jsonl"),
    ]:
        raw = yaml.safe_load(
            textwrap.dedent(f"""
            name: shapes
            sources: {{t: {{}}}}
            tables: {{t: {{source: t, format: {fmt}}}}}
            nodes:
              - {{label: Review, table: t, key: id,
                 properties: {{rating: score, helpful: count, verified: flag, ts: when,
                              title: name}}}}
              - {{label: Product, table: t, key: {{column: id, transform: prefix, prefix: "p"}},
                 where: {{column: flag, equals: "True"}}, properties: {{price: count}}}}
            relationships:
              - {{type: ALSO_VIEWED, table: t,
                 from: {{label: Product, key: {{column: id, transform: prefix, prefix: "p"}}}},
                 to: {{label: Product, key: {{column: ref, transform: prefix, prefix: "p"}}}}}}
        """)
        )
        report = _compare(tmp_path / fmt, {"t": source}, parse_mapping(raw, store.schema))
        faults = [(r.line, *fault) for r in report.rejected for fault in _faults(r)]
        out_of_range = {(line, f, why) for line, _, f, why in faults if "its m" in why}
        assert out_of_range == {
            (1, "helpful", "helpful -1 is below its minimum 0"),
            (1, "price", "price -1.0 is below its minimum 0"),
            (6, "rating", "rating 7.5 is above its maximum 5"),
        }, fmt


def test_rows_no_where_takes_are_reported_as_row_by_row(
    tmp_path: Path, store: EmbeddedStore
) -> None:
    import yaml

    views = [*VIEWS, "u2,p1, VIEWED ,2024-01-03,1,t", "u2,p2,CLICKED,2024-01-03,1,t", "u2,p3,,,,"]
    products = [*PRODUCTS, "p18,Neither,1,2024-01-01, ,,"]  # line 28
    sources = {"shop": _write_sources(tmp_path / "src", products)["shop"]}
    (sources["shop"] / "views.csv").write_text("\n".join(views) + "\n", encoding="utf-8")
    raw = yaml.safe_load(
        textwrap.dedent("""
        name: untaken
        sources: {shop: {}}
        tables:
          products: {source: shop, file: products.csv, format: csv}
          views: {source: shop, file: views.csv, format: csv}
        nodes:
          - {label: Brand, table: products, key: brand, unique: false, where: brand}
          - {label: Category, table: products, key: category, unique: false,
             where: {column: category, transform: strip}}
        relationships:
          - {type: VIEWED, table: views, where: {column: kind, equals: VIEWED},
             from: {label: User, key: user}, to: {label: Product, key: product},
             optional: true, skip_dangling: true}
          - {type: PURCHASED, table: views, where: {column: kind, equals: PURCHASED},
             from: {label: User, key: user}, to: {label: Product, key: product},
             optional: true, skip_dangling: true}
    """)
    )
    report = _compare(tmp_path, sources, parse_mapping(raw, store.schema))
    untaken = [(Path(r.source).name, r.line, r.field, r.reason) for r in report.rejected
               if "none of" in r.reason]  # fmt: skip
    matches_none = "matches none of 'VIEWED', 'PURCHASED'"
    assert untaken == [
        (
            "products.csv",
            28,
            "",
            "taken by no spec: it meets none of brand not empty; category (strip) not empty",
        ),
        ("views.csv", 15, "kind", f"kind 'viewed' {matches_none}"),
        ("views.csv", 17, "kind", f"kind 'CLICKED' {matches_none}"),
        ("views.csv", 18, "kind", f"kind (empty) {matches_none}"),
    ]  # fmt: skip (' VIEWED' on line 16 is VIEWED: values are stripped, as keys are)


def test_a_rejected_row_makes_nothing_in_any_spec_as_row_by_row(
    tmp_path: Path, store: EmbeddedStore
) -> None:
    import yaml

    shop = tmp_path / "src"
    shop.mkdir()
    (shop / "items.csv").write_text(
        "id,code,kind,price,tags\n"
        "a,c1,X,1,t1\n"  # 2
        "b,c1,X,2,t2\n"  # 3: repeats batch c1: rejected whole (no product b from here)
        "c,c2,Y,oops,t3\n"  # 4: kind Y, so the priced spec does not take it: loads
        "b,c3,X,3,t4\n"  # 5: line 3's b was rejected, so b is no repeat: loads
        "d,c4,X,bad,t5\n"  # 6: bad price: rejected, and its batch c4 left free
        'e,c4,X,5,"t6;t6"\n'  # 7: a link the row names twice, in a unique spec
        "f,c5,X,6,\n"  # 8: no tags: the optional link is simply not made
        "f,c5,X,7,t9\n",  # 9: repeats product f and batch c5: one reject, both reasons
        encoding="utf-8",
    )
    raw = yaml.safe_load(
        textwrap.dedent("""
        name: whole_rows
        sources: {shop: {}}
        tables: {items: {source: shop, file: items.csv, format: csv}}
        nodes:
          - {label: Product, table: items, key: id, properties: {title: code}}
          - {label: Batch, table: items, key: code, properties: {units: {value: 1}}}
          - {label: Product, table: items, key: id, unique: false,
             where: {column: kind, equals: X}, properties: {price: price}}
          - {label: Category, table: items, key: {column: tags, transform: split},
             unique: false, where: tags}
        relationships:
          - {type: IN_CATEGORY, table: items, unique: true, optional: true,
             from: {label: Product, key: id},
             to: {label: Category, key: {column: tags, transform: split}}}
    """)
    )
    report = _compare(tmp_path, {"shop": shop}, parse_mapping(raw, store.schema))
    assert [(r.line, *fault) for r in report.rejected for fault in _faults(r)] == [
        (3, "Batch node", "id", "duplicate key 'c1' (first at line 2)"),
        (6, "Product node", "price", "'bad' is not a number"),
        (7, "IN_CATEGORY relationship", "key", "duplicate relationship e->t6 (first at line 7)"),
        (9, "Product node", "id", "duplicate key 'f' (first at line 8)"),
        (9, "Batch node", "id", "duplicate key 'c5' (first at line 8)"),
    ]
    assert len({r.line for r in report.rejected}) == len(report.rejected)  # once a row
    assert report.nodes == {"Product": 4, "Batch": 4, "Category": 3}
    assert report.relationships == {"IN_CATEGORY": 3}
    with EmbeddedStore(tmp_path / "columns") as loaded:
        assert loaded.query(
            "MATCH (p:Product) OPTIONAL MATCH (p)-[:IN_CATEGORY]->(c:Category) "
            "RETURN p.id AS id, p.title AS title, p.price AS price, c.id AS tag ORDER BY id"
        ) == [
            {"id": "a", "title": "c1", "price": 1.0, "tag": "t1"},
            {"id": "b", "title": "c3", "price": 3.0, "tag": "t4"},  # nothing of line 3
            {"id": "c", "title": "c2", "price": None, "tag": "t3"},
            {"id": "f", "title": "c5", "price": 6.0, "tag": None},
        ]
        batches = loaded.query("MATCH (b:Batch) RETURN b.id AS id ORDER BY id")
        assert [b["id"] for b in batches] == ["c1", "c2", "c3", "c5"]


# ----------------------------------------------------------------------------- value by value

TEXTS = ["", " ", "  a ", "a", "3.0", "3", "-0", "+5", "007", "1e5", "1e999", "nan", "inf",
         "1,234", "1_000", " 12 ", "2.5", ".5", "5.", "+.5", "1.5e3", "1E-2", "2024-01-01",
         "2024-02-30", "2023-02-29", "2024-02-29", "2024-01-01T10:00", "2024-01-01 10:00:00",
         "2024-01-01T10:00:00.123", "2024-01-01T10:00:00.1", "2024-01-01T10:00:00+02:00",
         "2024-01-01T10:00:00Z", "0000-01-01", "2024-13-01", "2024-01-01T24:00:00",
         "yesterday", "True", "false", "YES", "n", "Y", "t", "0", "1", "2", " true", "a\x00b",
         "x" * (MAX_KEY_CHARS + 1), "é", " é ", "\u00a0", "\u3000x", "x\u3000", "tab\t", "\tx",
         'q"q', "-9223372036854775808", "Ⅻ", "١٢", "é1", "None", "\x1f", "a b"]  # fmt: skip
OBJECTS = [None, math.nan, 3, 3.0, -0.0, 2.5, "x", " y ", ["a", " b ", None], [], [1.0, 2.5],
           {"a": 1}, b"abc", True, False, pd.Timestamp("2024-01-01"), np.int64(4), 10**30,
           dt.datetime(2024, 1, 1, 12), "2024-01-01"]  # fmt: skip
TYPES: list[PropertyType | Property] = [
    PropertyType(n) for n in ("string", "int", "float", "bool", "datetime", "list[string]")
]
# properties with a range: converted to their type, then refused outside it
TYPES += [
    Property("n", PropertyType("int"), minimum=0, maximum=10),
    Property("n", PropertyType("int"), maximum=-1),
    Property("x", PropertyType("float"), minimum=-1, maximum=2.5),
    Property("x", PropertyType("float"), minimum=0),
    Property("x", PropertyType("float"), minimum=1e-300, maximum=1e20),
    Property("x", PropertyType("float"), minimum=2**53 + 1),  # compared as a float
]


def _columns() -> list[tuple[str, Column, list[Any]]]:
    ints = [0, 1, -5, 2**62, 7, 2**53 + 1]
    floats = [0.0, 1.0, -0.0, 3.5, math.nan, math.inf, 1e20, 2.0**53, -7.0, 1e-300]
    sliced = pa.array(["skip", "me", *TEXTS]).slice(2)
    return [
        ("text", Column(TEXTS), TEXTS),
        ("text with None", Column([*TEXTS, None]), [*TEXTS, None]),
        ("sliced text", Column(arrow=sliced), TEXTS),
        ("int", Column(arrow=pa.array(ints, pa.int64())), ints),
        (
            "float",
            Column(arrow=pa.array(np.array(floats), pa.float64(), from_pandas=False)),
            floats,
        ),
        ("bool", Column(arrow=pa.array([True, False])), [True, False]),
        ("objects", Column(list(OBJECTS)), OBJECTS),
    ]


def _outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return ("ok", fn())
    except ValueError as exc:
        return ("error", str(exc))


def _same(a: tuple[str, Any], b: tuple[str, Any]) -> bool:
    if a[0] == b[0] == "ok" and isinstance(a[1], float) and isinstance(b[1], float):
        return math.copysign(1, a[1]) == math.copysign(1, b[1]) and a[1] == b[1]
    return a == b and type(a[1]) is type(b[1])


@pytest.mark.parametrize(("name", "column", "values"), _columns(), ids=lambda x: str(x)[:12])
def test_columns_convert_as_single_values(name: str, column: Column, values: list[Any]) -> None:
    table = Table({"c": column}, np.arange(1, len(values) + 1))
    ev = evaluate(Field(column="c"), table)
    for ptype in TYPES:
        arr, errors = convert(ev, ptype)
        got = arr.to_pylist()
        convert_one = converter(ptype)
        name = (ptype.type if isinstance(ptype, Property) else ptype).name
        for i, v in enumerate(values):
            expected = _outcome(lambda v=v, fn=convert_one: fn(v))
            big = expected[0] == "ok" and name == "int" and expected[1] is not None
            if big and not -(2**63) <= expected[1] < 2**63:
                assert "out of the 64-bit integer range" in errors[i]  # would crash the writer
                continue
            outcome = ("error", errors[i]) if i in errors else ("ok", got[i])
            assert _same(outcome, expected), (ptype, v, outcome, expected)
    found = keys(ev)
    single = found.keys.to_pylist()
    for i, v in enumerate(values):
        if i in found.errors:
            outcome: tuple[str, Any] = ("error", found.errors[i])
        else:
            outcome = ("ok", found.many.get(i) or ([single[i]] if single[i] is not None else []))
        assert outcome == _outcome(lambda v=v: key_list(v)), v


@pytest.mark.parametrize(("name", "column", "values"), _columns(), ids=lambda x: str(x)[:12])
def test_fields_filters_and_transforms_as_single_rows(
    name: str, column: Column, values: list[Any]
) -> None:
    table = Table({"c": column, "d": Column.constant("x", len(values))}, np.arange(len(values)))
    fields = [
        Field(column="c", transforms=("prefix",), options={"prefix": "p:"}),
        Field(column="c", transforms=("strip",)),
        Field(column="c", transforms=("strip", "prefix"), options={"prefix": "p:"}),
        Field(column="c", transforms=("split",)),
        Field(column="c", transforms=("unix_s",)),
        Field(template="{d}/{c}"),
        Field(template="<{c}-{d}>", transforms=("split",), options={"sep": "-"}),
        Field(template="{{x}}{c}"),
        Field(template="{c!r}"),
        Field(template="no fields"),
        Field(columns=("c", "d")),
        Field(value=1.5),
        Field(value="x", transforms=("unix_s",)),
    ]
    for fld in fields:
        ev = evaluate(fld, table)
        got = ev.column.values()
        for i, v in enumerate(values):
            expected = _outcome(lambda v=v, fld=fld: fld.get({"c": v, "d": "x"}))
            outcome = ("error", ev.errors[i]) if i in ev.errors else ("ok", got[i])
            both_nan = all(
                isinstance(o[1], float) and math.isnan(o[1]) for o in (outcome, expected)
            )
            assert both_nan or outcome == expected, (fld, v, outcome, expected)
    for where in (
        Field(column="c"),
        Field(column="c", options={"equals": "1"}),
        Field(column="c", options={"equals": 1.0}),
        Field(column="c", options={"equals": True}),
        Field(column="c", transforms=("unix_s",)),
    ):
        mask = keep(where, table)
        for i, v in enumerate(values):
            assert mask[i] == _RowLoader._keep(where, {"c": v}), (where, v)


# ----------------------------------------------------------------------------- CSV reading


@pytest.mark.parametrize(
    "text",
    [
        'a,b\n1,2\n\n3,4\n   \n5\n6,7,8\n"",\n9,10',
        "a,b\r\n1,2\r\n\r\n3,4\r\nx\r\n",
        "a,b\r1,2\r3,4\r",
        'a,b\n1,"x\ny"\n3,4\n5\n',
        'a,b\n1,"x\n',
        "\ufeffa, b \n1,2\n",
        '"a",b\n1,2\n',
        "a\n1\n\n \n2\n",
        "a,a\n1,2\n",
        "",
        "a,b",
        "a,b\n",
        "\na,b\n1,2\n",
        'a,b\n"ab"cd,x\nab"cd",x\n "ab",x\n"a""b",x\n"a,b",c\n"ab" ,x\n',
        "a,b\n 1 , 2 \n,\n,x\n\x00,y\n",
        'a,b\n1,"x\ny"\n',
        'a,b\n1,"x\n\n2,3\n',
        'a,b\n1,"x\n\n\ny"\n3,4\n',
        'a,b\n1,"x\ny",3\n4,5\n',
        'a,b\n1,2\n3,"x\n',
        'a,b\n1,2\n3\n"x\n',
        'a;b\n1;2\n"3;4";5\n',
        "a,b\n1," + "z" * 140_000 + "\n",
        "a,b\n" + "z" * 140_000 + ",1\n2,3\n",
        'a,b\n1,"x',
        'a,b\n1,2\n3,"x,y',
        'a,b\n1,2\n3,"x,y\n4,5\n',
        'a,b\n1,"x""',
        'a,b\n1,"x"',
        'a,"b\n1,2\n',
        "a,b\n\ufeff1,2\n3,4\n",  # a byte-order mark that starts the first row stays
        "a,b\n1,2\n\ufeff3,4\n",
    ],
)
def test_csv_columns_match_the_row_reader(tmp_path: Path, text: str) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(text.encode())
    for file in (path, tmp_path / "t.csv.gz"):
        if file.suffix == ".gz":
            file.write_bytes(gzip.compress(text.encode()))
        records = list(read_source("csv", file))
        table, bad = read_table("csv", file)
        good = [r for r in records if isinstance(r, Record)]
        assert [(b.line, b.reason) for b in bad] == [
            (r.line, r.reason) for r in records if isinstance(r, BadRecord)
        ]
        assert table.lines.tolist() == [r.line for r in good]
        for i, rec in enumerate(good):
            assert {n: table.column(n).values()[i] for n in table.names} == rec.data


def test_bad_utf8_and_truncated_gzip_read_as_before(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"a,b\n1,2\n3,\xff\n4,5\n")
    gz = tmp_path / "t.csv.gz"
    data = gzip.compress(("a,b\n" + "".join(f"{i},x\n" for i in range(5000))).encode())
    gz.write_bytes(data[: len(data) // 2])
    for file in (path, gz):
        records = list(read_source("csv", file))
        table, bad = read_table("csv", file)
        assert [(b.line, b.reason) for b in bad] == [
            (r.line, r.reason) for r in records if isinstance(r, BadRecord)
        ]
        assert table.lines.tolist() == [r.line for r in records if isinstance(r, Record)]
    # the bad byte costs its own row only
    assert [(b.line, b.reason) for b in read_table("csv", path)[1]] == [
        (3, "not UTF-8 text (byte 0xff)")
    ]
    assert read_table("csv", path)[0].lines.tolist() == [2, 4]


# ----------------------------------------------------------------------------- writing


def test_an_int_too_large_for_the_store_is_rejected_not_fatal(
    tmp_path: Path, store: EmbeddedStore
) -> None:
    path = tmp_path / "u.csv"
    path.write_text("id,n\nu1,30\nu2,99999999999999999999\n")
    raw = {
        "name": "big",
        "sources": {"u": {}},
        "tables": {"u": {"source": "u", "format": "csv"}},
        "nodes": [
            {"label": "Batch", "table": "u", "key": "id", "properties": {"units": "n"}},
            {"label": "User", "table": "u", "key": "id", "properties": {"age": "n"}},
        ],
    }
    report = load(store, parse_mapping(raw, store.schema), {"u": path})
    assert report.nodes == {"Batch": 1, "User": 1}
    rejected = [(r.line, r.target, r.field, _faults(r)) for r in report.rejected]
    assert rejected == [  # one row, both reasons
        (3, "Batch node", "units", [
            ("Batch node", "units", "'99999999999999999999' is out of the 64-bit integer range"),
            ("User node", "age", "age 99999999999999999999 is above its maximum 150"),  # range
        ]),
    ]  # fmt: skip


def test_columns_in_pieces_are_written_whole(store: EmbeddedStore) -> None:
    # an empty chunk between two others (as concatenating specs makes) loses no row
    pieces = [["a"], [], ["b", "c"], [], ["d"]]
    table = pa.Table.from_batches(
        [pa.record_batch({"id": pa.array(p, pa.string())}) for p in pieces]
    )
    assert store.write_node_table("Brand", table) == 4
    assert store.counts().nodes["Brand"] == 4
    assert store.write_node_rows("Brand", [{"id": "e", "name": "E"}, {"id": "a"}]) == 2
    assert store.query("MATCH (b:Brand) RETURN b.id AS id, b.name AS n ORDER BY id") == [
        {"id": "a", "n": None}, {"id": "b", "n": None}, {"id": "c", "n": None},
        {"id": "d", "n": None}, {"id": "e", "n": "E"},
    ]  # fmt: skip
