"""Behaviour features: numeric summaries of what users, products and suppliers did or got.

Each label has eight features, computed with a few aggregate Cypher queries (the same for both
stores), then standardized over the label's nodes (mean 0, standard deviation 1; a constant
feature becomes 0). Counts enter as ``log1p``. Rating means and complaint shares are Bayesian
averages toward the shop-wide value with a prior weight of :data:`PRIOR_WEIGHT` reviews, so one
review does not make a product perfect or broken.

- ``User``: views, purchases, favorites, ratings, reviews written (all ``log1p``), days since
  the last interaction (``log1p``; counted back from the latest interaction of the store),
  distinct categories interacted with, mean rating given.
- ``Product``: views, purchases, favorites, ratings, reviews (``log1p``), mean rating
  (smoothed), complaint share (reviews of 1-2 stars, smoothed), ``log1p`` price.
- ``Supplier``: products, batches, reviews of its products, purchases of its products
  (``log1p``), mean rating (smoothed), complaint share (smoothed), distinct categories, share of
  its products with at least one complaint.

An interaction dated in the future (later than the clock plus
:data:`graphfusion.values.FUTURE_TOLERANCE`: loads refuse such dates, but a store written
before they did, or by hand, may hold some) counts as an interaction but has no time: it is
left out of the days since the last interaction and of their reference, with a warning naming
its users; one such date made every other user about as old as the others.
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd

from graphfusion.errors import ValidationError
from graphfusion.store.base import BaseStore
from graphfusion.values import latest_time

log = logging.getLogger("graphfusion.features.behaviour")

__all__ = ["behaviour_features", "FEATURES", "PRIOR_WEIGHT", "COMPLAINT_MAX_RATING"]

#: Reviews' worth of weight given to the shop-wide mean in smoothed averages.
PRIOR_WEIGHT = 5.0
#: A review with this rating or lower counts as a complaint.
COMPLAINT_MAX_RATING = 2.0
INTERACTIONS = ("VIEWED", "PURCHASED", "FAVORITED", "RATED")

FEATURES: dict[str, list[str]] = {
    "User": [
        "views", "purchases", "favorites", "ratings", "reviews", "recency_days",
        "categories", "mean_rating_given",
    ],
    "Product": [
        "views", "purchases", "favorites", "ratings", "reviews", "mean_rating",
        "complaint_share", "price",
    ],
    "Supplier": [
        "products", "batches", "reviews", "purchases", "mean_rating", "complaint_share",
        "categories", "complained_product_share",
    ],
}  # fmt: skip


#: What the features of each label read: labels, relationship types, properties
#: (:meth:`graphfusion.schema.Schema.require`).
NEEDS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "User": (
        ("User", "Product", "Review", "Category"),
        (*INTERACTIONS, "WROTE", "IN_CATEGORY"),
        ("User.id", "Review.rating", *(f"{t}.ts" for t in INTERACTIONS)),
    ),
    "Product": (
        ("User", "Product", "Review"),
        (*INTERACTIONS, "ABOUT"),
        ("Product.id", "Product.price", "Review.rating", *(f"{t}.ts" for t in INTERACTIONS)),
    ),
    "Supplier": (
        ("User", "Product", "Supplier", "Batch", "Review", "Category"),
        ("SUPPLIES", "PRODUCED", "PURCHASED", "ABOUT", "IN_CATEGORY"),
        ("Supplier.id", "Product.id", "Review.rating"),
    ),
}


def _frame(
    store: BaseStore, query: str, columns: list[str], params: dict[str, object] | None = None
) -> pd.DataFrame:
    """Rows of ``query`` indexed by its ``id`` column (with ``columns`` even when empty)."""
    table = store.query_arrow(query, params)  # columnar: far faster than rows on large graphs
    if table.num_rows == 0:
        return pd.DataFrame(columns=["id", *columns]).set_index("id")
    return table.to_pandas().set_index("id")


def _smoothed(total: pd.Series, count: pd.Series, prior: float) -> pd.Series:
    return (total + PRIOR_WEIGHT * prior) / (count + PRIOR_WEIGHT)


def _standardize(frame: pd.DataFrame) -> pd.DataFrame:
    std = frame.std(ddof=0).replace(0.0, 1.0).fillna(1.0)
    return ((frame - frame.mean()) / std).fillna(0.0)


def _interactions(store: BaseStore, end: str, ids: pd.Index, latest: dt.datetime) -> pd.DataFrame:
    """Counts of each interaction type per user or per product, with the last time up to
    ``latest`` (naive UTC; ``<type>_last``) and how many are later (``<type>_future``).

    Times are compared with ``latest`` twice: as a local time (``$latest``: graphfusion's
    loads store naive UTC, a Neo4j ``LocalDateTime``) and as a UTC instant
    (``$latest_at``: a Neo4j ``DateTime``, as another tool may have written ``ts``). Neo4j
    compares a time only with one of its own kind (null with the other), so each stored time
    counts by one of the two, and each kind has its own maximum (Neo4j orders a
    ``DateTime`` and a ``LocalDateTime`` by kind, not by time); LadybugDB drops the zone of
    the UTC one, so both are the same time there."""
    out = pd.DataFrame(index=ids)
    for rtype in INTERACTIONS:
        who = "u" if end == "user" else "p"
        got = _frame(
            store,
            f"MATCH (u:User)-[e:{rtype}]->(p:Product) "
            f"RETURN {who}.id AS id, count(e) AS n, "
            "max(CASE WHEN e.ts <= $latest THEN e.ts END) AS last, "
            "max(CASE WHEN e.ts <= $latest_at THEN e.ts END) AS last_at, "
            "count(CASE WHEN e.ts > $latest OR e.ts > $latest_at THEN 1 END) AS future",
            ["n", "last", "last_at", "future"],
            {"latest": latest, "latest_at": latest.replace(tzinfo=dt.UTC)},
        )
        last = pd.concat([_naive_times(got["last"]), _naive_times(got["last_at"])], axis=1)
        out[rtype] = got["n"].reindex(ids).fillna(0).astype(float)
        out[f"{rtype}_last"] = pd.to_datetime(last.max(axis=1).reindex(ids))
        out[f"{rtype}_future"] = got["future"].reindex(ids).fillna(0).astype(int)
    return out


def _naive_times(values: pd.Series) -> pd.Series:
    """Times (naive UTC as the stores hand them over, or None) as a datetime column."""
    times = pd.to_datetime(values)
    if isinstance(times.dtype, pd.DatetimeTZDtype):  # pragma: no cover - both stores give naive
        times = times.dt.tz_convert("UTC").dt.tz_localize(None)
    return times


def _warn_future(inter: pd.DataFrame, latest: dt.datetime) -> None:
    """Warn of the users' interactions dated after ``latest`` (left out of the recency)."""
    future = inter[[f"{t}_future" for t in INTERACTIONS]].sum(axis=1)
    users = future[future > 0]
    if users.empty:
        return
    named = ", ".join(repr(str(u)) for u in users.index[:5])
    more = f" and {len(users) - 5} more" if len(users) > 5 else ""
    log.warning(
        "behaviour features: %d interactions of %d users (%s%s) are dated in the future "
        "(after %s UTC, the clock plus the tolerance): left out of recency_days",
        int(users.sum()), len(users), named, more, latest.isoformat(timespec="seconds"),
    )  # fmt: skip


