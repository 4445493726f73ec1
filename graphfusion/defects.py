"""Defect-propagation analysis: from reviews, photos, recalls and supply data to risky
batches, suppliers and products.

The graph it reads: ``(Review)-[:ABOUT]->(Product)``, ``(Recall)-[:ABOUT]->(Product)``,
``(Product)-[:HAS_IMAGE]->(Image)``, ``(Product)-[:FROM_BATCH]->(Batch)<-[:PRODUCED]-(Supplier)``
and ``(Supplier)-[:SUPPLIES]->(Product)``.

**Evidence.** Every piece of evidence is a *defect report* about one product, with a weight
(how many observations it is worth) and a score in [0, 1] (how sure it is that it reports a
defect):

- *review* (weight 1): ``text`` compares the review's MiniLM vector (title and text) with
  :data:`DEFECT_PHRASES` and :data:`FINE_PHRASES`: ``sigmoid(TEXT_SCALE * (margin -
  TEXT_SHIFT))``, where ``margin`` is the best defect similarity minus the best fine
  similarity; for a review that only denies defects ("Nothing is broken", "Zero issues": a
  defect word after a negation, no other defect word, no "but" or "though" after it) the
  fine similarity is also taken over :data:`NEGATION_PHRASES`, as MiniLM reads a denied
  defect as the defect. The score is ``sigmoid(logit(text) + RATING_LOGIT * (3 - rating))``:
  the text decides and the rating nudges, so a one-star review about a late delivery is no
  defect report and a four-star review that says the product cracked is one. A review
  without text (no text vector, or a title and text of punctuation or emoji alone, with no
  letter or digit) reads like the reviews of its star that have one: ``(S + PRIOR_WEIGHT *
  (5 - rating) / 4) / (n + PRIOR_WEIGHT)`` over the ``n`` reviews with text whose rating
  rounds to the same whole star (``S`` the sum of their scores), so with no text anywhere
  (nothing embedded) the rating decides (a warning, logged to ``graphfusion.defects`` as the
  other modules log theirs, says how many reviews with words lack a text vector, and to run
  ``graphfusion embed``), and a one-star review without text
  is no surer a defect report than the one-star reviews that say what went wrong. A rating
  outside 1..5 (loading refuses those; a store written otherwise may hold a 0 for "not
  rated") counts as none: the text alone decides, and a review with neither gets the mean
  score of the others. A review scoring above 0.5 is a *defect review*; shown as evidence
  without text, it says so and gives its rating.
- *image* (weight :data:`IMAGE_WEIGHT` times its score): how odd a product's photo is among
  the photos of its category: the mean cosine distance to its :data:`IMAGE_NEIGHBOURS`
  nearest photos of the category (a sample of :data:`IMAGE_SAMPLE` photos in bigger
  categories), as a robust z-score within the category (median, 1.4826 MAD), scored
  ``sigmoid(IMAGE_SLOPE * (z - IMAGE_Z))``. Categories with fewer than :data:`IMAGE_MIN`
  photos score 0. The photos of products without a category are scored among each other, as
  one more category (a store whose products have none can still tell a damaged photo of one
  kind of product; where they are of many kinds, their variety reads as oddity: give them
  categories); the evidence says so, and ``image_category`` of :attr:`DefectAnalysis.products`
  is None for them. A photo that shows nothing odd is no observation: most defects do not
  show.
- *recall* (weight :data:`RECALL_WEIGHT`, score 1): an official recall about the product
  (``(Recall)-[:ABOUT]->(Product)``, e.g. from the ``cpsc_recalls`` mapping); its hazard text
  is shown as the evidence.

A product's *reports* ``K`` are the weighted sum of its evidence scores and its
*observations* ``N`` the sum of the weights. The evidence *shown* for a node (rankings,
evidence paths, subgraph plots) is its products' recalls, defect reviews and photos scoring
above :data:`EVIDENCE_MIN` (0.5): a review that reports no defect counts toward the risk, as
an observation without a report, but is no evidence against the node. Only the kinds of
evidence that count (``sources`` of :func:`analyse`) are shown.

**Propagation** (empirical Bayes over Supplier -> Batch -> Product, a beta-binomial
hierarchy with :data:`PRIOR_WEIGHT` pseudo-observations at each step). Evidence flows up,
risk flows down, and a node's prior comes from its *siblings*, never from its own evidence:

1. the shop-wide rate ``r0 = sum K / sum N`` of the reviews of all products, 0 without
   reviews: photos and recalls only ever report a defect (a photo that shows nothing odd is
   no observation), so they cannot tell how often products are fine; counted in ``r0`` they
   would pull it toward 1, and a store without reviews would put every node at risk 1. No
   defect reports means low risk;
2. a supplier's risk is ``(K_s + PRIOR_WEIGHT * r0) / (N_s + PRIOR_WEIGHT)``, summed over the
   products it supplies (``SUPPLIES``) or that come from a batch it produced (``PRODUCED``,
   ``FROM_BATCH``), each product counted once;
3. a batch's risk is ``(K_b + PRIOR_WEIGHT * r_rest) / (N_b + PRIOR_WEIGHT)``, where
   ``r_rest`` is its maker's rate over the maker's *other* products (``(K_s - K_b +
   PRIOR_WEIGHT * r0) / (N_s - N_b + PRIOR_WEIGHT)``; the riskiest maker when several
   produced it; ``r0`` without one);
4. a product's risk is ``(K_p + PRIOR_WEIGHT * r_rest) / (N_p + PRIOR_WEIGHT)``, where
   ``r_rest`` is its batch's rate over the batch's *other* products (with the batch's own
   prior; the riskiest batch when it came from several, each of which counts its evidence);
   a product without a batch takes its riskiest supplier's rate over that supplier's other
   products, one without either ``r0``.

So a quiet product of a risky batch inherits the batch's risk before any complaint, a batch
with a handful of reviews leans on its maker's record, and one bad review of one moves a
product only a little, as it is not counted again in the prior: a supplier with 40% defect
reviews of many ranks above a product with a single one-star review. The sums are over
sets, so cycles in the supply graph change nothing; a supplier or batch without products, or
a product without evidence, gets its prior. (This is the closed form of a two-step label
propagation on the supply tree; a personalized PageRank seeded by the evidence would spread
risk by node degree rather than by how many observations back it.)

**Parameters.** The constants below were chosen once on one development shop (the ``bench``
shop of seed 100 with the ``realistic`` defect signal, not a benchmark seed) and are not
fitted per store:

- ``TEXT_SHIFT = 0.08``, ``TEXT_SCALE = 20``: on the development shop 70% of the reviews that
  report a defect and 4% of the others have a margin above 0.08; of the low-rated reviews
  that report no defect (late delivery, wrong size), 28% do, against 61% above 0, the
  midpoint of the earlier ``sigmoid(10 * margin)``;
- ``RATING_LOGIT = 0.5``: a one-star rating adds one logit, a five-star rating takes one away;
- ``IMAGE_NEIGHBOURS = 5``, ``IMAGE_Z = 3``, ``IMAGE_SLOPE = 2``: on the development shop the
  neighbour distance told damaged photos from the others with ROC AUC 0.92 (the percentile of
  the distance to the category's mean photo, used before: 0.82), and a z above 3 held 57% of
  the damaged photos and 0.9% of the others;
- ``IMAGE_WEIGHT = 3``: an odd photo counts as three defect reviews (on the development shop
  6 gave about the same rankings, and 0, reviews alone, a batch ROC AUC of 0.92 for 0.98);
- ``PRIOR_WEIGHT = 10``: a node needs about ten observations before its own evidence
  outweighs its siblings' (the development shop has a median of 2 reviews per product and
  51 per batch); 5 and 20 gave nearly the same rankings there;
- ``RECALL_WEIGHT = 50``: an official recall is certain, and worth more than the reviews of
  any but the largest suppliers.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from graphfusion.errors import NotFoundError, NotReadyError, ValidationError
from graphfusion.graph import _vectors, unit_rows
from graphfusion.plots import new_figure, plot_text, save_figure
from graphfusion.store.base import BaseStore
from graphfusion.values import count_arg

log = logging.getLogger("graphfusion.defects")

__all__ = [
    "DEFECT_PHRASES",
    "AT_RISK_TOP",
    "EVIDENCE_MIN",
    "FINE_PHRASES",
    "IMAGE_WEIGHT",
    "LEVELS",
    "MAX_PLOT_BARS",
    "MAX_TOP",
    "NEGATION_PHRASES",
    "NEEDS_NODES",
    "NEEDS_PROPERTIES",
    "NEEDS_RELATIONSHIPS",
    "PRIOR_WEIGHT",
    "RECALL_WEIGHT",
    "SOURCES",
    "DefectAnalysis",
    "analyse",
    "review_scores",
    "text_defect_scores",
]

LEVELS = ("supplier", "batch", "product")
#: The labels and relationship types the analysis reads (``Recall`` is read where the schema
#: has it); a schema without them is refused.
NEEDS_NODES = ("Product", "Review", "Image", "Category", "Supplier", "Batch")
NEEDS_RELATIONSHIPS = ("ABOUT", "HAS_IMAGE", "IN_CATEGORY", "SUPPLIES", "FROM_BATCH", "PRODUCED")
#: The properties the analysis's queries read (keys named ``id``): ``None`` those of every
#: analysis, ``image`` those read when photos count, ``recall`` those read where the schema
#: has ``Recall``; a schema without them is refused.
NEEDS_PROPERTIES: dict[str | None, tuple[str, ...]] = {
    None: (
        "Product.id",
        "Product.title",
        "Review.id",
        "Review.rating",
        "Review.title",
        "Review.text",
        "Review.text_vec",
        "Supplier.id",
        "Supplier.name",
        "Batch.id",
    ),
    "image": ("Image.id", "Image.image_vec", "Category.id"),
    "recall": ("Recall.id", "Recall.title", "Recall.hazard"),  # where the schema has Recall
}
#: The kinds of evidence.
SOURCES = ("review", "image", "recall")
#: Descriptions of defects that review texts are compared with.
DEFECT_PHRASES = (
    "broke after a week",
    "stopped working after a few days",
    "arrived damaged",
    "the stitching came apart",
    "poor quality, fell apart",
    "it is defective",
    "cracked",
    "it leaks",
    "the battery died quickly",
    "the zipper broke",
    "it overheated",
    "parts were missing",
    "the colour faded and it peeled",
    "I returned it because it was faulty",
)
#: Descriptions of a product that works, the counterweight of the defect phrases.
FINE_PHRASES = (
    "works great",
    "excellent quality",
    "exactly as described",
    "very happy with it",
    "sturdy and well made",
    "would buy again",
)
#: Negated defects, the counterweight of a review that only denies a defect ("Nothing is
#: broken", "Zero issues"): read only for such reviews (:func:`_only_negated`), as MiniLM
#: puts a denied defect next to the defect itself.
NEGATION_PHRASES = (
    "nothing is broken",
    "no defects at all",
    "zero issues",
    "no problems at all",
    "nothing wrong with it",
    "not damaged",
)
#: Pseudo-observations at the parent's rate in every Bayesian average.
PRIOR_WEIGHT = 10.0
#: Steepness of the review text score (per unit of cosine-similarity margin).
TEXT_SCALE = 20.0
#: The similarity margin at which the text score is 0.5.
TEXT_SHIFT = 0.08
#: Log-odds a review's score moves per star below 3 (and down per star above).
RATING_LOGIT = 0.5
#: Photos compared with each photo (its nearest neighbours in its category).
IMAGE_NEIGHBOURS = 5
#: At most this many photos of a category are the reference of the neighbour search.
IMAGE_SAMPLE = 4_000
#: Categories with fewer photos are not scored.
IMAGE_MIN = 10
#: The robust z-score of an odd photo at which its score is 0.5.
IMAGE_Z = 3.0
#: Steepness of the photo score per unit of z.
IMAGE_SLOPE = 2.0
#: Observations an odd photo (score 1) is worth.
IMAGE_WEIGHT = 3.0
#: Observations a recall is worth (all of them defect reports).
RECALL_WEIGHT = 50.0
#: Reviews and photos are shown as evidence only when they score above this (a review that
#: reports no defect, or a photo that shows nothing odd, speaks for the node, not against it).
EVIDENCE_MIN = 0.5
#: Most bars the risk chart draws (:meth:`DefectAnalysis.plot`).
MAX_PLOT_BARS = 50
#: Products at risk a ranking lists per supplier or batch by default (the riskiest; its
#: ``at_risk_count`` says how many there are): a defect that spreads through a large
#: supplier would otherwise list every product it supplies, in every row.
AT_RISK_TOP = 20
#: The largest ``top`` and ``at_risk`` of a ranking.
MAX_TOP = 10_000
#: The evidence text of an odd photo of a product without a category.
_UNCATEGORISED = "photo unlike the photos of the other products without a category"
#: A letter or digit of any script: a review text without one is no text.
_WORD = re.compile(r"[^\W_]")
#: Words that name a defect (or its absence, when negated).
_DEFECT_WORD = (
    r"(?:defect\w*|issues?|problems?|flaws?|faults?|complaints?|broken|broke|damaged?|wrong"
    r"|cracked|leak\w*|faulty|missing|ripped|rip|tore|torn|tears?|holes?|snapped|stopped"
    r"|died|dead|peeled|peeling|faded|fell|scratch\w*|stain\w*|dent\w*|shrank|shrunk"
    r"|unravel\w*|pilled|pilling)"
)
#: A defect word after a negation ("no issues", "nothing is broken", "wasn't damaged").
_NEGATED = re.compile(
    r"\b(?:no|zero|not\s+(?:a|any|one|a\s+single)|without\s+(?:a|any)|nothing|never|none)"
    rf"\s+(?:\w+\s+){{0,2}}?{_DEFECT_WORD}\b"
    r"|\b(?:isn'?t|wasn'?t|aren'?t|weren'?t|hasn'?t|didn'?t|did\s+not|has\s+not|not)\s+"
    r"(?:\w+\s+)?(?:broken|broke|damaged|defective|faulty|cracked|leaked|leaking)\b",
    re.IGNORECASE,
)
_ANY_DEFECT_WORD = re.compile(rf"\b{_DEFECT_WORD}\b", re.IGNORECASE)
#: A turn that may bring a complaint after a denial ("no issues with the fit, but ...").
_CONTRAST = re.compile(r"\b(?:but|however|except|though|although|yet)\b", re.IGNORECASE)


class _Index(NamedTuple):
    """Lookups of a :class:`DefectAnalysis` (product columns by row of ``products``, review
    columns by row of ``reviews``)."""

    ids: list[str]
    rows: dict[str, int]  # product -> its row
    batch_products: dict[str, list[str]]
    image: list[float]
    image_id: list[Any]
    image_pooled: list[bool]  # the photo was scored among the products without a category
    risk: list[float]
    quiet: list[bool]  # no evidence shown against the product
    reviews: dict[str, list[int]]  # product -> rows of its reviews above EVIDENCE_MIN
    review_id: list[Any]
    review_product: list[Any]
    review_score: list[float]
    review_text: list[Any]
    review_rating: list[float]
    recalls: dict[str, list[int]]  # product -> rows of its recalls


@dataclass
class DefectAnalysis:
    """Evidence and risk for every product, batch and supplier.

    Attributes:
        reviews: ``review_id``, ``product_id``, ``rating``, ``text_score``, ``score``, ``text``.
        products: ``product_id``, ``title``, ``reviews``, ``defect_reviews``, ``recalls``,
            ``rate`` (its own share of defect reviews, smoothed toward the shop's), ``image``
            (its oddest photo's score), ``image_id`` (that photo's key, None without a
            scored photo), ``image_category`` (the category whose photos it was compared
            with; None for the products without a category, or without a photo),
            ``reports`` and ``observations`` (``K`` and ``N``), ``evidence`` (its own
            evidence rate, smoothed toward the shop's), ``batch_id`` (its first batch in key
            order when it came from several), ``supplier_id`` (that batch's maker, else its
            first supplier), ``risk``.
        batches: ``batch_id``, ``supplier_id``, ``products``, ``reviews``, ``reports``,
            ``observations``, ``risk``.
        suppliers: ``supplier_id``, ``name``, ``products``, ``reviews``, ``reports``,
            ``observations``, ``risk``.
        recalls: ``recall_id``, ``product_id``, ``title``, ``hazard``.
        extra: ``supplier_products`` (supplier -> its product ids), ``batch_makers`` (batch
            -> the suppliers that produced it), ``product_batches`` (product -> the batches it
            came from), ``prior`` (the shop-wide rate ``r0``) and ``sources`` (the kinds of
            evidence counted, and shown).
    """

    reviews: pd.DataFrame
    products: pd.DataFrame
    batches: pd.DataFrame
    suppliers: pd.DataFrame
    extra: dict[str, Any] = field(default_factory=dict)
    recalls: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["recall_id", "product_id", "title", "hazard"])
    )

    def ranking(
        self, level: str = "supplier", top: int = 20, at_risk: int = AT_RISK_TOP
    ) -> pd.DataFrame:
        """The ``top`` riskiest nodes of ``level`` with their main evidence and, for batches and
        suppliers, the products at risk (no evidence shown against them yet: no defect review,
        recall or odd photo), riskiest first.

        The evidence (column ``evidence``) is up to three each of the recalls, defect reviews
        and odd photos of the node's products, the reviews and photos scoring above
        :data:`EVIDENCE_MIN`; a node without any has an empty list. A product's own evidence
        rate (``evidence`` of :attr:`products`) is the column ``evidence_rate`` here.

        Args:
            level: ``supplier``, ``batch`` or ``product``.
            top: How many nodes, 1..:data:`MAX_TOP`.
            at_risk: At most this many products at risk per supplier or batch (column
                ``at_risk_products``, the riskiest, ties in key order), 1..:data:`MAX_TOP`;
                the column ``at_risk_count`` counts them all.

        Raises:
            ValidationError: Unknown level, or bad ``top`` or ``at_risk``.
        """
        limit = count_arg("at_risk", at_risk, MAX_TOP)
        out = self._top(level, top)
        out = out.rename(columns={"evidence": "evidence_rate"})  # a product's, kept
        key = out.columns[0]
        index = self._index()
        evidence: list[Any] = [self._evidence(level, k, index) for k in out[key]]
        out["evidence"] = evidence
        if level != "product":
            quiet = [self._at_risk(level, k, index) for k in out[key]]
            out["at_risk_products"] = [q[:limit] for q in quiet]
            out["at_risk_count"] = [len(q) for q in quiet]
        return out

    def _top(self, level: str, top: int) -> pd.DataFrame:
        """The ``top`` riskiest rows of ``level``'s table (ties in key order), without evidence.

        Raises:
            ValidationError: Unknown level or bad ``top``.
        """
        if level not in LEVELS:
            raise ValidationError(f"unknown level {level!r}; use one of {', '.join(LEVELS)}")
        top = count_arg("top", top, MAX_TOP)
        frame = {"supplier": self.suppliers, "batch": self.batches, "product": self.products}
        table = frame[level].sort_values(["risk", frame[level].columns[0]],
                                         ascending=[False, True]).head(top)  # fmt: skip
        return table.reset_index(drop=True).copy()

    def _index(self) -> _Index:
        """The lookups that find each node's evidence without scanning every product and
        review again (built once per ranking, from the frames as they are)."""
        p, r = self.products, self.reviews
        ids = [str(pid) for pid in p["product_id"].tolist()]
        members: dict[str, list[str]] = {}
        for pid, bids in self._product_batches().items():
            for bid in bids:
                members.setdefault(bid, []).append(pid)
        shown: dict[str, list[int]] = {}
        score = r["score"].to_numpy(dtype=float).tolist()
        for i, pid in enumerate(r["product_id"].tolist()):
            if score[i] > EVIDENCE_MIN:
                shown.setdefault(str(pid), []).append(i)
        recalled: dict[str, list[int]] = {}
        for i, pid in enumerate(self.recalls["product_id"].tolist()):
            recalled.setdefault(str(pid), []).append(i)
        return _Index(
            ids=ids,
            rows={pid: i for i, pid in enumerate(ids)},
            batch_products=members,
            image=p["image"].to_numpy(dtype=float).tolist(),
            image_id=p["image_id"].tolist(),
            image_pooled=self._image_pooled(p),
            risk=p["risk"].to_numpy(dtype=float).tolist(),
            quiet=self._quiet(p).tolist(),
            reviews=shown,
            review_id=r["review_id"].tolist(),
            review_product=r["product_id"].tolist(),
            review_score=score,
            review_text=r["text"].tolist(),
            review_rating=pd.to_numeric(r["rating"], errors="coerce").tolist(),
            recalls=recalled,
        )

    @staticmethod
    def _image_pooled(products: pd.DataFrame) -> list[bool]:
        """Whether each product's photo was scored among the photos of the products without a
        category (it has a photo, and ``image_category`` is None)."""
        if "image_category" not in products:  # an analysis made without the column
            return [False] * len(products)
        photo = products["image_id"].notna() & products["image_category"].isna()
        return photo.tolist()

    def _product_batches(self) -> dict[str, list[str]]:
        """Product -> the batches it came from (``extra["product_batches"]``)."""
        batches_of: dict[str, list[str]] | None = self.extra.get("product_batches")
        if batches_of is None:  # an analysis made without them: the products' first batches
            batches_of = {p: [b] for p, b in zip(self.products["product_id"],
                                                 self.products["batch_id"], strict=True)
                          if isinstance(b, str)}  # fmt: skip
        return batches_of

    def _rows_of(self, level: str, key: str, index: _Index) -> list[int]:
        """The rows of ``products`` of a node, in order."""
        ids: Any = [key]
        if level == "batch":
            ids = index.batch_products.get(key, ())
        elif level == "supplier":
            ids = self.extra["supplier_products"].get(key, ())
        return sorted(index.rows[p] for p in ids if p in index.rows)

    def _evidence(self, level: str, key: str, index: _Index, n: int = 3) -> list[dict[str, Any]]:
        """The ``n`` strongest recalls, defect reviews and odd photos (each scoring above
        :data:`EVIDENCE_MIN`) of the node's products (ties in the order of their keys)."""
        rows = self._rows_of(level, key, index)
        ids = [index.ids[i] for i in rows]
        counted = self._sources()
        out: list[dict[str, Any]] = []
        recalls = sorted(i for pid in ids for i in index.recalls.get(pid, ()))
        if "recall" in counted and recalls:
            out += [
                {"kind": "recall", "key": str(r.recall_id), "product_id": str(r.product_id),
                 "score": 1.0, "text": _first_text(r.hazard, r.title, "recall")[:160]}
                for r in self.recalls.iloc[recalls[:n]].itertuples()
            ]  # fmt: skip
        reviews = [i for pid in ids for i in index.reviews.get(pid, ())]
        if "review" not in counted:
            reviews = []
        score = index.review_score
        out += [
            {"kind": "review", "key": index.review_id[i], "product_id": index.review_product[i],
             "score": round(score[i], 3),
             "text": _review_text(index.review_text[i], index.review_rating[i])[:160]}
            for i in sorted(reviews, key=lambda i: (-score[i], i))[:n]
        ]  # fmt: skip
        image = index.image
        odd = sorted((i for i in rows if image[i] > EVIDENCE_MIN), key=lambda i: (-image[i], i))
        out += [
            {"kind": "image", "key": str(index.image_id[i]), "product_id": index.ids[i],
             "score": round(image[i], 3),
             "text": _UNCATEGORISED if index.image_pooled[i] else "photo unlike its category's"}
            for i in odd[:n]
        ]  # fmt: skip
        return out

    def _sources(self) -> tuple[str, ...]:
        """The kinds of evidence counted toward the risk (and so shown)."""
        return tuple(self.extra.get("sources", SOURCES))

    def _quiet(self, products: pd.DataFrame) -> pd.Series:
        """Whether each product has no evidence shown against it."""
        counted = self._sources()
        quiet = ~(products["image"] > EVIDENCE_MIN)
        if "review" in counted:
            quiet &= products["defect_reviews"] == 0
        if "recall" in counted:
            quiet &= products["recalls"] == 0
        return quiet

    def _at_risk(self, level: str, key: str, index: _Index) -> list[str]:
        """The node's products without evidence shown against them, riskiest first (ties in
        key order)."""
        quiet = [i for i in self._rows_of(level, key, index) if index.quiet[i]]
        return [index.ids[i] for i in sorted(quiet, key=lambda i: -index.risk[i])]

    def evidence_paths(self, key: str, level: str | None = None) -> list[dict[str, Any]]:
        """Evidence paths of a supplier, batch or product: ``path`` (``(label, key)`` nodes
        from the node to the evidence), ``kind``, ``score`` and ``text``, strongest first.

        The evidence is up to five each of the recalls, defect reviews and odd photos (scoring
        above :data:`EVIDENCE_MIN`) of the node's products; an empty list when there is none.
        A supplier's path goes through the product's batch only when the supplier produced
        that batch (else straight to the product it supplies).

        Args:
            key: The node's key.
            level: ``supplier``, ``batch`` or ``product``; None: the one level that has
                ``key``.

        Raises:
            ValidationError: ``key`` is not a string, ``level`` is unknown, or ``key`` names
                nodes of several levels and ``level`` is None.
            NotFoundError: No such supplier, batch or product (of ``level``).
        """
        if not isinstance(key, str):
            raise ValidationError(
                f"key must be a supplier, batch or product id (a string), got {key!r}"
            )
        if level is not None and level not in LEVELS:
            raise ValidationError(f"unknown level {level!r}; use one of {', '.join(LEVELS)}")
        found = [
            (name, label)
            for name, frame, label in (("supplier", self.suppliers, "Supplier"),
                                       ("batch", self.batches, "Batch"),
                                       ("product", self.products, "Product"))
            if level in (None, name) and key in set(frame.iloc[:, 0])
        ]  # fmt: skip
        if not found:
            what = level or "supplier, batch or product"
            raise NotFoundError(f"no {what} {key!r}")
        if len(found) > 1:
            names = " and a ".join(name for name, _ in found)
            raise ValidationError(f"{key!r} is a {names}: say which level")
        level, label = found[0]
        batches_of = self._product_batches()
        makers = self.extra.get("batch_makers")
        if makers is None:  # an analysis made without them: the batches' first makers
            makers = {b: [s] for b, s in zip(self.batches["batch_id"],
                                             self.batches["supplier_id"], strict=True)}  # fmt: skip
        last = {"review": "Review", "recall": "Recall", "image": "Image"}
        paths = []
        for item in self._evidence(level, key, self._index(), n=5):
            pid = item["product_id"]
            route: list[tuple[str, str]] = [(label, key)]
            made = [b for b in batches_of.get(pid, ()) if key in makers.get(b, ())]
            if level == "supplier" and made:  # through the batch of the product it produced
                route.append(("Batch", made[0]))
            if level != "product":
                route.append(("Product", pid))
            route.append((last.get(item["kind"], "Image"), item["key"]))
            paths.append({**item, "path": route})
        return sorted(paths, key=lambda r: -r["score"])

    def plot(self, path: str | Path, level: str = "supplier", top: int = 15) -> Path:
        """Bar chart of the ``top`` risks of ``level`` (PNG; see :func:`save_figure`), at most
        :data:`MAX_PLOT_BARS` of them (a longer chart is unreadable; its title says so).

        Returns:
            The path of the written file.

        Raises:
            ValidationError: Unknown level or bad ``top``, or the store has no node of
                ``level`` (nothing to plot).
        """
        table = self._top(level, top)
        if table.empty:
            raise ValidationError(f"the store has no {level}: nothing to plot")
        shown = table.head(MAX_PLOT_BARS)
        fig, ax = new_figure(6, 0.35 * len(shown) + 1)
        ax.barh([plot_text(k) for k in shown.iloc[::-1, 0]], shown["risk"][::-1], color="tab:red")
        ax.set_xlabel("risk")
        cut = f" (the top {len(shown)} of {len(table)})" if len(shown) < len(table) else ""
        ax.set_title(f"{level} risk ranking{cut}")
        return save_figure(fig, path)

    def plot_subgraph(self, key: str, path: str | Path, level: str | None = None) -> Path:
        """The evidence subgraph of a supplier, batch or product (PNG): the node, its batches
        and products, and the reviews, photos and recalls that speak against them, coloured
        by score.

        Args:
            key: The node's key.
            path: The file to write (see :func:`save_figure`).
            level: ``supplier``, ``batch`` or ``product``; None: the one level that has
                ``key`` (as in :meth:`evidence_paths`).

        Returns:
            The path of the written file.

        Raises:
            ValidationError: ``key`` is not a string, ``level`` is unknown, ``key`` names
                nodes of several levels and ``level`` is None, or the node has no evidence
                (nothing to plot).
            NotFoundError: No such supplier, batch or product (of ``level``).
        """
        import networkx as nx

        paths = self.evidence_paths(key, level)
        if not paths:
            raise ValidationError(f"no evidence against {key!r}: nothing to plot")
        graph = nx.DiGraph()
        for item in paths:
            nodes = [f"{lab}\n{plot_text(k)}" for lab, k in item["path"]]
            for a, b in itertools.pairwise(nodes):
                graph.add_edge(a, b)
            graph.nodes[nodes[-1]]["score"] = item["score"]
        fig, ax = new_figure(8, 6)
        pos = nx.spring_layout(graph, seed=0)
        colours = [graph.nodes[n].get("score", 0.0) for n in graph.nodes]
        nx.draw_networkx(graph, pos, ax=ax, node_color=colours, cmap="Reds", vmin=0, vmax=1,
                         font_size=7, node_size=900, arrows=True)  # fmt: skip
        ax.set_title(f"defect evidence for {plot_text(key)}")
        ax.axis("off")
        return save_figure(fig, path)


def text_defect_scores(
    vectors: np.ndarray, encoder: Any | None = None, texts: Sequence[Any] | None = None
) -> np.ndarray:
    """The text defect score of each row of MiniLM text vectors (see the module docstring).

    Args:
        vectors: ``(n, dim)`` text vectors (need not be unit length).
        encoder: The text encoder of the vectors (default: :class:`TextEncoder`), used for the
            phrases.
        texts: The ``n`` texts of the vectors, or None. Given, a text that only denies
            defects (:func:`_only_negated`: "Nothing is broken", "Zero issues") is also
            compared with :data:`NEGATION_PHRASES` as fine phrases; MiniLM alone reads such a
            text as the defect it denies.

    Returns:
        ``(n,)`` scores in [0, 1].

    Raises:
        ValueError: ``texts`` is not one text per vector.
    """
    if texts is not None and len(texts) != len(vectors):
        raise ValueError(f"{len(texts)} texts for {len(vectors)} vectors: give one per vector")
    if encoder is None:
        from graphfusion.features.text import TextEncoder

        encoder = TextEncoder()
    bad = unit_rows(encoder.encode(list(DEFECT_PHRASES)))
    good = unit_rows(encoder.encode(list(FINE_PHRASES)))
    unit = unit_rows(vectors)
    fine = (unit @ good.T).max(1)
    denied = np.array([_only_negated(t) for t in (() if texts is None else texts)], dtype=bool)
    if denied.any():
        negated = unit_rows(encoder.encode(list(NEGATION_PHRASES)))
        fine[denied] = np.maximum(fine[denied], (unit[denied] @ negated.T).max(1))
    margin = (unit @ bad.T).max(1) - fine
    return np.asarray(_sigmoid(TEXT_SCALE * (margin - TEXT_SHIFT)), dtype=np.float64)


def _only_negated(text: Any) -> bool:
    """Whether ``text`` denies a defect ("no issues", "nothing is broken") and names no other:
    every defect word in it is negated, and no turn ("but", "though") may bring a complaint
    after the denial."""
    if not isinstance(text, str) or _CONTRAST.search(text):
        return False
    negated = len(_NEGATED.findall(text))
    return negated > 0 and len(_ANY_DEFECT_WORD.findall(text)) <= negated


def review_scores(store: BaseStore, encoder: Any | None = None) -> pd.DataFrame:
    """The defect score of every review (see the module docstring).

    Returns:
        ``review_id``, ``product_id``, ``rating`` (as stored, even off the 1-5 scale, which
        is scored as no rating), ``text_score`` (NaN without a text vector, or where the title
        and text hold no letter or digit), ``score`` and ``text`` (the title where the text is
        missing or blank), in ``review_id`` order. Reviews about no product are left out.

    Some reviews with words in their title or text may have no text vector (the store was
    never embedded, or reviews came after ``embed``): they are scored from their rating
    alone, and a warning logged to ``graphfusion.defects`` counts them and says to run
    ``graphfusion embed`` (``Engine.embed()``).
    """
    node = store.schema.node("Review")
    dim = node.prop("text_vec").type.dim or 0
    table = store.query_arrow(
        "MATCH (r:Review)-[:ABOUT]->(p:Product) RETURN r.id AS review_id, p.id AS product_id, "
        "r.rating AS rating, r.title AS title, r.text AS text, r.text_vec AS v "
        "ORDER BY review_id"
    )
    if table.num_rows == 0:
        text = ("review_id", "product_id", "text")
        cols = ["review_id", "product_id", "rating", "text_score", "score", "text"]
        return pd.DataFrame({c: pd.Series(dtype=object if c in text else float) for c in cols})
    vecs, has = _vectors(table.column("v"), dim)
    frame = table.drop_columns(["v"]).to_pandas()
    pairs = zip(frame["text"], frame["title"], strict=True)
    words = np.array([_has_words(t) or _has_words(ti) for t, ti in pairs], dtype=bool)
    _warn_unembedded(int((words & ~has).sum()), int(words.sum()))
    has = has & words
    text_score = np.full(len(frame), np.nan)
    if has.any():
        texts = [f"{_first_text(ti)}. {_first_text(t)}" for ti, t in
                 zip(frame["title"][has], frame["text"][has], strict=True)]  # fmt: skip
        text_score[has] = text_defect_scores(vecs[has], encoder, texts)
    rating = _ratings(frame["rating"])
    with np.errstate(divide="ignore"):
        text_logit = np.log(text_score) - np.log1p(-text_score)
    both = _sigmoid(text_logit + RATING_LOGIT * (3.0 - rating))
    score = np.where(np.isnan(rating), text_score, both)
    score = _without_text(score, rating)
    known = ~np.isnan(score)
    score[~known] = float(score[known].mean()) if known.any() else 0.5
    frame["text_score"] = text_score
    frame["score"] = score
    frame["text"] = [  # the title where the text is missing or blank
        _first_text(text, title) for text, title in zip(frame["text"], frame["title"], strict=True)
    ]
    return frame[["review_id", "product_id", "rating", "text_score", "score", "text"]]


def analyse(
    store: BaseStore, encoder: Any | None = None, *, sources: Sequence[str] = SOURCES
) -> DefectAnalysis:
    """Evidence and propagated risk for the whole store (see the module docstring).

    Args:
        store: The store.
        encoder: The text encoder of the stored review vectors (default: :class:`TextEncoder`).
        sources: The kinds of evidence that count toward the risk, some of :data:`SOURCES`
            (``review``, ``image``, ``recall``); e.g. ``("review",)`` for reviews alone.

    Raises:
        ValidationError: The store has no products, or unknown or no ``sources``.
        SchemaError: The schema lacks some of :data:`NEEDS_NODES`,
            :data:`NEEDS_RELATIONSHIPS` and :data:`NEEDS_PROPERTIES` (such as a schema whose
            labels are keyed by another property than ``id``), named before any query.
    """
    if isinstance(sources, str) or not set(sources) or not set(sources) <= set(SOURCES):
        raise ValidationError(f"sources must be some of {', '.join(SOURCES)}, got {sources!r}")
    store.schema.require(
        "defect analysis", NEEDS_NODES, NEEDS_RELATIONSHIPS, _needed_properties(store, sources)
    )
    q = store.query_arrow
    prod = q("MATCH (p:Product) RETURN p.id AS product_id, p.title AS title ORDER BY product_id")
    if prod.num_rows == 0:
        raise NotReadyError("the store has no products")
    products = prod.to_pandas()
    reviews = review_scores(store, encoder)
    recalls = _recalls(store)
    ids = products["product_id"].tolist()

    # -- evidence per product
    bad = reviews["score"] > 0.5
    per = (
        reviews.assign(bad=bad)
        .groupby("product_id")
        .agg(reviews=("score", "size"), defect_reviews=("bad", "sum"), k=("score", "sum"))
    )
    products = products.merge(per, left_on="product_id", right_index=True, how="left")
    products[["reviews", "defect_reviews", "k"]] = products[
        ["reviews", "defect_reviews", "k"]
    ].fillna(0)
    products[["reviews", "defect_reviews"]] = products[["reviews", "defect_reviews"]].astype(int)
    products["recalls"] = products["product_id"].map(recalls["product_id"].value_counts())
    products["recalls"] = products["recalls"].fillna(0).astype(int)
    share = float(bad.mean()) if len(reviews) else 0.0
    products["rate"] = _bayes(products["defect_reviews"], products["reviews"], share)
    if "image" in sources:
        photos = _image_scores(store, ids)
        products["image"] = photos["image"].to_numpy()
        products["image_id"] = photos["image_id"].to_numpy()
        products["image_category"] = photos["image_category"].to_numpy()
    else:
        products["image"], products["image_id"], products["image_category"] = 0.0, None, None
    extra_k = IMAGE_WEIGHT * products["image"]
    if "recall" in sources:
        extra_k = extra_k + RECALL_WEIGHT * products["recalls"]
    use_reviews = 1.0 if "review" in sources else 0.0
    products["reports"] = use_reviews * products["k"] + extra_k
    products["observations"] = use_reviews * products["reviews"] + extra_k
    # the shop-wide rate r0, of the reviews alone: photos and recalls only ever report a
    # defect, so they would pull it toward 1 (to exactly 1 in a store without reviews)
    review_n = use_reviews * float(products["reviews"].sum())
    prior = use_reviews * float(products["k"].sum()) / review_n if review_n > 0 else 0.0
    products = products.drop(columns=["k"])
    products["evidence"] = _bayes(products["reports"], products["observations"], prior)

    # -- the supply graph
    batches_of = _all_pairs(store, "MATCH (p:Product)-[:FROM_BATCH]->(b:Batch) RETURN p.id, b.id")
    membership = pd.DataFrame(
        [(p, b) for p, bs in batches_of.items() for b in bs], columns=["product_id", "batch_id"]
    )
    makers = _all_pairs(store, "MATCH (s:Supplier)-[:PRODUCED]->(b:Batch) RETURN b.id, s.id")
    made_by = {b: ss[0] for b, ss in makers.items()}
    supplier_products: dict[str, set[str]] = {}
    for pid, sids in _all_pairs(
        store, "MATCH (s:Supplier)-[:SUPPLIES]->(p:Product) RETURN p.id, s.id"
    ).items():
        for sid in sids:
            supplier_products.setdefault(sid, set()).add(pid)
    for pid, bids in batches_of.items():
        for maker in (m for bid in bids for m in makers.get(bid, ())):
            supplier_products.setdefault(maker, set()).add(pid)
    suppliers_of: dict[str, list[str]] = {}
    for sid in sorted(supplier_products):
        for pid in supplier_products[sid]:
            suppliers_of.setdefault(pid, []).append(sid)
    products["batch_id"] = products["product_id"].map({p: bs[0] for p, bs in batches_of.items()})
    products["batch_id"] = products["batch_id"].astype(object)
    first_supplier = {p: ss[0] for p, ss in suppliers_of.items()}
    maker_of = products["batch_id"].map(made_by)
    products["supplier_id"] = maker_of.fillna(products["product_id"].map(first_supplier))
    k = products.set_index("product_id")["reports"]
    n = products.set_index("product_id")["observations"]
    r = products.set_index("product_id")["reviews"]

    # -- suppliers: pooled evidence at the shop's prior
    sup = q("MATCH (s:Supplier) RETURN s.id AS supplier_id, s.name AS name ORDER BY supplier_id")
    suppliers = sup.to_pandas() if sup.num_rows else pd.DataFrame(columns=["supplier_id", "name"])
    members = [sorted(supplier_products.get(s, ())) for s in suppliers["supplier_id"]]
    suppliers["products"] = [len(m) for m in members]
    suppliers["reviews"] = [int(r.reindex(m).sum()) for m in members]
    suppliers["reports"] = [float(k.reindex(m).sum()) for m in members]
    suppliers["observations"] = [float(n.reindex(m).sum()) for m in members]
    suppliers["risk"] = _bayes(suppliers["reports"], suppliers["observations"], prior)
    s_k = suppliers.set_index("supplier_id")["reports"]
    s_n = suppliers.set_index("supplier_id")["observations"]

    # -- batches: own evidence at the rate of their (riskiest) maker's other products
    batches = q("MATCH (b:Batch) RETURN b.id AS batch_id ORDER BY batch_id").to_pandas()
    if batches.empty:
        batches = pd.DataFrame({"batch_id": pd.Series([], dtype=object)})
    evidence = products[["product_id", "reviews", "reports", "observations"]]
    sums = (
        membership.merge(evidence, on="product_id")
        .groupby("batch_id")
        .agg(
            products=("product_id", "size"),
            reviews=("reviews", "sum"),
            reports=("reports", "sum"),
            observations=("observations", "sum"),
        )
    )
    sums.index = sums.index.astype(object)
    batches = batches.merge(sums, left_on="batch_id", right_index=True, how="left")
    batches[list(sums.columns)] = batches[list(sums.columns)].fillna(0)
    batches[["products", "reviews"]] = batches[["products", "reviews"]].astype(int)
    batches.insert(1, "supplier_id", batches["batch_id"].map(made_by))
    pairs = pd.DataFrame(
        [(b, sid) for b, ss in makers.items() for sid in ss if sid in s_k.index],
        columns=["batch_id", "maker"],
    ).merge(batches[["batch_id", "reports", "observations"]], on="batch_id")
    pairs["rest"] = _bayes(
        (pairs["maker"].map(s_k) - pairs["reports"]).clip(lower=0.0),
        (pairs["maker"].map(s_n) - pairs["observations"]).clip(lower=0.0),
        prior,
    )
    b_prior = batches["batch_id"].map(pairs.groupby("batch_id")["rest"].max()).fillna(prior)
    batches["risk"] = _bayes(batches["reports"], batches["observations"], b_prior)

    # -- products: own evidence at the rate of their batch's other products (of their
    # suppliers' other products without a batch; the riskiest batch's when several)
    by_batch = batches.set_index("batch_id")
    member = membership.merge(evidence, on="product_id")
    member["rest"] = _bayes(
        (member["batch_id"].map(by_batch["reports"]) - member["reports"]).clip(lower=0.0),
        (member["batch_id"].map(by_batch["observations"]) - member["observations"]).clip(lower=0.0),
        member["batch_id"].map(pd.Series(b_prior.to_numpy(), index=by_batch.index)),
    )
    parent = products["product_id"].map(member.groupby("product_id")["rest"].max())
    loose = parent.isna().to_numpy()
    if loose.any():  # no batch: the riskiest supplier's rate over its other products
        rates = _supplier_rates(products[loose], suppliers_of, s_k, s_n, prior)
        parent[loose] = products.loc[loose, "product_id"].map(rates).fillna(prior).to_numpy()
    products["risk"] = _bayes(products["reports"], products["observations"], parent)
    columns = [
        *(
            "product_id",
            "title",
            "reviews",
            "defect_reviews",
            "recalls",
            "rate",
            "image",
            "image_id",
            "image_category",
        ),
        *("reports", "observations", "evidence", "batch_id", "supplier_id", "risk"),
    ]
    extra = {
        "supplier_products": supplier_products,
        "batch_makers": makers,
        "product_batches": batches_of,
        "prior": prior,
        "sources": tuple(s for s in SOURCES if s in sources),
    }
    return DefectAnalysis(reviews, products[columns], batches, suppliers, extra, recalls)


def _needed_properties(store: BaseStore, sources: Sequence[str]) -> list[str]:
    """The ``Label.property`` names the queries of an analysis counting ``sources`` read: a
    schema keyed by another property than ``id``, or without one of them, is refused before
    any query fails on it (photo vectors only when photos count, recalls only where the
    schema has ``Recall``)."""
    kinds: list[str | None] = [None, *(["image"] if "image" in sources else [])]
    if "Recall" in store.schema.nodes:  # read whatever counts: the products show their recalls
        kinds.append("recall")
    return [name for kind in kinds for name in NEEDS_PROPERTIES[kind]]


def _supplier_rates(
    products: pd.DataFrame,
    suppliers_of: dict[str, list[str]],
    s_k: pd.Series,
    s_n: pd.Series,
    prior: float,
) -> pd.Series:
    """Per product of ``products`` (``product_id``, ``reports``, ``observations``) that has a
    supplier: the highest rate of its suppliers over their *other* products,
    ``(max(K_s - K_p, 0) + PRIOR_WEIGHT * prior) / (max(N_s - N_p, 0) + PRIOR_WEIGHT)``, in
    one pass over the (product, supplier) pairs rather than a lookup per product."""
    pairs = pd.DataFrame(
        [(pid, sid) for pid in products["product_id"].astype(str)
         for sid in suppliers_of.get(pid, ()) if sid in s_k.index],
        columns=["product_id", "supplier_id"],
    )  # fmt: skip
    own = products.assign(product_id=products["product_id"].astype(str))
    pairs = pairs.merge(own[["product_id", "reports", "observations"]], on="product_id")
    rest_k = (pairs["supplier_id"].map(s_k).astype(float) - pairs["reports"]).clip(lower=0.0)
    rest_n = (pairs["supplier_id"].map(s_n).astype(float) - pairs["observations"]).clip(lower=0.0)
    pairs["rate"] = (rest_k + PRIOR_WEIGHT * prior) / (rest_n + PRIOR_WEIGHT)
    return pairs.groupby("product_id")["rate"].max()


def _warn_unembedded(missing: int, with_words: int) -> None:
    """Log a warning (``graphfusion.defects``; a plain line on the command line, like the
    other modules' warnings) when ``missing`` of the ``with_words`` reviews that have words
    have no text vector: those are scored from their rating alone, which cannot tell a late
    delivery from a defect, and the cure is to embed them."""
    if not missing:
        return
    cure = "run `graphfusion embed` (Engine.embed()) first"
    if missing == with_words:
        what = (
            f"none of the {with_words:,} reviews with text has a text vector (Review.text_vec): "
            "every review is scored from its rating alone, so a one-star late delivery "
            "counts as a defect report and a five-star review that says it cracked does not"
        )
    else:
        has, are, their = ("has", "is", "its") if missing == 1 else ("have", "are", "their")
        what = (
            f"{missing:,} of the {with_words:,} reviews with text {has} no text vector "
            f"(Review.text_vec) and {are} scored from {their} rating alone"
        )
    log.warning("defect analysis: %s; %s", what, cure)


def _ratings(values: pd.Series) -> np.ndarray:
    """The ratings as floats, NaN where missing, not a number, or off the 1-5 scale (loading
    refuses those, but a store written otherwise may hold them: 0 often means "not rated")."""
    rating = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, copy=True)
    with np.errstate(invalid="ignore"):
        rating[~((rating >= 1.0) & (rating <= 5.0))] = np.nan
    return rating


