"""Training recommendation models on the stored interactions, with the MMRec protocol.

The user-product interactions of the store (``VIEWED``, ``PURCHASED``, ``FAVORITED``, ``RATED``
by default) are split per user 8:1:1 (:func:`graphfusion.evaluate.random_split`); a model is
trained with BPR on sampled negatives, validated each epoch on Recall@20 over a full ranking,
stopped early when that stops improving, and tested with its best weights. The fusion model
(with a content term) is validated on the sum of two Recall@20: of its scores and of its
content-only scores (how it ranks products that have no interactions yet), so that the kept
weights serve both warm and new products; then the weights of its neighbourhood blends
(:mod:`graphfusion.models.neighbourhood`) are chosen on the validation split (those of the
content-only scores on held-out cold products, where ``cold_items`` holds some out). The
embeddings are written back as ``User.fused_vec`` and ``Product.fused_vec``, and factors of
the model's whole score matrix (its blend included) as ``rec_vec`` for cosine indexes
(:mod:`graphfusion.rec_vectors`); the curve of loss and validation Recall@20 is saved as a PNG
beside the checkpoint.

A Ctrl-C while the model's epochs (or the fusion model's taste model's) run stops them as early
stopping does, once an epoch is validated; the rest follows as after early stopping
(:func:`train` says how, and ``TrainResult.interrupted`` where).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
import torch

from graphfusion.defaults import EPOCHS, MAX_SCORES, MAX_SETTING, TASTE_EPOCHS
from graphfusion.errors import ValidationError
from graphfusion.evaluate import full_ranking_metrics, random_split
from graphfusion.features.behaviour import FEATURES
from graphfusion.features.demographics import demographic_features, fit_demographics
from graphfusion.features.embed import write_vectors
from graphfusion.graph import REVERSE_PREFIX, GraphExport, to_heterodata
from graphfusion.light import (
    DEFAULT_WEIGHTS,
    GROUPS,
    MAX_FIT_USERS,
    MIN_PRODUCTS,
    MIN_USERS,
    HeldOut,
    LightFit,
    fit_weights,
    group_of,
    light_parts,
    light_split,
    peer_rows,
)
from graphfusion.models import MF, LightGCN, Popularity
from graphfusion.models.fusion import FusionGNN
from graphfusion.models.neighbourhood import (
    KERNELS,
    blend_standardized,
    search_weights,
    standardize,
)
from graphfusion.models.taste import TasteConfig, fit_taste
from graphfusion.plots import new_figure, save_figure
from graphfusion.progress import progress_bar
from graphfusion.rec_vectors import (
    PROPERTY,
    product_rec_vectors,
    rec_rank,
    score_factors,
    user_rec_vectors,
)
from graphfusion.repeatable import repeatable
from graphfusion.schema import Schema
from graphfusion.store.base import BaseStore
from graphfusion.values import count_arg, home_path, json_safe, real_arg

__all__ = [
    "TrainConfig",
    "TrainResult",
    "train",
    "load_interactions",
    "check_interaction_types",
    "pair_strength",
    "pair_features",
    "how_columns",
    "link_matrices",
    "mark_served",
    "served_model",
    "link_weights",
    "links_query",
    "product_log_prices",
    "MODELS",
    "TYPE_WEIGHTS",
]

log = logging.getLogger("graphfusion.train")

MODELS = ("fusion", "lightgcn", "mf", "popularity")
#: The note, in the models folder, of the model whose vectors the store holds (mark_served).
SERVED_FILE = "served.json"
INTERACTIONS = ("VIEWED", "PURCHASED", "FAVORITED", "RATED")
#: Share of the cold products (``TrainConfig.cold_items``) that validate, not test.
COLD_VALID_SHARE = 0.25
#: Fewest cold products that are split into validation and test ones.
COLD_VALID_MIN = 8
#: Fewest interacting user-product pairs that :func:`train` trains on.
MIN_INTERACTIONS = 10
#: Behaviour features that do not count interactions or reviews, so they may be model inputs.
LEAK_FREE_BEHAVIOUR = {"Product": ("price",)}
#: Passes of the coordinate search for the fusion model's neighbourhood weights.
BLEND_PASSES = 2
#: Default strength of each interaction type (:func:`pair_strength`): what it says of a
#: user's taste, a purchase more than a favourite, a favourite more than a view.
TYPE_WEIGHTS = {"VIEWED": 1.0, "PURCHASED": 4.0, "FAVORITED": 2.0, "RATED": 1.0}


@dataclass(frozen=True)
class TrainConfig:
    """How to train.

    Attributes:
        model: ``fusion``, ``lightgcn``, ``mf`` or ``popularity``.
        epochs: Most epochs.
        dim: Embedding size (the schema's ``fused_vec`` dimension to be written back).
        layers: Propagation steps (LightGCN) or message-passing rounds (fusion).
        lr: Adam learning rate.
        reg: L2 weight of the BPR loss.
        batch_size: Training pairs per step.
        patience: Epochs without a better validation Recall@20 before stopping.
        seed: Seed of the split, the initialization and the negative sampling.
        interactions: Relationship types (User -> Product) that count as interactions, each
            named once; a type the schema lacks, or one that does not link User to Product,
            is a bad setting (ValidationError; the default types, where the schema lacks
            them, a SchemaError).
        cold_items: Share of the products (0 to 0.9) whose interactions are all held out of
            training, to measure cold start. A quarter of them (:data:`COLD_VALID_SHARE`)
            validate how the fusion model ranks new products (the weights of its content-only
            blend); the others are tested apart, ranked among themselves
            (``TrainResult.cold``).
        context_layers: Message-passing rounds of the fusion model's content tower.
        item_ids: Fusion model: give products an id embedding besides their content.
        content_weight: Fusion model: weight of the content-only BPR term.
        neighbourhood_rank: Fusion model: principal directions per modality of the content
            neighbourhood kernel blended into its scores (0: no neighbourhood blends at all).
        light_users: Share (0 to 0.5) of the users with at least
            :data:`graphfusion.light.MIN_PRODUCTS` products that keep only one or two of them
            in training, to choose the weights of the light-user blend on this store (a
            third search, a third confirm, a third test: ``TrainResult.light``; see
            :mod:`graphfusion.light`); trainable models only. 0 (the default) keeps
            :data:`graphfusion.light.DEFAULT_WEIGHTS`; so does a share that makes fewer than
            ``3 * graphfusion.light.MIN_USERS`` users light. The light users' other
            interactions stay in the store but not in the model.
        type_weights: Fusion model: the strength of each interaction type in the users'
            neighbourhood profiles (:func:`pair_strength`: a pair linked by several types
            sums their weights; a type not named weighs 1); None: every pair counts once.
            Weights of types the schema lacks are refused; weights other than the defaults
            that change nothing (given to another model, or of types not in
            ``interactions``) are named in a warning.
            The default, :data:`TYPE_WEIGHTS`, lifted warm Recall@20 on the synthetic shop
            and the Myntra shop (README, recommendation benchmark); it changes nothing where
            one type links every pair (MovieLens's ratings, Amazon's purchases).
        taste_epochs: Fusion model: most epochs of its content taste model
            (:mod:`graphfusion.models.taste`, trained after the GNN, validated on Recall@20,
            its scores the ``taste`` kernel of the blends; pair features
            :func:`pair_features`); 0: no taste model. It needs the neighbourhood
            (``neighbourhood_rank`` > 0).
        max_scores: Most user x product scores held at once to validate and test (4 bytes a
            score; the fusion model's blend search holds a matrix of them per kernel and path
            at once). Where a shop has more users x products, validation (early stopping, the taste
            model's epochs, the blend weights) ranks for a seeded sample of ``max_scores //
            products`` of the users with validation interactions, and the test ranks every
            user, that many at a time. The default, 10^8, covers every benchmark shop whole.
    """

    model: str = "lightgcn"
    epochs: int = EPOCHS
    dim: int = 64
    layers: int = 3
    lr: float = 0.005
    reg: float = 1e-4
    batch_size: int = 4096
    patience: int = 5
    seed: int = 0
    interactions: tuple[str, ...] = INTERACTIONS
    cold_items: float = 0.0
    context_layers: int = 1
    item_ids: bool = True
    content_weight: float = 0.5
    neighbourhood_rank: int = 128
    light_users: float = 0.0
    type_weights: dict[str, float] | None = field(default_factory=lambda: dict(TYPE_WEIGHTS))
    taste_epochs: int = TASTE_EPOCHS
    max_scores: int = MAX_SCORES

    def __hash__(self) -> int:
        # the generated hash would fail on the type_weights dict: hash its items instead
        weights = self.type_weights
        return hash(tuple(
            tuple(sorted(weights.items())) if f.name == "type_weights" and weights is not None
            else getattr(self, f.name)
            for f in fields(self)
        ))  # fmt: skip

    def __post_init__(self) -> None:
        # numpy numbers as Python's (a checkpoint holds the settings and is loaded with
        # weights_only, which refuses numpy scalars); checked by check()
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "type_weights" and isinstance(value, Mapping):
                value = {k: _plain_number(v) for k, v in value.items()}
            elif f.name == "interactions" and isinstance(value, list):
                value = tuple(value)
            else:
                value = _plain_number(value)
            object.__setattr__(self, f.name, value)

    def check(self, schema: Schema | None = None) -> None:
        """Raise ValidationError for a setting of the wrong type or out of range (numbers are
        finite; integers are not booleans; each interaction type is named once).

        Args:
            schema: Also check the interaction types and ``type_weights`` against it
                (:meth:`check_types`).
        """
        if self.model not in MODELS:
            raise ValidationError(f"unknown model {self.model!r}; use one of {', '.join(MODELS)}")
        for name in ("epochs", "dim", "batch_size", "patience", "max_scores"):
            count_arg(name, getattr(self, name), MAX_SETTING)
        for name in ("layers", "context_layers", "neighbourhood_rank", "taste_epochs", "seed"):
            count_arg(name, getattr(self, name), MAX_SETTING, low=0)
        real_arg("lr", self.lr)
        real_arg("reg", self.reg, zero=True)
        real_arg("content_weight", self.content_weight, zero=True)
        real_arg("cold_items", self.cold_items, zero=True, high=0.9)
        real_arg("light_users", self.light_users, zero=True, high=0.5)
        if not isinstance(self.item_ids, bool):
            raise ValidationError(f"item_ids must be True or False, got {self.item_ids!r}")
        types = self.interactions
        if not isinstance(types, tuple) or not types or not all(isinstance(t, str) for t in types):
            raise ValidationError(
                f"interactions must be a non-empty sequence of relationship types, got {types!r}"
            )
        _check_repeats(types)
        if self.type_weights is not None:
            _check_type_weights(self.type_weights)
        if schema is not None:
            self.check_types(schema)

    def check_types(self, schema: Schema) -> None:
        """Raise ValidationError for interaction types or ``type_weights`` that do not fit
        ``schema``: a type named in ``interactions`` that it lacks or that does not link User
        to Product (the default types are left to :meth:`Schema.require`, whose SchemaError
        says that the schema lacks what training reads), or weights of types it lacks (the
        default weights name every built-in type: a schema may lack some of them). A schema
        without User or Product is left to :meth:`Schema.require` too.
        """
        if "User" in schema.nodes and "Product" in schema.nodes:
            # else no interactions to name: Schema.require names the labels it lacks
            check_interaction_types(
                schema, self.interactions, unknown=self.interactions != INTERACTIONS
            )
        given = self.type_weights if self.type_weights != TYPE_WEIGHTS else None
        unknown = sorted(set(given or ()) - set(schema.relationships))
        if unknown:
            raise ValidationError(f"type_weights name types the schema lacks: {', '.join(unknown)}")

    def ignored_type_weights(self) -> str | None:
        """Why some of ``type_weights`` change nothing, in words, or None: weights other
        than the defaults given to a model that does not use them, or weights of types that
        training does not read (``interactions``)."""
        weights = self.type_weights
        if weights is None or weights == TYPE_WEIGHTS:
            return None
        if self.model != "fusion":
            return (f"type_weights are used by the fusion model only: the {self.model} model "
                    "ignores them")  # fmt: skip
        untrained = sorted(set(weights) - set(self.interactions))
        if not untrained:
            return None
        return (
            f"type_weights weigh {', '.join(untrained)}, which training does not read "
            f"(interactions: {', '.join(self.interactions)}): they change nothing"
        )


@dataclass
class TrainResult:
    """What a training run did.

    Attributes:
        config: The settings.
        history: Per epoch: ``epoch``, ``loss``, ``valid_recall@20`` (and, for the fusion
            model, ``valid_content_recall@20``).
        best_epoch: The epoch whose weights were kept.
        test: Test metrics of the kept weights (Recall/NDCG at 10 and 20).
        cold: With ``cold_items``: metrics on the tested cold products' interactions, each
            user's ranked among all tested cold products.
        blend: Fusion model: the neighbourhood weights chosen on validation, per path
            (``warm``: its scores, ``cold``: its content-only scores) and kernel
            (:data:`~graphfusion.models.neighbourhood.KERNELS`), as ``"warm content"``.
        light_weights: With ``light_users``: the light-user blend's weights
            (:func:`graphfusion.light.fit_weights`): the defaults unless the weights found
            beat them clearly.
        light_search: With ``light_users``: the weights found, their gain over the defaults
            on the confirming users with its standard error, the searching and confirming
            users and which weights were served (:meth:`graphfusion.light.LightFit.to_dict`).
        light: With ``light_users``: metrics of the tested light users' held-out products
            (their kept ones not ranked) by the chosen weights, and ``default recall@20`` by
            :data:`graphfusion.light.DEFAULT_WEIGHTS`.
        taste_history: Fusion model with ``taste_epochs``: per epoch of its taste model,
            ``epoch``, ``loss`` and ``valid`` (validation Recall@20 of its scores alone).
        seconds_per_epoch: Mean training time of an epoch (of the GNN, for the fusion model).
        taste_seconds: Fusion model with ``taste_epochs``: how long its taste model trained
            (its validation included), in seconds.
        interrupted: Where a Ctrl-C stopped training (:func:`train`): ``epoch``, the epoch
            in progress when the model's training stopped (``best_epoch`` was kept), and
            ``taste epoch``, the fusion model's taste model's (its best epoch in
            ``taste_history`` was kept); empty when none did.
        checkpoint: The saved weights (None for popularity).
        curve: The training-curve PNG.
    """

    config: TrainConfig
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    test: dict[str, float] = field(default_factory=dict)
    cold: dict[str, float] = field(default_factory=dict)
    blend: dict[str, float] = field(default_factory=dict)
    light_weights: dict[str, float] = field(default_factory=dict)
    light: dict[str, float] = field(default_factory=dict)
    light_search: dict[str, Any] = field(default_factory=dict)
    taste_history: list[dict[str, float]] = field(default_factory=list)
    seconds_per_epoch: float = 0.0
    taste_seconds: float = 0.0
    interrupted: dict[str, int] = field(default_factory=dict)
    checkpoint: Path | None = None
    curve: Path | None = None

    def summary(self) -> str:
        """A few lines for people."""
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in self.test.items())
        cold = ", ".join(f"{k} {v:.4f}" for k, v in self.cold.items())
        taste = len(self.taste_history)
        return (
            f"{self.config.model}: "
            # popularity has no epochs
            + (f"best epoch {self.best_epoch} of {len(self.history)}, "
               f"{self.seconds_per_epoch:.2f} s/epoch"
               + (f" ({self.interruption()})" if self.interrupted else "")
               + "; " if self.history else "")
            + f"test {metrics}"
            + (f"; cold items {cold}" if cold else "")
            + (f"; taste model: best validation Recall@20 {self._taste_best():.4f} of "
               f"{taste} epoch{'s' if taste != 1 else ''}, {self.taste_seconds:.1f} s"
               if self.taste_history else "")
            + ("; blend " + ", ".join(f"{k} {v:g}" for k, v in self.blend.items())
               if self.blend else "")
            + ("; light users " + ", ".join(f"{k} {v:.4f}" for k, v in self.light.items())
               + ", weights " + ", ".join(f"{k} {v:g}" for k, v in self.light_weights.items())
               + (f" (gain of the best found {self.light_search['gain']:.4f} ± "
                  f"{self.light_search['standard error']:.4f} on "
                  f"{self.light_search['users'][1]} confirming users)"
                  if self.light_search else "")
               if self.light else "")
        )  # fmt: skip

    def _taste_best(self) -> float:
        return max((h.get("valid", math.nan) for h in self.taste_history), default=math.nan)

    def interruption(self) -> str:
        """Where a Ctrl-C stopped training and which epochs were kept, in words (empty when
        none did)."""
        said = []
        if "epoch" in self.interrupted:
            said.append(f"training interrupted by Ctrl-C at epoch {self.interrupted['epoch']}, "
                        f"epoch {self.best_epoch} kept")  # fmt: skip
        if "taste epoch" in self.interrupted:
            said.append(self._taste_interruption())
        return "; ".join(said)

    def _taste_interruption(self) -> str:
        valid = [h.get("valid", -math.inf) for h in self.taste_history]
        kept = (f"epoch {int(self.taste_history[int(np.argmax(valid))]['epoch'])} kept"
                if valid else "untrained, left out of the blend")  # fmt: skip
        return (
            f"taste model interrupted by Ctrl-C at epoch {self.interrupted['taste epoch']}, {kept}"
        )

    def to_dict(self) -> dict[str, Any]:
        """As plain data that strict JSON holds (for ``--json`` and the ``-history.json``
        file): NaN and infinities as None (``null``; Python's ``json`` would write a bare
        ``NaN``, which strict readers refuse), tuples as lists. :meth:`from_dict` reads it
        back."""
        plain: dict[str, Any] = json_safe({
            "config": asdict(self.config),
            "best_epoch": self.best_epoch,
            "test": self.test,
            "cold": self.cold,
            "blend": self.blend,
            "light_weights": self.light_weights,
            "light": self.light,
            "light_search": self.light_search,
            "seconds_per_epoch": round(self.seconds_per_epoch, 4),
            "taste_seconds": round(self.taste_seconds, 1),
            "interrupted": self.interrupted,
            "history": self.history,
            "taste_history": self.taste_history,
            "checkpoint": str(self.checkpoint) if self.checkpoint else None,
            "curve": str(self.curve) if self.curve else None,
        })  # fmt: skip
        return plain

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainResult:
        """A result from :meth:`to_dict`'s data (a ``-history.json`` file read with
        ``json.loads``): the ``null`` of a number that was NaN or infinite is NaN again.

        Raises:
            ValidationError: ``data`` is not such a mapping (named: the key missing or of the
                wrong kind).
        """
        if not isinstance(data, Mapping):
            raise ValidationError(f"a training result must be a mapping, got {type(data).__name__}")
        try:
            config = TrainConfig(**data["config"])
            return cls(
                config,
                history=[_numbers(row) for row in data.get("history") or []],
                best_epoch=int(data.get("best_epoch") or 0),
                test=_numbers(data.get("test")),
                cold=_numbers(data.get("cold")),
                blend=_numbers(data.get("blend")),
                light_weights=_numbers(data.get("light_weights")),
                light=_numbers(data.get("light")),
                light_search=_light_search(data.get("light_search")),
                taste_history=[_numbers(row) for row in data.get("taste_history") or []],
                seconds_per_epoch=_number(data.get("seconds_per_epoch")),
                taste_seconds=_number(data.get("taste_seconds")),
                interrupted={str(k): int(v) for k, v in (data.get("interrupted") or {}).items()},
                checkpoint=Path(data["checkpoint"]) if data.get("checkpoint") else None,
                curve=Path(data["curve"]) if data.get("curve") else None,
            )
        except KeyError as exc:
            raise ValidationError(f"a training result lacks {exc.args[0]!r}") from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise ValidationError(f"not a training result: {exc}") from None


def load_interactions(
    store: BaseStore,
    types: Sequence[str] = INTERACTIONS,
    type_weights: Mapping[str, float] | None = None,
) -> tuple[pd.DataFrame, list[str], list[str]]:
    """User-product interactions of the given types, and every user and product key.

    Args:
        store: The store.
        types: Relationship types from User to Product.
        type_weights: Weights of the types for the ``strength`` column (:func:`pair_strength`).

    Returns:
        ``(frame, user keys, product keys)``: the frame has the user and item index columns,
        the pair's strength and what each type says of it (:func:`how_columns`,
        :func:`pair_features`), sorted by user then item; a pair that is linked by several
        types counts once.

    Raises:
        ValidationError: A type named more than once, one the schema lacks or one that does
            not link User to Product (:func:`check_interaction_types`), or bad weights.
    """
    check_interaction_types(store.schema, types)
    users = [r["id"] for r in store.query("MATCH (n:User) RETURN n.id AS id ORDER BY id")]
    items = [r["id"] for r in store.query("MATCH (n:Product) RETURN n.id AS id ORDER BY id")]
    by_type: dict[str, sp.csr_matrix] = {}
    for rtype in types:
        _, by_type[rtype] = link_matrices(store, rtype, users, items)
    # sorted by user then item (csr order): the split must not depend on the store's row order
    strength = pair_strength(by_type, type_weights, (len(users), len(items))).tocoo()
    user, item = strength.row.astype(np.int64), strength.col.astype(np.int64)
    frame = pd.DataFrame({"user": user, "item": item, "strength": strength.data})
    how = pair_features(by_type, types, user, item)
    frame[how_columns(types)] = how
    return frame, users, items


def links_query(store: BaseStore, rtype: str, *, among: bool = False) -> str:
    """Cypher for every ``rtype`` link from a user to a product: columns ``u`` and ``p`` (the
    keys) and ``w`` (the link's ``weight``; 1 where the type has none). ``among``: only the
    links between the users ``$users`` and the products ``$items``."""
    weight = "r.weight" if store.schema.rel(rtype).has_property("weight") else "1.0"
    where = " WHERE u.id IN $users AND p.id IN $items" if among else ""
    return (
        f"MATCH (u:User)-[r:{rtype}]->(p:Product){where} RETURN u.id AS u, p.id AS p, {weight} AS w"
    )


def link_matrices(
    store: BaseStore,
    rtype: str,
    users: Sequence[str],
    items: Sequence[str],
    among: tuple[Sequence[str], Sequence[str]] | None = None,
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """The ``rtype`` links from users to products (:func:`links_query`, one query) as two
    ``len(users) x len(items)`` matrices in the given key orders: the number of links per
    pair, and the sum of their weights (:func:`link_weights`). Links of users or products
    not in the lists are left out; with ``among`` (user keys, product keys), so are the links
    of users and products outside those (read by the store alone)."""
    shape = (len(users), len(items))
    if among is None:
        table = store.query_arrow(links_query(store, rtype))
    else:
        params = {"users": list(among[0]), "items": list(among[1])}
        table = store.query_arrow(links_query(store, rtype, among=True), params)
    if table.num_rows == 0:  # its columns may then be missing or null typed
        return sp.csr_matrix(shape), sp.csr_matrix(shape)
    u = pc.index_in(table.column("u"), value_set=pa.array(users, pa.string()))
    i = pc.index_in(table.column("p"), value_set=pa.array(items, pa.string()))
    u_rows = u.to_numpy(zero_copy_only=False)
    i_rows = i.to_numpy(zero_copy_only=False)
    ok = ~(pd.isna(u_rows) | pd.isna(i_rows))
    where = (u_rows[ok].astype(np.int64), i_rows[ok].astype(np.int64))
    weights = link_weights(table.column("w").to_pylist())[ok]
    return (sp.csr_matrix((np.ones(len(weights)), where), shape=shape),
            sp.csr_matrix((weights, where), shape=shape))  # fmt: skip


def link_weights(values: Sequence[object]) -> np.ndarray:
    """The stored ``weight`` of each link as a positive number: 1 where it is missing, not a
    number, not finite or not positive."""
    out = pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce")
    array = out.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.where(np.isfinite(array) & (array > 0), array, 1.0)


def how_columns(types: Sequence[str]) -> list[str]:
    """The names of :func:`pair_features`' columns, in order."""
    return [name for t in types for name in (f"how {t}", f"how {t} log weight")]


def pair_features(
    weights: Mapping[str, sp.spmatrix], types: Sequence[str], users: np.ndarray, items: np.ndarray
) -> np.ndarray:
    """``(E, 2 * len(types))`` what each pair ``(users[e], items[e])`` says of the user's
    taste, per type: whether the type links it, and the log of the summed ``weight`` of its
    links of that type (how many views, ...; 0 where the type does not link it or the
    weights sum to 1 or less): the pair features of the fusion model's taste model.

    Args:
        weights: Per relationship type, a users x products matrix of the links' summed
            weights (:func:`link_weights`), non-zero where the type links the pair.
        types: The types, in column order (a type without a matrix links nothing).
        users: ``(E,)`` user rows.
        items: ``(E,)`` product rows.
    """
    columns = []
    for rtype in types:
        links = weights.get(rtype)
        value = (np.zeros(len(users)) if links is None or not len(users)
                 else np.asarray(sp.csr_matrix(links)[users, items]).ravel())  # fmt: skip
        columns += [(value > 0).astype(np.float32), np.log(np.maximum(value, 1.0))]
    return np.stack(columns, 1).astype(np.float32) if columns else np.zeros((len(users), 0))


def pair_strength(
    by_type: Mapping[str, sp.spmatrix],
    type_weights: Mapping[str, float] | None,
    shape: tuple[int, int],
) -> sp.csr_matrix:
    """``shape`` (users x products): the strength of each interacting pair, the sum of the
    weights of the types that link it (a type not in ``type_weights`` weighs 1; repeats of
    one type count once); with ``type_weights`` None, 1 for every pair.

    Args:
        by_type: Per relationship type, a users x products matrix, non-zero where it links.
        type_weights: Positive weight per type, or None.
        shape: The matrix's shape.

    Raises:
        ValidationError: Weights that are not positive finite numbers.
    """
    if type_weights is not None:
        _check_type_weights(type_weights)
    out = sp.csr_matrix(shape, dtype=np.float64)
    for rtype, links in by_type.items():
        weight = 1.0 if type_weights is None else float(type_weights.get(rtype, 1.0))
        out = out + (sp.csr_matrix(links) != 0).astype(np.float64) * weight
    out = out.tocsr()
    out.sum_duplicates()
    out.sort_indices()
    if type_weights is None:
        out.data[:] = 1.0
    return out


def _number(value: Any) -> float:
    """A number of :meth:`TrainResult.to_dict`'s data: an integer as it is (an epoch), None
    (a NaN or an infinity, written as null) as NaN, any other as a float."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return math.nan if value is None else float(value)


def _numbers(values: Mapping[str, Any] | None) -> dict[str, float]:
    """A map of numbers of :meth:`TrainResult.to_dict`'s data (metrics, an epoch of a
    history), its None values as NaN (:func:`_number`)."""
    return {str(k): _number(v) for k, v in (values or {}).items()}


def _light_search(values: Mapping[str, Any] | None) -> dict[str, Any]:
    """``TrainResult.light_search`` from :meth:`TrainResult.to_dict`'s data: its gain and
    standard error numbers again (NaN where null: an infinite error with too few users)."""
    out = dict(values or {})
    for key in ("gain", "standard error"):
        if key in out:
            out[key] = _number(out[key])
    return out


def check_interaction_types(schema: Schema, types: Sequence[str], *, unknown: bool = True) -> None:
    """Raise ValidationError, naming the schema's types from User to Product, for a type of
    ``types`` named more than once, one the schema lacks (with ``unknown``; else left to
    :meth:`Schema.require`) or one that does not link User to Product.

    Args:
        schema: The schema.
        types: The interaction types.
        unknown: Refuse the types the schema lacks.
    """
    _check_repeats(types)
    linking = [name for name, rel in schema.relationships.items()
               if rel.connects("User", "Product")]  # fmt: skip
    which = (f"its types from User to Product are {', '.join(linking)}" if linking
             else "it has no type from User to Product")  # fmt: skip
    for rtype in types:
        if rtype not in schema.relationships:
            if unknown:
                raise ValidationError(
                    f"interactions name {rtype}, which the schema {schema.name!r} lacks; {which}"
                )
        elif rtype not in linking:
            raise ValidationError(
                f"interactions name {rtype}, which does not link User to Product; {which}"
            )


def _check_repeats(types: Sequence[str]) -> None:
    """Raise ValidationError for an interaction type named more than once."""
    repeated = [t for t in dict.fromkeys(types) if list(types).count(t) > 1]
    if repeated:
        raise ValidationError(
            f"interactions name {repeated[0]} more than once; name each type once, got "
            f"{', '.join(types)}"
        )


def _plain_number(value: Any) -> Any:
    """A numpy number as the Python number of its kind; anything else as it is."""
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def _check_type_weights(type_weights: Mapping[str, float]) -> None:
    if not isinstance(type_weights, Mapping):
        raise ValidationError(f"type_weights must be a mapping, got {type(type_weights).__name__}")
    for rtype, weight in type_weights.items():
        if not isinstance(rtype, str):
            raise ValidationError(f"type_weights keys must be relationship types, got {rtype!r}")
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise ValidationError(f"type_weights[{rtype!r}] must be a number, got {weight!r}")
        if not (math.isfinite(weight) and weight > 0):
            raise ValidationError(f"type_weights[{rtype!r}] must be > 0 and finite, got {weight}")


def _training_graph(
    store: BaseStore,
    edges: torch.Tensor,
    held: set[tuple[int, int]],
    types: Sequence[str],
    users: list[str],
    items: list[str],
    export: GraphExport | None = None,
    strength: torch.Tensor | None = None,
    how: torch.Tensor | None = None,
    profile: np.ndarray | None = None,
) -> tuple[Any, dict[str, list[str]]]:
    """The stored graph with only the training interactions, and without the reviews whose
    (user, product) pair is held out (a review would reveal the purchase; it is cut from its
    writer and its product); and the node keys of every type, in row order. ``export``: the
    store's graph exported already (it is changed); ``strength``: per training pair, its
    :func:`pair_strength`, set as the interactions' ``edge_weight``; ``how``: per training
    pair, its :func:`pair_features`, set as their ``edge_attr``; ``profile``: the users'
    demographic matrix (:func:`demographic_features` of ``users`` when None)."""
    export = export or to_heterodata(store)
    data = export.data
    if export.ids.get("User") != users or export.ids.get("Product") != items:
        raise ValidationError("the graph changed while training started; run again")
    for et in list(data.edge_types):
        base = et[1].removeprefix(REVERSE_PREFIX)
        if base in types:
            del data[et]
    for nt in data.node_types:
        # behaviour features counted from interactions would leak the held-out ones
        if "behaviour_vec" in data[nt]:
            keep = [FEATURES[nt].index(c) for c in LEAK_FREE_BEHAVIOUR.get(nt, ())]
            if keep:
                data[nt].behaviour_vec = data[nt].behaviour_vec[:, keep]
            else:
                del data[nt].behaviour_vec
    if profile is None:
        profile = demographic_features(store, users)
    if profile is not None:
        data["User"].profile_vec = torch.from_numpy(profile)
    log_price = product_log_prices(store, items)
    if log_price is not None:
        data["Product"].log_price = log_price
    data["User", "INTERACTED", "Product"].edge_index = edges
    if strength is not None:
        data["User", "INTERACTED", "Product"].edge_weight = strength
    if how is not None:
        data["User", "INTERACTED", "Product"].edge_attr = how
    data["Product", f"{REVERSE_PREFIX}INTERACTED", "User"].edge_index = edges.flip(0)
    if held and ("User", "WROTE", "Review") in data.edge_types:
        rows = store.query(
            "MATCH (u:User)-[:WROTE]->(r:Review)-[:ABOUT]->(p:Product) "
            "RETURN u.id AS u, r.id AS r, p.id AS p"
        )
        u_index = export.index["User"]
        i_index = export.index["Product"]
        hidden = {
            export.index["Review"][r["r"]]
            for r in rows
            if (u_index[r["u"]], i_index[r["p"]]) in held
        }
        hidden_rows = torch.tensor(sorted(hidden), dtype=torch.long)
        # a hidden review is cut from the graph: from its writer and from its product
        for et in data.edge_types:
            if "Review" in (et[0], et[2]):
                ei = data[et].edge_index
                reviews = ei[0] if et[0] == "Review" else ei[1]
                data[et].edge_index = ei[:, ~torch.isin(reviews, hidden_rows)]
    return data, export.ids


def product_log_prices(store: BaseStore, keys: Sequence[str]) -> torch.Tensor | None:
    """``(len(keys),)`` the log of the stored ``Product.price`` of the products ``keys`` (NaN
    where unknown, not positive or not a stored product); None when the schema's products
    have no price. Reads only those products (a few for products added to a served model)."""
    product = store.schema.node("Product")
    if not product.has_property("price"):
        return None
    table = store.query_arrow(
        f"MATCH (p:Product) WHERE p.{product.key} IN $keys "
        f"RETURN p.{product.key} AS id, p.price AS price",
        {"keys": list(keys)},
    )
    price = pd.Series(
        table.column("price").to_numpy(zero_copy_only=False),
        index=table.column("id").to_pylist(),
        dtype=np.float64,
    )
    price = price[~price.index.duplicated()].reindex(list(keys))
    price = price.where(price > 0)
    return torch.from_numpy(np.log(price.to_numpy(dtype=np.float64))).float()


def _per_user(frame: pd.DataFrame, num_users: int) -> list[list[int]]:
    out: list[list[int]] = [[] for _ in range(num_users)]
    for u, i in zip(frame["user"].to_numpy(), frame["item"].to_numpy(), strict=True):
        out[int(u)].append(int(i))
    return out


def _validation_rows(
    num_users: int, num_items: int, truth: list[list[int]], max_scores: int, seed: int
) -> np.ndarray:
    """The user rows that validation ranks for: every user when their scores fit in
    ``max_scores``, else a seeded sample of ``max_scores // num_items`` of the users with
    validation interactions (sorted; all of them when they are fewer)."""
    if num_users * num_items <= max_scores:
        return np.arange(num_users)
    have = np.flatnonzero([len(t) > 0 for t in truth])
    size = max(1, max_scores // max(num_items, 1))
    if len(have) <= size:
        return have
    rng = np.random.default_rng(seed + 15485863)
    return np.sort(rng.choice(have, size=size, replace=False))


def _in_blocks(
    score_fn: Callable[[torch.Tensor], torch.Tensor],
    rows: np.ndarray,
    truth: list[list[int]],
    block: int,
    metrics: Callable[[np.ndarray, np.ndarray], dict[str, float]],
) -> dict[str, float]:
    """``metrics(scores, block rows)`` over the user ``rows``, ``block`` rows of scores at a
    time, averaged over the users with ``truth`` (one block: its metrics as they are)."""
    starts = range(0, len(rows), max(block, 1))
    if len(starts) <= 1:
        with torch.no_grad():
            return metrics(score_fn(torch.as_tensor(rows)).numpy(), rows)
    sums: dict[str, float] = {}
    counted = 0
    for start in starts:
        part = rows[start : start + block]
        users = sum(1 for r in part if truth[r])
        if not users:
            continue
        with torch.no_grad():
            found = metrics(score_fn(torch.as_tensor(part)).numpy(), part)
        for name, value in found.items():
            sums[name] = sums.get(name, 0.0) + value * users
        counted += users
    if not counted:
        with torch.no_grad():
            return metrics(score_fn(torch.as_tensor(rows[:block])).numpy(), rows[:block])
    return {name: value / counted for name, value in sums.items()}


def _validate_epoch(
    model: torch.nn.Module,
    rows: np.ndarray,
    seen: list[list[int]],
    truth: list[list[int]],
    block: int,
    epoch: int,
    lr: float,
) -> dict[str, float]:
    """The validation recalls of ``epoch``: ``valid_recall@20`` and, for a fusion model with
    a content term, ``valid_content_recall@20`` (the content path ranks new products; its own
    validation recall counts too, or the weights are kept at an epoch where it has barely
    started to learn).

    Raises:
        ValidationError: The model's scores are NaN or +inf (training diverged), naming
            ``epoch`` and ``lr``.
    """
    try:
        out = {"valid_recall@20": _evaluate(model, rows, seen, truth, block)["recall@20"]}
        if isinstance(model, FusionGNN) and model.content_weight > 0:
            content = _evaluate(model, rows, seen, truth, block, content=True)
            out["valid_content_recall@20"] = content["recall@20"]
    except _DivergedError as exc:
        raise ValidationError(
            f"{exc} after epoch {epoch}; use a smaller lr (it was {lr:g})"
        ) from None
    return out


class _DivergedError(ValidationError):
    """The model's scores are NaN or +inf: its training diverged (:func:`_evaluate`)."""


