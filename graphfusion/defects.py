"""Defect-propagation analysis: from reviews, images and supply data to risky batches and suppliers.

**Evidence**, each a score in [0, 1] with its source:

- *review*: ``0.5 * text + 0.5 * rating``. ``text`` compares the review's MiniLM vector with
  :data:`DEFECT_PHRASES` and :data:`FINE_PHRASES`: ``sigmoid(TEXT_SCALE * (best defect
  similarity - best fine similarity))``; ``rating`` is ``(5 - rating) / 4``. A review without a
  rating is scored by its text alone, one without text by its rating alone.
- *image*: how far a product's photo is from its category in image-vector space: the cosine
  distance to the category centroid, as a percentile within the category (0.5 is typical).
- *rate*: a product's share of defect reviews (review score above 0.5) as a Bayesian average
  with :data:`PRIOR_WEIGHT` pseudo-reviews at the shop-wide share, so one bad review of one
  is not 100%.

A product's evidence is ``0.7 * rate + 0.3 * image excess`` (image excess: how far its image
percentile is above 0.5, times 2), in [0, 1].

**Propagation** (two-step label propagation over Product -> Batch -> Supplier and back):

- a batch's risk is the Bayesian average of its products' evidence (``PRIOR_WEIGHT``
  pseudo-products at the shop-wide mean);
- a supplier's risk is the Bayesian average of the evidence of the products it supplies,
  directly (``SUPPLIES``) or through its batches (``PRODUCED``, ``FROM_BATCH``), each counted
  once;
- a product's risk is ``0.5 * its evidence + 0.5 * max(its batch's risk, its supplier's
  risk)``: siblings in a risky batch inherit risk before any complaint.

The averages are over sets, so cycles in the supply graph change nothing; a supplier or batch
without products, or a product without reviews, gets the prior.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from graphfusion.errors import ValidationError
from graphfusion.graph import _vectors, unit_rows
from graphfusion.store.base import BaseStore

__all__ = [
    "DefectAnalysis",
    "analyse",
    "LEVELS",
    "DEFECT_PHRASES",
    "FINE_PHRASES",
    "PRIOR_WEIGHT",
]

LEVELS = ("supplier", "batch", "product")
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
#: Pseudo-counts at the prior in every Bayesian average.
PRIOR_WEIGHT = 5.0
#: Steepness of the review text score.
TEXT_SCALE = 10.0


@dataclass
class DefectAnalysis:
    """Evidence and risk for every product, batch and supplier.

    Attributes:
        reviews: ``review_id``, ``product_id``, ``rating``, ``text_score``, ``score``, ``text``.
        products: ``product_id``, ``title``, ``reviews``, ``defect_reviews``, ``rate``,
            ``image``, ``evidence``, ``batch_id``, ``supplier_id``, ``risk``.
        batches: ``batch_id``, ``supplier_id``, ``products``, ``risk``.
        suppliers: ``supplier_id``, ``name``, ``products``, ``risk``.
    """

    reviews: pd.DataFrame
    products: pd.DataFrame
    batches: pd.DataFrame
    suppliers: pd.DataFrame
    extra: dict[str, Any] = field(default_factory=dict)

    def ranking(self, level: str = "supplier", top: int = 20) -> pd.DataFrame:
        """The ``top`` riskiest nodes of ``level`` with their main evidence and, for batches and
        suppliers, the products at risk (no defect review yet).

        Raises:
            ValidationError: Unknown level or bad ``top``.
        """
        if level not in LEVELS:
            raise ValidationError(f"unknown level {level!r}; use one of {', '.join(LEVELS)}")
        if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= 10_000:
            raise ValidationError(f"top must be an integer in 1..10000, got {top!r}")
        frame = {"supplier": self.suppliers, "batch": self.batches, "product": self.products}
        table = frame[level].sort_values(["risk", frame[level].columns[0]],
                                         ascending=[False, True]).head(top)  # fmt: skip
        key = table.columns[0]
        out = table.reset_index(drop=True).copy()
        evidence: list[Any] = [self._evidence(level, k) for k in out[key]]
        out["evidence"] = evidence
        if level != "product":
            out["at_risk_products"] = [self._at_risk(level, k) for k in out[key]]
        return out

    def _products_of(self, level: str, key: str) -> pd.DataFrame:
        p = self.products
        if level == "product":
            return p[p["product_id"] == key]
        if level == "batch":
            return p[p["batch_id"] == key]
        members = self.extra["supplier_products"].get(key, set())
        return p[p["product_id"].isin(members)]

    def _evidence(self, level: str, key: str, n: int = 3) -> list[dict[str, Any]]:
        products = self._products_of(level, key)
        reviews = self.reviews[self.reviews["product_id"].isin(products["product_id"])]
        out: list[dict[str, Any]] = [
            {"kind": "review", "key": r.review_id, "product_id": r.product_id,
             "score": round(float(r.score), 3), "text": str(r.text)[:160]}  # type: ignore[arg-type]
            for r in reviews.nlargest(n, "score").itertuples()
        ]  # fmt: skip
        odd = products[products["image"] > 0.9].nlargest(n, "image")
        out += [
            {"kind": "image", "key": r.product_id, "product_id": r.product_id,
             "score": round(float(r.image), 3), "text": "photo far from its category"}  # type: ignore[arg-type]
            for r in odd.itertuples()
        ]  # fmt: skip
        return out

    def _at_risk(self, level: str, key: str) -> list[str]:
        products = self._products_of(level, key)
        quiet = products[products["defect_reviews"] == 0]
        return quiet.sort_values("risk", ascending=False)["product_id"].tolist()

    def evidence_paths(self, key: str) -> list[dict[str, Any]]:
        """Evidence paths of a supplier, batch or product: ``path`` (``(label, key)`` nodes
        from the node to the evidence), ``kind``, ``score`` and ``text``, strongest first.

        Raises:
            ValidationError: No such supplier, batch or product.
        """
        for level, frame, label in (("supplier", self.suppliers, "Supplier"),
                                    ("batch", self.batches, "Batch"),
                                    ("product", self.products, "Product")):  # fmt: skip
            if key in set(frame.iloc[:, 0]):
                found = (level, label)
                break
        else:
            raise ValidationError(f"no supplier, batch or product {key!r}")
        level, label = found
        batch_of = dict(zip(self.products["product_id"], self.products["batch_id"], strict=True))
        paths = []
        for item in self._evidence(level, key, n=5):
            pid = item["product_id"]
            route: list[tuple[str, str]] = [(label, key)]
            batch = batch_of.get(pid)
            if level == "supplier" and isinstance(batch, str):
                route.append(("Batch", batch))
            if level != "product":
                route.append(("Product", pid))
            if item["kind"] == "review":
                route.append(("Review", item["key"]))
            else:
                route.append(("Image", f"photo of {pid}"))
            paths.append({**item, "path": route})
        return sorted(paths, key=lambda r: -r["score"])

    def plot(self, path: str | Path, level: str = "supplier", top: int = 15) -> Path:
        """Bar chart of the ``top`` risks of ``level`` (PNG)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        table = self.ranking(level, top)
        fig, ax = plt.subplots(figsize=(6, 0.35 * len(table) + 1))
        ax.barh(table.iloc[:, 0][::-1], table["risk"][::-1], color="tab:red")
        ax.set_xlabel("risk")
        ax.set_title(f"{level} risk ranking")
        fig.tight_layout()
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=110)
        plt.close(fig)
        return out

    def plot_subgraph(self, key: str, path: str | Path) -> Path:
        """The evidence subgraph of a supplier, batch or product (PNG): the node, its batches
        and products, and the reviews and photos that speak against them, coloured by score."""
        import matplotlib
        import networkx as nx

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        graph = nx.DiGraph()
        for item in self.evidence_paths(key):
            nodes = [f"{lab}\n{k}" for lab, k in item["path"]]
            for a, b in itertools.pairwise(nodes):
                graph.add_edge(a, b)
            graph.nodes[nodes[-1]]["score"] = item["score"]
        fig, ax = plt.subplots(figsize=(8, 6))
        pos = nx.spring_layout(graph, seed=0)
        colours = [graph.nodes[n].get("score", 0.0) for n in graph.nodes]
        nx.draw_networkx(graph, pos, ax=ax, node_color=colours, cmap="Reds", vmin=0, vmax=1,
                         font_size=7, node_size=900, arrows=True)  # fmt: skip
        ax.set_title(f"defect evidence for {key}")
        ax.axis("off")
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=110, bbox_inches="tight")
        plt.close(fig)
        return out