def _reviews_by_product(store: BaseStore) -> pd.DataFrame:
    return _frame(
        store,
        "MATCH (r:Review)-[:ABOUT]->(p:Product) WHERE r.rating IS NOT NULL "
        "RETURN p.id AS id, count(r) AS n, sum(r.rating) AS total, "
        f"sum(CASE WHEN r.rating <= {COMPLAINT_MAX_RATING} THEN 1 ELSE 0 END) AS complaints",
        ["n", "total", "complaints"],
    ).astype(float)


def _ids(store: BaseStore, label: str) -> pd.Index:
    table = store.query_arrow(f"MATCH (n:{label}) RETURN n.id AS id")
    keys = table.column("id").to_pylist() if table.num_rows else []
    return pd.Index(keys, name="id", dtype=object)


def _activity(
    store: BaseStore, label: str, latest: dt.datetime
) -> tuple[pd.Index, pd.DataFrame, pd.DataFrame]:
    """Node ids, raw interaction counts and times (up to ``latest``), and the four log-count
    features."""
    ids = _ids(store, label)
    inter = _interactions(store, "user" if label == "User" else "product", ids, latest)
    out = pd.DataFrame(index=ids)
    for rtype, name in zip(INTERACTIONS, FEATURES[label][:4], strict=True):
        out[name] = np.log1p(inter[rtype])
    return ids, inter, out


def _user_features(store: BaseStore) -> pd.DataFrame:
    latest = latest_time()
    ids, inter, out = _activity(store, "User", latest)
    reviews = _frame(
        store,
        "MATCH (u:User)-[:WROTE]->(r:Review) RETURN u.id AS id, count(r) AS n, "
        "avg(r.rating) AS mean",
        ["n", "mean"],
    ).reindex(ids)
    out["reviews"] = np.log1p(reviews["n"].fillna(0).astype(float))
    _warn_future(inter, latest)
    last = inter[[f"{t}_last" for t in INTERACTIONS]].max(axis=1)
    now = last.max()  # the store's last activity, up to the clock: not the clock itself
    days = (now - last).dt.total_seconds() / 86400.0
    out["recency_days"] = np.log1p(days.fillna(days.max() if days.notna().any() else 0.0))
    seen = []
    for rtype in INTERACTIONS:
        got = _frame(
            store,
            f"MATCH (u:User)-[:{rtype}]->(:Product)-[:IN_CATEGORY]->(c:Category) "
            "RETURN u.id AS id, c.id AS cat",
            ["cat"],
        )
        seen.append(got.reset_index())
    pairs = pd.concat(seen).drop_duplicates()
    out["categories"] = pairs.groupby("id")["cat"].size().reindex(ids).fillna(0).astype(float)
    given = reviews["mean"].astype(float)
    out["mean_rating_given"] = given.fillna(given.mean() if given.notna().any() else 0.0)
    return out