def _without_text(score: np.ndarray, rating: np.ndarray) -> np.ndarray:
    """``score`` (NaN for the reviews without a text score) with the rated reviews without
    one scored like the reviews of their star (the rating rounded) that have one:
    ``(S + PRIOR_WEIGHT * (5 - rating) / 4) / (n + PRIOR_WEIGHT)``, where ``S`` is the sum of
    those ``n`` reviews' scores. So with no review text (nothing embedded) the rating decides,
    and a one-star review with no text is no surer a defect report than the one-star reviews
    that say what went wrong."""
    out = score.copy()
    blank = np.isnan(score) & ~np.isnan(rating)
    if not blank.any():
        return out
    star = np.floor(rating + 0.5)
    scored = ~np.isnan(score) & ~np.isnan(rating)
    for s in np.unique(star[blank]).tolist():
        same = scored & (star == s)
        rows = blank & (star == s)
        prior = (5.0 - rating[rows]) / 4.0
        out[rows] = (score[same].sum() + PRIOR_WEIGHT * prior) / (same.sum() + PRIOR_WEIGHT)
    return out


def _has_words(value: Any) -> bool:
    """Whether ``value`` is a string with a letter or digit (of any script) in it: a text of
    punctuation or emoji alone says nothing the text model knows."""
    return isinstance(value, str) and _WORD.search(value) is not None