def _bayes(total: pd.Series, count: pd.Series, prior: float) -> pd.Series:
    return (total + PRIOR_WEIGHT * prior) / (count + PRIOR_WEIGHT)


def review_scores(store: BaseStore, encoder: Any | None = None) -> pd.DataFrame:
    """The defect score of every review (see the module docstring)."""
    node = store.schema.node("Review")
    dim = node.prop("text_vec").type.dim or 0
    table = store.query_arrow(
        "MATCH (r:Review)-[:ABOUT]->(p:Product) RETURN r.id AS review_id, p.id AS product_id, "
        "r.rating AS rating, r.title AS title, r.text AS text, r.text_vec AS v"
    )
    if table.num_rows == 0:
        cols = ["review_id", "product_id", "rating", "text_score", "score", "text"]
        return pd.DataFrame(columns=cols)
    vecs, has = _vectors(table.column("v"), dim)
    frame = table.drop_columns(["v"]).to_pandas()
    text_score = np.full(len(frame), np.nan)
    if has.any():
        if encoder is None:
            from graphfusion.features.text import TextEncoder

            encoder = TextEncoder()
        bad = unit_rows(encoder.encode(list(DEFECT_PHRASES)))
        good = unit_rows(encoder.encode(list(FINE_PHRASES)))
        unit = unit_rows(vecs[has])
        margin = (unit @ bad.T).max(1) - (unit @ good.T).max(1)
        text_score[has] = 1.0 / (1.0 + np.exp(-TEXT_SCALE * margin))
    rating = pd.to_numeric(frame["rating"], errors="coerce").clip(1, 5)
    rating_score = ((5.0 - rating) / 4.0).to_numpy()
    stack = np.vstack([text_score, rating_score])
    known = (~np.isnan(stack)).sum(axis=0)
    frame["text_score"] = text_score
    frame["score"] = np.where(known > 0, np.nansum(stack, axis=0) / np.maximum(known, 1), 0.5)
    frame["text"] = frame["text"].fillna(frame["title"]).fillna("")
    return frame[["review_id", "product_id", "rating", "text_score", "score", "text"]]


