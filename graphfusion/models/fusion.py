r"""The fusion GNN: modality vectors and graph structure in one embedding per node.

For every node type, the input is the sum of a projection of its modality vectors (those
present: ``text_vec``, ``image_vec``, ``behaviour_vec``, concatenated, zeros where a node has
none) and, for users and products, a learnable id embedding (types without vectors, such as
Brand or Category, get id embeddings only). Then ``num_layers`` rounds of heterogeneous message
passing (:class:`torch_geometric.nn.HeteroConv` of mean-aggregating
:class:`~torch_geometric.nn.SAGEConv`, one per edge type, summed over edge types) with a
residual connection:

.. math::
    \mathbf{h}_v^{(0)} = W_{t(v)} [\mathbf{x}^{text}_v \| \mathbf{x}^{image}_v \| \dots]
        + \mathbf{e}_v, \qquad
    \mathbf{h}_v^{(l+1)} = \mathbf{h}_v^{(l)} + \sigma\Big(\sum_{r} \mathrm{SAGE}_r\big(
        \mathbf{h}^{(l)}\big)_v\Big)

and the fused embedding is the mean over layers. Scores are dot products of user and product
embeddings, trained with BPR like the baselines.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.data import HeteroData
from torch_geometric.nn import HeteroConv, SAGEConv

from graphfusion.errors import ValidationError

__all__ = ["FusionGNN", "FEATURE_ATTRS"]

#: Node attributes read as input features, in this order, where present.
FEATURE_ATTRS = ("text_vec", "image_vec", "behaviour_vec")


class FusionGNN(nn.Module):
    """Heterogeneous message passing over the exported graph (see the module docstring).

    Args:
        data: The graph (from :func:`graphfusion.graph.to_heterodata`), with the training
            interactions only.
        dim: Embedding size.
        num_layers: Rounds of message passing.
        id_types: Node types that get a learnable id embedding besides their features.
        user: The user node type.
        item: The item node type.
    """

    def __init__(
        self,
        data: HeteroData,
        dim: int = 64,
        num_layers: int = 2,
        *,
        id_types: tuple[str, ...] = ("User", "Product"),
        user: str = "User",
        item: str = "Product",
    ) -> None:
        super().__init__()
        if user not in data.node_types or item not in data.node_types:
            raise ValidationError(f"the graph needs {user} and {item} nodes")
        self.user, self.item, self.num_layers = user, item, num_layers
        self.node_types = list(data.node_types)
        self.edge_types = [et for et in data.edge_types if data[et].edge_index.numel()]
        self.proj = nn.ModuleDict()
        self.ids = nn.ModuleDict()
        self._features: dict[str, Tensor] = {}
        for nt in self.node_types:
            attrs = [a for a in FEATURE_ATTRS if a in data[nt]]
            if attrs:
                x = torch.cat([data[nt][a] for a in attrs], dim=1)
                self._features[nt] = x
                self.proj[nt] = nn.Linear(x.shape[1], dim)
            if nt in id_types or not attrs:
                self.ids[nt] = nn.Embedding(data[nt].num_nodes, dim)
        self.edges = {et: data[et].edge_index for et in self.edge_types}
        self.convs = nn.ModuleList(
            HeteroConv(
                {et: SAGEConv((dim, dim), dim, aggr="mean") for et in self.edge_types},
                aggr="sum",
            )
            for _ in range(num_layers)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialize every weight."""
        for emb in self.ids.values():
            nn.init.normal_(emb.weight, std=0.1)  # type: ignore[arg-type]
        for lin in self.proj.values():
            lin.reset_parameters()  # type: ignore[operator]
        for conv in self.convs:
            conv.reset_parameters()  # type: ignore[operator]

    def inputs(self) -> dict[str, Tensor]:
        """Layer-0 embeddings: projected features plus id embeddings."""
        out: dict[str, Tensor] = {}
        for nt in self.node_types:
            parts = []
            if nt in self._features:
                parts.append(self.proj[nt](self._features[nt]))
            if nt in self.ids:
                parts.append(self.ids[nt].weight)
            out[nt] = torch.stack(parts).sum(0)
        return out

    def forward(self) -> dict[str, Tensor]:
        """Fused embeddings of every node type (the mean over layers)."""
        h = self.inputs()
        total = {nt: x for nt, x in h.items()}
        for conv in self.convs:
            msg = conv(h, self.edges)
            h = {nt: h[nt] + torch.relu(msg[nt]) if nt in msg else h[nt] for nt in h}
            total = {nt: total[nt] + h[nt] for nt in h}
        return {nt: x / (self.num_layers + 1) for nt, x in total.items()}

    def embeddings(self) -> tuple[Tensor, Tensor]:
        """Fused user and item embeddings."""
        out = self.forward()
        return out[self.user], out[self.item]

    def scores(self, users: Tensor) -> Tensor:
        """``(len(users), num_items)`` scores."""
        u, i = self.embeddings()
        return u[users] @ i.t()
