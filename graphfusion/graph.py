"""The stored graph as a PyTorch Geometric ``HeteroData``, in bulk, with id maps both ways.

One query per label (keys and vector properties) and one per relationship type and end-label
pair, read as Arrow tables; no query per node. Every relationship type gets a reverse edge
type ``rev_<TYPE>``, so no node type is left without incoming messages. Vector properties
(but those a model writes, such as ``fused_vec``) become node attributes of the same name
(zeros where a node has none) with a boolean ``<name>_mask``; a property no node of the label
has is left out. A stored vector that is not one (the wrong length, or NaN or infinite values,
which a Cypher ``SET`` can write past the store's checks) counts as none, with a warning.

Example:
    >>> export = to_heterodata(store)                    # doctest: +SKIP
    >>> export.data["Product"].text_vec.shape            # doctest: +SKIP
    torch.Size([5000, 384])
    >>> export.key("Product", 0), export.index["Product"]["p0001"]   # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from torch_geometric.data import HeteroData

from graphfusion.errors import ValidationError
from graphfusion.store.base import BaseStore

__all__ = ["GraphExport", "to_heterodata", "REVERSE_PREFIX"]

log = logging.getLogger("graphfusion.graph")

REVERSE_PREFIX = "rev_"


@dataclass
class GraphExport:
    """A ``HeteroData`` and the maps between node keys and row indices.

    Attributes:
        data: The graph: node types are labels, edge types ``(start, TYPE, end)`` and
            ``(end, rev_TYPE, start)``.
        ids: Label -> the node keys, in row order.
        index: Label -> key -> row.
    """

    data: HeteroData
    ids: dict[str, list[str]]
    index: dict[str, dict[str, int]]

    def key(self, label: str, row: int | np.integer | torch.Tensor) -> str:
        """The key of row ``row`` of ``label``.

        Args:
            label: A node label of the export.
            row: An integer: a Python or numpy one, or a 0-d integer tensor or array (an
                element of an ``edge_index``).

        Raises:
            ValidationError: No such label, ``row`` is not an integer, or no such row.
        """
        ids = self._ids_of(label)
        index = _row_number(row)
        if not ids:
            raise ValidationError(f"{label} has no rows in the exported graph, got {row!r}")
        if not 0 <= index < len(ids):
            raise ValidationError(f"{label} has rows 0..{len(ids) - 1}, got {index}")
        return ids[index]

    def rows(self, label: str, keys: Sequence[str]) -> torch.Tensor:
        """Row indices of ``keys``, a list (or tuple, array) of keys.

        Raises:
            ValidationError: No such label, ``keys`` is not a list of keys (one string, bytes,
                None), or a key is unknown (the first is named).
        """
        if isinstance(keys, str | bytes) or not isinstance(keys, Iterable):
            raise ValidationError(f"keys must be a list of keys, got {keys!r}")
        self._ids_of(label)
        index = self.index[label]
        keys = list(keys)
        missing = [k for k in keys if not isinstance(k, str) or k not in index]
        if missing:
            raise ValidationError(f"no {label} {missing[0]!r} in the exported graph")
        return torch.tensor([index[k] for k in keys], dtype=torch.long)

    def _ids_of(self, label: str) -> list[str]:
        if label not in self.ids:
            raise ValidationError(f"no {label!r} in the exported graph; it has {sorted(self.ids)}")
        return self.ids[label]


def to_heterodata(
    store: BaseStore,
    *,
    labels: Sequence[str] | None = None,
    vectors: bool = True,
    reverse: bool = True,
) -> GraphExport:
    """Export the stored graph.

    Args:
        store: The store.
        labels: The node labels to export (all with at least one node when None); only
            relationships between exported labels are exported.
        vectors: Export vector properties as node attributes.
        reverse: Add a reverse edge type for every relationship type.

    Returns:
        The graph and its id maps. Relationship ``weight`` properties, where the type has one,
        become ``edge_weight`` (1.0 where missing). The edges are in one order whatever
        order the store keeps them in: by start row, then end row (reverse edges in the order
        of the edges they reverse).

    Raises:
        SchemaError: An unknown label.
        ValidationError: With ``reverse``, a relationship type named like the reverse of
            another between the same labels (``rev_F`` and ``F`` on ``(U, U)``).
    """
    schema = store.schema
    if isinstance(labels, str):
        raise ValidationError("labels must be a list of labels, not one string")
    chosen = list(labels) if labels is not None else list(schema.nodes)
    if reverse:
        _check_reverse_names(
            (t, a, b) for t, a, b in schema.rel_pairs() if a in chosen and b in chosen
        )
    data = HeteroData()
    ids: dict[str, list[str]] = {}
    index: dict[str, dict[str, int]] = {}
    key_arrays: dict[str, pa.Array] = {}
    for label in chosen:
        node = schema.node(label)
        props = [p for p in node.vectors if vectors and p.type.encoder != "model"]
        cols = "".join(f", n.{p.name} AS {p.name}" for p in props)
        table = store.query_arrow(f"MATCH (n:{label}) RETURN n.{node.key} AS id{cols} ORDER BY id")
        n = table.num_rows
        if n == 0 and labels is None:
            continue
        keys = table.column("id").combine_chunks() if n else pa.array([], pa.string())
        ids[label] = keys.to_pylist()
        index[label] = {k: i for i, k in enumerate(ids[label])}
        key_arrays[label] = keys
        data[label].num_nodes = n
        for prop in props if n else []:
            column = table.column(prop.name)
            matrix, mask = _vectors(column, prop.type.dim or 0)
            _warn_unfit(f"{label}.{prop.name}", keys, column, mask, prop.type.dim or 0)
            if mask.any():
                data[label][prop.name] = torch.from_numpy(matrix)
                data[label][f"{prop.name}_mask"] = torch.from_numpy(mask)
    for rtype, start, end in schema.rel_pairs():
        if start not in index or end not in index:
            continue
        weight = ", r.weight AS w" if schema.rel(rtype).has_property("weight") else ""
        a_key, b_key = schema.node(start).key, schema.node(end).key
        table = store.query_arrow(
            f"MATCH (a:{start})-[r:{rtype}]->(b:{end}) "
            f"RETURN a.{a_key} AS s, b.{b_key} AS d{weight}"
        )
        if table.num_rows == 0:
            continue
        table = table.combine_chunks()
        src = pc.index_in(table.column("s"), value_set=key_arrays[start]).combine_chunks()
        dst = pc.index_in(table.column("d"), value_set=key_arrays[end]).combine_chunks()
        # an end the node query did not read was written since: the edge goes with it
        known = pc.and_(src.is_valid(), dst.is_valid())
        if not pc.all(known).as_py():
            table, src, dst = table.filter(known), src.filter(known), dst.filter(known)
        if table.num_rows == 0:
            continue
        weights = table.column("w").cast(pa.float64()).fill_null(1.0) if weight else None
        src, dst, weights = _ordered(_rows(src), _rows(dst), weights)
        data[start, rtype, end].edge_index = torch.stack([src, dst])
        if weights is not None:
            w = torch.from_numpy(weights.astype(np.float32))
            data[start, rtype, end].edge_weight = w
        if reverse:
            data[end, f"{REVERSE_PREFIX}{rtype}", start].edge_index = torch.stack([dst, src])
            if weights is not None:
                data[end, f"{REVERSE_PREFIX}{rtype}", start].edge_weight = w
    return GraphExport(data, ids, index)


def _row_number(row: object) -> int:
    """``row`` as a Python int: an int (not a bool), a numpy integer, or a 0-d integer tensor
    or array, such as an element of an ``edge_index`` (ValidationError otherwise)."""
    if isinstance(row, torch.Tensor):
        if (
            row.dim() == 0
            and not (row.is_floating_point() or row.is_complex())
            and (row.dtype != torch.bool)
        ):
            return int(row.item())
    elif isinstance(row, np.ndarray):
        if row.ndim == 0 and row.dtype.kind in "iu":
            return int(row.item())
    elif isinstance(row, int | np.integer) and not isinstance(row, bool):
        return int(row)
    raise ValidationError(f"row must be an integer, got {row!r}")


def _check_reverse_names(pairs: Iterable[tuple[str, str, str]]) -> None:
    """Refuse edge types that the reverse edges would overwrite: a type ``rev_F`` from ``B``
    to ``A`` beside a type ``F`` from ``A`` to ``B``."""
    pairs = set(pairs)
    for rtype, start, end in sorted(pairs):
        if (f"{REVERSE_PREFIX}{rtype}", end, start) in pairs:
            raise ValidationError(
                f"relationship type {REVERSE_PREFIX}{rtype} ({end})->({start}) has the name of "
                f"the reverse of {rtype} ({start})->({end}) in the export; export with "
                "reverse=False, or rename the type"
            )


def _vectors(column: pa.ChunkedArray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """A list column as a float32 matrix and the mask of the rows that have a vector: a list of
    ``dim`` numbers, all finite as 32-bit floats (none in a null-typed column: every value
    null). The other rows (no list, another length, a null, NaN or an infinite value in it)
    are zeros."""
    values = column.combine_chunks()
    if pa.types.is_null(values.type):
        return np.zeros((len(values), dim), dtype=np.float32), np.zeros(len(values), dtype=bool)
    lengths = pc.list_value_length(values).fill_null(0).to_numpy(zero_copy_only=False)
    mask = lengths == dim
    matrix = np.zeros((len(values), dim), dtype=np.float32)
    if mask.any():
        kept = values if mask.all() else values.filter(pa.array(mask))
        flat = pc.list_flatten(kept).to_numpy(zero_copy_only=False)
        with np.errstate(over="ignore", invalid="ignore"):
            rows = np.asarray(flat, dtype=np.float32).reshape(-1, dim)
        finite = np.isfinite(rows).all(axis=1)  # a null element reads as NaN
        mask[mask] = finite
        matrix[mask] = rows[finite]
    return matrix, mask


def _warn_unfit(
    what: str, keys: pa.Array, column: pa.ChunkedArray, mask: np.ndarray, dim: int
) -> None:
    """Warn of the stored values of ``what`` that :func:`_vectors` did not take as vectors
    (the values that are there, not null, and left out of ``mask``), naming the first."""
    stored = column.is_valid().to_numpy(zero_copy_only=False)
    unfit = np.flatnonzero(stored & ~mask)
    if len(unfit):
        log.warning(
            "%s: %d stored vectors are not %d finite numbers (the first: %r) and count as "
            "none; write them again with upsert_nodes or Engine.add_vectors, which check them",
            what, len(unfit), dim, keys[int(unfit[0])].as_py(),
        )  # fmt: skip


def unit_rows(vecs: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float64."""
    vecs = np.asarray(vecs, dtype=np.float64)
    if not len(vecs):
        return vecs
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    return np.divide(vecs, norms, out=np.zeros_like(vecs), where=norms > 0)


def _rows(rows: pa.Array) -> np.ndarray:
    """Row indices (of relationship ends among a label's keys, none null) as int64."""
    return rows.to_numpy().astype(np.int64)


def _ordered(
    src: np.ndarray, dst: np.ndarray, weights: pa.ChunkedArray | pa.Array | None
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray | None]:
    """The edges sorted by start row, then end row (then weight, for parallel edges): the
    order a store returns a relationship query in is its storage order, which depends on how
    and when the graph was written; what is summed over the edges (pooled photos, messages)
    must not. The integer rows are sorted here (about 0.1 s for 200k edges), not the string
    keys by an ``ORDER BY`` in the store."""
    w = None if weights is None else weights.to_numpy(zero_copy_only=False).astype(np.float64)
    key = src * (int(dst.max()) + 1) + dst  # one number per (start, end): rows are < 2**31
    order = np.argsort(key, kind="stable")
    ranked = key[order]
    if w is not None and bool((ranked[1:] == ranked[:-1]).any()):
        order = np.lexsort((w, key))  # parallel edges: by weight too (the last key first)
    w = None if w is None else w[order]
    return torch.from_numpy(src[order]), torch.from_numpy(dst[order]), w