def analyse(store: BaseStore, encoder: Any | None = None) -> DefectAnalysis:
    """Evidence and propagated risk for the whole store (see the module docstring).

    Raises:
        ValidationError: The store has no products.
    """
    q = store.query_arrow
    prod = q("MATCH (p:Product) RETURN p.id AS product_id, p.title AS title ORDER BY product_id")
    if prod.num_rows == 0:
        raise ValidationError("the store has no products")
    products = prod.to_pandas()
    reviews = review_scores(store, encoder)
    bad = reviews["score"] > 0.5
    per = (
        reviews.assign(bad=bad)
        .groupby("product_id")
        .agg(reviews=("score", "size"), defect_reviews=("bad", "sum"))
    )
    products = products.merge(per, left_on="product_id", right_index=True, how="left")
    products[["reviews", "defect_reviews"]] = products[["reviews", "defect_reviews"]].fillna(0)
    share = float(bad.mean()) if len(reviews) else 0.0
    products["rate"] = _bayes(products["defect_reviews"], products["reviews"], share)
    products["image"] = _image_percentiles(store, products["product_id"].tolist())
    excess = (2.0 * (products["image"] - 0.5)).clip(0.0, 1.0)
    products["evidence"] = 0.7 * products["rate"] + 0.3 * excess

    batch_of = _pairs(
        store, "MATCH (p:Product)-[:FROM_BATCH]->(b:Batch) RETURN p.id AS a, b.id AS b"
    )
    made_by = _pairs(store, "MATCH (s:Supplier)-[:PRODUCED]->(b:Batch) RETURN b.id AS a, s.id AS b")
    supplies = _pairs(
        store, "MATCH (s:Supplier)-[:SUPPLIES]->(p:Product) RETURN p.id AS a, s.id AS b"
    )
    products["batch_id"] = products["product_id"].map(batch_of)
    products["supplier_id"] = products["product_id"].map(supplies)
    prior = float(products["evidence"].mean())
    evidence = products.set_index("product_id")["evidence"]

    batches = q("MATCH (b:Batch) RETURN b.id AS batch_id ORDER BY batch_id").to_pandas()
    if batches.empty:
        batches = pd.DataFrame({"batch_id": pd.Series([], dtype=object)})
    members = products.groupby("batch_id")["evidence"].agg(["sum", "size"])
    batches = batches.merge(members, left_on="batch_id", right_index=True, how="left").fillna(0)
    batches["supplier_id"] = batches["batch_id"].map(made_by)
    batches["products"] = batches["size"].astype(int)
    batches["risk"] = _bayes(batches["sum"], batches["size"], prior)
    batches = batches[["batch_id", "supplier_id", "products", "risk"]]

    sup = q("MATCH (s:Supplier) RETURN s.id AS supplier_id, s.name AS name ORDER BY supplier_id")
    suppliers = sup.to_pandas() if sup.num_rows else pd.DataFrame(columns=["supplier_id", "name"])
    supplier_products: dict[str, set[str]] = {}
    for pid, sid in supplies.items():
        supplier_products.setdefault(sid, set()).add(pid)
    for pid, bid in batch_of.items():
        maker = made_by.get(bid)
        if maker is not None:
            supplier_products.setdefault(maker, set()).add(pid)
    totals = {s: (float(evidence.reindex(sorted(ps)).sum()), len(ps))
              for s, ps in supplier_products.items()}  # fmt: skip
    suppliers["products"] = [totals.get(s, (0.0, 0))[1] for s in suppliers["supplier_id"]]
    suppliers["risk"] = [
        (totals.get(s, (0.0, 0))[0] + PRIOR_WEIGHT * prior) / (totals.get(s, (0.0, 0))[1]
                                                               + PRIOR_WEIGHT)
        for s in suppliers["supplier_id"]
    ]  # fmt: skip
    b_risk = products["batch_id"].map(batches.set_index("batch_id")["risk"]).fillna(prior)
    s_by_product = {p: s for s, ps in supplier_products.items() for p in ps}
    s_risk_map = suppliers.set_index("supplier_id")["risk"]
    s_risk = products["product_id"].map(s_by_product).map(s_risk_map).fillna(prior)
    products["supplier_id"] = products["product_id"].map(s_by_product)
    products["risk"] = 0.5 * products["evidence"] + 0.5 * np.maximum(b_risk, s_risk)
    return DefectAnalysis(reviews, products, batches, suppliers,
                          {"supplier_products": supplier_products, "prior": prior})  # fmt: skip