def _check_finite_weights(model: torch.nn.Module, epoch: int, lr: float) -> None:
    """Raise ValidationError when a weight of ``model`` is NaN or infinite after ``epoch``
    (the loss can stay finite while the steps overflow the weights)."""
    with torch.no_grad():
        if all(bool(torch.isfinite(p).all()) for p in model.parameters()):
            return
    raise ValidationError(
        f"training diverged: the model's weights are not finite after epoch {epoch}; use a "
        f"smaller lr (it was {lr:g})"
    )


def _evaluate(
    model: torch.nn.Module,
    rows: np.ndarray,
    seen: list[list[int]],
    truth: list[list[int]],
    block: int,
    content: bool = False,
) -> dict[str, float]:
    """Full-ranking metrics of the model's scores for the users ``rows`` (``content``: of its
    content-only scores, :meth:`FusionGNN.cold_scores`), ``block`` users at a time."""
    model.eval()
    fn: Any = model.cold_scores if content else model.scores

    def metrics(scores: np.ndarray, part: np.ndarray) -> dict[str, float]:
        if not (scores < np.inf).all():  # the metrics' message would blame the caller
            raise _DivergedError("training diverged: the model's scores are NaN or +inf")
        return full_ranking_metrics(
            scores, [seen[r] for r in part], [truth[r] for r in part], ks=(10, 20)
        )

    out = _in_blocks(fn, rows, truth, block, metrics)
    model.train()
    return out


