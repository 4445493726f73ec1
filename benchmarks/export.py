"""Export benchmark: the stored graph to a PyTorch Geometric ``HeteroData``, three ways.

On an existing embedded store (opened read-only; nothing is written), best of ``--repeat``:

1. ``graphfusion.graph.to_heterodata`` as it is (dict rows from ``store.query``), with and
   without vector properties.
2. The same export reading every query result as one Arrow table
   (``QueryResult.get_as_arrow``): vectors become matrices with ``list_flatten``, relationship
   ends become rows with ``pyarrow.compute.index_in`` on the sorted keys (``by key``, works
   for any store that yields Arrow) or through LadybugDB's internal node offsets
   (``by offset``, ``offset(id(n))``, LadybugDB only). Same ``GraphExport`` as 1.
3. LadybugDB's own PyG remote backend (``Database.get_torch_geometric_remote_backend``): every
   node type's keys and vector properties through its ``FeatureStore`` and every edge_index
   through its ``GraphStore``, in LadybugDB's offset order (keys not sorted, no reverse
   types, no ``edge_weight``: the backend has no edge features). Its ``GraphStore`` registers
   one (start, end) pair per relationship table and sizes that pair's edge_index by the whole
   table, so for tables with several pairs (``ABOUT``) it misses pairs and pads with
   uninitialised memory; the timed variant fetches every pair of such tables through the
   backend's connection call (``get_all_edges_for_torch_geometric``) and trims the padding.
   Its ``FeatureStore`` reads list-typed properties (our vectors are ``FLOAT[]``) and strings
   with a ``MATCH`` query whose row order is only the offset order on one thread, so the
   timed runs use ``--threads 1``; the backend as published (default threads, the
   ``GraphStore``'s own edge types) is checked apart.

Then it checks that every variant gives the same keys, vectors and edge sets (as key pairs),
and times single fetch paths (dict rows, ``query_df``, ``get_as_df``, ``get_as_arrow``) on the
largest relationship and vector queries.

Run: ``python -m benchmarks.export [--store /tmp/benchfx] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from torch_geometric.data import HeteroData

from benchmarks.common import command_line, print_table, save_results
from graphfusion.graph import REVERSE_PREFIX, GraphExport, _vectors, to_heterodata
from graphfusion.store import EmbeddedStore

NAME = "export"
DEFAULT_STORE = Path("/tmp/benchfx")
EdgeType = tuple[str, str, str]


# --------------------------------------------------------------------------- Arrow export
def export_arrow(
    store: EmbeddedStore, *, vectors: bool = True, reverse: bool = True, by: str = "key"
) -> GraphExport:
    """``to_heterodata`` with every query result read as Arrow (``by``: "key" or "offset")."""
    schema = store.schema
    data = HeteroData()
    ids: dict[str, list[str]] = {}
    index: dict[str, dict[str, int]] = {}
    keys: dict[str, pa.Array] = {}
    rows_of: dict[str, np.ndarray] = {}  # by offset: offset -> row
    for label in schema.nodes:
        node = schema.node(label)
        props = [p for p in node.vectors if vectors and p.type.encoder != "model"]
        cols = "".join(f", n.{p.name} AS {p.name}" for p in props)
        offset = ", offset(id(n)) AS o" if by == "offset" else ""
        # no ORDER BY: sorting in the database carries the vectors along (measured 2x slower)
        tbl = store.query_arrow(f"MATCH (n:{label}) RETURN n.{node.key} AS id{offset}{cols}")
        if tbl.num_rows == 0:
            continue
        tbl = tbl.take(pc.sort_indices(tbl, sort_keys=[("id", "ascending")]))
        key_col = tbl.column("id").combine_chunks()
        ids[label] = key_col.to_pylist()
        index[label] = {k: i for i, k in enumerate(ids[label])}
        keys[label] = key_col
        if by == "offset":
            o = tbl.column("o").to_numpy()
            rows = np.full(int(o.max()) + 1, -1, dtype=np.int64)
            rows[o] = np.arange(len(o))
            rows_of[label] = rows
        data[label].num_nodes = tbl.num_rows
        for prop in props:
            matrix, mask = _vectors(tbl.column(prop.name), prop.type.dim or 0)
            if mask.any():
                data[label][prop.name] = torch.from_numpy(matrix)
                data[label][f"{prop.name}_mask"] = torch.from_numpy(mask)
    for rtype, start, end in schema.rel_pairs():
        if start not in ids or end not in ids:
            continue
        weight = ", r.weight AS w" if schema.rel(rtype).has_property("weight") else ""
        if by == "offset":
            ends = "offset(id(a)) AS s, offset(id(b)) AS d"
        else:
            ends = f"a.{schema.node(start).key} AS s, b.{schema.node(end).key} AS d"
        tbl = store.query_arrow(f"MATCH (a:{start})-[r:{rtype}]->(b:{end}) RETURN {ends}{weight}")
        if tbl.num_rows == 0:
            continue
        if by == "offset":
            s = rows_of[start][tbl.column("s").to_numpy()]
            d = rows_of[end][tbl.column("d").to_numpy()]
        else:
            s = pc.index_in(tbl.column("s"), value_set=keys[start]).to_numpy()
            d = pc.index_in(tbl.column("d"), value_set=keys[end]).to_numpy()
        src = torch.from_numpy(s.astype(np.int64, copy=False))
        dst = torch.from_numpy(d.astype(np.int64, copy=False))
        data[start, rtype, end].edge_index = torch.stack([src, dst])
        w = None
        if weight:
            w = torch.from_numpy(
                tbl.column("w").fill_null(1.0).to_numpy().astype(np.float32, copy=False)
            )
            data[start, rtype, end].edge_weight = w
        if reverse:
            data[end, f"{REVERSE_PREFIX}{rtype}", start].edge_index = torch.stack([dst, src])
            if w is not None:
                data[end, f"{REVERSE_PREFIX}{rtype}", start].edge_weight = w
    return GraphExport(data, ids, index)


# --------------------------------------------------------------------------- remote backend
@dataclass
class RemoteExport:
    """What LadybugDB's PyG remote backend gives, in its offset order."""

    ids: dict[str, Any] = field(default_factory=dict)  # label -> keys (a list)
    features: dict[tuple[str, str], Any] = field(default_factory=dict)  # tensor or list
    edges: dict[EdgeType, torch.Tensor] = field(default_factory=dict)
    sizes: dict[EdgeType, tuple[int, int]] = field(default_factory=dict)


