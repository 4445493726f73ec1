r"""The fusion GNN: modality vectors, the knowledge graph and the interactions in one embedding.

The model has two parts.

**Content tower** (inductive: it needs no interactions). Every node type starts from its
modality vectors (``text_vec`` and ``image_vec`` L2-normalized; the leak-free behaviour and
demographic features the trainer passes), each through its own two-layer MLP, summed; types
without vectors, such as Brand or Category, get a learnable id embedding instead. Then
``context_layers`` rounds of heterogeneous message passing over every relationship *except* the
user-product interactions: GraphSAGE with mean aggregation, one linear map per relationship type
summed over types (as :class:`torch_geometric.nn.HeteroConv` of
:class:`~torch_geometric.nn.SAGEConv` computes it, but with each mean a precomputed sparse CSR
product, several times faster on CPU), with a residual connection. Only the relationship types
whose messages can reach users and products are computed.

.. math::
    \mathbf{c}_v^{(0)} = \sum_m \mathrm{MLP}_{t(v),m}(\mathbf{x}^m_v)
        \;\text{or}\; \mathbf{e}_v, \qquad
    \mathbf{c}_v^{(l+1)} = \mathbf{c}_v^{(l)} + \mathrm{LeakyReLU}\Big(W_{t(v)}\mathbf{c}_v^{(l)}
        + \sum_{r} W_r \operatorname{mean}_{u \in N_r(v)} \mathbf{c}_u^{(l)}\Big)

So a product's content vector :math:`\mathbf{c}_i` gathers its title, its image (through
``HAS_IMAGE``), its brand, category, supplier and batch, and its training reviews; a user's
gathers the reviews they wrote and whom they follow.

**Collaborative part.** Users and products get an id embedding added to their content vector
(zero for products without training interactions; ``item_ids=False`` leaves products to their
content alone), then LightGCN propagation over the normalized user-product adjacency
(:func:`graphfusion.models.baselines.normalized_adjacency`), averaged over layers:

.. math::
    \mathbf{h}^{(0)} = \mathbf{c} + \mathbf{e}, \qquad
    \mathbf{h}^{(k+1)} = \tilde{A}\,\mathbf{h}^{(k)}, \qquad
    \mathbf{z} = \frac{1}{K+1}\sum_{k=0}^{K}\mathbf{h}^{(k)}

Scores are :math:`\mathbf{z}_u^\top\mathbf{z}_i + b_i` with a learned popularity term
:math:`b_i` (zero for products without training interactions). The training loss is BPR on
these scores plus ``content_weight`` times BPR on :math:`\mathbf{z}_u^\top\mathbf{c}_i` (content
only), so that a product no one has interacted with yet (cold start) is ranked by
:meth:`FusionGNN.cold_scores`.

**Neighbourhoods.** After training, the scores can be blended with fixed kernels
(:mod:`graphfusion.models.neighbourhood`): the content neighbourhood, the mean similarity of a
product's text and photo to those of the user's products; the learned neighbourhood, the
mean similarity of the product's fused vector (content vector, for :meth:`FusionGNN.cold_scores`)
to those of the user's products; the sharp one, its likeness to the most alike of them; the
price level of the product among products of its kind times the user's (when the graph gives
products a ``log_price``); the content profile of the users they follow (when it has
:data:`~graphfusion.models.neighbourhood.FOLLOW_EDGE` edges between users); and, with
``taste``, the scores of a content taste model (:mod:`graphfusion.models.taste`: users read
from the text, photo and price of their products through learned maps, trained as a listwise
softmax).
:func:`graphfusion.train.train` fits the blend weights on the validation split; they are zero,
and the scores the model's own, until then.

The ``behaviour_vec`` of users and products is *not* an input: it is counted from all
interactions, including those held out for validation and test.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import HeteroData
from torch_geometric.typing import EdgeType

from graphfusion.errors import ValidationError
from graphfusion.models.baselines import (
    bpr_loss,
    check_users,
    is_integer,
    layer_mean,
    normalized_adjacency,
    sparse_csr,
)
from graphfusion.models.neighbourhood import (
    FOLLOW_EDGE,
    KERNELS,
    ContentNeighbourhood,
    _unit,
    blend,
    check_follows,
    item_modalities,
)
from graphfusion.models.taste import FEATURE_MAX, TasteConfig, TasteInputs, TasteModel

__all__ = ["FusionGNN", "FEATURE_ATTRS", "INTERACTED"]

#: Node attributes read as input features, where present.
FEATURE_ATTRS = ("text_vec", "image_vec", "behaviour_vec", "profile_vec")
#: The edge type of the training interactions in the graph the model is given.
INTERACTED = "INTERACTED"


class FusionGNN(nn.Module):
    """The fusion model (see the module docstring).

    Args:
        data: The graph (from :func:`graphfusion.graph.to_heterodata`) whose user-product
            interactions are the training ones, as one edge type ``(user, INTERACTED, item)``
            (its reverse, if present, is ignored), with an optional ``edge_weight``: each
            interaction's strength in the neighbourhood profiles
            (:class:`~graphfusion.models.neighbourhood.ContentNeighbourhood`). An item
            attribute ``log_price`` (``(num_items,)``, NaN where unknown) and user-user
            :data:`~graphfusion.models.neighbourhood.FOLLOW_EDGE` edges give the price and
            followees kernels.
        dim: Embedding size.
        num_layers: LightGCN propagation steps over the interactions.
        context_layers: Message-passing rounds of the content tower.
        item_ids: Give products a learnable id embedding besides their content.
        content_weight: Weight of the content-only BPR term.
        neighbourhood_rank: Principal directions per modality of the content neighbourhood
            kernel (0: no kernel, and no learned neighbourhood either).
        fit_neighbourhood: Fit the kernel's principal directions (False when a checkpoint's
            are loaded next).
        taste: Give the model a :class:`~graphfusion.models.taste.TasteModel` (with the
            default :class:`~graphfusion.models.taste.TasteConfig` sizes) over the items'
            modality vectors and log prices, the ``taste`` kernel of the blends; the
            interactions' ``edge_attr`` are its pair features (none: each pair is described
            by a 1). It is trained apart (:func:`graphfusion.train.train` fits it after the
            GNN) and needs the neighbourhood (``neighbourhood_rank`` > 0, modality vectors).
        user: The user node type.
        item: The item node type.

    Raises:
        ValidationError: No users, items or interactions; a setting below 0; a feature that
            is not ``(num_nodes, width)``, or a behaviour or profile one that is not
            standardized; an edge to a node that does not exist.
    """

    adj: Tensor
    warm: Tensor

    def __init__(
        self,
        data: HeteroData,
        dim: int = 64,
        num_layers: int = 2,
        *,
        context_layers: int = 1,
        item_ids: bool = True,
        content_weight: float = 0.5,
        neighbourhood_rank: int = 128,
        fit_neighbourhood: bool = True,
        taste: bool = False,
        user: str = "User",
        item: str = "Product",
    ) -> None:
        super().__init__()
        if user not in data.node_types or item not in data.node_types:
            raise ValidationError(f"the graph needs {user} and {item} nodes")
        if (user, INTERACTED, item) not in data.edge_types:
            raise ValidationError(f"the graph needs ({user})-[:{INTERACTED}]->({item}) edges")
        if min(content_weight, num_layers, context_layers, neighbourhood_rank) < 0:
            raise ValidationError(
                "content_weight, num_layers, context_layers and neighbourhood_rank must be >= 0"
            )
        _check_graph(data, skip=f"rev_{INTERACTED}")
        self.user, self.item = user, item
        self.num_layers = num_layers
        self.content_weight = content_weight
        self.num_users = int(data[user].num_nodes)
        self.num_items = int(data[item].num_nodes)
        self.node_types = list(data.node_types)
        interactions = data[user, INTERACTED, item].edge_index
        self.register_buffer(
            "adj", normalized_adjacency(interactions, self.num_users, self.num_items),
            persistent=False,
        )  # fmt: skip
        warm = torch.zeros(self.num_items, dtype=torch.bool)
        warm[interactions[1]] = True
        self.register_buffer("warm", warm, persistent=False)
        # A popularity term per product (zero for products without training interactions).
        self.bias = nn.Parameter(torch.zeros(self.num_items))
        skip = {INTERACTED, f"rev_{INTERACTED}"}
        usable = [et for et in data.edge_types if et[1] not in skip and data[et].edge_index.numel()]
        # Only messages that can reach users and products within ``context_layers`` rounds are
        # computed: round l uses the edge types into the node types still needed after it.
        self.layer_edges: list[list[EdgeType]] = []
        needed = {user, item}
        for _ in range(context_layers):
            layer = [et for et in usable if et[2] in needed]
            self.layer_edges.insert(0, layer)
            needed = needed | {et[0] for et in layer}
        self.edge_types = list(dict.fromkeys(et for layer in self.layer_edges for et in layer))
        self.node_types = [nt for nt in self.node_types if nt in needed]
        sizes = {nt: int(data[nt].num_nodes) for nt in self.node_types}
        self._mean = {et: _mean_matrix(data[et].edge_index, sizes[et[2]], sizes[et[0]])
                      for et in self.edge_types}  # fmt: skip
        self._features: dict[str, dict[str, Tensor]] = {}
        self.proj = nn.ModuleDict()
        self.ids = nn.ModuleDict()
        for nt in self.node_types:
            feats = {a: _prepare(a, data[nt][a]) for a in FEATURE_ATTRS if a in data[nt]}
            if feats:
                self._features[nt] = feats
                self.proj[nt] = nn.ModuleDict({a: _mlp(x.shape[1], dim) for a, x in feats.items()})
            if nt == user or (nt == item and item_ids) or not feats:
                self.ids[nt] = nn.Embedding(int(data[nt].num_nodes), dim)
        # One SAGE-style round per layer: for each destination type, a linear map of itself
        # plus, per edge type into it, a linear map of the mean of its neighbours' vectors
        # (the mean as a precomputed row-normalized sparse matrix product).
        self.convs = nn.ModuleList()
        for layer in self.layer_edges:
            conv = nn.ModuleDict()
            for et in layer:
                conv[_name(et)] = nn.Linear(dim, dim, bias=False)
            for nt in dict.fromkeys(et[2] for et in layer):  # a stable order: the init is seeded
                conv[f"root:{nt}"] = nn.Linear(dim, dim)
            self.convs.append(conv)
        modalities = item_modalities(data, item) if neighbourhood_rank else {}
        self.neighbourhood = None
        if modalities:
            follows = (user, FOLLOW_EDGE, user)
            self.neighbourhood = ContentNeighbourhood(
                modalities, interactions, self.num_users, neighbourhood_rank,
                fit=fit_neighbourhood, strength=data[user, INTERACTED, item].get("edge_weight"),
                log_price=data[item].get("log_price"),
                follows=data[follows].edge_index if follows in data.edge_types else None,
            )  # fmt: skip
        self.taste_inputs: TasteInputs | None = None
        self.taste: TasteModel | None = None
        if taste and self.neighbourhood is not None:
            self._add_taste(data, modalities, fit_neighbourhood)
        self.reset_parameters()

    def _add_taste(self, data: HeteroData, modalities: dict[str, Tensor], fit: bool) -> None:
        """The taste model over the items' modality vectors and prices (its inputs' directions
        fitted here, or loaded next when not ``fit``); the pairs and follows it reads."""
        edges = data[self.user, INTERACTED, self.item]
        interactions = edges.edge_index
        self._taste_edges = interactions
        how = edges.get("edge_attr")
        self._how = (torch.ones(interactions.shape[1], 1) if how is None
                     else torch.nan_to_num(how.float()))  # fmt: skip
        if self._how.shape[0] != interactions.shape[1]:
            raise ValidationError("the interactions' edge_attr needs one row per interaction")
        follows = (self.user, FOLLOW_EDGE, self.user)
        self._taste_follows = check_follows(
            data[follows].edge_index if follows in data.edge_types else None, self.num_users
        )
        log_price = data[self.item].get("log_price")
        self._taste_raw = (modalities, log_price)
        self.taste_inputs = TasteInputs(
            {m: x.shape[1] for m, x in modalities.items()}, prices=log_price is not None
        )
        if fit:
            self.taste_inputs.fit(modalities, log_price)
        sizes = TasteConfig()
        self.taste = TasteModel(self.taste_inputs(modalities, log_price), self._how.shape[1],
                                self.warm, sizes.dim, sizes.hidden)  # fmt: skip
        self.register_load_state_dict_post_hook(_refresh_taste)

    @property
    def available(self) -> tuple[str, ...]:
        """The :data:`~graphfusion.models.neighbourhood.KERNELS` the model can blend."""
        if self.neighbourhood is None:
            return ()
        return (*self.neighbourhood.available, *(("taste",) if self.taste is not None else ()))

    def taste_pairs(self) -> tuple[Tensor, Tensor, Tensor | None]:
        """The training pairs, their features and the follows the taste model reads.

        Raises:
            ValidationError: The model has no taste model.
        """
        if self.taste is None:
            raise ValidationError("the model has no taste model")
        return self._taste_edges, self._how, self._taste_follows

    def reset_parameters(self) -> None:
        """Re-initialize every weight (ids Normal(0, 0.1), as LightGCN)."""
        for emb in self.ids.values():
            nn.init.normal_(emb.weight, std=0.1)  # type: ignore[arg-type]
        nn.init.zeros_(self.bias)
        for module in self.proj.modules():
            if isinstance(module, nn.Linear):
                module.reset_parameters()
        for module in self.convs.modules():
            if isinstance(module, nn.Linear):
                module.reset_parameters()

    # ------------------------------------------------------------------ content tower
    def _id(self, node_type: str) -> Tensor:
        emb = self.ids[node_type]
        assert isinstance(emb, nn.Embedding)
        return emb.weight

    def _inputs(self) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        for nt in self.node_types:
            if nt in self._features:
                proj = self.proj[nt]
                out[nt] = torch.stack(
                    [proj[a](x) for a, x in self._features[nt].items()]  # type: ignore[index]
                ).sum(0)
            elif nt not in (self.user, self.item):
                out[nt] = self._id(nt)
            else:  # a user or item type without features: no content, only its id
                out[nt] = torch.zeros_like(self._id(nt))
        return out

    def content(self) -> dict[str, Tensor]:
        """Content vectors of every node type (no interaction is used)."""
        return self.content_states()[-1]

    def content_states(self) -> list[dict[str, Tensor]]:
        """The content vectors before and after each message-passing round (``context_layers
        + 1`` dictionaries); what :meth:`item_content` reads neighbours from."""
        h = self._inputs()
        states = [h]
        for module, layer in zip(self.convs, self.layer_edges, strict=True):
            assert isinstance(module, nn.ModuleDict)
            msg: dict[str, Tensor] = {}
            for et in layer:
                part = module[_name(et)](self._mean[et] @ h[et[0]])
                msg[et[2]] = msg[et[2]] + part if et[2] in msg else part
            h = {nt: self._update(module, nt, x, msg.get(nt)) for nt, x in h.items()}
            states.append(h)
        return states

    @staticmethod
    def _update(conv: nn.ModuleDict, node_type: str, x: Tensor, msg: Tensor | None) -> Tensor:
        return x if msg is None else x + F.leaky_relu(msg + conv[f"root:{node_type}"](x), 0.2)

    def encode_inputs(self, node_type: str, features: dict[str, Tensor]) -> Tensor:
        """Round-0 content vectors of new nodes of ``node_type`` from their raw modality
        vectors (``(n, width)`` each, as :func:`graphfusion.graph.to_heterodata` gives them;
        a modality the model knows but ``features`` lacks counts as zeros).

        Raises:
            ValidationError: The type has no feature projections, or a width differs.
        """
        if node_type not in self._features:
            raise ValidationError(f"the model has no feature inputs for {node_type}")
        proj = self.proj[node_type]
        assert isinstance(proj, nn.ModuleDict)
        n = len(next(iter(features.values()))) if features else 1
        parts = []
        for attr, known in self._features[node_type].items():
            x = features.get(attr, torch.zeros(n, known.shape[1]))
            if x.dim() != 2 or x.shape[1] != known.shape[1]:
                raise ValidationError(f"{node_type}.{attr} must be (n, {known.shape[1]})")
            parts.append(proj[attr](_prepare(attr, x)))
        return torch.stack(parts).sum(0)

    def item_content(
        self, inputs: Tensor, neighbours: list[dict[EdgeType, list[Tensor]]]
    ) -> Tensor:
        """Content vectors of new items (inductive, no retraining), computed as
        :meth:`content` computes those of stored items.

        Args:
            inputs: ``(n, dim)`` round-0 vectors (:meth:`encode_inputs`).
            neighbours: Per new item, per edge type into the item type: the neighbours'
                vectors in each round (a list of ``(m, dim)`` tensors, one per round, from
                :meth:`content_states` for stored neighbours; a new neighbour, such as the
                item's new image, keeps its round-0 vector). Missing types: no neighbours.

        Returns:
            ``(n, dim)`` content vectors.
        """
        h = inputs
        for rnd, (module, layer) in enumerate(zip(self.convs, self.layer_edges, strict=True)):
            assert isinstance(module, nn.ModuleDict)
            into = [et for et in layer if et[2] == self.item]
            if not into:
                continue
            rows = []
            for i in range(len(h)):
                msg = torch.zeros_like(h[i])
                for et in into:
                    vecs = neighbours[i].get(et)
                    if vecs is not None and len(vecs[rnd]):
                        msg = msg + module[_name(et)](vecs[rnd].mean(0))
                rows.append(self._update(module, self.item, h[i], msg))
            h = torch.stack(rows)
        return h

    # ------------------------------------------------------------------ fused embeddings
    def _propagate(self, content: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        items = content[self.item]
        if self.item in self.ids:
            items = items + self._id(self.item) * self.warm.unsqueeze(1)
        x = torch.cat([content[self.user] + self._id(self.user), items])
        out = layer_mean(self.adj, x, self.num_layers)
        return out[: self.num_users], out[self.num_users :]

    def embeddings(self) -> tuple[Tensor, Tensor]:
        """Fused user and item embeddings."""
        return self._propagate(self.content())

    def forward(self) -> dict[str, Tensor]:
        """Content vectors of every type, with the fused ones for users and items."""
        content = self.content()
        users, items = self._propagate(content)
        return {**content, self.user: users, self.item: items}

    def _with_bias(self, u: Tensor, i: Tensor) -> tuple[Tensor, Tensor]:
        """``[u, 1]`` and ``[i, b_i]``: dot products of these add the item bias."""
        ones = torch.ones(len(u), 1, dtype=u.dtype)
        return torch.cat([u, ones], 1), torch.cat([i, (self.bias * self.warm).unsqueeze(1)], 1)

    def scores(self, users: Tensor) -> Tensor:
        """``(len(users), num_items)`` scores: fused dot products plus the item bias, blended
        with the neighbourhoods when their weights are set."""
        check_users(users, self.num_users)
        u, i = self.embeddings()
        ub, ib = self._with_bias(u, i)
        return self._blend(users, ub[users] @ ib.t(), 0, i)

    def cold_scores(self, users: Tensor) -> Tensor:
        """``(len(users), num_items)`` scores from the items' content vectors alone (blended
        with the neighbourhoods when their weights are set): how items without interactions
        are ranked."""
        check_users(users, self.num_users)
        content = self.content()
        u, _ = self._propagate(content)
        return self._blend(users, u[users] @ content[self.item].t(), 1, content[self.item])

    def kernels(
        self, users: Tensor, items: Tensor | None = None, names: Sequence[str] | None = None
    ) -> dict[str, Tensor]:
        """The neighbourhood kernels' scores by name (those of
        :data:`~graphfusion.models.neighbourhood.KERNELS` the model has, or ``names``), the
        learned one over ``items`` (``(num_items, dim)``: fused or content vectors).

        Raises:
            ValidationError: The model has no neighbourhood kernel, or not one of ``names``.
        """
        if self.neighbourhood is None:
            raise ValidationError("the model has no neighbourhood kernel")
        check_users(users, self.num_users)
        names = self.available if names is None else tuple(names)
        out = self.neighbourhood.kernels(users, items, [n for n in names if n != "taste"])
        if "taste" in names:
            if self.taste is None:
                raise ValidationError(f"no taste kernel here: {self.available}")
            pairs, how, follows = self.taste_pairs()
            vectors = self.taste.vectors_of(users, pairs, how, self.num_users, follows)
            out["taste"] = self.taste.scores(vectors)
        return out

    def _blend(self, users: Tensor, scores: Tensor, which: int, items: Tensor) -> Tensor:
        hood = self.neighbourhood
        if hood is None or not bool(hood.weight[which].any()):
            return scores
        weights = {k: w for k, w in zip(KERNELS, hood.weight[which].tolist(), strict=True)
                   if w and k in self.available}  # fmt: skip
        kernels = self.kernels(users, items, list(weights))
        return blend(scores, [kernels[k] for k in weights], list(weights.values()))

    def set_blend(self, warm: Sequence[float], cold: Sequence[float]) -> None:
        """Set the neighbourhood weights of :meth:`scores` and :meth:`cold_scores`, one per
        kernel of :data:`~graphfusion.models.neighbourhood.KERNELS` (see
        :func:`graphfusion.models.neighbourhood.blend`).

        Raises:
            ValidationError: A negative or non-finite weight, a wrong number of them, or a
                non-zero one for a kernel the model does not have.
        """
        weights = torch.tensor([list(warm), list(cold)], dtype=torch.float32)
        if weights.shape != (2, len(KERNELS)) or not bool(
            (torch.isfinite(weights) & (weights >= 0)).all()
        ):
            raise ValidationError(f"blend weights must be {len(KERNELS)} numbers, finite and >= 0")
        lacking = [k for k, used in zip(KERNELS, weights.any(0).tolist(), strict=True)
                   if used and k not in self.available]  # fmt: skip
        if lacking and self.neighbourhood is None:
            raise ValidationError("the model has no neighbourhood kernel")
        if lacking:
            raise ValidationError(f"the model has no {', '.join(lacking)} kernel")
        if self.neighbourhood is not None:
            self.neighbourhood.weight.copy_(weights)

    def loss(self, users: Tensor, pos: Tensor, neg: Tensor, reg: float) -> Tensor:
        """BPR on the fused scores plus ``content_weight`` times BPR on content-only scores."""
        content = self.content()
        u, i = self._propagate(content)
        loss = bpr_loss(users, pos, neg, *self._with_bias(u, i), reg=reg)
        if self.content_weight > 0:
            c = content[self.item]
            loss = loss + self.content_weight * bpr_loss(users, pos, neg, u, c, reg=reg)
        return loss


def _refresh_taste(module: nn.Module, _: Any) -> None:
    """After loading: the taste model's item features from the loaded input directions."""
    assert isinstance(module, FusionGNN) and module.taste_inputs is not None
    assert module.taste is not None
    with torch.no_grad():
        module.taste.features = module.taste_inputs(*module._taste_raw)