def _fit_blend(
    model: FusionGNN,
    rows: np.ndarray,
    seen: list[list[int]],
    truth: list[list[int]],
    cold: tuple[np.ndarray, list[list[int]]] | None = None,
    leave_out: Sequence[str] = (),
) -> dict[str, float]:
    """Set the model's neighbourhood weights to those with the best validation Recall@20
    (:func:`~graphfusion.models.neighbourhood.search_weights` from 0 over the kernels it
    has but ``leave_out``, which keep 0, :data:`BLEND_PASSES` passes), for its scores, and
    for its content-only scores (on ``cold``, the validation cold products and their
    interactions, where given); and return them, one per path and kernel of
    :data:`~graphfusion.models.neighbourhood.KERNELS`."""
    assert model.neighbourhood is not None
    model.set_blend([0.0] * len(KERNELS), [0.0] * len(KERNELS))
    model.eval()
    users = torch.as_tensor(rows)
    seen, truth = [seen[r] for r in rows], [truth[r] for r in rows]
    if cold is not None:
        cold = (cold[0], [cold[1][r] for r in rows])
    names = [n for n in model.available if n not in leave_out]
    with torch.no_grad():
        # standardized once (blend_standardized ranks as blend does, for every weight); only
        # the learned kernel differs between the paths
        shared = model.kernels(users, names=[n for n in names if n != "learned"])
        fixed = {k: standardize(v) for k, v in shared.items()}
        paths = [
            (model.scores(users), model.embeddings()[1], None),
            (model.cold_scores(users), model.content()[model.item], cold),
        ]
    chosen: list[list[float]] = []
    for base, items, among in paths:
        kernels = dict(fixed)
        if "learned" in names:
            learned = model.kernels(users, items, ["learned"])["learned"]
            kernels["learned"] = standardize(learned)
        in_order = {k: kernels[k] for k in names}
        recall = _blend_recall(standardize(base), in_order, seen, truth, among)
        found = search_weights(recall, dict.fromkeys(names, 0.0), BLEND_PASSES)
        chosen.append([found.get(k, 0.0) for k in KERNELS])
    model.train()
    model.set_blend(*chosen)
    return {f"{path} {kernel}": chosen[p][k] for p, path in enumerate(("warm", "cold"))
            for k, kernel in enumerate(KERNELS)}  # fmt: skip


