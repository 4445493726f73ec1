"""The built-in mappings for public data sets, on small generated files in their formats.

Each test loads files written by :mod:`formats` into a real embedded store and checks the
exact counts, typed property values, the rejected rows (file and line) and that a second load
changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from graphfusion.errors import MappingError
from graphfusion.ingest import LoadReport, load
from graphfusion.mapping import TRANSFORMS, check_columns, load_mapping, spec_fields
from graphfusion.store import EmbeddedStore

try:
    import formats
except ImportError:  # tests/ imported as a package
    from tests import formats

Reject = tuple[str, int, str, str]


def _nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if v}


def _load_twice(
    store: EmbeddedStore, mapping: str, sources: dict[str, Path]
) -> tuple[LoadReport, dict[str, dict[str, int]]]:
    """Load, then load again: the second load must change no count and reject the same rows."""
    first = load(store, mapping, sources)
    counts = store.counts().to_dict()
    second = load(store, mapping, sources)
    assert store.counts().to_dict() == counts
    assert _rejects(second) == _rejects(first)
    return first, {"nodes": _nonzero(counts["nodes"]), "rels": _nonzero(counts["relationships"])}


def _rejects(report: LoadReport) -> list[Reject]:
    """(file name, line, target, field) of each rejected row, sorted."""
    return sorted((Path(r.source).name, r.line, r.target, r.field) for r in report.rejected)


def _one(store: EmbeddedStore, cypher: str, **params: Any) -> dict[str, Any]:
    rows = store.query(cypher, params)
    assert len(rows) == 1, rows
    return rows[0]


def _column(store: EmbeddedStore, cypher: str, **params: Any) -> list[Any]:
    return [next(iter(r.values())) for r in store.query(cypher, params)]


def _tuples(store: EmbeddedStore, cypher: str, **params: Any) -> list[tuple[Any, ...]]:
    return [tuple(r.values()) for r in store.query(cypher, params)]


@pytest.mark.parametrize(
    "name",
    ["amazon_reviews", "amazon_qa", "movielens", "myntra", "cpsc_recalls", "clothing_reviews"],
)
def test_mapping_is_builtin_and_valid(name: str, store: EmbeddedStore) -> None:
    mapping = load_mapping(name, store.schema)
    assert mapping.name == name
    assert mapping.description


# ----------------------------------------------------------------------------- Amazon 2018


def test_amazon_reviews(tmp_path: Path, store: EmbeddedStore) -> None:
    sources = formats.write_amazon_reviews(tmp_path / "amazon")
    report, counts = _load_twice(store, "amazon_reviews", sources)
    assert report.skipped == {"ALSO_BOUGHT": 1, "ALSO_VIEWED": 1}  # PX, PY: not in the metadata

    # users U1 and U2 (line 5's U3 is rejected with its review); products P1-P3 from the
    # metadata and P9 from a review; reviews on lines 1, 2, 6 and 8
    assert counts["nodes"] == {"User": 2, "Product": 4, "Review": 4, "Category": 3, "Brand": 1}
    assert counts["rels"] == {
        "PURCHASED": 4, "WROTE": 4, "ABOUT": 4, "IN_CATEGORY": 4, "SUBCATEGORY_OF": 2,
        "OF_BRAND": 2, "ALSO_BOUGHT": 2, "ALSO_VIEWED": 3,
    }  # fmt: skip
    reviews, meta = "Gift_Cards_5.json.gz", "meta_Gift_Cards.json.gz"
    # a rejected row is reported once, with every spec's reason, and loads nothing
    assert _rejects(report) == sorted([
        (reviews, 3, "reviews", ""),                      # malformed JSON
        (reviews, 4, "User node", "id"),                  # no reviewerID
        (reviews, 5, "Review node", "rating"),            # "five stars": no U3, no purchase
        (reviews, 7, "Review node", "id"),                # same reviewer, product and day
        (meta, 3, "meta", ""),                            # not JSON
        (meta, 5, "Product node", "title"),               # a list
    ])  # fmt: skip
    assert [r.reason for r in report.rejected if r.line == 7] == [
        "duplicate key 'U1:P1:1529193600' (first at line 1)"
    ]
    assert [r.reason for r in report.rejected if r.line == 4] == [
        "missing key (reviewerID is empty); "
        "Review node id: missing key (reviewerID, asin, unixReviewTime is empty); "
        "WROTE relationship from: missing User key; ABOUT relationship from: missing Review key; "
        "PURCHASED relationship from: missing User key"
    ]
    assert _column(store, "MATCH (u:User {id: 'U3'}) RETURN u.id") == []

    p1 = _one(
        store,
        "MATCH (p:Product {id: 'P1'})-[:OF_BRAND]->(b:Brand) "
        "RETURN p.title AS title, p.description AS d, p.price AS price, b.id AS b, b.name AS bn",
    )
    assert p1 == {"title": "Acme & Co Gift Card", "d": "Great gift card. Never expires.",
                  "price": 1250.0, "b": "acme", "bn": "Acme"}  # fmt: skip
    assert isinstance(p1["price"], float)
    p9 = _one(store, "MATCH (p:Product {id: 'P9'}) RETURN p.title AS t, p.price AS pr")
    assert p9 == {"t": None, "pr": None}  # reviewed, not in the metadata: a bare node
    review = _one(
        store,
        "MATCH (u:User)-[:WROTE]->(r:Review {id: 'U1:P1:1529193600'})-[:ABOUT]->(p:Product) "
        "RETURN u.id AS u, u.name AS name, r.rating AS rating, r.ts AS ts, r.verified AS v, "
        "r.helpful AS helpful, r.title AS title, r.text AS text, p.id AS p",
    )
    assert review == {
        "u": "U1", "name": "Ann", "rating": 5.0, "ts": dt.datetime(2018, 6, 17), "v": True,
        "helpful": 1234, "title": "Five Stars", "text": "Great gift.", "p": "P1",
    }  # fmt: skip
    assert _one(store, "MATCH (r:Review {id: 'U2:P1:1528934400'}) RETURN r.text AS t, "
                "r.verified AS v") == {"t": None, "v": False}  # fmt: skip
    bought = _one(
        store,
        "MATCH (:User {id: 'U2'})-[e:PURCHASED]->(:Product {id: 'P2'}) "
        "RETURN e.ts AS ts, e.weight AS w",
    )
    assert bought == {"ts": dt.datetime(2019, 1, 1), "w": 1.0}
    assert store.query(
        "MATCH (c:Category)-[:SUBCATEGORY_OF]->(p:Category) "
        "RETURN c.id AS id, c.name AS name, c.level AS level, p.id AS parent ORDER BY id"
    ) == [
        {"id": "amazon:gift-cards-gift-card-accessories", "name": "Gift Card Accessories",
         "level": 1, "parent": "amazon:gift-cards"},
        {"id": "amazon:gift-cards-gift-cards", "name": "Gift Cards", "level": 1,
         "parent": "amazon:gift-cards"},
    ]  # fmt: skip
    assert _column(
        store, "MATCH (:Product {id: 'P1'})-[:ALSO_VIEWED]->(p:Product) RETURN p.id ORDER BY p.id"
    ) == ["P2", "P3"]


# ----------------------------------------------------------------------------- Amazon Q&A


def test_amazon_qa(tmp_path: Path, store: EmbeddedStore) -> None:
    sources = formats.write_amazon_qa(tmp_path / "qa")
    report, counts = _load_twice(store, "amazon_qa", sources)

    # only A1's lines load: line 5 (A2) has no answer and line 6 (A3) a bad time, and a
    # rejected line leaves neither its product nor its question behind
    assert counts["nodes"] == {"Product": 1, "Question": 2, "Answer": 3}
    assert counts["rels"] == {"ABOUT": 2, "ANSWERS": 3}
    qa = "qa_Appliances.json.gz"
    assert _rejects(report) == sorted([
        (qa, 4, "qa", ""),                                # truncated literal
        (qa, 5, "Answer node", "id"),                     # no answer
        (qa, 6, "Question node", "ts"),                   # unixTime "yesterday"
        (qa, 7, "qa", ""),                                # a list
        (qa, 8, "Answer node", "id"),                     # line 1 again
    ])  # fmt: skip
    assert [r.reason.split("; ")[1].split(":")[0] for r in report.rejected if r.line in (5, 6)] == [
        "ANSWERS relationship from",
        "Answer node ts",
    ]

    digest = TRANSFORMS["digest"]
    qid = "q-" + digest("A1|Does it fit a Badger 1?", {})
    assert qid == "q-" + hashlib.sha1(b"A1|Does it fit a Badger 1?").hexdigest()[:16]
    question = _one(
        store,
        "MATCH (q:Question {id: $id})-[:ABOUT]->(p:Product) "
        "RETURN q.text AS text, q.qtype AS qtype, q.ts AS ts, p.id AS p",
        id=qid,
    )
    assert question == {"text": "Does it fit a Badger 1?", "qtype": "yes/no",
                        "ts": dt.datetime(2014, 6, 27, 7), "p": "A1"}  # fmt: skip
    answers = store.query(
        "MATCH (a:Answer)-[:ANSWERS]->(:Question {id: $id}) "
        "RETURN a.text AS text, a.atype AS atype, a.ts AS ts ORDER BY ts",
        {"id": qid},
    )
    assert answers == [
        {"text": "Yes, it does.", "atype": "Y", "ts": dt.datetime(2014, 6, 27, 7)},
        {"text": "Not mine.", "atype": "N", "ts": dt.datetime(2014, 6, 28, 7)},
    ]
    loud = _one(
        store,
        "MATCH (a:Answer)-[:ANSWERS]->(q:Question {text: 'How loud is it?'}) "
        "RETURN q.ts AS qts, q.qtype AS qtype, a.text AS text, a.atype AS atype",
    )
    assert loud == {"qts": None, "qtype": "open-ended", "text": "Quiet enough for a café.",
                    "atype": None}  # fmt: skip


# ----------------------------------------------------------------------------- MovieLens


def test_movielens(tmp_path: Path, store: EmbeddedStore) -> None:
    sources = formats.write_movielens(tmp_path / "ml")
    report, counts = _load_twice(store, "movielens", sources)

    assert counts["nodes"] == {"User": 2, "Product": 3, "Category": 6}
    assert counts["rels"] == {"RATED": 3, "IN_CATEGORY": 6}
    users, ratings = "MovieLens100k_users.parquet.brotli", "MovieLens100k_data.parquet.brotli"
    assert _rejects(report) == sorted([
        (users, 3, "User node", "age"),                   # 30.5
        (ratings, 4, "RATED relationship", "from"),       # by that user
        (ratings, 5, "RATED relationship", "to"),         # movie 9 does not exist
        (ratings, 6, "RATED relationship", "ts"),         # timestamp -5
        (ratings, 7, "RATED relationship", "key"),        # (1, 1) rated twice
        (ratings, 8, "RATED relationship", "from"),       # no user_id
    ])  # fmt: skip

    movie = _one(
        store,
        "MATCH (p:Product {id: 'movielens:1'}) "
        "RETURN p.title AS title, p.description AS d, p.created_at AS created",
    )
    assert movie == {"title": "Toy Story (1995)", "d": "Animation, Children's, Comedy",
                     "created": dt.datetime(1995, 1, 1)}  # fmt: skip
    assert _column(
        store,
        "MATCH (:Product {id: 'movielens:1'})-[:IN_CATEGORY]->(c:Category) "
        "RETURN c.name ORDER BY c.name",
    ) == ["Animation", "Children's", "Comedy"]
    assert _one(store, "MATCH (c:Category {id: 'movielens:children-s'}) RETURN c.level AS l") == {
        "l": 0
    }
    odd = _one(
        store,
        "MATCH (p:Product {id: 'movielens:3'}) RETURN p.description AS d, p.created_at AS c",
    )
    assert odd == {"d": None, "c": None}  # only the "unknown" flag, no release date
    rating = _one(
        store,
        "MATCH (u:User {id: 'movielens:1'})-[e:RATED]->(:Product {id: 'movielens:1'}) "
        "RETURN u.age AS age, u.gender AS g, u.occupation AS o, u.location AS loc, "
        "e.rating AS rating, e.weight AS w, e.ts AS ts",
    )
    assert rating == {"age": 24, "g": "M", "o": "technician", "loc": "85711", "rating": 5.0,
                      "w": 5.0, "ts": dt.datetime(1997, 12, 4, 15, 55, 49)}  # fmt: skip
    assert isinstance(rating["rating"], float)


# ----------------------------------------------------------------------------- Myntra


def test_myntra(tmp_path: Path, store: EmbeddedStore) -> None:
    sources = formats.write_myntra(tmp_path / "myntra")
    report, counts = _load_twice(store, "myntra", sources)

    # five products (line 9's cap has no level-2 category: it makes no product, brand
    # Puma, category Accessories nor Accessories - Headwear); categories: 2 + 3 + 4
    assert counts["nodes"] == {"Product": 5, "Image": 4, "Category": 9, "Brand": 4}
    assert counts["rels"] == {
        "HAS_IMAGE": 3, "IN_CATEGORY": 5, "SUBCATEGORY_OF": 7, "OF_BRAND": 5,
    }  # fmt: skip
    csv_name, tar_name = "products.csv", "images.tar.gz"
    assert _rejects(report) == sorted([
        (csv_name, 7, "products", ""),                    # 6 fields
        (csv_name, 8, "Product node", "id"),              # no product_id
        (csv_name, 9, "Category node", "id"),             # "Accessories - Headwear"
        # images/99999.jpg: no product; a link to a node that does not exist is reported
        # on its own, and the image loads
        (tar_name, 5, "HAS_IMAGE relationship", "from"),
    ])  # fmt: skip

    shirt = _one(
        store,
        "MATCH (b:Brand)<-[:OF_BRAND]-(p:Product {id: 'myntra:10010'})-[:HAS_IMAGE]->(i:Image) "
        "RETURN p.title AS t, b.id AS b, b.name AS bn, i.id AS i, i.path AS path",
    )
    archive = sources["images"].resolve()
    assert shirt == {"t": "United Colors of Benetton Men Blue Shirt",
                     "b": "united-colors-of-benetton", "bn": "United Colors of Benetton",
                     "i": "myntra:10010", "path": f"{archive}::images/10010.jpg"}  # fmt: skip
    assert store.query(
        "MATCH (p:Product)-[:OF_BRAND]->(b:Brand) RETURN b.name AS b, count(p) AS n ORDER BY b"
    ) == [{"b": "Genesis", "n": 1}, {"b": "Nike", "n": 2}, {"b": "Palm Tree", "n": 1},
          {"b": "United Colors of Benetton", "n": 1}]  # fmt: skip
    path = store.query(
        "MATCH (:Product {id: 'myntra:10006'})-[:IN_CATEGORY]->(c:Category)"
        "-[:SUBCATEGORY_OF]->(s:Category)-[:SUBCATEGORY_OF]->(m:Category) "
        "RETURN c.id AS c, c.level AS cl, s.name AS s, m.name AS m, m.level AS ml"
    )
    assert path == [{"c": "myntra:apparel-topwear-tshirts", "cl": 2, "s": "Topwear",
                     "m": "Apparel", "ml": 0}]  # fmt: skip


# ----------------------------------------------------------------------------- CPSC


def test_cpsc_recalls(tmp_path: Path, store: EmbeddedStore) -> None:
    sources = formats.write_cpsc_recalls(tmp_path / "cpsc")
    assert sources["recalls"].read_bytes().startswith(b"\xef\xbb\xbf")
    report, counts = _load_twice(store, "cpsc_recalls", sources)

    # recalls and their products: 25-191, 24-100, 10-238 (two rows) and 02-002; line 10's
    # 01-001 is rejected whole: no product and no SUPPLIES link from Acme (named by 25-191
    # and 24-100 as well). Suppliers: 5 named by 25-191, 2 more by 24-100, 2 by 10-238 and
    # 5 by 02-002; "Wal-Mart" (02-002) and "Walmart" (10-238) are one firm
    assert counts["nodes"] == {"Product": 4, "Supplier": 14, "Recall": 4}
    assert counts["rels"] == {"ABOUT": 4, "SUPPLIES": 16, "NAMES": 16}
    f = "recalls.csv"
    assert _rejects(report) == sorted([
        (f, 8, "recalls", ""),                            # 3 fields
        (f, 9, "Recall node", "id"),                      # no recall number
        (f, 10, "Recall node", "ts"),                     # "sometime in 2001", once
    ])  # fmt: skip
    assert [r.reason for r in report.rejected if r.line == 9] == [
        "missing key (Recall Number is empty); Product node id: missing key (Recall Number is "
        "empty); ABOUT relationship from: missing Recall key"
    ]

    recall = _one(
        store,
        "MATCH (r:Recall {id: '25-191'})-[:ABOUT]->(p:Product) "
        "RETURN r.title AS title, r.ts AS ts, r.remedy AS remedy, r.units AS units, "
        "r.hazard AS hazard, r.description AS d, p.id AS p, p.title AS pt",
    )
    assert recall == {
        "title": "Steam Espresso Machines", "ts": dt.datetime(2025, 3, 20), "remedy": "Refund",
        "units": "About 12,300", "hazard": "The handle can eject, posing a burn hazard.",
        "d": "This recall involves espresso machines. Model 90195.", "p": "cpsc:25-191",
        "pt": "Steam Espresso Machines",
    }  # fmt: skip
    # the full English record wins over the Spanish copy listed before it
    assert _one(store, "MATCH (r:Recall {id: '10-238'}) RETURN r.title AS t, r.units AS u") == {
        "t": "Walmart Recalls Coffee Makers Due to Fire Hazard",
        "u": '"About 900,000"',
    }
    # no product name: the heading
    assert _one(store, "MATCH (p:Product {id: 'cpsc:24-100'}) RETURN p.title AS t") == {
        "t": "Acme Recalls Toasters Due to Fire Hazard"
    }
    supplies: dict[str, list[str]] = {}
    for r in store.query(
        "MATCH (s:Supplier)-[e:SUPPLIES]->(p:Product) RETURN s.id AS s, p.id AS p, e.roles AS r"
    ):
        supplies.setdefault(r["s"], []).append(f"{r['p']}:{'+'.join(r['r'])}")
    suppliers = store.query("MATCH (s:Supplier) RETURN s.id AS id, s.name AS n, s.roles AS r")
    by_id = {s["id"]: (s["n"], s["r"], sorted(supplies.get(s["id"], []))) for s in suppliers}
    assert by_id == {
        "acme": ("Acme", ["manufacturer", "retailer"], ["cpsc:24-100:manufacturer+retailer",
                                                        "cpsc:25-191:manufacturer"]),
        "bestbuy": ("Best Buy", ["retailer"], ["cpsc:25-191:retailer"]),
        "beta": ("Beta", ["manufacturer"], ["cpsc:02-002:manufacturer"]),
        "bigboxstores": ("Big Box Stores", ["distributor"], ["cpsc:24-100:distributor"]),
        "costco": ("Costco", ["retailer"], ["cpsc:25-191:retailer"]),
        "gadget": ("Gadget", ["importer"], ["cpsc:25-191:importer"]),
        "metalware": ("Metal Ware", ["distributor"], ["cpsc:02-002:distributor"]),
        "petraindustries": ("Petra Industries", ["distributor"], ["cpsc:02-002:distributor"]),
        "qvc": ("QVC", ["retailer"], ["cpsc:24-100:retailer"]),
        "truemanufacturing": ("True Manufacturing", ["manufacturer"],
                               ["cpsc:02-002:manufacturer"]),
        "sears": ("Sears", ["retailer"], ["cpsc:02-002:retailer"]),
        "walmart": ("Walmart", ["retailer"], ["cpsc:02-002:retailer", "cpsc:10-238:retailer"]),
        "walmartstores": ("Walmart Stores", ["importer"], ["cpsc:10-238:importer"]),
        "widget": ("Widget", ["importer"], ["cpsc:25-191:importer"]),
    }  # fmt: skip
    assert _tuples(
        store,
        "MATCH (:Recall {id: '24-100'})-[e:NAMES]->(s:Supplier) "
        "RETURN s.id AS firm, e.roles AS roles ORDER BY firm",
    ) == [
        ("acme", ["manufacturer", "retailer"]),
        ("bigboxstores", ["distributor"]),
        ("qvc", ["retailer"]),
    ]
    # A later export that names Acme as an importer adds the role; nothing is lost.
    later = {c: "" for c in formats.CPSC_COLUMNS}
    later.update(
        {
            "Recall Number": "26-001",
            "Date": "January 5, 2026",
            "Description": "Mugs.",
            "Recall Heading": "Acme Recalls Mugs",
            "Importers": "Acme Inc., of Ill.",
        }
    )
    report = load(store, "cpsc_recalls", {"recalls": pd.DataFrame([later])})
    assert not report.rejected
    acme = _one(store, "MATCH (s:Supplier {id: 'acme'}) RETURN s.roles AS roles, s.name AS n")
    assert acme == {"roles": ["manufacturer", "retailer", "importer"], "n": "Acme"}
    assert _tuples(
        store,
        "MATCH (r:Recall)-[e:NAMES]->(:Supplier {id: 'acme'}) RETURN r.id AS id, e.roles AS r "
        "ORDER BY id",
    ) == [
        ("24-100", ["manufacturer", "retailer"]),
        ("25-191", ["manufacturer"]),
        ("26-001", ["importer"]),
    ]


def test_firm_key() -> None:
    key = TRANSFORMS["firm_key"]
    spellings = {"Wal-Mart": "walmart", "Walmart": "walmart", "WalMart": "walmart",
                 "J.C. Penney": "jcpenney", "JCPenney": "jcpenney", "Lowe's": "lowes",
                 "Lowe’s": "lowes", "Nestlé": "nestle", "3M": "3m"}  # fmt: skip
    assert {name: key(name, {}) for name in spellings} == spellings
    assert key(["Best Buy", "BestBuy"], {}) == ["bestbuy", "bestbuy"]
    assert key(" - ", {}) is None
    assert key(None, {}) is None
    # names in other scripts keep their letters (they were dropped, losing the firm)
    assert key("東芝株式会社, of Tokyo", {}) == "東芝株式会社oftokyo"
    assert key("Ёлка ООО", {}) == "елкаооо"


@pytest.mark.parametrize(
    ("field", "firms"),
    [
        # German, Mexican, French and Nordic legal forms: "& Co. KG" made a firm "Co. KG"
        ("Foo GmbH & Co. KG, of Hamburg, Germany", ["Foo"]),
        ("Bar S.A. de C.V., of Monterrey, Mexico; and Baz SA", ["Bar", "Baz"]),
        ("Societe Generale SA and Orange S.A.S.", ["Societe Generale", "Orange"]),
        ("Nordic Oy; Svensk AB; Dansk A/S; Aussie Pty Ltd",
         ["Nordic", "Svensk", "Dansk", "Aussie"]),
        # a legal form alone names no firm
        ("Acme Inc. and Inc.", ["Acme"]),
        ("Inc.", None),
        # words that are legal forms elsewhere stay in a name
        ("Sa Sa Cosmetics; KG Gear", ["Sa Sa Cosmetics", "KG Gear"]),
    ],
)  # fmt: skip
def test_companies_drop_legal_forms_of_other_countries(field: str, firms: list[str] | None) -> None:
    assert TRANSFORMS["companies"](field, {}) == firms


# ----------------------------------------------------------------------------- clothing


def test_clothing_reviews(tmp_path: Path, store: EmbeddedStore) -> None:
    sources = formats.write_clothing_reviews(tmp_path / "clothing")
    report, counts = _load_twice(store, "clothing_reviews", sources)

    # rows are keyed by the file's stored row number: a review without text and a repeated
    # row are reviews like the others
    # row 6 (Recommended IND 2) is rejected whole: garment 1049, named by no other row,
    # is no product, and has no links to its class and division
    assert counts["nodes"] == {"Product": 4, "Review": 7, "Category": 9}
    assert counts["rels"] == {"ABOUT": 7, "IN_CATEGORY": 8, "SUBCATEGORY_OF": 6}
    f = "WomensClothingE-CommerceReviews.parquet.brotli"
    assert _rejects(report) == [(f, 6, "Review node", "recommended")]

    rid = "clothing-review:1"
    review = _one(
        store,
        "MATCH (r:Review {id: $id})-[:ABOUT]->(p:Product) RETURN r.title AS title, "
        "r.text AS text, r.rating AS rating, r.recommended AS rec, r.helpful AS helpful, "
        "p.id AS p",
        id=rid,
    )
    assert review == {"title": "Love this dress!", "text": "Love this dress! it's sooo pretty.",
                      "rating": 5.0, "rec": True, "helpful": 4, "p": "clothing:1080"}  # fmt: skip
    assert _column(
        store, "MATCH (r:Review)-[:ABOUT]->(:Product {id: 'clothing:1077'}) RETURN r.recommended"
    ) == [False, False]
    assert _column(
        store,
        "MATCH (:Product {id: 'clothing:1080'})-[:IN_CATEGORY]->(c:Category) "
        "RETURN c.id ORDER BY c.id",
    ) == [
        "clothing:class:dresses-dresses", "clothing:class:tops-knits",
        "clothing:division:general", "clothing:division:general-petite",
    ]  # fmt: skip
    assert store.query(
        "MATCH (c:Category {id: 'clothing:class:tops-knits'})-[:SUBCATEGORY_OF]->(d:Category)"
        "-[:SUBCATEGORY_OF]->(v:Category) "
        "RETURN c.name AS c, c.level AS cl, d.name AS d, d.level AS dl, v.name AS v, v.level AS vl"
    ) == [{"c": "Knits", "cl": 2, "d": "Tops", "dl": 1, "v": "General Petite", "vl": 0}]
    assert (
        _column(store, "MATCH (p:Product {id: 'clothing:1095'})-[:IN_CATEGORY]->(c) RETURN c.id")
        == []
    )


# ----------------------------------------------------------------------------- user mappings

_HEAD = """\
name: mine
sources:
  shop: {description: my shop}