def _pair_edges(conn: Any, start: str, rtype: str, end: str) -> torch.Tensor:
    """One (start, end) pair of a relationship table with several pairs, padding trimmed.

    The backend's call writes the sources at [0, k) and the targets at [n, n + k) of a
    buffer of 2n, n being the whole table's count; the rest is left as it was.
    """
    from ladybug.torch_geometric_graph_store import REL_BATCH_SIZE

    n = int(conn.get_num_rels(rtype))
    buf = np.full(2 * n, -1, dtype=np.int64)
    conn.get_all_edges_for_torch_geometric(buf, start, rtype, end, REL_BATCH_SIZE)
    k = int((buf[:n] >= 0).sum())
    return torch.from_numpy(np.stack([buf[:k], buf[n : n + k]]))


def export_remote(
    store: EmbeddedStore, *, vectors: bool = True, threads: int | None = None, fix: bool = True
) -> RemoteExport:
    """Keys, vectors and every edge_index through the remote backend.

    ``fix``: fetch the pairs of multi-pair relationship tables one by one (see the module
    docstring); without it, only what the backend's ``GraphStore`` registers, as it gives it.
    """
    schema = store.schema
    feature_store, graph_store = store._db.get_torch_geometric_remote_backend(threads)
    conn = graph_store.connection._connection
    out = RemoteExport()
    for label, node in schema.nodes.items():
        if int(conn.get_num_nodes(label)) == 0:
            continue
        out.ids[label] = feature_store.get_tensor(group_name=label, attr_name=node.key, index=None)
        for prop in node.vectors:
            if vectors and prop.type.encoder != "model":
                out.features[label, prop.name] = feature_store.get_tensor(
                    group_name=label, attr_name=prop.name, index=None
                )
    registered = {tuple(a.edge_type): a for a in graph_store.get_all_edge_attrs()}
    pairs = list(schema.rel_pairs())
    multi = {r for r, n in Counter(r for r, _, _ in pairs).items() if n > 1}
    wanted = pairs if fix else [(r, s, e) for (s, r, e) in registered]
    for rtype, start, end in wanted:
        if start not in out.ids or end not in out.ids:
            continue
        if fix and rtype in multi:
            edge_index = _pair_edges(conn, start, rtype, end)
        elif (start, rtype, end) in registered:
            edge_index = graph_store.get_edge_index(
                edge_type=(start, rtype, end), layout="coo", is_sorted=True
            )
        else:
            continue
        out.edges[start, rtype, end] = edge_index
        out.sizes[start, rtype, end] = (len(out.ids[start]), len(out.ids[end]))
    return out