def _fit_taste(
    model: FusionGNN,
    config: TrainConfig,
    rows: np.ndarray,
    seen: list[list[int]],
    truth: list[list[int]],
    progress: bool,
    stop: Callable[[int], bool] | None = None,
) -> list[dict[str, float]]:
    """Train the model's taste model (:func:`~graphfusion.models.taste.fit_taste`, at most
    ``config.taste_epochs`` epochs, the epoch of the best validation Recall@20 of the users
    ``rows`` kept; ``stop``: its ``stop``) and return its history."""
    assert model.taste is not None
    pairs, how, follows = model.taste_pairs()
    every = len(rows) == model.num_users
    seen, truth = [seen[r] for r in rows], [truth[r] for r in rows]

    def recall(scores: torch.Tensor) -> float:
        return float(full_ranking_metrics(scores.numpy(), seen, truth, ks=(20,))["recall@20"])

    fitted, history = fit_taste(
        model.taste.features, pairs, how, model.num_users, follows=follows, validate=recall,
        validate_users=None if every else torch.as_tensor(rows),
        config=TasteConfig(epochs=config.taste_epochs, seed=config.seed), progress=progress,
        stop=stop,
    )  # fmt: skip
    model.taste.load_state_dict(fitted.state_dict())
    return history


def _blend_recall(
    base: torch.Tensor,
    kernels: dict[str, torch.Tensor],
    seen: list[list[int]],
    truth: list[list[int]],
    among: tuple[np.ndarray, list[list[int]]] | None,
) -> Callable[[dict[str, float]], float]:
    """Recall@20 of the blend of standardized ``base`` and ``kernels`` with weights by kernel:
    over the full ranking, or over the products ``among[0]`` (held-out ``among[1]``)."""

    def recall(weights: dict[str, float]) -> float:
        scores = blend_standardized(base, list(kernels.values()), list(weights.values()))
        metrics = (full_ranking_metrics(scores.numpy(), seen, truth, ks=(20,)) if among is None
                   else _rank_among(scores.numpy(), *among))  # fmt: skip
        return float(metrics["recall@20"])

    return recall


