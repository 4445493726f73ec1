"""Recommendation as a service: top-K with filters, cold start, explanations, live updates.

A :class:`Recommender` serves the last trained model of a store (``models/<model>.pt`` in the
store folder, written by :func:`graphfusion.train.train`) from memory:

- **Scores.** For the fusion model the graph is exported once and the model rebuilt with
  every stored interaction (those after training included): user and product vectors are its
  fused embeddings, plus the product bias, blended with its neighbourhoods (the likeness of a
  product's text and photo, and of its fused vector, to those of the user's products; its
  price level among products of its kind times the user's; the likeness to the products of
  whom the user follows; its taste model's scores, from the user's products, each pair
  described by the types that link it and their weights), with the weights chosen on
  validation when it was trained (:mod:`graphfusion.models.neighbourhood`,
  :mod:`graphfusion.models.taste`). For LightGCN and MF
  the stored ``fused_vec`` are used.
  ``recommend`` scores every product with one matrix-vector product (5k products: well under
  a millisecond), applies the filters as masks, takes the best candidates with
  ``argpartition`` and re-ranks them exactly; ``diversity`` re-ranks by maximal marginal
  relevance over the products' vectors.
- **Light and new users** (at most :data:`LIGHT_USER_MAX` products interacted with, of any
  type: a view and a purchase of one product count once) get the light-user
  blend of :mod:`graphfusion.light`: popularity, the mean fused vector of the products they
  interacted with, the mean user vector of users with the same demographics (age, gender
  and occupation, as far as they are known) and the model's own scores (when it has a
  vector for them), each standardized over the products, with the weights training chose on
  the store (``TrainConfig(light_users=...)``) or :data:`graphfusion.light.DEFAULT_WEIGHTS`.
  A user with nothing known gets popularity: never an error.
  ``python -m benchmarks.light_users`` measures it.
- **New products** get a vector at once through the fusion model's content path
  (:meth:`graphfusion.models.fusion.FusionGNN.item_content`): their text, image and price
  vectors and their brand, category, supplier and batch, without retraining. It is written to
  the store as ``fused_vec``, so ``Engine.similar(key, modality="fused")`` sees it, and its
  ``rec_vec`` (:mod:`graphfusion.rec_vectors`) is fitted to the served scores of a sample of
  users, so the Cypher recipes rank it.
- **Explanations** are graph evidence with the node keys of their path: products of the same
  brand or category the user interacted with, a product of theirs whose image looks alike,
  and products they interacted with that other users interacted with together with this one;
  when none of these, its popularity (other users' interactions with it), if it has any.
- **Live updates.** :meth:`Recommender.add_interactions` and :meth:`Recommender.add_products`
  write to the store through the validated loader (bad rows are reported with their line) and
  update the serving state: a user's vector moves to the mean of their vector and the vectors
  of the products they just interacted with (weighted by counts; written back as
  ``fused_vec``), and their ``rec_vec`` is fitted to their served scores now; new products
  are embedded and pass the content path. A later ``train()`` folds everything in properly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from graphfusion.columnar import find_key, key_list
from graphfusion.errors import NotFoundError, NotReadyError, ValidationError
from graphfusion.features.behaviour import FEATURES
from graphfusion.features.demographics import Demographics, demographic_features
from graphfusion.features.embed import embed, write_vectors
from graphfusion.features.image import ImageEncoder
from graphfusion.features.text import TextEncoder
from graphfusion.graph import REVERSE_PREFIX, GraphExport, _vectors, to_heterodata, unit_rows
from graphfusion.ingest import LoadReport, Reject, load
from graphfusion.light import DEFAULT_WEIGHTS, light_parts, peer_rows, standard
from graphfusion.locks import ReadWriteLock
from graphfusion.models.fusion import FEATURE_ATTRS, FusionGNN
from graphfusion.models.neighbourhood import (
    FOLLOW_EDGE,
    IMAGE_EDGE,
    KERNELS,
    ContentNeighbourhood,
    blend,
    kernel_scores,
    pooled,
    price_levels,
)
from graphfusion.rec_vectors import PROPERTY as REC_PROPERTY
from graphfusion.rec_vectors import (
    fit_factors,
    product_rec_vectors,
    read_rec_vectors,
    user_rec_vectors,
)
from graphfusion.schema import Schema
from graphfusion.store.base import BaseStore, _check_frame
from graphfusion.topk import top_rows
from graphfusion.train import (
    LEAK_FREE_BEHAVIOUR,
    MODELS,
    SERVED_FILE,
    TrainConfig,
    _training_graph,
    link_matrices,
    pair_features,
    pair_strength,
    product_log_prices,
    served_model,
    store_models_dir,
    writing_model,
)
from graphfusion.values import count_arg, folded, real_arg

__all__ = ["Recommender", "Reason", "LIGHT_USER_MAX", "MAX_K"]


#: Users with at most this many interactions are served by the cold-start blend.
LIGHT_USER_MAX = 2

#: Users whose served scores place a new product's ``rec_vec`` (:mod:`graphfusion.rec_vectors`).
REC_FIT_USERS = 256

#: The largest ``k`` a call may ask for.
MAX_K = 1_000
#: Candidates taken from the full scoring before filters' ties and MMR re-ranking.
CANDIDATES_PER_K = 10
#: Cosine similarity of product images above which "looks like" is a reason.
LOOKS_LIKE_MIN = 0.8
#: Interaction types a live update may add.
LIVE_TYPES = ("VIEWED", "PURCHASED", "FAVORITED")
#: How a ``yours`` reason names each interaction type, in its order.
_PAST = {"PURCHASED": "purchased", "FAVORITED": "favourited", "RATED": "rated",
         "VIEWED": "viewed"}  # fmt: skip
#: The links of :meth:`Recommender.add_products` that a changed product's row replaces where
#: the product had one (a category, a brand), by column: (relationship type, label). A product
#: with several (a film's genres, both levels of an Amazon category) gains the new one, as do
#: supplier and batch links: a product may come from several of each.
REPLACED_LINKS = {"category_id": ("IN_CATEGORY", "Category"), "brand_id": ("OF_BRAND", "Brand")}
#: The columns :meth:`Recommender.add_interactions` reads (the live_interactions mapping's).
INTERACTION_COLUMNS = ("user_id", "product_id", "type", "ts", "weight")
#: The columns :meth:`Recommender.add_products` reads (the live_products mapping's).
PRODUCT_COLUMNS = ("id", "title", "description", "price", "currency", "created_at",
                   "category_id", "brand_id", "supplier_id", "batch_id", "image")  # fmt: skip


def _past(rtype: str) -> str:
    """How a ``yours`` reason says the user made an interaction of ``rtype``."""
    return _PAST.get(rtype, f"had an interaction of type {rtype} with")


def _past_order(rtype: str) -> tuple[int, str]:
    return (list(_PAST).index(rtype) if rtype in _PAST else len(_PAST), rtype)


@dataclass(frozen=True)
class Reason:
    """One piece of evidence for a recommendation.

    Attributes:
        kind: ``yours`` (the user has interacted with the product itself), ``brand``,
            ``category``, ``looks_like``, ``also_interacted`` or ``popular``.
        text: For people, e.g. "you interacted with 2 product(s) of brand Acme".
        path: The nodes of the evidence as ``(label, key)`` pairs, in order from the user to
            the recommended product: the user, the products of theirs that give it (up to
            three; each linked to the user and to the next node, which is not a path through
            them), the brand or category it goes through, and the product.
        strength: How strong the evidence is (counts or a similarity), for ordering.
    """

    kind: str
    text: str
    path: tuple[tuple[str, str], ...]
    strength: float

    def to_dict(self) -> dict[str, Any]:
        """As plain data."""
        return {
            "kind": self.kind,
            "text": self.text,
            "path": [{"label": label, "key": key} for label, key in self.path],
            "strength": round(float(self.strength), 4),
        }


@dataclass
class _Catalogue:
    """Product facts for filters and reasons, row-aligned with the items. ``category`` and
    ``brand`` are the one shown per product; ``categories`` and ``brands`` all it links to
    (a film's genres, both levels of an Amazon category)."""

    title: list[str]
    price: np.ndarray
    category: list[str | None]
    category_names: dict[str, str]
    parents: dict[str, set[str]]
    brand: list[str | None]
    brand_names: dict[str, str]
    image: np.ndarray  # unit image vectors (zeros where none)
    categories: list[frozenset[str]]
    brands: list[frozenset[str]]
    folded: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict, repr=False)

    def category_mask(self, value: str) -> np.ndarray:
        ok = self._named("category", self.category_names, value)
        grown = ok
        while grown:  # the subcategories of those found, at any depth
            grown = {c for c, parents in self.parents.items() if not parents.isdisjoint(ok)}
            grown -= ok
            ok |= grown
        return np.array([not c.isdisjoint(ok) for c in self.categories], dtype=bool)

    def brand_mask(self, value: str) -> np.ndarray:
        ok = self._named("brand", self.brand_names, value)
        return np.array([not b.isdisjoint(ok) for b in self.brands], dtype=bool)

    def _named(self, what: str, names: Mapping[str, str], value: str) -> set[str]:
        """The keys of ``names`` (key -> name) whose key or name is ``value``, as
        :func:`~graphfusion.values.folded` compares them (the names folded once).

        Raises:
            ValidationError: None is.
        """
        if what not in self.folded:
            self.folded[what] = [(key, folded(key), folded(name)) for key, name in names.items()]
        wanted = folded(value)
        ok = {key for key, *forms in self.folded[what] if wanted in forms}
        if not ok:
            raise ValidationError(f"no {what} with the id or name {value!r}")
        return ok