def _review_text(text: Any, rating: float) -> str:
    """A review's text as evidence shows it; for one without any, what it is (a review with
    no text is scored on its rating, and may be a defect report)."""
    if isinstance(text, str) and text.strip():
        return text
    if not 1.0 <= rating <= 5.0:  # NaN too
        return "(no text, no rating)"
    return f"(no text; rated {rating:g} of 5)"


def _first_text(*values: Any) -> str:
    """The first value that is a non-empty string."""
    return next((v for v in values if isinstance(v, str) and v.strip()), "")


def _sigmoid(x: Any) -> np.ndarray:
    """The logistic function, without overflow warnings: ``-inf`` (and any input below about
    -710, where ``exp`` overflows) gives exactly 0, ``+inf`` exactly 1."""
    with np.errstate(over="ignore"):
        return np.asarray(1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64))))


def _bayes(total: pd.Series, count: pd.Series, prior: float | pd.Series) -> pd.Series:
    """``(total + PRIOR_WEIGHT * prior) / (count + PRIOR_WEIGHT)``, clipped to [0, 1]."""
    return ((total + PRIOR_WEIGHT * prior) / (count + PRIOR_WEIGHT)).clip(0.0, 1.0)


def _all_pairs(store: BaseStore, query: str) -> dict[str, list[str]]:
    """``a -> [b, ...]`` (sorted, unique) from a two-column query."""
    table = store.query_arrow(query)
    out: dict[str, list[str]] = {}
    if table.num_rows == 0:
        return out
    pairs = sorted(set(zip(*(table.column(i).to_pylist() for i in (0, 1)), strict=True)))
    for a, b in pairs:
        out.setdefault(a, []).append(b)
    return out