def _fit_light(
    model: FusionGNN | LightGCN | MF,
    users: list[str],
    num_items: int,
    train_df: pd.DataFrame,
    held: pd.DataFrame,
    light: np.ndarray,
    profile: np.ndarray | None,
    blocks: list[slice],
) -> tuple[LightFit, dict[str, float]]:
    """Choose the light-user blend's weights on the ``light`` users (a third search, a third
    confirm, :func:`graphfusion.light.group_of`) and test the served ones on the last third:
    ``(the choice, test metrics)``."""
    n_u = len(users)
    kept_of = _per_user(train_df, n_u)
    held_of = _per_user(held, n_u)
    popularity = np.bincount(train_df["item"].to_numpy(), minlength=num_items)
    trained = np.bincount(train_df["user"].to_numpy(), minlength=n_u) > 0
    model.eval()
    with torch.no_grad():
        user_vecs, item_vecs = (t.numpy() for t in model.embeddings())

        def held_out(rows: np.ndarray) -> HeldOut:
            scores = model.scores(torch.as_tensor(rows)).numpy()
            peers = [peer_rows(profile, trained, int(u), blocks) for u in rows]
            parts = light_parts(
                [np.array(kept_of[u]) for u in rows],
                popularity=popularity,
                item_vecs=item_vecs,
                model_scores=lambda r: scores[r],
                peer_vecs=lambda r: user_vecs[peers[r]].mean(0) if len(peers[r]) else None,
            )
            return HeldOut(parts, [kept_of[u] for u in rows], [held_of[u] for u in rows])

        group = group_of(len(light))
        search, confirm, test = (light[group == g] for g in range(len(GROUPS)))
        fit = fit_weights(held_out(search[:MAX_FIT_USERS]), held_out(confirm[:MAX_FIT_USERS]))
        tested: dict[str, list[float]] = {}
        for start in range(0, len(test), MAX_FIT_USERS):
            chunk = held_out(test[start : start + MAX_FIT_USERS])
            blended = chunk.parts.blend(fit.weights)
            metrics = full_ranking_metrics(blended, chunk.kept, chunk.truth, ks=(10, 20))
            metrics["default recall@20"] = chunk.recall(DEFAULT_WEIGHTS)
            for key, value in metrics.items():
                tested.setdefault(key, []).append(value * len(chunk.kept))
    model.train()
    return fit, {key: sum(values) / len(test) for key, values in tested.items()}


