"""The stored graph as a PyTorch Geometric ``HeteroData``, in bulk, with id maps both ways.

One query per label (keys and vector properties) and one per relationship type and end-label
pair; no query per node. Every relationship type gets a reverse edge type ``rev_<TYPE>``, so
no node type is left without incoming messages. Vector properties become node attributes of
the same name (zeros where a node has none) with a boolean ``<name>_mask``.

Example:
    >>> export = to_heterodata(store)                    # doctest: +SKIP
    >>> export.data["Product"].text_vec.shape            # doctest: +SKIP
    torch.Size([5000, 384])
    >>> export.key("Product", 0), export.index["Product"]["p0001"]   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch_geometric.data import HeteroData

from graphfusion.errors import ValidationError
from graphfusion.store.base import BaseStore

__all__ = ["GraphExport", "to_heterodata", "REVERSE_PREFIX"]

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

    def key(self, label: str, row: int) -> str:
        """The key of row ``row`` of ``label``."""
        return self.ids[label][row]

    def rows(self, label: str, keys: Sequence[str]) -> torch.Tensor:
        """Row indices of ``keys`` (a ValidationError names the first unknown key)."""
        index = self.index[label]
        missing = [k for k in keys if k not in index]
        if missing:
            raise ValidationError(f"no {label} {missing[0]!r} in the exported graph")
        return torch.tensor([index[k] for k in keys], dtype=torch.long)


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
        become ``edge_weight`` (1.0 where missing).

    Raises:
        SchemaError: An unknown label.
    """
    schema = store.schema
    chosen = list(labels) if labels is not None else list(schema.nodes)
    data = HeteroData()
    ids: dict[str, list[str]] = {}
    index: dict[str, dict[str, int]] = {}
    for label in chosen:
        node = schema.node(label)
        props = [p for p in node.vectors if vectors and p.type.encoder != "model"]
        cols = "".join(f", n.{p.name} AS {p.name}" for p in props)
        rows = store.query(f"MATCH (n:{label}) RETURN n.{node.key} AS id{cols} ORDER BY id")
        if not rows and labels is None:
            continue
        keys = [r["id"] for r in rows]
        ids[label] = keys
        index[label] = {k: i for i, k in enumerate(keys)}
        data[label].num_nodes = len(keys)
        for prop in props:
            dim = prop.type.dim or 0
            matrix = np.zeros((len(rows), dim), dtype=np.float32)
            mask = np.zeros(len(rows), dtype=bool)
            for i, r in enumerate(rows):
                value = r[prop.name]
                if value is not None and len(value) == dim:
                    matrix[i] = value
                    mask[i] = True
            if mask.any():
                data[label][prop.name] = torch.from_numpy(matrix)
                data[label][f"{prop.name}_mask"] = torch.from_numpy(mask)
    for rtype, start, end in schema.rel_pairs():
        if start not in index or end not in index:
            continue
        rel = schema.rel(rtype)
        weight = ", r.weight AS w" if rel.has_property("weight") else ""
        rows = store.query(
            f"MATCH (a:{start})-[r:{rtype}]->(b:{end}) RETURN a.id AS s, b.id AS d{weight}"
        )
        if not rows:
            continue
        src = torch.tensor([index[start][r["s"]] for r in rows], dtype=torch.long)
        dst = torch.tensor([index[end][r["d"]] for r in rows], dtype=torch.long)
        data[start, rtype, end].edge_index = torch.stack([src, dst])
        if weight:
            w = torch.tensor([1.0 if r["w"] is None else float(r["w"]) for r in rows])
            data[start, rtype, end].edge_weight = w
        if reverse:
            data[end, f"{REVERSE_PREFIX}{rtype}", start].edge_index = torch.stack([dst, src])
            if weight:
                data[end, f"{REVERSE_PREFIX}{rtype}", start].edge_weight = w
    return GraphExport(data, ids, index)