# --------------------------------------------------------------------------- checks
def _key_pairs(
    src_keys: np.ndarray, dst_keys: np.ndarray, edge_index: torch.Tensor, weight: Any = None
) -> tuple[Counter, int]:
    """The multiset of (start key, end key[, weight]) and the number of out-of-range ends."""
    ei = edge_index.numpy()
    ok = (ei[0] >= 0) & (ei[0] < len(src_keys)) & (ei[1] >= 0) & (ei[1] < len(dst_keys))
    s, d = src_keys[ei[0][ok]], dst_keys[ei[1][ok]]
    if weight is None:
        return Counter(zip(s.tolist(), d.tolist(), strict=True)), int((~ok).sum())
    w = weight.numpy()[ok].tolist()
    return Counter(zip(s.tolist(), d.tolist(), w, strict=True)), int((~ok).sum())


def export_edges(export: GraphExport, weights: bool = True) -> dict[EdgeType, Counter]:
    """Every edge type of an export as key pairs (with weights where it has them)."""
    keys = {label: np.asarray(k, dtype=object) for label, k in export.ids.items()}
    out = {}
    for (start, rtype, end), store in export.data.edge_items():
        w = store.get("edge_weight") if weights else None
        out[start, rtype, end], _ = _key_pairs(keys[start], keys[end], store.edge_index, w)
    return out


def compare_exports(ref: GraphExport, other: GraphExport) -> dict[str, Any]:
    """Same node types, keys in the same order, vectors, masks, edges and weights?"""
    problems: list[str] = []
    if ref.data.node_types != other.data.node_types:
        problems.append(f"node types {ref.data.node_types} != {other.data.node_types}")
    for label in ref.data.node_types:
        if ref.ids[label] != other.ids.get(label):
            problems.append(f"{label}: keys differ")
        a, b = ref.data[label], other.data[label]
        for name in sorted(set(a.keys()) | set(b.keys())):
            x, y = a.get(name), b.get(name)
            if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
                same = x.dtype == y.dtype and torch.equal(x, y)
            else:
                same = not isinstance(x, torch.Tensor) and not isinstance(y, torch.Tensor)
                same = same and x == y
            if not same:
                problems.append(f"{label}.{name} differs")
    ea, eb = export_edges(ref), export_edges(other)
    if set(ea) != set(eb):
        problems.append(f"edge types differ: {sorted(set(ea) ^ set(eb))}")
    for et in set(ea) & set(eb):
        if ea[et] != eb[et]:
            problems.append(f"{et}: edges differ")
    return {"identical": not problems, "problems": problems, "edges": sum(map(_total, ea.values()))}


def _summary(problems: list[str], limit: int = 6) -> str:
    """The first ``limit`` problems, and how many more."""
    more = f"; and {len(problems) - limit} more" if len(problems) > limit else ""
    return "; ".join(problems[:limit]) + more or "-"


def _total(c: Counter) -> int:
    return sum(c.values())