tables:
  products: {source: shop, file: products.csv, format: csv}
"""


def _mapping_error(tmp_path: Path, store: EmbeddedStore, body: str, head: str = _HEAD) -> str:
    """The one error a mistaken mapping file gives when loaded; nothing is written."""
    path = tmp_path / "mine.yaml"
    path.write_text(head + body, encoding="utf-8")
    (tmp_path / "shop").mkdir(exist_ok=True)
    (tmp_path / "shop" / "products.csv").write_text("id,title,price\np1,Mug,3\n")
    with pytest.raises(MappingError) as info:
        load(store, path, {"shop": tmp_path / "shop"})
    assert store.counts().to_dict()["nodes"].get("Product", 0) == 0
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    return message[len(f"{path}: ") :]


_NODE = "nodes:\n  - {label: Product, table: products, key: id, properties: {title: %s}}\n"
_REL = (
    "relationships:\n  - {type: IN_CATEGORY, table: products, %s"
    "from: {label: Product, key: id}, to: {label: Category, key: cat}}\n"
)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # booleans given as text were read as True ("no" is a non-empty string)
        (
            "nodes:\n  - {label: Product, table: products, key: id, unique: 'no'}\n",
            "nodes[0]: unique must be true or false, got 'no'",
        ),
        (_REL % "optional: 'false', ", "relationships[0]: optional must be true or false"),
        # an end's unknown key was dropped in silence (the link was not optional)
        (
            "relationships:\n  - {type: IN_CATEGORY, table: products, "
            "from: {label: Product, key: id, optional: true}, to: {label: Category, key: c}}\n",
            "relationships[0].from: unknown keys ['optional']",
        ),
        # options of the wrong type, or that no transform of the field uses
        (
            _NODE % "{column: title, transform: part, index: two}",
            "nodes[0].properties.title: index must be an integer, got 'two'",
        ),
        (
            _NODE % "{column: title, transform: split, sep: 5}",
            "nodes[0].properties.title: sep must be text, got 5",
        ),
        (
            _NODE % "{column: title, transform: strip, prefix: x}",
            "nodes[0].properties.title: option 'prefix' is used by none of its transforms (strip; "
            "'prefix' is for prefix)",
        ),
        (
            _NODE % "{column: title, sep: ','}",
            "nodes[0].properties.title: option 'sep' is used by none of its transforms "
            "(none; 'sep' is for join, split, part, head, flags, lead)",
        ),
        (
            _NODE % "{column: title, transform: split, sep: '(', regex: true}",
            "nodes[0].properties.title: sep is not a valid regular expression",
        ),
        (
            _NODE % "{column: title, transform: lead, sep: '(x'}",
            "nodes[0].properties.title: sep is not a valid regular expression",
        ),
        (
            _NODE % "{column: title, transform: {number: 1}}",
            "nodes[0].properties.title: transform must be a name or a list of names",
        ),
        (
            _NODE % "{column: title, equals: Mug}",
            "nodes[0].properties.title: 'equals' is only for a spec's where",
        ),
        (
            "nodes:\n  - {label: Product, table: products, key: id, "
            "where: {column: title, equals: [Mug, Cup]}}\n",
            "nodes[0].where: equals must be text or a number, got ['Mug', 'Cup']",
        ),
        (
            "nodes:\n  - {label: Product, table: products, key: id, "
            "where: {column: title, equals: yes}}\n",
            "nodes[0].where: equals must be text or a number, got True",
        ),
        # templates that failed on every row, or crashed the load
        (_NODE % "{template: '{title'}", "nodes[0].properties.title: bad template '{title'"),
        (_NODE % "{template: 5}", "nodes[0].properties.title: template must be text, got 5"),
        (_NODE % "{template: '{} x'}", "nodes[0].properties.title: bad template '{} x'"),
        (_NODE % "{column: 5}", "nodes[0].properties.title: column must be text, got 5"),
        # a constant of the wrong type was rejected on every row
        (
            "nodes:\n  - {label: Product, table: products, key: id, "
            "properties: {price: {value: cheap}}}\n",
            "nodes[0].properties.price: 'cheap' is not a number",
        ),
        ("nodes:\n  - {table: products, key: id}\n", "nodes[0]: 'label' is required"),
        (
            "nodes:\n  product: {label: Product, table: products, key: id}\n",
            "'nodes' must be a list of node specs",
        ),
    ],
)
def test_a_mistaken_mapping_is_one_clear_error(
    tmp_path: Path, store: EmbeddedStore, body: str, message: str
) -> None:
    assert _mapping_error(tmp_path, store, body).startswith(message)


@pytest.mark.parametrize(
    ("head", "message"),
    [
        # a list of tables crashed with AttributeError
        (
            "sources: {shop: d}\ntables:\n  - {source: shop, file: products.csv, format: csv}\n",
            "'tables' must map table names to tables",
        ),
        # a file name that is not text crashed the load with TypeError
        (
            "sources: {shop: d}\ntables:\n  products: {source: shop, file: 5, format: csv}\n",
            "tables.products: file must be text, got 5",
        ),
        (
            "sources: {shop: [d]}\n"
            "tables:\n  products: {source: shop, file: products.csv, format: csv}\n",
            "sources.shop: a source is a description or {description: text}",
        ),
    ],
)
def test_a_mistaken_table_or_source_is_one_clear_error(
    tmp_path: Path, store: EmbeddedStore, head: str, message: str
) -> None:
    body = "nodes:\n  - {label: Product, table: products, key: id}\n"
    assert _mapping_error(tmp_path, store, body, head).startswith(message)


@pytest.mark.parametrize(
    ("template", "title"),
    [
        ("{{x}} {title}", "{x} Mug"),  # literal braces made the value None in every row
        ("{title:>5}", "  Mug"),  # so did a format spec
        ("{title!r}", "'Mug'"),
        ("{id} {title}", "p1 Mug"),
    ],
)
def test_templates_with_braces_and_formats(
    tmp_path: Path, store: EmbeddedStore, template: str, title: str
) -> None:
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "products.csv").write_text("id,title\np1,Mug\n")
    path = tmp_path / "mine.yaml"
    field = yaml.safe_dump({"template": template}, default_flow_style=True).strip()
    path.write_text(_HEAD + _NODE % field)
    report = load(store, path, {"shop": tmp_path / "shop"})
    assert not report.rejected
    assert _column(store, "MATCH (p:Product) RETURN p.title") == [title]


def test_a_good_user_mapping_loads(tmp_path: Path, store: EmbeddedStore) -> None:
    """What the checks above allow: options shared by the transforms that use them, where
    with equals, a constant of the right type, unique false."""
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "products.csv").write_text(
        "id,title,kind,tags\np1,Mug,home,a;b\np2,Cap,apparel,c\np2,Cap,apparel,c\n"
    )
    body = (
        "nodes:\n"
        "  - {label: Product, table: products, key: id, unique: false,\n"
        "     where: {column: kind, equals: home},\n"
        "     properties: {title: {column: title, transform: [lower, prefix], prefix: 'x-'},\n"
        "                  currency: {value: EUR}, price: {value: 2}}}\n"
        "  - {label: Category, table: products, unique: false,\n"
        "     key: {column: tags, transform: [split, prefix], sep: ';', prefix: 't-'}}\n"
    )
    path = tmp_path / "mine.yaml"
    path.write_text(_HEAD + body)
    report = load(store, path, {"shop": tmp_path / "shop"})
    assert not report.rejected
    assert _tuples(store, "MATCH (p:Product) RETURN p.id, p.title, p.currency, p.price") == [
        ("p1", "x-mug", "EUR", 2.0)
    ]
    assert sorted(_column(store, "MATCH (c:Category) RETURN c.id")) == ["t-a", "t-b", "t-c"]


def test_check_columns_names_a_mistyped_column(tmp_path: Path, store: EmbeddedStore) -> None:
    """A field reading a column the file lacks gave nothing in every row, in silence."""
    path = tmp_path / "mine.yaml"
    path.write_text(
        _HEAD
        + "nodes:\n  - {label: Product, table: products, key: id,\n"
        + "     properties: {title: {columns: [name, title]}, price: {template: '{prise} $'}}}\n"
        + _REL % "optional: true, "
    )
    mapping = load_mapping(path, store.schema)
    assert [place for place, _ in spec_fields(mapping, "products")] == [
        "nodes[0].key",
        "nodes[0].properties.title",
        "nodes[0].properties.price",
        "relationships[0].from.key",
        "relationships[0].to.key",
    ]
    with pytest.raises(MappingError) as info:
        check_columns(mapping, "products", ["id", "title", "price", "cat"], "products.csv")
    assert str(info.value) == (
        f"{path}: nodes[0].properties.price: no column 'prise' in table 'products' "
        "(products.csv); its columns: id, title, price, cat"
    )
    with pytest.raises(MappingError, match=r"relationships\[0\]\.to\.key: no column 'cat'"):
        check_columns(mapping, "products", ["id", "title", "prise"])
    # one of a columns list is enough; __dir__ is every table's
    check_columns(mapping, "products", ["id", "title", "prise", "cat"])
    keyed = load_mapping("amazon_qa", store.schema)  # JSON keys: an absent key is empty
    check_columns(keyed, "qa", ["asin"])


# ----------------------------------------------------------------------------- transforms


@pytest.mark.parametrize(
    ("text", "number"),
    [
        (".5", 0.5),  # was 5.0
        ("-.5", -0.5),  # was 5.0
        ("$.99", 0.99),
        ("1e5", 100000.0),  # was 1.0
        ("1.5e-3", 0.0015),  # was 1.5
        ("2.5E+2 units", 250.0),
        ("\u22125", -5.0),  # a Unicode minus sign was dropped
        ("No.5", 5.0),  # a dot after a letter starts no number
        ("3e-bikes", 3.0),
        ("$1,299.00", 1299.0),
        ("Model X-5", 5.0),
    ],
)
def test_number_reads_decimals_exponents_and_signs(text: str, number: float) -> None:
    assert TRANSFORMS["number"](text, {}) == pytest.approx(number)


@pytest.mark.parametrize("text", ["1,99", "€ 1.234,56", "1.5,25"])
def test_number_rejects_a_decimal_comma(text: str) -> None:
    # "1.234,56" gave 1.234 in silence, a thousand times too little
    with pytest.raises(ValueError, match="comma"):
        TRANSFORMS["number"](text, {})


def test_unix_times_reject_booleans() -> None:
    for name in ("unix_s", "unix_ms"):
        with pytest.raises(ValueError, match="Unix time"):
            TRANSFORMS[name](True, {})  # was 1970-01-01 00:00:01
    assert TRANSFORMS["unix_s"]("0", {}) == dt.datetime(1970, 1, 1)


def test_strip_html_keeps_comparisons() -> None:
    strip_html = TRANSFORMS["strip_html"]
    # "< 2 kg and up to >" was taken for a tag and dropped
    assert strip_html("weight < 2 kg and size > 3 cm", {}) == "weight < 2 kg and size > 3 cm"
    assert strip_html("<p>Soft <b>cotton</b></p><!-- x --><br/>tee", {}) == "Soft cotton tee"
    assert strip_html("a &lt;b&gt; c", {}) == "a <b> c"


def test_stem_of_a_list_and_digest_of_a_number() -> None:
    # a list gave the stem of its repr ("['a")
    assert TRANSFORMS["stem"](["img/a.png", "b.jpg", None], {}) == ["a", "b"]
    assert TRANSFORMS["stem"]("img/a.png", {}) == "a"
    digest = TRANSFORMS["digest"]
    # an integral float (an id column with gaps) is the same id as the integer and its text
    assert digest(5.0, {}) == digest(5, {}) == digest("5", {})
    assert digest("5", {}) == hashlib.sha1(b"5").hexdigest()[:16]
    with pytest.raises(ValueError, match="list"):
        digest(["a"], {})


def test_a_key_given_twice_in_a_mapping_file_is_an_error(
    tmp_path: Path, store: EmbeddedStore
) -> None:
    """YAML kept the last of two ``properties`` of a spec and dropped the first in silence."""
    body = (
        "nodes:\n"
        "  - label: Product\n"
        "    table: products\n"
        "    key: id\n"
        "    properties: {title: title}\n"
        "    properties: {price: price}\n"
    )
    message = _mapping_error(tmp_path, store, body)
    assert message.startswith("not valid YAML: ")
    assert "key 'properties' given twice (line 11, first on line 10)" in message
    # merge keys may still be overridden
    path = tmp_path / "merged.yaml"
    path.write_text(
        _HEAD + "nodes:\n  - &p {label: Product, table: products, key: id}\n"
        "  - {<<: *p, label: Image}\n"
    )
    assert [n.label for n in load_mapping(path, store.schema).nodes] == ["Product", "Image"]


def test_text_transforms_apply_to_each_element_of_a_list() -> None:
    # [split, lower] left the list as it was: keys "Red" and "red" were two nodes
    tags = TRANSFORMS["split"]("Red; BLUE ;Green", {})
    assert TRANSFORMS["lower"](tags, {}) == ["red", "blue", "green"]
    assert TRANSFORMS["strip"]([" a ", "b", 3], {}) == ["a", "b", 3]
    assert TRANSFORMS["capitalize"](["red", "blue"], {}) == ["Red", "Blue"]
    assert TRANSFORMS["strip_html"](["<b>a</b>", "c &amp; d"], {}) == ["a", "c & d"]


def test_split_by_a_regular_expression_with_a_group() -> None:
    # re.split put the separators a group captured among the parts: "," and ";" became tags
    split = TRANSFORMS["split"]
    assert split("a, b; c", {"sep": r"\s*(,|;)\s*", "regex": True}) == ["a", "b", "c"]
    assert split("a1b22c", {"sep": r"\d+", "regex": True}) == ["a", "b", "c"]
    assert split("a,b", {"sep": ","}) == ["a", "b"]