def _recalls(store: BaseStore) -> pd.DataFrame:
    """Every recall about a product: ``recall_id``, ``product_id``, ``title``, ``hazard``."""
    columns = ["recall_id", "product_id", "title", "hazard"]
    if "Recall" not in store.schema.nodes:
        return pd.DataFrame(columns=columns)
    table = store.query_arrow(
        "MATCH (r:Recall)-[:ABOUT]->(p:Product) RETURN r.id AS recall_id, p.id AS product_id, "
        "r.title AS title, r.hazard AS hazard ORDER BY recall_id, product_id"
    )
    if table.num_rows == 0:
        return pd.DataFrame(columns=columns)
    return table.to_pandas()[columns]


def _image_scores(store: BaseStore, products: list[str]) -> pd.DataFrame:
    """Per product (rows in ``products`` order): ``image``, the score of its oddest photo among
    its category's (see the module docstring; 0 without a photo, or in a category with too
    few photos), ``image_id``, that photo's key (None without a photo), and
    ``image_category``, the category it was compared with (None without a photo, or for the
    photos of the products without a category, which are compared with each other)."""
    dim = store.schema.node("Image").prop("image_vec").type.dim or 0
    table = store.query_arrow(
        "MATCH (p:Product)-[:HAS_IMAGE]->(i:Image) WHERE i.image_vec IS NOT NULL "
        "OPTIONAL MATCH (p)-[:IN_CATEGORY]->(c:Category) "
        "RETURN p.id AS pid, c.id AS cid, i.id AS iid, i.image_vec AS v ORDER BY pid, cid, iid"
    )
    out = pd.DataFrame(
        {"image": 0.0, "image_id": None, "image_category": None}, index=pd.Index(products)
    )
    if table.num_rows == 0:
        return out.reset_index(drop=True)
    vecs, has = _vectors(table.column("v"), dim)
    frame = pd.DataFrame({"p": table.column("pid").to_pylist(),
                          "c": table.column("cid").to_pylist(),
                          "i": table.column("iid").to_pylist()})[has]  # fmt: skip
    unit = unit_rows(vecs[has])
    z = np.full(len(frame), -np.inf)
    pools = frame.groupby("c", dropna=False).indices  # NaN: the products without a category
    for _, rows in sorted(pools.items(), key=lambda item: str(item[0])):
        if len(rows) >= IMAGE_MIN:
            z[rows] = _robust_z(_neighbour_distance(unit[rows]))
    frame["score"] = _sigmoid(IMAGE_SLOPE * (z - IMAGE_Z))
    oddest = frame.sort_values("score", ascending=False, kind="stable").drop_duplicates("p")
    oddest = oddest.set_index("p").reindex(out.index)
    known = oddest["score"].notna()
    out.loc[known, "image"] = oddest.loc[known, "score"]
    out.loc[known, "image_id"] = oddest.loc[known, "i"]
    out.loc[known, "image_category"] = oddest.loc[known, "c"]
    out["image_category"] = (
        out["image_category"].astype(object).where(out["image_category"].notna(), None)
    )
    return out.reset_index(drop=True)