def _evaluate_cold(
    model: torch.nn.Module,
    rows: np.ndarray,
    cold_items: np.ndarray,
    truth: list[list[int]],
    block: int,
) -> dict[str, float]:
    """Each user's held-out cold products ranked among all cold products (none was seen),
    for the users ``rows``, ``block`` at a time."""
    model.eval()
    score_fn: Any = getattr(model, "cold_scores", None) or model.scores

    def metrics(scores: np.ndarray, part: np.ndarray) -> dict[str, float]:
        return _rank_among(scores, cold_items, [truth[r] for r in part], ks=(10, 20))

    out = _in_blocks(score_fn, rows, truth, block, metrics)
    model.train()
    return out


def _rank_among(
    scores: np.ndarray, items: np.ndarray, truth: list[list[int]], ks: tuple[int, ...] = (20,)
) -> dict[str, float]:
    """Metrics of ``(num_users, num_items)`` scores with each user's ``truth`` (product rows
    out of ``items``) ranked among ``items`` only."""
    column = {int(item): j for j, item in enumerate(items)}
    local = [[column[i] for i in row] for row in truth]
    return full_ranking_metrics(scores[:, items], [[] for _ in truth], local, ks=ks)


def _cold_split(
    frame: pd.DataFrame, num_items: int, share: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Hold out every interaction of ``share`` of the interacted products (seeded)."""
    if share <= 0:
        return frame, frame.iloc[:0], np.zeros(0, dtype=np.int64)
    items = np.unique(frame["item"].to_numpy())
    rng = np.random.default_rng(seed + 7919)
    cold = np.sort(rng.choice(items, size=max(1, round(share * len(items))), replace=False))
    held = frame["item"].isin(cold)
    return frame[~held].reset_index(drop=True), frame[held].reset_index(drop=True), cold


def _cold_validation(
    cold_df: pd.DataFrame, cold: np.ndarray, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
    """Split the cold products (seeded) into :data:`COLD_VALID_SHARE` that validate the ranking
    of new products and the rest, which are tested: ``(validation interactions, test
    interactions, validation products, test products)``; with fewer than
    :data:`COLD_VALID_MIN` cold products, all are tested."""
    if len(cold) < COLD_VALID_MIN:
        return cold_df.iloc[:0], cold_df, cold[:0], cold
    rng = np.random.default_rng(seed + 104729)
    valid = np.sort(rng.choice(cold, size=round(COLD_VALID_SHARE * len(cold)), replace=False))
    held = cold_df["item"].isin(valid)
    test = np.setdiff1d(cold, valid)
    return cold_df[held].reset_index(drop=True), cold_df[~held].reset_index(drop=True), valid, test


def _plot(history: list[dict[str, float]], path: Path, title: str) -> Path:
    """Save the training curve (:func:`_curve`) to ``path``."""
    return save_figure(_curve(history, title), path)


def _curve(history: list[dict[str, float]], title: str) -> Any:
    """The training curve of ``history``: the loss and the validation recalls per epoch,
    each value marked (a run of one epoch draws no line), on whole epochs."""
    from matplotlib.ticker import MaxNLocator

    epochs = [h["epoch"] for h in history]
    fig, ax = new_figure(6, 3.5)
    lines = ax.plot(epochs, [h["loss"] for h in history], color="tab:blue", marker="s",
                    markersize=4, label="BPR loss")  # fmt: skip
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss", color="tab:blue")
    ax2 = ax.twinx()
    lines += ax2.plot(epochs, [h["valid_recall@20"] for h in history], color="tab:orange",
                      marker="o", label="validation Recall@20")  # fmt: skip
    if any("valid_content_recall@20" in h for h in history):
        content = [h.get("valid_content_recall@20", np.nan) for h in history]
        lines += ax2.plot(epochs, content, color="tab:green", marker=".",
                          label="validation Recall@20, content only")  # fmt: skip
    ax2.set_ylabel("validation Recall@20", color="tab:orange")
    ax2.legend(lines, [line.get_label() for line in lines], loc="lower right", fontsize=8)
    ax.set_title(title)
    return fig


@contextmanager
def _sigint(handler: Callable[[int, FrameType | None], Any]) -> Iterator[bool]:
    """Handle Ctrl-C (SIGINT) with ``handler`` over the block where that can be done without
    taking it from anyone: in the main thread, over Python's default handler (the one a
    Jupyter kernel runs code under too); yields whether it did. Python's handler is put back
    on leaving (unless the handler already did, or something else replaced it)."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield False
        return
    signal.signal(signal.SIGINT, handler)
    try:
        yield True
    finally:
        if signal.getsignal(signal.SIGINT) == handler:
            signal.signal(signal.SIGINT, signal.default_int_handler)


class _CtrlC:
    """Ctrl-C during a training phase (the model's epochs, the fusion model's taste model's):
    the first asks the phase to stop as early stopping does, at the next :meth:`poll` (after
    each step), keeping its best epoch; from then on Ctrl-C aborts as Python's handler does
    (KeyboardInterrupt). So does the first while ``keep`` is False (no epoch to keep yet).

    A context manager: the handler is installed only where :func:`_sigint` can; elsewhere (a
    thread, a handler of the caller's) Ctrl-C is left as it is and :meth:`poll` is False. The
    handler writes nothing (a write to stderr that the signal interrupted, the progress
    bar's, would be entered again and the message lost): the phase says that it stopped.

    Args:
        keep: Whether a Ctrl-C now has something to keep (else it aborts at once).
    """

    def __init__(self, *, keep: bool) -> None:
        self.keep = keep
        self.requested = False
        #: The epoch in progress when the stop was taken (:meth:`poll`), or None.
        self.at: int | None = None
        self._held = _sigint(self._handle)

    def __enter__(self) -> _CtrlC:
        self._held.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._held.__exit__(*exc)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # the next one aborts
        if not self.keep:
            signal.default_int_handler(signum, frame)  # raises KeyboardInterrupt
        self.requested = True

    def poll(self, epoch: int) -> bool:
        """Whether to stop now, ``epoch`` being the epoch in progress (noted as :attr:`at`)."""
        if self.requested and self.at is None:
            self.at = epoch
        return self.requested


@contextmanager
def _ctrl_c_after(what: str) -> Iterator[None]:
    """Hold a Ctrl-C back until the block, ``what``, is done, then raise KeyboardInterrupt
    (where :func:`_sigint` can install a handler): the block is all or nothing to a Ctrl-C."""
    came: list[int] = []
    with _sigint(lambda signum, frame: came.append(signum)):
        yield
    if came:
        log.warning(
            "Ctrl-C while %s: that was finished first (the store serves the new model); "
            "aborting now",
            what,
        )
        raise KeyboardInterrupt