def _product_features(store: BaseStore) -> pd.DataFrame:
    ids, _, out = _activity(store, "Product", latest_time())
    rev = _reviews_by_product(store).reindex(ids).fillna(0.0)
    n, total, bad = rev["n"], rev["total"], rev["complaints"]
    out["reviews"] = np.log1p(n)
    mean_all = total.sum() / n.sum() if n.sum() else 0.0
    share_all = bad.sum() / n.sum() if n.sum() else 0.0
    out["mean_rating"] = _smoothed(total, n, mean_all)
    out["complaint_share"] = _smoothed(bad, n, share_all)
    price = _frame(store, "MATCH (p:Product) RETURN p.id AS id, p.price AS price", ["price"])
    values = price["price"].reindex(ids).astype(float).clip(lower=0)
    out["price"] = np.log1p(values.fillna(values.median() if values.notna().any() else 0.0))
    return out


def _supplier_features(store: BaseStore) -> pd.DataFrame:
    ids = _ids(store, "Supplier")
    out = pd.DataFrame(index=ids)
    per = _frame(
        store,
        "MATCH (s:Supplier)-[:SUPPLIES]->(p:Product) RETURN p.id AS id, s.id AS supplier",
        ["supplier"],
    )
    batches = _frame(
        store,
        "MATCH (s:Supplier)-[:PRODUCED]->(b:Batch) RETURN s.id AS id, count(b) AS n",
        ["n"],
    )
    rev = _reviews_by_product(store).reindex(per.index).fillna(0.0)
    buys = _frame(
        store,
        "MATCH (:User)-[e:PURCHASED]->(p:Product) RETURN p.id AS id, count(e) AS n",
        ["n"],
    )
    cats = _frame(
        store,
        "MATCH (p:Product)-[:IN_CATEGORY]->(c:Category) RETURN p.id AS id, c.id AS cat",
        ["cat"],
    )
    per["n"], per["total"], per["bad"] = rev["n"], rev["total"], rev["complaints"]
    per["buys"] = buys["n"].reindex(per.index).fillna(0.0).astype(float)
    per["complained"] = (per["bad"] > 0).astype(float)
    grouped = per.groupby("supplier")
    # every category of every product (a product may have several), whatever the load order
    supplier_cats = per[["supplier"]].join(cats, how="inner").drop_duplicates()
    n = grouped["n"].sum().reindex(ids).fillna(0.0)
    total = grouped["total"].sum().reindex(ids).fillna(0.0)
    bad = grouped["bad"].sum().reindex(ids).fillna(0.0)
    mean_all = total.sum() / n.sum() if n.sum() else 0.0
    share_all = bad.sum() / n.sum() if n.sum() else 0.0
    out["products"] = np.log1p(grouped.size().reindex(ids).fillna(0).astype(float))
    out["batches"] = np.log1p(batches["n"].reindex(ids).fillna(0).astype(float))
    out["reviews"] = np.log1p(n)
    out["purchases"] = np.log1p(grouped["buys"].sum().reindex(ids).fillna(0.0))
    out["mean_rating"] = _smoothed(total, n, mean_all)
    out["complaint_share"] = _smoothed(bad, n, share_all)
    out["categories"] = (
        supplier_cats.groupby("supplier").size().reindex(ids).fillna(0).astype(float)
    )
    out["complained_product_share"] = grouped["complained"].mean().reindex(ids).fillna(0.0)
    return out


_BUILDERS = {"User": _user_features, "Product": _product_features, "Supplier": _supplier_features}


def behaviour_features(store: BaseStore, label: str, *, standardize: bool = True) -> pd.DataFrame:
    """The behaviour features of every node of ``label``.

    Args:
        store: The store.
        label: ``User``, ``Product`` or ``Supplier``.
        standardize: Scale each feature to mean 0 and standard deviation 1.

    Returns:
        A frame indexed by node key with the columns of :data:`FEATURES` for the label.

    Raises:
        ValidationError: For a label without behaviour features.
    """
    if label not in _BUILDERS:
        raise ValidationError(
            f"no behaviour features for {label!r}; there are for {list(_BUILDERS)}"
        )
    store.schema.require(f"behaviour vectors of {label}", *NEEDS[label])
    frame = _BUILDERS[label](store).astype(float)[FEATURES[label]]
    return _standardize(frame) if standardize and len(frame) else frame