def _neighbour_distance(unit: np.ndarray, chunk: int = 1_024) -> np.ndarray:
    """Mean cosine distance of each unit row to its ``IMAGE_NEIGHBOURS`` nearest other rows
    (among a seeded sample of ``IMAGE_SAMPLE`` rows when there are more)."""
    n = len(unit)
    ref = np.arange(n)
    if n > IMAGE_SAMPLE:
        ref = np.sort(np.random.default_rng(0).choice(n, IMAGE_SAMPLE, replace=False))
    k = min(IMAGE_NEIGHBOURS, len(ref) - 1)
    out = np.empty(n)
    for start in range(0, n, chunk):
        rows = np.arange(start, min(start + chunk, n))
        sim = unit[rows] @ unit[ref].T
        at = np.minimum(np.searchsorted(ref, rows), len(ref) - 1)
        self_hit = ref[at] == rows
        sim[np.flatnonzero(self_hit), at[self_hit]] = -np.inf  # not its own neighbour
        top = np.partition(sim, sim.shape[1] - k, axis=1)[:, -k:]
        out[rows] = 1.0 - top.mean(axis=1)
    return out


def _robust_z(values: np.ndarray) -> np.ndarray:
    """``(x - median) / (1.4826 * MAD)``; 0 where the MAD is 0."""
    median = float(np.median(values))
    mad = 1.4826 * float(np.median(np.abs(values - median)))
    if mad <= 0:
        return np.zeros_like(values)
    return (values - median) / mad