def compare_remote(store: EmbeddedStore, ref: GraphExport, remote: RemoteExport) -> dict[str, Any]:
    """The remote backend's keys, vectors and forward edges against ``ref`` (by key)."""
    problems: list[str] = []
    by_offset: dict[str, np.ndarray] = {}
    for label in ref.ids:
        tbl = store.query_arrow(f"MATCH (n:{label}) RETURN offset(id(n)) AS o, n.id AS id")
        o = tbl.column("o").to_numpy()
        keys = np.empty(int(o.max()) + 1, dtype=object)
        keys[o] = tbl.column("id").to_pylist()
        by_offset[label] = keys
        given = list(remote.ids.get(label, []))
        if sorted(given) != ref.ids[label]:
            problems.append(f"{label}: keys differ")
        elif given != keys[: len(given)].tolist():
            problems.append(f"{label}: keys not in offset order")
    if set(remote.ids) != set(ref.ids):
        problems.append(f"labels {sorted(remote.ids)} != {sorted(ref.ids)}")
    for (label, name), value in remote.features.items():
        expected = ref.data[label].get(name)
        if expected is None:
            continue
        if not isinstance(value, torch.Tensor):
            problems.append(f"{label}.{name}: not a tensor ({type(value).__name__})")
            continue
        rows = ref.rows(label, list(remote.ids[label]))
        if not torch.equal(expected[rows], value.to(expected.dtype)):
            problems.append(f"{label}.{name} differs")
    ref_forward = {
        et: c
        for et, c in export_edges(ref, weights=False).items()
        if not et[1].startswith(REVERSE_PREFIX)
    }
    out_of_range = 0
    for et, edge_index in remote.edges.items():
        got, bad = _key_pairs(by_offset[et[0]], by_offset[et[2]], edge_index)
        out_of_range += bad
        want = ref_forward.get(et, Counter())
        if bad:
            problems.append(f"{et}: {bad} edges with ends out of range")
        if got != want:
            extra, missing = _total(got - want), _total(want - got)
            problems.append(f"{et}: {extra} extra, {missing} missing edges")
    absent = [et for et, c in ref_forward.items() if c and et not in remote.edges]
    for et in absent:
        problems.append(f"{et}: not given ({_total(ref_forward[et])} edges)")
    return {
        "identical": not problems,
        "problems": problems,
        "edges": sum(e.shape[1] for e in remote.edges.values()),
        "edges_out_of_range": out_of_range,
    }


# --------------------------------------------------------------------------- timing
def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, list[float], Any]:
    """Best wall time of ``repeat`` calls, all the times, and the last result."""
    times: list[float] = []
    result = None
    for _ in range(repeat):
        result = None
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), times, result