@dataclass
class _State:
    users: list[str]
    items: list[str]
    user_index: dict[str, int]
    item_index: dict[str, int]
    user_vecs: np.ndarray  # (n_u, d)
    item_vecs: np.ndarray  # (n_i, d)
    item_bias: np.ndarray  # (n_i,)
    seen: sp.csr_matrix  # users x items, interaction counts over all types
    by_type: dict[str, sp.csr_matrix]
    weights: dict[str, sp.csr_matrix]  # users x items, summed link weights per type
    profile: np.ndarray | None  # users' demographic one-hots
    trained_users: np.ndarray  # bool: the user had interactions when the vectors were made
    kernel: np.ndarray | None = None  # (n_i, r) content-neighbourhood vectors (fusion only)
    kernel_weights: tuple[float, ...] = ()  # per neighbourhood.KERNELS
    levels: np.ndarray | None = None  # (n_i,) price levels, with the price kernel
    follows: sp.csr_matrix | None = None  # users x users, with the followees kernel
    taste: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # taste model's q, e, bias
    rec: tuple[np.ndarray, np.ndarray] | None = None  # stored rec_vec factors (users, items)
    extra: dict[str, Any] = field(default_factory=dict)


class Recommender:
    """Serves recommendations from a store's trained model (see the module docstring).

    Args:
        store: The store.
        model: ``fusion``, ``lightgcn`` or ``mf``; the first one trained, in that order, when
            None.
        models_dir: Where the checkpoints are (the store's ``models/`` folder by default).

    Raises:
        ValidationError: An unknown model.
        NotReadyError: (a ValidationError) No trained model; the store changed in a way the
            model cannot follow (for the fusion model: a vector embedded, or a node or
            relationship type loaded or emptied, after training; retrain); the store does
            not hold the LightGCN or MF model's vectors (trained on another store, or not
            written back); or a write-back stopped half way (train again).
    """

    def __init__(
        self,
        store: BaseStore,
        *,
        model: str | None = None,
        models_dir: str | Path | None = None,
    ) -> None:
        self.store = store
        #: Requests read the serving state side by side; live updates change it alone.
        self._lock = ReadWriteLock()
        folder = Path(models_dir) if models_dir else store_models_dir(store)
        served = served_model(folder)
        writing = writing_model(folder)
        if writing is not None:
            raise NotReadyError(
                f"writing the {writing} model's vectors to the store stopped half way (noted "
                f"in {folder / SERVED_FILE}): they may be mixed with another model's; train "
                f"{writing} again"
            )
        if model is None and served is not None and not (folder / f"{served}.pt").exists():
            raise NotReadyError(
                f"the store holds the vectors of the {served} model, whose checkpoint is not in "
                f"{folder} (trained with another models folder?); pass its folder as "
                "models_dir, or train again"
            )
        names = [model] if model else [m for m in (served, *MODELS) if m and m != "popularity"]
        for name in names:
            if name not in MODELS or name == "popularity":
                raise ValidationError(f"unknown model {name!r}; use fusion, lightgcn or mf")
            if (folder / f"{name}.pt").exists():
                self.checkpoint = folder / f"{name}.pt"
                break
        else:
            raise NotReadyError(
                f"no trained model in {folder}; run `graphfusion train` (or Engine.train) first"
            )
        ckpt = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
        saved = ckpt["config"]
        # a checkpoint from before type_weights existed was trained with every pair counting
        # once; one from before the taste model has none
        self.config = TrainConfig(**{**saved, "interactions": tuple(saved["interactions"]),
                                     "type_weights": saved.get("type_weights"),
                                     "taste_epochs": saved.get("taste_epochs", 0)})  # fmt: skip
        self.model_name = self.config.model
        # LightGCN and MF are served from the stored vectors: they must be this model's
        if self.model_name != "fusion" and not ckpt.get("written_back", True):
            raise NotReadyError(
                f"the {self.model_name} model's vectors were not written to the store (its dim "
                "differs from the schema's); train it with the schema's dim to serve it"
            )
        if self.model_name != "fusion" and served not in (None, self.model_name):
            raise NotReadyError(
                f"the store holds the vectors of the {served} model trained since; train "
                f"{self.model_name} again to serve it"
            )
        demographics = ckpt.get("demographics")  # none in a checkpoint from before it was kept
        #: The users' demographic columns as the model was trained with them.
        self.demographics = Demographics.from_dict(demographics) if demographics else None
        #: The demographic columns of each property (:func:`graphfusion.light.peer_rows`).
        self._blocks = self.demographics.blocks() if self.demographics is not None else None
        self.fusion: FusionGNN | None = None
        self._encoders: tuple[TextEncoder, ImageEncoder] | None = None
        self._export: GraphExport | None = None
        #: The log prices and text of the products price levels are measured against (those
        #: the model was trained with): set with the price kernel (:meth:`_price_levels`).
        self._level_reference: tuple[torch.Tensor, torch.Tensor] | None = None
        #: The light-user blend's weights (:mod:`graphfusion.light`).
        self.light_weights: dict[str, float] = {**DEFAULT_WEIGHTS, **ckpt.get("light_weights", {})}
        self._build(ckpt)

    # ------------------------------------------------------------------ building
    def _build(self, ckpt: Mapping[str, Any]) -> None:
        store = self.store
        export = to_heterodata(store)
        self._export = export
        users = export.ids.get("User", [])
        items = export.ids.get("Product", [])
        if not users or not items:
            raise NotReadyError("the store has no users or no products")
        user_index = export.index["User"]
        item_index = export.index["Product"]
        by_type, weights = {}, {}
        for rtype in self.config.interactions:
            if rtype not in store.schema.relationships:
                continue
            by_type[rtype], weights[rtype] = link_matrices(store, rtype, users, items)
        seen = sum(by_type.values(), sp.csr_matrix((len(users), len(items)))).tocsr()
        profile = demographic_features(store, users, self.demographics)
        strength = None
        if self.model_name == "fusion":
            strength = pair_strength(by_type, self.config.type_weights, seen.shape)
            user_vecs, item_vecs, bias = self._fusion_vectors(
                ckpt, export, strength, weights, profile
            )
        else:
            user_vecs = self._stored_vectors("User", users)
            item_vecs = self._stored_vectors("Product", items)
            bias = np.zeros(len(items), dtype=np.float32)
            for label, vecs in (("product", item_vecs), ("user", user_vecs)):
                if not vecs.any():  # every one would be a zero vector: served as popularity
                    raise NotReadyError(
                        f"the store holds no {self.model_name} vectors (no {label} has a "
                        f"fused_vec of size {self.config.dim}): {self.checkpoint} was trained "
                        f"on another store, or its vectors never reached this one; train "
                        f"{self.model_name} on this store to serve it"
                    )
        counts = np.asarray(seen.sum(axis=1)).ravel()
        self.state = _State(
            users=list(users), items=list(items), user_index=dict(user_index),
            item_index=dict(item_index), user_vecs=user_vecs, item_vecs=item_vecs,
            item_bias=bias, seen=seen, by_type=by_type, weights=weights, profile=profile,
            trained_users=counts > 0,
        )  # fmt: skip
        if strength is not None:  # what _strength() would compute again on the first request
            self.state.extra["strength"] = strength
        hood = self.fusion.neighbourhood if self.fusion is not None else None
        if hood is not None and bool(hood.weight[0].any()):
            self.state.kernel = hood.vectors()[1].numpy().copy()
            self.state.kernel_weights = tuple(hood.weight[0].tolist())
            if "price" in hood.available:
                trained = ckpt.get("node_ids", {}).get("Product")
                self.state.levels = self._price_levels(hood, trained, items)
            follows = export.data.edge_index_dict.get(("User", FOLLOW_EDGE, "User"))
            if follows is not None:
                ones = np.ones(follows.shape[1], dtype=np.float32)
                shape = (len(users), len(users))
                self.state.follows = sp.csr_matrix((ones, follows.numpy()), shape)
            taste = self.fusion.taste if self.fusion is not None else None
            if taste is not None:
                with torch.no_grad():
                    self.state.taste = (taste.input_vectors().numpy().copy(),
                                        taste.item_vectors().numpy().copy(),
                                        (taste.bias * taste.warm).numpy().copy())  # fmt: skip
        self.catalogue = self._catalogue(export, items)

    def _price_levels(
        self, hood: ContentNeighbourhood, trained: Sequence[str] | None, items: list[str]
    ) -> np.ndarray:
        """``(n_i,)`` the price levels of the products ``items`` (the rows of ``hood``),
        measured among the products the model was trained with (``trained``, the
        checkpoint's; None: all of them), as they were then: each of those among the others,
        each product added since against them, as :meth:`add_products` placed it live. A
        restart thus serves the levels served before it (new products in the reference moved
        the levels of every product near them). Keeps the reference for later new products.
        """
        known = None if trained is None else set(trained)
        mask = np.array([known is None or key in known for key in items], dtype=bool)
        price, text = hood._log_price, hood._level_text(hood._raw)
        assert price is not None  # the price kernel is available
        if mask.all():  # nothing added since training: the neighbourhood's own levels
            self._level_reference = (price, text)
            return hood.levels().numpy().copy()
        old = torch.from_numpy(np.flatnonzero(mask))
        new = torch.from_numpy(np.flatnonzero(~mask))
        self._level_reference = (price[old], text[old])
        levels = torch.zeros(len(items))
        levels[old] = price_levels(price[old], text[old], price[old], text[old])
        levels[new] = price_levels(price[new], text[new], *self._level_reference,
                                   exclude_self=False)  # fmt: skip
        return levels.numpy()

    def _fusion_vectors(
        self,
        ckpt: Mapping[str, Any],
        export: GraphExport,
        strength: sp.csr_matrix,
        weights: Mapping[str, sp.csr_matrix],
        profile: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        coo = strength.tocoo()
        edges = torch.tensor(np.vstack([coo.row, coo.col]), dtype=torch.long)
        how = pair_features(weights, self.config.interactions, coo.row, coo.col)
        users, items = export.ids["User"], export.ids["Product"]
        data, ids = _training_graph(
            self.store,
            edges,
            set(),
            self.config.interactions,
            users,
            items,
            export=export,
            strength=torch.tensor(coo.data, dtype=torch.float32),
            how=torch.from_numpy(how),
            profile=profile,
        )
        cfg = self.config
        model = FusionGNN(
            data, cfg.dim, cfg.layers, context_layers=cfg.context_layers,
            item_ids=cfg.item_ids, content_weight=cfg.content_weight,
            neighbourhood_rank=cfg.neighbourhood_rank, fit_neighbourhood=False,
            taste=cfg.taste_epochs > 0,
        )  # fmt: skip
        current = model.state_dict()
        self._check_known(ckpt.get("node_ids", {}), ids)
        state = _remap(ckpt["state_dict"], ckpt.get("node_ids", {}), ids, current)
        changes = _checkpoint_changes(state, current)
        if changes:
            raise NotReadyError(
                f"the graph changed since the fusion model was trained ({self.checkpoint}) in "
                f"ways its weights cannot follow: {'; '.join(changes)}; retrain it "
                "(`graphfusion train`, or Engine.train) to serve it"
            )
        # a checkpoint from before the content neighbourhood existed has none of its keys
        # (_checkpoint_changes allows that): it serves without the blend
        model.load_state_dict(state, strict=False)
        model.eval()
        self.fusion = model
        with torch.no_grad():
            self._states = model.content_states()
            u, i = model._propagate(self._states[-1])
            bias = (model.bias * model.warm).numpy()
        return u.numpy().copy(), i.numpy().copy(), bias.astype(np.float32)

    def _check_known(
        self, saved: Mapping[str, Sequence[str]], ids: Mapping[str, Sequence[str]]
    ) -> None:
        """Refuse a fusion checkpoint that knows none of the store's users and products
        (``saved``, the checkpoint's keys; ``ids``, the store's): another store's model would
        serve with every id embedding and product bias zero, without a word. A checkpoint
        from before the keys were kept passes.

        Raises:
            NotReadyError: Naming the checkpoint and what to do.
        """
        if not all(saved.get(label) for label in ("User", "Product")):
            return
        if any(set(saved[label]).intersection(ids.get(label, ())) for label in ("User", "Product")):
            return
        raise NotReadyError(
            f"the fusion model {self.checkpoint} was trained on none of this store's users or "
            "products (on another store, or its users and products were all replaced since); "
            "pass this store's models folder as models_dir, or train on this store"
        )

    def _stored_vectors(self, label: str, keys: list[str]) -> np.ndarray:
        table = self.store.query_arrow(
            f"MATCH (n:{label}) WHERE n.fused_vec IS NOT NULL RETURN n.id AS id, n.fused_vec AS v"
        )
        dim = self.config.dim
        out = np.zeros((len(keys), dim), dtype=np.float32)
        index = {k: i for i, k in enumerate(keys)}
        for key, vec in zip(table.column("id").to_pylist(), table.column("v").to_pylist(),
                            strict=True):  # fmt: skip
            if key in index and vec is not None and len(vec) == dim:
                out[index[key]] = vec
        return out

    def _catalogue(
        self,
        export: GraphExport,
        items: list[str],
        fresh: Sequence[str] = (),
        photos: np.ndarray | None = None,
    ) -> _Catalogue:
        """What the reasons and filters read of each product; the photos of the products
        ``fresh`` (added or changed live) from the store, the others' from ``photos`` (the
        unit photo vectors served so far, of the first products ``items``) or, without
        them, from ``export``."""
        q = self.store.query_arrow
        schema = self.store.schema
        product = schema.node("Product")
        read = ", ".join(
            f"p.{n} AS {n}" if product.has_property(n) else f"NULL AS {n}"
            for n in ("title", "price")
        )
        facts = q(f"MATCH (p:Product) RETURN p.id AS id, {read}")
        index = {k: i for i, k in enumerate(items)}
        title = [""] * len(items)
        price = np.full(len(items), np.nan)
        for key, t, pr in zip(*(facts.column(c).to_pylist() for c in ("id", "title", "price")),
                              strict=True):  # fmt: skip
            if key in index:
                title[index[key]] = t or ""
                price[index[key]] = np.nan if pr is None else float(pr)
        category: list[str | None] = [None] * len(items)
        brand: list[str | None] = [None] * len(items)
        categories: list[set[str]] = [set() for _ in items]
        brands: list[set[str]] = [set() for _ in items]
        for rel, label, out, every in (
            ("IN_CATEGORY", "Category", category, categories),
            ("OF_BRAND", "Brand", brand, brands),
        ):
            if rel not in self.store.schema.relationships:
                continue
            rows = q(
                f"MATCH (p:Product)-[:{rel}]->(n:{label}) "
                f"RETURN p.id AS p, n.{_key_of(schema, label)} AS n"
            )
            for p, n in zip(rows.column("p").to_pylist(), rows.column("n").to_pylist(),
                            strict=True):  # fmt: skip
                if p in index:
                    every[index[p]].add(n)
                    if out[index[p]] is None:
                        out[index[p]] = n
        names = {
            label: {
                r["id"]: r["name"] or r["id"]
                for r in self.store.query(
                    f"MATCH (n:{label}) RETURN n.{_key_of(schema, label)} AS id, n.name AS name"
                )
            }
            for label in ("Category", "Brand")
            if label in schema.nodes and schema.node(label).has_property("name")
        }
        parents: dict[str, set[str]] = {}
        if "SUBCATEGORY_OF" in schema.relationships:
            key = _key_of(schema, "Category")
            for r in self.store.query(
                "MATCH (c:Category)-[:SUBCATEGORY_OF]->(p:Category) "
                f"RETURN c.{key} AS c, p.{key} AS p"
            ):
                parents.setdefault(r["c"], set()).add(r["p"])
        if photos is None:
            images = _product_images(export, len(items))
        else:  # those served, photos read live before included; products added since grow it
            images = np.zeros((len(items), photos.shape[1]), dtype=np.float32)
            images[: len(photos)] = photos
        if fresh:
            rows = [index[k] for k in fresh]
            images[rows] = _stored_product_images(self.store, list(fresh), images.shape[1])
        return _Catalogue(title, price, category, names.get("Category", {}), parents, brand,
                          names.get("Brand", {}), images, [frozenset(c) for c in categories],
                          [frozenset(b) for b in brands])  # fmt: skip

    # ------------------------------------------------------------------ scoring
    def _user_row(self, user_id: object) -> int:
        if not isinstance(user_id, str) or not user_id.strip():
            raise ValidationError("user_id must be a non-empty string")
        row = find_key(self.state.user_index, user_id)
        if row is None:
            hint = self._stored_as("users", user_id, self.state.users)
            raise NotFoundError(f"no user {user_id!r} in the store{hint}")
        return row

    def _item_row(self, product_id: object) -> int:
        if not isinstance(product_id, str) or not product_id.strip():
            raise ValidationError("product_id must be a non-empty string")
        row = find_key(self.state.item_index, product_id)
        if row is None:
            hint = self._stored_as("items", product_id, self.state.items)
            raise NotFoundError(f"no product {product_id!r} in the store{hint}")
        return row

    def _stored_as(self, what: str, key: str, keys: list[str]) -> str:
        """`` (did you mean 'u0001'?)`` for a ``key`` not stored that one of ``keys`` is, as
        :func:`~graphfusion.values.folded` compares them (spaces around it, another case);
        empty when none is. The folded keys are cached until the serving state changes."""
        extra = self.state.extra
        if f"folded {what}" not in extra:
            forms: dict[str, str] = {}
            for stored in keys:
                forms.setdefault(folded(stored), stored)
            extra[f"folded {what}"] = forms
        near = extra[f"folded {what}"].get(folded(key))
        return f" (did you mean {near!r}?)" if near is not None else ""

    def scores(self, user_id: str) -> tuple[np.ndarray, str]:
        """Scores of every product for a user, and how they were made (``model`` or
        ``cold-start blend``)."""
        with self._lock.read():
            return self._scores(user_id)

    def _scores(self, user_id: str) -> tuple[np.ndarray, str]:
        """:meth:`scores`, the lock held."""
        u = self._user_row(user_id)
        if self._by_model(np.array([u]))[0]:
            return self._model_scores([u])[0], "model"
        return self._blend(u), "cold-start blend"

    def _by_model(self, rows: np.ndarray) -> np.ndarray:
        """Which of the user ``rows`` the model serves: those with a vector and more than
        :data:`LIGHT_USER_MAX` interactions (the others get the cold-start blend)."""
        known = np.any(self.state.user_vecs[rows], axis=1)
        return np.asarray((self._interactions(rows) > LIGHT_USER_MAX) & known)

    def _interactions(self, rows: np.ndarray) -> np.ndarray:
        """Products each of the user ``rows`` has interacted with (any type), now."""
        indptr = self.state.seen.indptr
        return np.asarray(indptr[rows + 1] - indptr[rows])

    def _served_scores(self, users: Sequence[int]) -> np.ndarray:
        """``(len(users), n_i)``: :meth:`scores` of the user rows ``users``, those the model
        serves scored together."""
        rows = np.asarray(users, dtype=np.int64)
        model = self._by_model(rows)
        out = np.empty((len(rows), len(self.state.items)))
        if model.any():
            out[model] = self._model_scores(rows[model].tolist())
        for k in np.flatnonzero(~model):
            out[k] = self._blend(int(rows[k]))
        return out

    def _model_scores(self, users: Sequence[int]) -> np.ndarray:
        """``(len(users), n_i)`` the model's scores for users with a vector: fused dot
        products and the product bias, blended with the neighbourhoods of everything they have
        interacted with now (the users without interactions keep the model's scores)."""
        st = self.state
        rows = np.asarray(users, dtype=np.int64)
        scores = st.user_vecs[rows] @ st.item_vecs.T + st.item_bias
        if st.kernel is None:
            return scores
        weights = {k: w for k, w in zip(KERNELS, st.kernel_weights, strict=True) if w}
        active = self._interactions(rows) > 0
        if weights and active.any():
            kernels = self._kernels(rows[active].tolist(), list(weights))
            scores[active] = blend(torch.from_numpy(scores[active]),
                                   [kernels[k] for k in weights],
                                   list(weights.values())).numpy()  # fmt: skip
        return scores

    def _kernels(self, users: list[int], names: list[str]) -> dict[str, torch.Tensor]:
        """``(len(users), n_i)`` scores of the neighbourhood kernels ``names`` for the user
        rows ``users`` (:func:`~graphfusion.models.neighbourhood.kernel_scores`, and the taste
        model's) over everything they and whom they follow have interacted with now, each pair
        weighted by its strength (described by its types and weights, for the taste model)."""
        st = self.state
        assert st.kernel is not None
        index = {u: k for k, u in enumerate(dict.fromkeys(users))}
        edges: list[tuple[int, int]] = []
        if {"followees", "taste"} & set(names) and st.follows is not None:
            for u in list(index):
                for f in st.follows.indices[st.follows.indptr[u] : st.follows.indptr[u + 1]]:
                    edges.append((index[u], index.setdefault(int(f), len(index))))
        rows = list(index)
        pairs = self._strength()[rows].tocoo()
        n_i = len(st.items)
        levels = st.levels if st.levels is not None else np.zeros(n_i, dtype=np.float32)
        local = torch.tensor(np.vstack([pairs.row, pairs.col]))
        follows = torch.tensor(edges, dtype=torch.long).reshape(-1, 2).t()
        distinct = torch.arange(len(set(users)))  # the first rows (sharp wants no repeats)
        with torch.no_grad():
            out = kernel_scores(
                [n for n in names if n != "taste"], distinct, local,
                len(rows), torch.from_numpy(st.kernel),
                strength=torch.from_numpy(pairs.data.astype(np.float32)),
                learned=torch.from_numpy(st.item_vecs), levels=torch.from_numpy(levels),
                follows=follows,
            )  # fmt: skip
            if "taste" in names:
                out["taste"] = self._taste_kernel(rows, pairs, local, follows)[distinct]
        pick = torch.tensor([index[u] for u in users])
        return {name: scores[pick] for name, scores in out.items()}

    def _taste_kernel(
        self, rows: list[int], pairs: sp.coo_matrix, local: torch.Tensor, follows: torch.Tensor
    ) -> torch.Tensor:
        """``(len(rows), n_i)`` the taste model's scores for the user ``rows``, who follow
        as ``follows`` says (rows local to ``rows``), from their ``pairs`` now (the same as a
        ``(2, E)`` tensor: ``local``)."""
        st = self.state
        taste = self.fusion.taste if self.fusion is not None else None
        if taste is None or st.taste is None:
            raise ValidationError("the served model has no taste model")
        inputs, items, bias = st.taste
        users = np.asarray(rows)[pairs.row]
        how = torch.from_numpy(pair_features(st.weights, self.config.interactions, users,
                                             pairs.col))  # fmt: skip
        vectors = taste.user_vectors(local, how, len(rows), follows,
                                     inputs=torch.from_numpy(inputs))  # fmt: skip
        return vectors @ torch.from_numpy(items).t() + torch.from_numpy(bias)

    def _vector_known(self, u: int) -> bool:
        return bool(np.any(self.state.user_vecs[u]))

    def _counts(self) -> np.ndarray:
        """Interactions per product (cached until the interactions change)."""
        if "counts" not in self.state.extra:
            self.state.extra["counts"] = np.asarray(self.state.seen.sum(axis=0)).ravel()
        counts: np.ndarray = self.state.extra["counts"]
        return counts

    def _strength(self) -> sp.csr_matrix:
        """Each interacting pair's strength (:func:`graphfusion.train.pair_strength`, with the
        model's ``type_weights``), cached until the interactions change."""
        st = self.state
        if "strength" not in st.extra:
            st.extra["strength"] = pair_strength(
                st.by_type, self.config.type_weights, st.seen.shape
            )
        strength: sp.csr_matrix = st.extra["strength"]
        return strength

    def _by_item(self) -> sp.csc_matrix:
        """The interactions by product (cached until they change)."""
        if "by_item" not in self.state.extra:
            self.state.extra["by_item"] = self.state.seen.tocsc()
        by_item: sp.csc_matrix = self.state.extra["by_item"]
        return by_item

    def _id_order(self) -> np.ndarray:
        """Each product's position in product id order (ties are ranked by it, as the Cypher
        recipe ranks them), cached until products are added."""
        st = self.state
        if "id_order" not in st.extra:
            order = np.empty(len(st.items), dtype=np.int64)
            order[np.argsort(np.array(st.items, dtype=object), kind="stable")] = np.arange(
                len(st.items)
            )
            st.extra["id_order"] = order
        ids: np.ndarray = st.extra["id_order"]
        return ids

    def _popularity(self) -> np.ndarray:
        return np.log1p(self._counts())

    def _blend(self, u: int, weights: Mapping[str, float] | None = None) -> np.ndarray:
        """The light-user blend (:mod:`graphfusion.light`) with the weights chosen when the
        model was trained (or ``weights``)."""
        st = self.state
        peers = peer_rows(st.profile, st.trained_users, u, self._blocks)
        parts = light_parts(
            [st.seen.indices[st.seen.indptr[u] : st.seen.indptr[u + 1]]],
            popularity=self._counts(),
            item_vecs=st.item_vecs,
            model_scores=lambda _: self._model_scores([u])[0] if self._vector_known(u) else None,
            peer_vecs=lambda _: st.user_vecs[peers].mean(0) if len(peers) else None,
        )
        return parts.blend(self.light_weights if weights is None else weights)[0]

    # ------------------------------------------------------------------ recommend
    def recommend(
        self,
        user_id: str,
        k: int = 10,
        *,
        category: str | None = None,
        brand: str | None = None,
        max_price: float | None = None,
        exclude_seen: bool = True,
        diversity: float = 0.0,
        explain: bool = True,
    ) -> pd.DataFrame:
        """The top ``k`` products for a user.

        Args:
            user_id: A stored user's key.
            k: How many (1 to :data:`MAX_K`).
            category: Only products of this category (id or name, case-insensitive; a parent
                category includes its subcategories).
            brand: Only products of this brand (id or name).
            max_price: Only products with a known price at most this.
            exclude_seen: Leave out products the user interacted with.
            diversity: 0 (pure relevance) to 1: re-rank by maximal marginal relevance.
            explain: Attach the reasons (a little slower).

        Returns:
            Columns ``product_id``, ``title``, ``score``, ``category``, ``brand``, ``price``,
            ``reasons`` (a list of :meth:`Reason.to_dict`), best first; fewer than ``k`` rows
            when the filters leave fewer products; ``attrs["method"]`` says how the scores
            were made.

        Raises:
            ValidationError: Unknown user, or a bad argument.
        """
        k = count_arg("k", k, MAX_K)
        if category is not None and not isinstance(category, str):
            raise ValidationError(f"category must be a string, got {type(category).__name__}")
        if brand is not None and not isinstance(brand, str):
            raise ValidationError(f"brand must be a string, got {type(brand).__name__}")
        if max_price is not None:
            max_price = real_arg("max_price", max_price, zero=True)
        exclude_seen, explain = _flag("exclude_seen", exclude_seen), _flag("explain", explain)
        diversity = real_arg("diversity", diversity, zero=True, high=1.0)
        with self._lock.read():
            return self._recommend(user_id, k, category, brand, max_price, exclude_seen,
                                   diversity, explain)  # fmt: skip

    def _recommend(
        self,
        user_id: str,
        k: int,
        category: str | None,
        brand: str | None,
        max_price: float | None,
        exclude_seen: bool,
        diversity: float,
        explain: bool,
    ) -> pd.DataFrame:
        """:meth:`recommend` of checked arguments, the lock held."""
        scores, method = self._scores(user_id)
        u = self._user_row(user_id)
        keep = np.ones(len(scores), dtype=bool)
        if category is not None:
            keep &= self.catalogue.category_mask(category)
        if brand is not None:
            keep &= self.catalogue.brand_mask(brand)
        if max_price is not None:
            keep &= self.catalogue.price <= max_price
        if exclude_seen:
            st = self.state
            keep[st.seen.indices[st.seen.indptr[u] : st.seen.indptr[u + 1]]] = False
        chosen = _top(scores, keep, k, diversity, self.state.item_vecs, self._id_order())
        frame = self._frame(chosen, scores, u if explain else None)
        frame.attrs["method"] = method
        return frame

    def _frame(self, rows: np.ndarray, scores: np.ndarray, user_row: int | None) -> pd.DataFrame:
        cat = self.catalogue
        st = self.state
        frame = pd.DataFrame(
            {
                "product_id": [st.items[i] for i in rows],
                "title": [cat.title[i] for i in rows],
                "score": scores[rows].astype(float),
                "category": [cat.category_names.get(cat.category[i] or "") for i in rows],
                "brand": [cat.brand_names.get(cat.brand[i] or "") for i in rows],
                "price": cat.price[rows],
                "reasons": [
                    [r.to_dict() for r in self._reasons(user_row, int(i))]
                    if user_row is not None
                    else []
                    for i in rows
                ],
            }
        )
        if not len(rows):  # typed as a full list's columns, not as floats
            frame = frame.astype({"product_id": "str", "title": "str", "category": object,
                                  "brand": object, "reasons": object})  # fmt: skip
        return frame

    # ------------------------------------------------------------------ explanations
    def explain(self, user_id: str, product_id: str) -> list[Reason]:
        """The graph evidence linking a user to a product: first a ``yours`` reason when the
        user has interacted with the product itself (e.g. "you purchased and viewed this"),
        then the rest strongest first (at most three; one ``popular`` reason, other users'
        interactions with it, when there is none but popularity; none for a product that no
        one else has interacted with)."""
        with self._lock.read():
            return self._reasons(self._user_row(user_id), self._item_row(product_id))

    def _reasons(self, u: int, i: int, limit: int = 3) -> list[Reason]:
        st = self.state
        user = ("User", st.users[u])
        target = ("Product", st.items[i])
        own = sorted((t for t, links in st.by_type.items() if links[u, i]), key=_past_order)
        said = " and ".join(_past(t) for t in own)
        yours = [Reason("yours", f"you {said} this", (user, target), float(st.seen[u, i]))]
        return (yours if own else []) + self._others(u, i, user, target)[:limit]

    def _others(
        self, u: int, i: int, user: tuple[str, str], target: tuple[str, str]
    ) -> list[Reason]:
        """The evidence of :meth:`_reasons` but the user's own interactions with the product,
        strongest first."""
        st, cat = self.state, self.catalogue
        mine = st.seen.indices[st.seen.indptr[u] : st.seen.indptr[u + 1]]
        mine = mine[mine != i]
        out: list[Reason] = []
        for attr, label, names, every in (("brand", "Brand", cat.brand_names, cat.brands),
                                          ("category", "Category", cat.category_names,
                                           cat.categories)):  # fmt: skip
            if not every[i] or not len(mine):
                continue
            # of the product's brands (categories), the one most of the user's products have
            shared = {m: [int(j) for j in mine if m in every[j]] for m in sorted(every[i])}
            mark = max(shared, key=lambda m: len(shared[m]))
            same = shared[mark]
            if same:
                shown = [("Product", st.items[j]) for j in same[:3]]
                out.append(Reason(
                    attr, f"you interacted with {len(same)} product(s) of {attr} "
                    f"{names.get(mark, mark)}", (user, *shown, (label, mark), target),
                    float(len(same)),
                ))  # fmt: skip
        if len(mine) and cat.image[i].any():
            sims = cat.image[mine] @ cat.image[i]
            best = int(np.argmax(sims))
            if sims[best] >= LOOKS_LIKE_MIN:
                j = int(mine[best])
                out.append(Reason(
                    "looks_like", f"looks like {cat.title[j] or st.items[j]} (image similarity "
                    f"{sims[best]:.2f})", (user, ("Product", st.items[j]), target),
                    float(sims[best]) * 2,
                ))  # fmt: skip
        if len(mine):
            together = self._co_users(u, i, mine)
            best = int(np.argmax(together))
            if together[best] > 0:
                j = int(mine[best])
                out.append(Reason(
                    "also_interacted", f"{int(together[best])} user(s) who interacted with "
                    f"{cat.title[j] or st.items[j]} also interacted with this",
                    (user, ("Product", st.items[j]), target), float(together[best]),
                ))  # fmt: skip
        # the user's own interactions with it are no sign of its popularity
        others = int(self._counts()[i] - st.seen[u, i]) if not out else 0
        if others > 0:
            out.append(Reason("popular", f"popular: {others} interaction(s)", (user, target), 0.0))
        out.sort(key=lambda r: -r.strength)
        return out

    def _co_users(self, u: int, i: int, mine: np.ndarray) -> np.ndarray:
        """Per product of ``mine``: how many users other than ``u`` interacted with both it
        and product ``i`` (each user once, whatever the number or types of interactions)."""
        seen, by_item = self.state.seen, self._by_item()
        others = by_item.indices[by_item.indptr[i] : by_item.indptr[i + 1]]
        others = others[others != u]
        starts = seen.indptr[others]
        lengths = seen.indptr[others + 1] - starts
        # the column indices of all the other users' rows, gathered without a Python loop
        offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
        columns = seen.indices[offsets + np.arange(int(lengths.sum()))]
        position = np.full(seen.shape[1], -1, dtype=np.int64)
        position[mine] = np.arange(len(mine))
        hits = position[columns]
        return np.bincount(hits[hits >= 0], minlength=len(mine))

    # ------------------------------------------------------------------ live updates
    def add_interactions(self, frame: pd.DataFrame) -> LoadReport:
        """Store new interactions and update the serving state (no retraining).

        Args:
            frame: Columns ``user_id``, ``product_id``, optional ``type`` (VIEWED, PURCHASED
                or FAVORITED; PURCHASED when missing), ``ts`` (ISO 8601) and ``weight``.

        Returns:
            The load report: rows written, and every bad row with its line (1 = first row)
            and reason (unknown type, unknown user or product, bad timestamp...). Only the
            rows written reach the served state, as the store holds them: an interaction
            sent again is the same link (its ``ts`` and ``weight`` replaced), not a second.
            Interactions of a type the model was not trained on (``TrainConfig.interactions``)
            are stored but, as those stored before, neither served nor marked seen.

        Raises:
            ValidationError: Not a DataFrame, a required column is missing, or a column it
                does not read (``timestamp`` for ``ts``: it would be lost without a word).
        """
        frame = _known_columns(_check_frame(frame, ("user_id", "product_id")),
                               INTERACTION_COLUMNS, "add_interactions")  # fmt: skip
        frame = frame.copy()
        if "type" not in frame.columns:
            frame["type"] = "PURCHASED"
        # the loader reports a type none of its specs takes (``type 'CLICKED' matches none``);
        # as objects, a categorical column takes the default too
        types = frame["type"].astype(object)
        given = types.notna() & (types.astype(str).str.strip() != "")  # blank: the default
        frame["type"] = types.where(given, "PURCHASED").astype(str).str.upper()
        with self._lock.write():
            report = load(self.store, "live_interactions", {"interactions": frame})
            self._fold_in(frame, _not_rejected(report, len(frame)))
        return report

    def _fold_in(self, frame: pd.DataFrame, written: np.ndarray) -> None:
        """Bring the served interactions of the pairs in ``frame`` (every row: a row the load
        rejected may still have written some of the pairs of its lists of keys) to what the
        store now holds of them, move the users who gained products, and refit the
        ``rec_vec`` of those and of the users of the rows ``written`` (not rejected)."""
        st = self.state
        pairs, refit = set(), set()
        for ok, user, item in zip(written, frame["user_id"], frame["product_id"], strict=True):
            for u, i in _pairs(user, item, st.user_index, st.item_index):
                pairs.add((u, i))
                if ok:
                    refit.add(u)
        if not pairs:
            return
        shape = st.seen.shape
        us, items = (np.array(side, dtype=np.int64) for side in zip(*sorted(pairs), strict=True))
        mask = sp.csr_matrix((np.ones(len(us)), (us, items)), shape)
        among = ([st.users[u] for u in set(us)], [st.items[i] for i in set(items)])
        # only the types the model was trained on count, as in the stored interactions read
        # at the start (_build): a view is no interaction of a model trained on purchases
        trained = [t for t in LIVE_TYPES if t in self.config.interactions]
        for rtype in trained:
            # as the store holds them: a link sent again is the same link, its weight replaced
            links, weights = link_matrices(self.store, rtype, st.users, st.items, among)
            if rtype in st.by_type or links.nnz:
                st.by_type[rtype] = _replace_pairs(st.by_type.get(rtype), links, mask)
                st.weights[rtype] = _replace_pairs(st.weights.get(rtype), weights, mask)
        before = st.seen
        st.seen = sum(st.by_type.values(), sp.csr_matrix(shape)).tocsr()
        st.extra.clear()
        gained = (np.asarray(st.seen[us, items]).ravel() > 0) & ~(
            np.asarray(before[us, items]).ravel() > 0
        )
        moved = sorted(set(us[gained].tolist()))
        for u in moved:
            new = items[gained & (us == u)]
            n = before.indptr[u + 1] - before.indptr[u]  # products before
            n = n if st.trained_users[u] and self._vector_known(u) else 0
            st.user_vecs[u] = (n * st.user_vecs[u] + st.item_vecs[new].sum(0)) / (n + len(new))
            st.trained_users[u] = True
        if moved:
            keys = [st.users[u] for u in moved]
            write_vectors(self.store, "User", "fused_vec", keys, st.user_vecs[moved])
        if refit or moved:
            self._refit_user_rec(sorted(refit | set(moved)))

    def add_products(self, frame: pd.DataFrame, *, embed_progress: bool = False) -> LoadReport:
        """Store new products (with their image, category, brand, supplier and batch) and
        give them a fused vector through the model's content path (no retraining).

        Only the new products and their photos are embedded (``embed(keys=...)``); the
        behaviour vectors of the others, which new products rescale, stay as they are until
        the next full ``embed`` (:meth:`graphfusion.Engine.train` runs one for them). A
        stored product's row changes what it gives: a new category or brand replaces the one
        it had (:data:`REPLACED_LINKS`; one it had among several is kept), a supplier or batch
        is added to those it has.

        Args:
            frame: Columns ``id`` and any of ``title``, ``description``, ``price``,
                ``currency``, ``created_at``, ``category_id``, ``brand_id``, ``supplier_id``,
                ``batch_id``, ``image`` (a file path).
            embed_progress: Show the encoders' progress.

        Returns:
            The load report: bad rows with their line and reason, among them the rows whose
            image cannot be read (the product is stored, its photo without a vector).

        Raises:
            ValidationError: Not a DataFrame, no ``id`` column, a column it does not read
                (``category`` for ``category_id``: it would be lost without a word), or the
                served model is not the fusion model (LightGCN and MF have no content path:
                retrain).
        """
        frame = _known_columns(_check_frame(frame, ("id",)), PRODUCT_COLUMNS, "add_products")
        if self.fusion is None:
            raise NotReadyError(f"{self.model_name} cannot place new products; train fusion")
        with self._lock.write():
            return self._add_products(frame, embed_progress)

    def _add_products(self, frame: pd.DataFrame, embed_progress: bool) -> LoadReport:
        """:meth:`add_products` of a checked ``frame``, the lock held."""
        single = self._single_links(frame)
        report = load(self.store, "live_products", {"products": frame})
        self._replace_links(frame, single)
        if self._encoders is None:  # loaded once, on the first new products
            self._encoders = (TextEncoder(), ImageEncoder())
        text, image = self._encoders
        given = [_keys(v) for v in frame["id"]]  # a list of ids is a product each, as stored
        stored = self.store.existing_keys("Product", [k for ks in given for k in ks])
        keys = [k for k in dict.fromkeys(k for ks in given for k in ks) if k in stored]
        if keys:
            images = self.store.query(
                "MATCH (p:Product)-[:HAS_IMAGE]->(i:Image) WHERE p.id IN $keys "
                f"RETURN p.id AS product, i.{_key_of(self.store.schema, 'Image')} AS id",
                {"keys": keys},
            )
            embedded = embed(
                self.store,
                text_encoder=text,
                image_encoder=image,
                progress=embed_progress,
                keys={"Product": keys, "Image": [r["id"] for r in images]},
            )
            # a photo that cannot be read is stored without a vector: say so on its row
            of_image = {r["id"]: r["product"] for r in images}
            lines = {key: n + 1 for n, ks in reversed(list(enumerate(given))) for key in ks}
            for error in embedded.errors:
                product = of_image.get(error.key) if error.label == "Image" else None
                if product is not None and product in lines:
                    report.rejected.append(Reject(
                        "products:frame", lines[product], "image",
                        f"the image cannot be used: {error.reason}", "Image",
                    ))  # fmt: skip
            report.rejected.sort(key=lambda r: r.line)
            self._place(keys)
        return report

    def _single_links(self, frame: pd.DataFrame) -> dict[str, dict[str, str]]:
        """Per column of :data:`REPLACED_LINKS` in ``frame``: the stored products of its rows
        that have exactly one link of that type, with the key it leads to."""
        keys = [k for k in (_key(v) for v in frame["id"]) if k is not None]
        out: dict[str, dict[str, str]] = {}
        for column, (rtype, label) in REPLACED_LINKS.items():
            if column in frame.columns and keys:
                rows = self.store.query(
                    f"MATCH (p:Product)-[:{rtype}]->(x:{label}) WHERE p.id IN $keys "
                    f"RETURN p.id AS id, count(x) AS n, "
                    f"min(x.{_key_of(self.store.schema, label)}) AS target",
                    {"keys": keys},
                )
                out[column] = {r["id"]: r["target"] for r in rows if r["n"] == 1}
        return out

    def _replace_links(self, frame: pd.DataFrame, single: dict[str, dict[str, str]]) -> None:
        """A product that had one category (or brand), ``single`` (:meth:`_single_links`),
        and whose row gave another, now stored, loses the link to the old one. A product
        with several (genres, category levels) keeps them all and gains the new one."""
        for column, before in single.items():
            rtype, label = REPLACED_LINKS[column]
            key_of = _key_of(self.store.schema, label)
            for product, target in zip(frame["id"], frame[column], strict=True):
                key, keep = _key(product), _key(target)
                old = before.get(key or "")
                if key is None or keep is None or old is None or old == keep:
                    continue
                self.store.query(
                    f"MATCH (p:Product {{id: $key}})-[:{rtype}]->(:{label} {{{key_of}: $keep}}) "
                    f"MATCH (p)-[r:{rtype}]->(:{label} {{{key_of}: $old}}) DELETE r",
                    {"key": key, "keep": keep, "old": old},
                )

    def _place(self, keys: list[str]) -> None:
        """Content-path vectors for the products ``keys`` (new or changed)."""
        model, export = self.fusion, self._export
        assert model is not None and export is not None
        st = self.state
        features = _node_features(self.store, "Product", keys, model)
        with torch.no_grad():
            inputs = model.encode_inputs("Product", features)
            neighbours = [self._neighbours(key, model) for key in keys]
            content = model.item_content(inputs, neighbours)
            vecs = (content / (model.num_layers + 1)).numpy()
        write_vectors(self.store, "Product", "fused_vec", keys, vecs.astype(np.float64))
        kernel, levels, taste = None, None, None
        if st.kernel is not None:  # the products' stored vectors and prices, read once
            modalities = self._modalities(keys)
            log_price = product_log_prices(self.store, keys)
            kernel, levels = self._kernel_rows(modalities, log_price)
            taste = self._taste_rows(modalities, log_price) if st.taste is not None else None
        self._grow([key for key in keys if key not in st.item_index])
        interacted = self._counts() > 0
        for n, (key, vec) in enumerate(zip(keys, vecs, strict=True)):
            row = st.item_index[key]
            if not interacted[row]:  # no interactions yet (new): content only
                st.item_vecs[row] = vec
                if taste is not None and st.taste is not None:
                    for have, new in zip(st.taste, taste, strict=True):
                        have[row] = new[n]
            if kernel is not None and st.kernel is not None:
                st.kernel[row] = kernel[n]
            if levels is not None and st.levels is not None:
                st.levels[row] = levels[n]
        self._refit_product_rec([st.item_index[k] for k in keys])
        self.catalogue = self._catalogue(export, st.items, keys, self.catalogue.image)

    def _grow(self, keys: list[str]) -> None:
        """Rows for the new products ``keys`` in the serving state, all at once: zero
        vectors, bias and price levels, no interactions (:meth:`_place` fills them)."""
        if not keys:
            return
        st, m = self.state, len(keys)
        for key in keys:
            st.item_index[key] = len(st.items)
            st.items.append(key)

        def rows(array: np.ndarray) -> np.ndarray:
            return np.concatenate([array, np.zeros((m, *array.shape[1:]), dtype=array.dtype)])

        def columns(matrix: sp.csr_matrix) -> sp.csr_matrix:
            return sp.hstack([matrix, sp.csr_matrix((matrix.shape[0], m))]).tocsr()

        st.item_vecs, st.item_bias = rows(st.item_vecs), rows(st.item_bias)
        if st.kernel is not None:
            st.kernel = rows(st.kernel)
        if st.levels is not None:
            st.levels = rows(st.levels)
        if st.taste is not None:
            st.taste = tuple(rows(a) for a in st.taste)  # type: ignore[assignment]
        st.seen = columns(st.seen)
        st.by_type = {t: columns(x) for t, x in st.by_type.items()}
        st.weights = {t: columns(x) for t, x in st.weights.items()}
        st.extra.clear()

    def _rec_factors(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The factors in the stored ``rec_vec`` of the users and products (the state's rows;
        NaN rows where none is stored), read on first use, or None when the schema has none
        (:mod:`graphfusion.rec_vectors`)."""
        st = self.state
        if st.rec is None:
            users = read_rec_vectors(self.store, "User", st.users)
            items = read_rec_vectors(self.store, "Product", st.items)
            if users is None or items is None:
                return None
            st.rec = (users[:, :-1], items[:, :-1])
        users, items = st.rec
        if len(items) < len(st.items):  # products added since: nothing stored for them yet
            more = np.full((len(st.items) - len(items), items.shape[1]), np.nan)
            st.rec = (users, np.vstack([items, more]))
        return st.rec

    def _refit_user_rec(self, rows: list[int]) -> None:
        """Fit the ``rec_vec`` of the users ``rows`` to their served scores now, against the
        products' stored factors, and write it."""
        rec = self._rec_factors()
        if rec is None:
            return
        users, items = rec
        have = np.isfinite(items).all(axis=1)
        if not have.any():
            return
        scores = self._served_scores(rows)
        centred = scores - scores.mean(axis=1, keepdims=True)
        users[rows] = fit_factors(centred[:, have], items[have])
        keys = [self.state.users[u] for u in rows]
        write_vectors(self.store, "User", REC_PROPERTY, keys, user_rec_vectors(users[rows]))

    def _refit_product_rec(self, rows: list[int]) -> None:
        """Fit the ``rec_vec`` of the products ``rows`` (new or changed) to the served scores
        of up to :data:`REC_FIT_USERS` users (a fixed sample of those the model serves)
        against their stored factors, and write it. A product whose factors outgrow the
        others' lift rescales every stored product and user (all rewritten)."""
        rec = self._rec_factors()
        if rec is None:
            return
        users, items = rec
        st = self.state
        everyone = np.arange(len(st.users))
        candidates = np.flatnonzero(self._by_model(everyone) & np.isfinite(users).all(axis=1))
        if not len(candidates):
            return
        size = min(REC_FIT_USERS, len(candidates))
        sample = np.sort(np.random.default_rng(0).choice(candidates, size, replace=False))
        scores = self._model_scores(sample.tolist())
        centred = scores - scores.mean(axis=1, keepdims=True)
        items[rows] = fit_factors(centred[:, rows].T, users[sample])
        top = float(np.linalg.norm(items[rows], axis=1).max())
        if top > 1.0:  # outside the lift of those stored: rescale everything
            items /= top
            users *= top
            rows = np.flatnonzero(np.isfinite(items).all(axis=1)).tolist()
            have = np.flatnonzero(np.isfinite(users).all(axis=1))
            write_vectors(self.store, "User", REC_PROPERTY, [st.users[u] for u in have],
                          user_rec_vectors(users[have]))  # fmt: skip
        # 1, or a hair above after the rescale (a norm of 1 + 2e-16 must not be refused)
        scale = max(1.0, float(np.linalg.norm(items[rows], axis=1).max(initial=0.0)))
        vecs, _ = product_rec_vectors(items[rows], scale=scale)
        write_vectors(self.store, "Product", REC_PROPERTY, [st.items[i] for i in rows], vecs)

    def _taste_rows(
        self, modalities: dict[str, torch.Tensor], log_price: torch.Tensor | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The taste model's input and output vectors of products from their stored
        ``modalities`` (:meth:`_modalities`) and log prices, and their popularity terms (0: no
        training interactions)."""
        assert self.fusion is not None and self.fusion.taste_inputs is not None
        taste = self.fusion.taste
        assert taste is not None
        prices = log_price if self.fusion.taste_inputs.prices else None
        with torch.no_grad():
            features = self.fusion.taste_inputs(modalities, prices)
            return (taste.input_vectors(features).numpy(), taste.item_vectors(features).numpy(),
                    np.zeros(len(features), dtype=np.float32))  # fmt: skip

    def _modalities(self, keys: list[str]) -> dict[str, torch.Tensor]:
        """The modality vectors of the products ``keys`` that the model's neighbourhood reads
        (:func:`~graphfusion.models.neighbourhood.item_modalities`), from the store."""
        assert self.fusion is not None and self.fusion.neighbourhood is not None
        hood = self.fusion.neighbourhood
        product = self.store.schema.node("Product")
        index = {k: i for i, k in enumerate(keys)}
        modalities = {}
        for attr in hood.names:
            if product.has_property(attr):
                pattern, value, node = "(n:Product)", f"n.{attr}", product
            else:  # the photos' vectors, averaged
                pattern, value = f"(n:Product)-[:{IMAGE_EDGE}]->(i:Image)", f"i.{attr}"
                node = self.store.schema.node("Image")
            table = self.store.query_arrow(
                f"MATCH {pattern} WHERE n.id IN $keys RETURN n.id AS id, {value} AS v",
                {"keys": keys},
            )
            matrix, _ = _vectors(table.column("v"), node.prop(attr).type.dim or 0)
            ids = table.column("id").to_pylist()
            rows = torch.tensor([index[k] for k in ids], dtype=torch.long)
            modalities[attr] = pooled(len(keys), rows, torch.from_numpy(matrix))
        return modalities

    def _kernel_rows(
        self, modalities: dict[str, torch.Tensor], log_price: torch.Tensor | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Content-neighbourhood vectors of products from their stored text and image vectors
        (``modalities``, :meth:`_modalities`; the model's principal directions), and their
        price levels among the products the model was trained with (:meth:`_price_levels`),
        from their log prices (None without the price kernel)."""
        assert self.fusion is not None and self.fusion.neighbourhood is not None
        hood = self.fusion.neighbourhood
        levels = None
        if "price" in hood.available:
            # the model has prices: the schema has them; _build set the reference
            assert log_price is not None and self._level_reference is not None
            levels = price_levels(log_price.float(), hood._level_text(modalities),
                                  *self._level_reference, exclude_self=False).numpy()  # fmt: skip
        with torch.no_grad():
            return hood.encode(modalities).numpy(), levels

    def _neighbours(self, key: str, model: FusionGNN) -> dict[Any, list[torch.Tensor]]:
        export = self._export
        assert export is not None
        out: dict[Any, list[torch.Tensor]] = {}
        for layer in model.layer_edges:
            for et in layer:
                if et[2] != "Product" or et in out:
                    continue
                src, rel, _ = et
                if rel.startswith(REVERSE_PREFIX):
                    base = rel.removeprefix(REVERSE_PREFIX)
                    pattern = f"(p:Product {{id: $id}})-[:{base}]->(n:{src})"
                else:
                    pattern = f"(n:{src})-[:{rel}]->(p:Product {{id: $id}})"
                src_key = _key_of(self.store.schema, src)
                keys = [r["k"] for r in self.store.query(
                    f"MATCH {pattern} RETURN n.{src_key} AS k", {"id": key})]  # fmt: skip
                known = [export.index[src][k] for k in keys if k in export.index.get(src, {})]
                new = [k for k in keys if k not in export.index.get(src, {})]
                rounds = []
                fresh = (
                    model.encode_inputs(src, _node_features(self.store, src, new, model))
                    if new and src in model._features
                    else torch.zeros(0, self.config.dim)
                )
                for states in self._states[: len(model.layer_edges)]:
                    stored = states[src][known] if known else states[src][:0]
                    rounds.append(torch.cat([stored, fresh]) if len(fresh) else stored)
                out[et] = rounds
        return out


# ----------------------------------------------------------------------------- helpers
def _flag(name: str, value: object) -> bool:
    """A True or False argument ``name`` as a Python bool (a numpy boolean is taken).

    Raises:
        ValidationError: Naming the argument and the value of another type.
    """
    if not isinstance(value, bool | np.bool_):
        raise ValidationError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _key_of(schema: Schema, label: str) -> str:
    """The key property of ``label`` in ``schema`` (a Category or Brand of one's own schema
    may be keyed by ``code``); ``id`` for a label the schema lacks."""
    return schema.node(label).key if label in schema.nodes else "id"


def _key(value: Any) -> str | None:
    """A frame's id as the loader stores it (:func:`graphfusion.columnar.key_list`: stripped,
    a whole float without ``.0``); None where it gives no single key."""
    keys = _keys(value)
    return keys[0] if len(keys) == 1 else None


def _keys(value: Any) -> list[str]:
    """A frame's ids as the loader stores them (:func:`graphfusion.columnar.key_list`: one per
    element of a list); none where it stores none."""
    try:
        return key_list(value)
    except ValueError:
        return []


def _pairs(
    user: Any, item: Any, users: Mapping[str, int], items: Mapping[str, int]
) -> list[tuple[int, int]]:
    """The served (user row, product row) pairs a row's ``user_id`` and ``product_id`` give,
    as the loader links them: every user key with every product key."""
    rows = [users[k] for k in _keys(user) if k in users]
    return [(u, items[k]) for u in rows for k in _keys(item) if k in items]


def _known_columns(frame: pd.DataFrame, known: Sequence[str], what: str) -> pd.DataFrame:
    """``frame``, when it has only the ``known`` columns.

    Raises:
        ValidationError: Naming the other columns and the known ones.
    """
    unknown = [str(c) for c in frame.columns if str(c) not in known]
    if unknown:
        raise ValidationError(
            f"{what} does not read the column(s) {unknown}: they would be lost; it reads "
            f"{', '.join(known)}"
        )
    return frame


def _not_rejected(report: LoadReport, n: int) -> np.ndarray:
    """``(n,)`` True for the rows of a one-table load that the report does not reject."""
    keep = np.ones(n, dtype=bool)
    keep[[r.line - 1 for r in report.rejected if 1 <= r.line <= n]] = False
    return keep


def _replace_pairs(
    old: sp.csr_matrix | None, new: sp.csr_matrix, mask: sp.csr_matrix
) -> sp.csr_matrix:
    """``old`` with its values at the pairs of ``mask`` replaced by those of ``new``."""
    old = sp.csr_matrix(mask.shape) if old is None else old
    out = (old - old.multiply(mask) + new.multiply(mask)).tocsr()
    out.eliminate_zeros()
    return out


def _product_images(export: GraphExport, n_items: int) -> np.ndarray:
    data = export.data
    et = ("Product", "HAS_IMAGE", "Image")
    if et not in data.edge_types or "image_vec" not in data["Image"]:
        return np.zeros((n_items, 1), dtype=np.float32)
    vecs = data["Image"].image_vec.numpy()
    src, dst = data[et].edge_index.numpy()
    out = np.zeros((n_items, vecs.shape[1]), dtype=np.float32)
    np.add.at(out, src, vecs[dst])
    return unit_rows(out).astype(np.float32)


def _stored_product_images(store: BaseStore, keys: list[str], dim: int) -> np.ndarray:
    """The unit mean photo vector of each product ``keys`` as stored now (zeros where it has
    none, or where the photos' width is not ``dim``: a store without photos at the start)."""
    out = np.zeros((len(keys), dim), dtype=np.float32)
    schema = store.schema
    if (
        "Image" not in schema.nodes
        or not schema.node("Image").has_property("image_vec")
        or "HAS_IMAGE" not in schema.relationships
    ):
        return out
    table = store.query_arrow(
        "MATCH (p:Product)-[:HAS_IMAGE]->(i:Image) WHERE p.id IN $keys AND "
        "i.image_vec IS NOT NULL RETURN p.id AS p, i.image_vec AS v",
        {"keys": keys},
    )
    if not table.num_rows:
        return out
    vecs, has = _vectors(table.column("v"), dim)
    row = {k: i for i, k in enumerate(keys)}
    rows = np.array([row[k] for k in table.column("p").to_pylist()], dtype=np.int64)
    np.add.at(out, rows[has], vecs[has])
    return unit_rows(out).astype(np.float32)


def _node_features(
    store: BaseStore, label: str, keys: list[str], model: FusionGNN
) -> dict[str, torch.Tensor]:
    """The stored modality vectors of ``keys`` (in that order) that the model reads for
    ``label`` (zeros where a node has none)."""
    known = model._features.get(label, {})
    node = store.schema.node(label)
    attrs = [a for a in FEATURE_ATTRS if a in known and node.has_property(a)]
    if not keys or not attrs:
        return {}
    cols = "".join(f", n.{a} AS {a}" for a in attrs)
    table = store.query_arrow(
        f"MATCH (n:{label}) WHERE n.{node.key} IN $keys RETURN n.{node.key} AS id{cols}",
        {"keys": keys},
    )
    order = {k: i for i, k in enumerate(table.column("id").to_pylist())}
    rows = torch.tensor([order[k] for k in keys], dtype=torch.long)
    out = {}
    for attr in attrs:
        matrix, _ = _vectors(table.column(attr), node.prop(attr).type.dim or 0)
        x = torch.from_numpy(matrix)[rows]
        if attr == "behaviour_vec":  # the model reads only the leak-free columns
            x = x[:, [FEATURES[label].index(c) for c in LEAK_FREE_BEHAVIOUR.get(label, ())]]
        if x.shape[1] == known[attr].shape[1]:
            out[attr] = x
    return out


def _top(
    scores: np.ndarray,
    keep: np.ndarray,
    k: int,
    diversity: float,
    vecs: np.ndarray,
    order: np.ndarray,
) -> np.ndarray:
    """The best ``k`` rows of ``scores`` among ``keep``, equal scores by ``order`` (a rank
    per row), re-ranked by maximal marginal relevance when ``diversity`` > 0."""
    allowed = np.flatnonzero(keep)
    if not len(allowed):
        return allowed
    pool = max(k, k * CANDIDATES_PER_K if diversity > 0 else k)
    ranked = allowed[top_rows(scores[allowed], pool, order[allowed])]
    if diversity <= 0 or len(ranked) <= 1:
        return ranked[:k]
    unit = vecs[ranked] / (np.linalg.norm(vecs[ranked], axis=1, keepdims=True) + 1e-12)
    rel = standard(scores[ranked]) if len(ranked) > 1 else scores[ranked]
    chosen = [0]
    best_sim = unit @ unit[0]
    for _ in range(1, min(k, len(ranked))):
        mmr = (1 - diversity) * rel - diversity * best_sim
        mmr[chosen] = -np.inf
        j = int(np.argmax(mmr))
        chosen.append(j)
        best_sim = np.maximum(best_sim, unit @ unit[j])
    return ranked[chosen]


def _remap(
    saved: Mapping[str, torch.Tensor],
    saved_ids: Mapping[str, list[str]],
    ids: Mapping[str, list[str]],
    current: Mapping[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """The saved weights with the per-node rows (id embeddings, the item bias) moved to the
    rows of the same keys now; rows of new nodes are zero. Other weights are kept as saved,
    whatever their shape (:func:`_checkpoint_changes` compares them with ``current``)."""
    out = {}
    for name, value in saved.items():
        label = None
        if name.startswith(("neighbourhood.", "taste_inputs.")):  # fitted: kept as saved
            out[name] = value
            continue
        if name.startswith("ids.") and name.endswith(".weight"):
            label = name[4:-7]
        elif name in ("bias", "taste.bias"):
            label = "Product"
        if label is None or label not in saved_ids or label not in ids:
            out[name] = value  # a shape that no longer fits: _checkpoint_changes says so
            continue
        new = torch.zeros((len(ids[label]), *value.shape[1:]), dtype=value.dtype)
        where = {k: i for i, k in enumerate(saved_ids[label])}
        pairs = [(i, where[k]) for i, k in enumerate(ids[label]) if k in where]
        if pairs:
            dst, src = (torch.tensor(x) for x in zip(*pairs, strict=True))
            new[dst] = value[src]
        out[name] = new
    return out


def _checkpoint_changes(
    saved: Mapping[str, torch.Tensor], current: Mapping[str, torch.Tensor]
) -> list[str]:
    """What keeps a fusion checkpoint's weights from the model built on the graph now.

    A checkpoint from before the content neighbourhood existed has none of its weights: the
    model serves without the neighbourhood's blend (its weights stay zero), which is no
    change. The neighbourhood's principal directions are loaded whatever their number
    (:class:`~graphfusion.models.neighbourhood.ContentNeighbourhood`), and its blend weights
    whatever the number of kernels saved: only their vectors' width must fit.

    Args:
        saved: The checkpoint's weights, moved to the graph now by :func:`_remap`.
        current: The weights of the model built on the graph now.

    Returns:
        For people, one line per kind of change: the parts the model has that the
        checkpoint lacks (a vector embedded, or a node or relationship type loaded, after
        training: their weights would be random), the parts the checkpoint has that the
        graph no longer gives, and the weights whose shape no longer fits (vectors of
        another width); empty when the checkpoint fits.
    """
    missing = [k for k in current if k not in saved]
    if not any(k.startswith("neighbourhood.") for k in saved):
        missing = [k for k in missing if not k.startswith("neighbourhood.")]
    unexpected = [k for k in saved if k not in current]
    reshaped = []
    for key, value in saved.items():
        now = current.get(key)
        if now is None or key == "neighbourhood.weight":
            continue
        if key.startswith("neighbourhood.basis_"):
            fits = value.dim() == 2 and value.shape[0] == now.shape[0]
        else:
            fits = value.shape == now.shape
        if not fits:
            reshaped.append(f"{key} is {tuple(value.shape)} in the checkpoint, "
                            f"{tuple(now.shape)} now")  # fmt: skip
    out = []
    for what, keys in (("new since training", missing), ("gone since training", unexpected)):
        if keys:
            out.append(f"{what}: {_listed(list(dict.fromkeys(map(_part, keys))))}")
    if reshaped:
        out.append(f"of another shape: {_listed(reshaped)}")
    return out


def _part(key: str) -> str:
    """The part of the fusion model a weight ``key`` belongs to, for people."""
    head, *rest = key.split(".")
    if head == "proj" and len(rest) > 2:
        return f"{rest[0]}.{rest[1]}"  # the input of a property vector
    if head == "ids" and rest:
        return f"the {rest[0]} id embeddings"
    if head == "convs" and len(rest) > 1:
        name, ends = rest[1], rest[1].split("__")
        if name.startswith("root:"):
            return f"the {name.removeprefix('root:')} messages"
        return f"({ends[0]})-[:{ends[1]}]->({ends[2]}) messages" if len(ends) == 3 else name
    if head in ("taste", "taste_inputs"):
        return "the taste model"
    if head == "neighbourhood":
        return "the content neighbourhood"
    return key


def _listed(items: list[str], most: int = 6) -> str:
    """``items`` joined with commas, the first ``most`` of them and how many more."""
    shown = ", ".join(items[:most])
    return shown if len(items) <= most else f"{shown} and {len(items) - most} more"