def _pairs(store: BaseStore, query: str) -> dict[str, str]:
    """``a -> b`` from a two-column query (the first ``b`` of each ``a``, in key order)."""
    table = store.query_arrow(query)
    if table.num_rows == 0:
        return {}
    frame = table.to_pandas().sort_values(["a", "b"]).drop_duplicates("a")
    return dict(zip(frame["a"], frame["b"], strict=True))


def _image_percentiles(store: BaseStore, products: list[str]) -> np.ndarray:
    """Per product: the percentile, within its category, of its photo's cosine distance to
    the category's mean photo (0.5 without a photo or a category)."""
    dim = store.schema.node("Image").prop("image_vec").type.dim or 0
    table = store.query_arrow(
        "MATCH (p:Product)-[:HAS_IMAGE]->(i:Image) WHERE i.image_vec IS NOT NULL "
        "OPTIONAL MATCH (p)-[:IN_CATEGORY]->(c:Category) "
        "RETURN p.id AS p, c.id AS c, i.image_vec AS v"
    )
    out = pd.Series(0.5, index=products, dtype=float)
    if table.num_rows == 0:
        return out.to_numpy()
    vecs, has = _vectors(table.column("v"), dim)
    frame = pd.DataFrame({"p": table.column("p").to_pylist(),
                          "c": table.column("c").to_pylist()})[has]  # fmt: skip
    unit = unit_rows(vecs[has])
    frame["c"] = frame["c"].fillna("")
    distance = np.zeros(len(frame))
    for _, rows in frame.groupby("c").indices.items():
        centre = unit_rows(unit[rows].mean(0, keepdims=True))[0]
        distance[rows] = 1.0 - unit[rows] @ centre
    frame["d"] = distance
    pct = frame.groupby("c")["d"].rank(pct=True)
    frame["pct"] = np.where(frame.groupby("c")["d"].transform("size") > 2, pct, 0.5)
    best = frame.groupby("p")["pct"].max()
    out.update(best)
    return out.to_numpy()