def fetch_paths(store: EmbeddedStore, repeat: int) -> list[dict[str, Any]]:
    """One query through each way of reading a result, for the largest queries."""
    queries = {
        "VIEWED edges (keys, weight)": (
            "MATCH (a:User)-[r:VIEWED]->(b:Product) RETURN a.id AS s, b.id AS d, r.weight AS w"
        ),
        "VIEWED edges (offsets, weight)": (
            "MATCH (a:User)-[r:VIEWED]->(b:Product) "
            "RETURN offset(id(a)) AS s, offset(id(b)) AS d, r.weight AS w"
        ),
        "Image vectors, ORDER BY id": (
            "MATCH (n:Image) RETURN n.id AS id, n.image_vec AS v ORDER BY id"
        ),
        "Image vectors, unordered": "MATCH (n:Image) RETURN n.id AS id, n.image_vec AS v",
    }

    def df(cypher: str) -> Any:
        result = store._conn.execute(cypher)
        try:
            return result.get_as_df()
        finally:
            result.close()

    paths: dict[str, Callable[[str], Any]] = {
        "store.query (dict rows)": store.query,
        "store.query_df": store.query_df,
        "QueryResult.get_as_df": df,
        "QueryResult.get_as_arrow": lambda q: store.query_arrow(q),
    }
    out = []
    for qname, cypher in queries.items():
        for pname, fn in paths.items():
            best, times, result = best_of(functools.partial(fn, cypher), repeat)
            out.append(
                {
                    "query": qname,
                    "path": pname,
                    "seconds": best,
                    "times": times,
                    "rows": len(result),
                }
            )
    return out


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    """Run, print the tables and save ``benchmarks/results/export.json``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, default=DEFAULT_STORE, help="An embedded store.")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="Remote backend threads for the timed runs (more misorders its vectors).",
    )
    parser.add_argument("--skip-fetch", action="store_true", help="Skip the fetch-path table.")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    import ladybug
    import torch_geometric.typing as pyg_typing

    with EmbeddedStore(args.store, read_only=True) as store:
        counts = store.counts()
        variants: dict[str, Callable[[], Any]] = {}
        for vec in (True, False):
            tag = "with vectors" if vec else "no vectors"
            variants[f"to_heterodata, {tag}"] = functools.partial(to_heterodata, store, vectors=vec)
            variants[f"Arrow by key, {tag}"] = functools.partial(export_arrow, store, vectors=vec)
            variants[f"Arrow by offset, {tag}"] = functools.partial(
                export_arrow, store, vectors=vec, by="offset"
            )
            variants[f"remote backend, {tag}"] = functools.partial(
                export_remote, store, vectors=vec, threads=args.threads
            )
        timings: dict[str, dict[str, Any]] = {}
        outputs: dict[str, Any] = {}
        for name, fn in variants.items():
            best, times, outputs[name] = best_of(fn, args.repeat)
            timings[name] = {"seconds": best, "times": times}
            print(f"{name}: {best:.3f} s (of {', '.join(f'{t:.2f}' for t in times)})", flush=True)

        checks: dict[str, Any] = {}
        for tag in ("with vectors", "no vectors"):
            ref = outputs[f"to_heterodata, {tag}"]
            for kind in ("Arrow by key", "Arrow by offset"):
                checks[f"{kind}, {tag}"] = compare_exports(ref, outputs[f"{kind}, {tag}"])
            checks[f"remote backend, {tag}"] = compare_remote(
                store, ref, outputs[f"remote backend, {tag}"]
            )
        ref = outputs["to_heterodata, with vectors"]
        # as published: the GraphStore's own edge types, the backend's default thread count
        public = export_remote(store, vectors=True, threads=None, fix=False)
        checks[f"remote backend as published ({os.cpu_count()} threads)"] = compare_remote(
            store, ref, public
        )
        outputs.clear()
        fetch = [] if args.skip_fetch else fetch_paths(store, args.repeat)

    rows = []
    results_rows = []
    for name, t in timings.items():
        tag = name.rsplit(", ", 1)[1]
        base = timings[f"to_heterodata, {tag}"]["seconds"]
        check = checks.get(name, {"identical": True, "problems": []})
        rows.append(
            [
                name,
                t["seconds"],
                t["seconds"] / base,
                base / t["seconds"],
                "yes" if check["identical"] else "NO",
            ]
        )
        results_rows.append(
            {
                "method": name,
                **t,
                "ratio_vs_to_heterodata": t["seconds"] / base,
                "speedup": base / t["seconds"],
                "identical": check["identical"],
            }
        )
    tables = [
        print_table(
            ["method", "seconds", "s / to_heterodata s", "speed-up", "same content"],
            rows,
            title=(
                f"Export of {args.store} ({sum(counts.nodes.values()):,} nodes, "
                f"{sum(counts.relationships.values()):,} relationships), best of {args.repeat}"
            ),
        )
    ]
    tables.append(
        print_table(
            ["check", "identical", "problems"],
            [
                [name, "yes" if c["identical"] else "NO", _summary(c["problems"])]
                for name, c in checks.items()
            ],
            title="Same keys, vectors and edge sets (as key pairs) as to_heterodata",
            align="lll",
        )
    )
    if fetch:
        tables.append(
            print_table(
                ["query", "path", "rows", "seconds"],
                [[f["query"], f["path"], f["rows"], f["seconds"]] for f in fetch],
                title=f"One query, four ways to read its result, best of {args.repeat}",
                align="llrr",
            )
        )
    save_results(
        NAME,
        {
            "store": str(args.store),
            "nodes": counts.nodes,
            "relationships": counts.relationships,
            "repeat": args.repeat,
            "threads": args.threads,
            "ladybug": getattr(ladybug, "__version__", None),
            "pyg_lib": bool(pyg_typing.WITH_PYG_LIB),
            "torch_sparse": bool(pyg_typing.WITH_TORCH_SPARSE),
            "results": results_rows,
            "checks": checks,
            "fetch_paths": fetch,
        },
        out=args.out,
        command=command_line("benchmarks.export", argv),
        tables=tables,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