@repeatable
def train(
    store: BaseStore,
    config: TrainConfig | None = None,
    *,
    out_dir: str | Path | None = None,
    write_back: bool = True,
    progress: bool = False,
) -> TrainResult:
    """Train a model on the store's interactions and write its embeddings back.

    Args:
        store: The store.
        config: Settings (defaults when None).
        out_dir: Where the checkpoint, curve and history go (``models/`` in the store folder,
            or ``./graphfusion-models/models`` for Neo4j). Written back elsewhere, the store's
            own models folder is told whose vectors it now holds too (:func:`mark_served`).
        write_back: Write ``fused_vec`` and ``rec_vec`` for users and products (trainable
            models only). A model not written back is never served, and its files do not
            replace the served model's: they are named ``<model>-unwritten`` (``.pt``,
            ``-curve.png``, ``-history.json``). A model whose ``dim`` is not the schema's is
            never written back; its files are named ``<model>-dim<dim>``.
        progress: Show a progress bar.

    Returns:
        The history, test metrics and file paths.

    Raises:
        ValidationError: Bad settings (among them interaction types the schema lacks or
            that do not link User to Product, :meth:`TrainConfig.check_types`), a store
            opened read-only, or too few interactions to split (no user with validation or
            test interactions, or no interactions left to train on beside the cold products).
        SchemaError: The schema lacks what training reads and writes: ``User``, ``Product``,
            their ``id`` keys, their ``fused_vec`` (but for popularity), or the default
            interaction types.
        KeyboardInterrupt: A Ctrl-C that aborts (below).

    **Ctrl-C.** The first Ctrl-C (SIGINT) while the model's epochs run stops them after the
    step in progress, as early stopping does: that epoch is abandoned (or, when the Ctrl-C
    comes while it is validated, completed), the best validated epoch is kept, and what
    follows training runs as usual: the fusion model's taste model (whose epochs a Ctrl-C
    stops the same way, keeping its best; stopped before its first epoch ends, it is left
    out of the blend), the blend weights, the light users, the test, the files and the
    write-back. ``TrainResult.interrupted`` says where it stopped, and the summary, the
    history file and the progress bar say so. A Ctrl-C before the first epoch is validated,
    or one outside those epochs (a second), aborts with KeyboardInterrupt, as Python does,
    and leaves the served model, its files and the stored vectors as they were; one that
    comes while the vectors are written is held until they all are (and the checkpoint
    serves them), then aborts. This needs Python's own SIGINT handler in the main thread
    (as in a terminal or a Jupyter kernel), which training replaces while it runs and then
    puts back; in another thread, or under a handler of the caller's, Ctrl-C is left alone.
    """
    config = config or TrainConfig()
    config.check(store.schema)
    store.check_writable("training")
    written = ("User.fused_vec", "Product.fused_vec") if config.model != "popularity" else ()
    store.schema.require(
        f"training on {', '.join(config.interactions)}",
        ("User", "Product"),
        config.interactions,
        ("User.id", "Product.id", *written),  # it reads n.id and writes back fused_vec
    )
    ignored = config.ignored_type_weights()
    if ignored:
        log.warning("%s", ignored)
    frame, users, items = load_interactions(store, config.interactions, config.type_weights)
    _check_enough(frame, users, items, config.interactions)
    n_u, n_i = len(users), len(items)
    frame, held_cold, cold = _cold_split(frame, n_i, config.cold_items, config.seed)
    cold_valid_df, cold_df, cold_valid_items, cold_items = _cold_validation(
        held_cold, cold, config.seed
    )
    _warn_trivial_cold(len(cold_items), config.cold_items)
    share = config.light_users if config.model != "popularity" else 0.0
    frame, held_light, light = light_split(frame, share, config.seed)
    _warn_no_light_users(share, len(light))
    train_df, valid_df, test_df = random_split(frame, seed=config.seed)
    _check_split(train_df, valid_df, test_df)
    seen_train = _per_user(train_df, n_u)
    valid = _per_user(valid_df, n_u)
    test = _per_user(test_df, n_u)
    cold_test = _per_user(cold_df, n_u)
    seen_valid = [a + b for a, b in zip(seen_train, valid, strict=True)]
    everyone, block = np.arange(n_u), max(1, config.max_scores // n_i)
    checked = _validation_rows(n_u, n_i, valid, config.max_scores, config.seed)
    edges = torch.tensor(train_df[["user", "item"]].to_numpy().T, dtype=torch.long)
    folder = Path(out_dir) if out_dir else store_models_dir(store)
    folder.mkdir(parents=True, exist_ok=True)
    result = TrainResult(config)
    torch.manual_seed(config.seed)
    node_ids: dict[str, list[str]] = {"User": users, "Product": items}
    demographics = fit_demographics(store, users)  # kept with the model: new users fit it
    profile = demographic_features(store, users, demographics)
    if config.model == "popularity":
        model: torch.nn.Module = Popularity(edges, n_u, n_i)
        result.test = _evaluate(model, everyone, seen_valid, test, block)
        if len(cold_items):
            result.cold = _evaluate_cold(model, everyone, cold_items, cold_test, block)
        return result
    name = config.model
    if config.dim != (store.schema.node("Product").prop("fused_vec").type.dim or config.dim):
        write_back, name = False, f"{config.model}-dim{config.dim}"
        log.warning("dim %d differs from the schema's fused_vec: not written back", config.dim)
    elif not write_back:  # never served: its files must not replace the served model's
        name = f"{config.model}-unwritten"
    if config.model == "fusion":
        held = {
            (int(u), int(i))
            for df in (valid_df, test_df, held_cold, held_light)
            for u, i in zip(df["user"], df["item"], strict=True)
        }
        strength = torch.tensor(train_df["strength"].to_numpy(), dtype=torch.float32)
        how = torch.tensor(train_df[how_columns(config.interactions)].to_numpy(np.float32))
        data, node_ids = _training_graph(
            store, edges, held, config.interactions, users, items, strength=strength, how=how,
            profile=profile,
        )  # fmt: skip
        model = FusionGNN(
            data, config.dim, config.layers,
            context_layers=config.context_layers, item_ids=config.item_ids,
            content_weight=config.content_weight,
            neighbourhood_rank=config.neighbourhood_rank, taste=config.taste_epochs > 0,
        )  # fmt: skip
    elif config.model == "lightgcn":
        model = LightGCN(edges, n_u, n_i, config.dim, config.layers)
    else:
        model = MF(n_u, n_i, config.dim)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    gen = torch.Generator().manual_seed(config.seed)
    best, best_state, waited, spent = -1.0, copy.deepcopy(model.state_dict()), 0, 0.0
    bar = progress_bar(range(1, config.epochs + 1), desc=f"train {config.model}", progress=progress)
    # a Ctrl-C stops the epochs as early stopping does, once one epoch is validated
    with _CtrlC(keep=False) as ctrl_c:
        for epoch in bar:
            started = time.perf_counter()
            order = torch.randperm(edges.shape[1], generator=gen)
            total, steps = 0.0, 0
            for start in range(0, len(order), config.batch_size):
                batch = edges[:, order[start : start + config.batch_size]]
                neg = torch.randint(0, n_i, (batch.shape[1],), generator=gen)
                loss = model.loss(batch[0], batch[1], neg, config.reg)
                if not torch.isfinite(loss):  # nothing is written: the store keeps its model
                    raise ValidationError(
                        f"training diverged: the loss is {loss.item()} at epoch {epoch}; "
                        f"use a smaller lr (it was {config.lr:g})"
                    )
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item()
                steps += 1
                if ctrl_c.poll(epoch):
                    break
            stopped = f"train {config.model} (interrupted at epoch {epoch})"
            if ctrl_c.requested:  # the epoch in progress is abandoned
                bar.set_description(stopped)
                break
            spent += time.perf_counter() - started
            _check_finite_weights(model, epoch, config.lr)
            recalls = _validate_epoch(model, checked, seen_train, valid, block, epoch, config.lr)
            entry = {"epoch": epoch, "loss": total / max(steps, 1), **recalls}
            # the content recall, where there is one, counts too (_validate_epoch)
            score = sum(recalls.values())
            result.history.append(entry)
            shown = {k.removeprefix("valid_"): f"{v:.4f}" for k, v in entry.items()
                     if k != "epoch"}  # fmt: skip
            if score > best:
                best, best_state, waited, result.best_epoch = (
                    score,
                    copy.deepcopy(model.state_dict()),
                    0,
                    epoch,
                )
            else:
                waited += 1
            ctrl_c.keep = True  # before the bar shows the epoch: a Ctrl-C then keeps it
            bar.set_postfix(shown)  # each recall on its own (the sum, ``score``, can pass 1)
            if ctrl_c.poll(epoch):
                bar.set_description(stopped)
                break
            if waited >= config.patience:
                break
    taste = isinstance(model, FusionGNN) and model.taste is not None
    if ctrl_c.at is not None:
        result.interrupted["epoch"] = ctrl_c.at
        log.warning(
            "training interrupted by Ctrl-C at epoch %d: epoch %d kept; %s", ctrl_c.at,
            result.best_epoch, "the taste model trains next (Ctrl-C stops it too)" if taste
            else "testing and saving it (Ctrl-C again aborts)",
        )  # fmt: skip
    model.load_state_dict(best_state)
    if isinstance(model, FusionGNN) and model.taste is not None:
        started = time.perf_counter()
        with _CtrlC(keep=True) as ctrl_c:
            result.taste_history = _fit_taste(
                model, config, checked, seen_train, valid, progress, stop=ctrl_c.poll
            )
        result.taste_seconds = time.perf_counter() - started
        if ctrl_c.at is not None:
            result.interrupted["taste epoch"] = ctrl_c.at
            log.warning("%s; testing and saving the model (Ctrl-C again aborts)",
                        result._taste_interruption())  # fmt: skip
    elif isinstance(model, FusionGNN) and config.taste_epochs:
        why = (
            "it needs the neighbourhood (neighbourhood_rank > 0)"
            if config.neighbourhood_rank == 0
            else "the products have no text or image vectors (embed first)"
        )
        log.warning("no taste model: %s", why)
    if isinstance(model, FusionGNN) and model.neighbourhood is not None:
        cold_valid = (
            (cold_valid_items, _per_user(cold_valid_df, n_u)) if len(cold_valid_items) else None
        )
        # an untrained taste model (stopped before its first epoch) has no place in it
        leave_out = () if result.taste_history else ("taste",)
        result.blend = _fit_blend(model, checked, seen_train, valid, cold_valid, leave_out)
        best_state = copy.deepcopy(model.state_dict())
    if len(light):
        assert isinstance(model, FusionGNN | LightGCN | MF)
        fit, result.light = _fit_light(
            model, users, n_i, train_df, held_light, light, profile, demographics.blocks()
        )
        result.light_weights, result.light_search = fit.weights, fit.to_dict()
    result.seconds_per_epoch = spent / len(result.history)
    result.test = _evaluate(model, everyone, seen_valid, test, block)
    if len(cold_items):
        result.cold = _evaluate_cold(model, everyone, cold_items, cold_test, block)
    # The checkpoint, curve and history replace the served model's only once the store holds
    # its vectors, computed before the first is written: a run that fails or is aborted before
    # leaves the model served, its files and the vectors stored in step (and no part files).
    assert isinstance(model, FusionGNN | LightGCN | MF)
    result.checkpoint, result.curve = folder / f"{name}.pt", folder / f"{name}-curve.png"
    history = folder / f"{name}-history.json"
    parts = {
        result.checkpoint: folder / f"{name}.pt.part",
        result.curve: folder / f"{name}-curve.part.png",
        history: folder / f"{name}-history.json.part",
    }
    try:
        torch.save({"state_dict": best_state, "config": asdict(config), "users": users,
                    "items": items, "node_ids": node_ids,
                    "light_weights": result.light_weights,
                    "demographics": demographics.to_dict(), "written_back": write_back},
                   parts[result.checkpoint])  # fmt: skip
        title = config.model + (" (interrupted)" if result.interrupted else "")
        _plot(result.history, parts[result.curve], title)
        parts[history].write_text(json.dumps(result.to_dict(), indent=2))
        vectors = (
            _write_back_vectors(store, model, n_u, n_i, block, config.seed) if write_back else {}
        )
        # the store's own folder says whose vectors it holds, wherever the files go
        own = store_models_dir(store)
        homes = [folder] if own.resolve() == folder.resolve() else [folder, own]
        with _ctrl_c_after("writing the model back"):
            if write_back:  # until every vector is written, the store holds no model's
                for home in homes:
                    home.mkdir(parents=True, exist_ok=True)
                    mark_writing(home, config.model)
            for (label, prop), matrix in vectors.items():
                write_vectors(store, label, prop, users if label == "User" else items, matrix)
            for final, part in parts.items():
                os.replace(part, final)
            if write_back:
                for home in homes:
                    mark_served(home, config.model)
    except BaseException:
        for part in parts.values():
            part.unlink(missing_ok=True)
        raise
    return result


def _write_back_vectors(
    store: BaseStore, model: FusionGNN | LightGCN | MF, n_u: int, n_i: int, block: int, seed: int
) -> dict[tuple[str, str], np.ndarray]:
    """What :func:`train` writes back, by (label, property): the model's embeddings as
    ``fused_vec``, and, where the schema has ``rec_vec``, factors of its scores
    (:func:`~graphfusion.rec_vectors.score_factors`, ``block`` users at a time)."""
    with torch.no_grad():
        u_emb, i_emb = (t.numpy().astype(np.float64) for t in model.embeddings())
    out = {("User", "fused_vec"): u_emb, ("Product", "fused_vec"): i_emb}
    rank = rec_rank(store)
    if rank is not None:
        model.eval()
        u_fac, i_fac = score_factors(model.scores, n_u, n_i, rank, block=block, seed=seed)
        products, scale = product_rec_vectors(i_fac)
        out["User", PROPERTY] = user_rec_vectors(u_fac, scale)
        out["Product", PROPERTY] = products
    return out


def store_models_dir(store: BaseStore) -> Path:
    """The store's own models folder: ``models/`` in the store folder; for a store without a
    folder (Neo4j) ``$GRAPHFUSION_MODELS``, else ``./graphfusion-models/models`` (of the
    working folder: set the variable where training and serving run in different folders).

    Raises:
        ValidationError: ``$GRAPHFUSION_MODELS`` is only spaces, or names an unknown home.
    """
    folder = getattr(store, "path", None)
    if folder is not None:
        return Path(folder) / "models"
    named = os.environ.get("GRAPHFUSION_MODELS")
    if not named:
        return Path("graphfusion-models") / "models"
    if not named.strip():
        raise ValidationError("$GRAPHFUSION_MODELS is blank; name a folder or unset it")
    return home_path(named, "$GRAPHFUSION_MODELS")


def _check_enough(
    frame: pd.DataFrame, users: Sequence[str], items: Sequence[str], types: Sequence[str]
) -> None:
    """Raise ValidationError when there are fewer than :data:`MIN_INTERACTIONS` interacting
    pairs, naming the types read and how many users and products the store holds."""
    if len(frame) >= MIN_INTERACTIONS and users and items:
        return
    named = ", ".join(types[:-1]) + f" or {types[-1]}" if len(types) > 1 else types[0]
    raise ValidationError(
        f"too few interactions to train on: {len(frame)} user-product pairs linked by {named} "
        f"among {len(users)} users and {len(items)} products (at least {MIN_INTERACTIONS} "
        "are needed)"
    )


def _warn_trivial_cold(tested: int, share: float) -> None:
    """Warn when so few cold products are tested that ranking a user's among them gives a
    Recall@10 or @20 of 1 whatever the model (:func:`_evaluate_cold`)."""
    trivial = [k for k in (10, 20) if 0 < tested <= k]
    if trivial:
        log.warning(
            "only %d cold products are tested (cold_items=%g): each user's are ranked among "
            "them, so cold %s %s 1 by construction; hold out more products to measure cold "
            "start", tested, share, " and ".join(f"Recall@{k}" for k in trivial),
            "are" if len(trivial) > 1 else "is",
        )  # fmt: skip


def _warn_no_light_users(share: float, light: int) -> None:
    """Warn when ``light_users`` asked for light users and the store has too few to make any
    (:func:`graphfusion.light.light_split`): the defaults are kept, as with 0."""
    if share > 0 and not light:
        log.warning(
            "light_users=%g made no user light: fewer than %d users with %d or more products "
            "would be (%d per third: search, confirm, test); the light-user blend keeps its "
            "default weights", share, 3 * MIN_USERS, MIN_PRODUCTS, MIN_USERS,
        )  # fmt: skip


def _check_split(train_df: pd.DataFrame, valid_df: pd.DataFrame, test_df: pd.DataFrame) -> None:
    """Raise ValidationError when the split leaves nothing to train, validate or test on
    (users with fewer than 3 interactions stay in training only)."""
    for part, rows in (("training", train_df), ("validation", valid_df), ("test", test_df)):
        if not len(rows):
            raise ValidationError(
                f"too few interactions to split: the {part} split is empty (a user with fewer "
                "than 3 interactions gives none to validation and test; cold_items holds its "
                "products' interactions out of all three)"
            )


def mark_served(folder: Path, model: str) -> None:
    """Note in the models folder that the store's ``fused_vec`` and ``rec_vec`` are now
    ``model``'s: the model a :class:`~graphfusion.recommend.Recommender` serves by default."""
    (folder / SERVED_FILE).write_text(json.dumps({"model": model}), encoding="utf-8")


def mark_writing(folder: Path, model: str) -> None:
    """Note in the models folder that ``model``'s vectors are being written to the store: until
    :func:`mark_served` replaces the note, the stored vectors may be partly another model's
    (a write-back stopped half way), and no model is served from them."""
    payload = {"model": None, "writing": model}
    (folder / SERVED_FILE).write_text(json.dumps(payload), encoding="utf-8")


def writing_model(folder: Path) -> str | None:
    """The model whose write-back :func:`mark_writing` noted in ``folder`` and that never
    finished; None when the last write-back finished (or the note cannot be read)."""
    try:
        name = json.loads((folder / SERVED_FILE).read_text(encoding="utf-8")).get("writing")
    except (OSError, ValueError, AttributeError):
        return None
    return name if isinstance(name, str) else None


def served_model(folder: Path) -> str | None:
    """The model :func:`mark_served` noted in ``folder``; None when none was (a models folder
    from before the note) or the note cannot be read."""
    try:
        name = json.loads((folder / SERVED_FILE).read_text(encoding="utf-8"))["model"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return name if name in MODELS else None