#: Features the model reads as they are (standardized by :mod:`graphfusion.features`); the
#: largest value it accepts in them (a standardized column of n values stays below sqrt(n)).
_READ_AS_THEY_ARE = ("behaviour_vec", "profile_vec")
_STANDARD_MAX = FEATURE_MAX


def _prepare(attr: str, x: Tensor) -> Tensor:
    """Embedding vectors are L2-normalized (:func:`~graphfusion.models.neighbourhood._unit`:
    whatever their scale; NaN and infinite entries as 0); behaviour and profile features are
    read as they are, standardized already (:mod:`graphfusion.features`), NaN as 0."""
    if attr in _READ_AS_THEY_ARE:
        return torch.nan_to_num(x.float())
    return _unit(x)


def _check_graph(data: HeteroData, skip: str) -> None:
    """Raise :class:`~graphfusion.errors.ValidationError` for a feature (of
    :data:`FEATURE_ATTRS`) that is not ``(num_nodes, width)`` with ``width >= 1``, a
    behaviour or profile feature that is not standardized (huge or infinite), or an edge
    type (but ``skip``) whose ``edge_index`` is not ``(2, E)`` integer rows of existing nodes
    (a sparse matrix built from one would corrupt memory)."""
    for nt in data.node_types:
        n = int(data[nt].num_nodes or 0)
        for attr in FEATURE_ATTRS:
            x = data[nt].get(attr)
            if x is None:
                continue
            if x.dim() != 2 or len(x) != n or not x.shape[1]:
                raise ValidationError(
                    f"{nt}.{attr} must be ({n}, width) with width >= 1, got {tuple(x.shape)}"
                )
            if (
                attr in _READ_AS_THEY_ARE
                and x.numel()
                and float(_prepare(attr, x).abs().max()) > _STANDARD_MAX
            ):
                raise ValidationError(
                    f"{nt}.{attr} must be standardized (finite, |value| <= {_STANDARD_MAX:g}): "
                    "the model reads it as it is"
                )
    for et in data.edge_types:
        ei = data[et].get("edge_index")
        if et[1] == skip or ei is None:
            continue
        if ei.dim() != 2 or ei.shape[0] != 2 or not is_integer(ei):
            raise ValidationError(f"{et[1]} edges must be a (2, E) integer edge_index")
        sizes = (int(data[et[0]].num_nodes or 0), int(data[et[2]].num_nodes or 0))
        if ei.numel() and (
            int(ei.min()) < 0 or int(ei[0].max()) >= sizes[0] or int(ei[1].max()) >= sizes[1]
        ):
            raise ValidationError(
                f"({et[0]})-[:{et[1]}]->({et[2]}) edges refer to nodes that do not exist "
                f"({sizes[0]} and {sizes[1]} nodes)"
            )


def _name(et: EdgeType) -> str:
    return "__".join(et)


def _mean_matrix(edge_index: Tensor, num_dst: int, num_src: int) -> Tensor:
    """``(num_dst, num_src)`` sparse CSR matrix whose product with source vectors gives each
    destination the mean of its neighbours (rows without neighbours are zero)."""
    src, dst = edge_index
    deg = torch.bincount(dst, minlength=num_dst).clamp(min=1).float()
    return sparse_csr(torch.stack([dst, src]), 1.0 / deg[dst], (num_dst, num_src))


def _mlp(width: int, dim: int) -> nn.Module:
    return nn.Sequential(nn.Linear(width, dim), nn.LeakyReLU(0.2), nn.Linear(dim, dim))
