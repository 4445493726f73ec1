"""Small files in the formats of the public data sets the built-in loader mappings read.

Each writer makes a few rows in the real layout (same file kinds, column names, encodings
and compression), including deliberately bad rows, and returns the ``sources`` mapping to
pass to :func:`graphfusion.ingest.load`. The rows are made up; no real data is copied.
The tests in ``test_loaders_formats.py`` rely on the exact rows and line numbers below.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "write_amazon_reviews",
    "write_amazon_qa",
    "write_movielens",
    "write_myntra",
    "write_cpsc_recalls",
    "write_clothing_reviews",
    "MOVIELENS_GENRES",
    "CPSC_COLUMNS",
]


def _write_gzip_lines(path: Path, lines: list[str]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8", newline="\n") as fh:
        for line in lines:
            fh.write(line + "\n")
    return path


# ----------------------------------------------------------------------------- Amazon 2018


def _meta(asin: str, **fields: Any) -> str:
    """A metadata line with every field of the 2018 metadata files."""
    row = {
        "category": [], "tech1": "", "description": [], "fit": "", "title": "",
        "also_buy": [], "image": [], "tech2": "", "brand": "", "feature": [], "rank": [],
        "also_view": [], "details": {}, "main_cat": "Gift Cards", "similar_item": "",
        "date": "", "price": "", "asin": asin,
    }  # fmt: skip
    row.update(fields)
    return json.dumps(row, ensure_ascii=False)


def write_amazon_reviews(folder: Path) -> dict[str, Path]:
    """A 5-core review file and a metadata file, gzip JSON lines (Amazon Reviews 2018).

    reviews: line 3 is malformed JSON, line 4 has no reviewerID, line 5 has a rating that is
    not a number, line 6 reviews a product missing from the metadata, line 7 repeats line 1's
    (reviewerID, asin, unixReviewTime). meta: line 3 is not JSON, line 5 has a list as title;
    also_buy/also_view name unknown products (PX, PY).
    """
    folder.mkdir(parents=True, exist_ok=True)
    reviews = [
        json.dumps({"overall": 5.0, "verified": True, "reviewTime": "06 17, 2018",
                    "reviewerID": "U1", "asin": "P1", "style": {"Gift Amount:": " 50"},
                    "reviewerName": "Ann", "reviewText": "Great gift.", "summary": "Five Stars",
                    "unixReviewTime": 1529193600, "vote": "1,234"}),
        json.dumps({"overall": 4.0, "verified": False, "reviewTime": "06 14, 2018",
                    "reviewerID": "U2", "asin": "P1", "reviewerName": "Bob",
                    "summary": "Fine", "unixReviewTime": 1528934400}),
        '{"overall": 5.0, "reviewerID": "U3", "asin": "P1"',
        json.dumps({"overall": 3.0, "verified": True, "asin": "P2", "reviewerName": "Nobody",
                    "reviewText": "No reviewer id.", "summary": "Meh",
                    "unixReviewTime": 1527897600}),
        json.dumps({"overall": "five stars", "verified": True, "reviewerID": "U3",
                    "asin": "P2", "reviewerName": "Cy", "reviewText": "Rating is text.",
                    "summary": "Odd", "unixReviewTime": 1527897600}),
        json.dumps({"overall": 2.0, "verified": True, "reviewerID": "U1", "asin": "P9",
                    "reviewerName": "Ann B.", "reviewText": "Not in the catalogue.",
                    "summary": "Two", "unixReviewTime": 1500000000}),
        json.dumps({"overall": 5.0, "verified": True, "reviewerID": "U1", "asin": "P1",
                    "reviewerName": "Ann", "reviewText": "Same day, same card.",
                    "summary": "Again", "unixReviewTime": 1529193600}),
        json.dumps({"overall": 1.0, "verified": True, "reviewerID": "U2", "asin": "P2",
                    "reviewerName": "Bob", "reviewText": "Broke <b>fast</b> — café",
                    "summary": "Bad", "unixReviewTime": 1546300800, "vote": "3"},
                   ensure_ascii=False),
    ]  # fmt: skip
    meta = [
        _meta("P1", category=["Gift Cards", "Gift Cards", "No expiration, no fees."],
              description=["<div>Great <b>gift</b> card.</div>", "Never expires."],
              title="Acme &amp; Co Gift Card", also_buy=["P2", "PX"], also_view=["P2", "P3"],
              brand="Acme", price="$1,250.00",
              image=["https://images.example/I/1.jpg"]),
        _meta("P2", category=["Gift Cards", "Gift Card Accessories"], title="Card Holder",
              also_view=["P1", "PY"]),
        "this is not json",
        _meta("P3", description=["Plain card"], title="Acme Mini Card", brand="ACME",
              price="$7.99", also_buy=["P1"]),
        _meta("P4", title=["A", "list"]),
    ]  # fmt: skip
    return {
        "reviews": _write_gzip_lines(folder / "Gift_Cards_5.json.gz", reviews),
        "meta": _write_gzip_lines(folder / "meta_Gift_Cards.json.gz", meta),
    }


# ----------------------------------------------------------------------------- Amazon Q&A


def write_amazon_qa(folder: Path) -> dict[str, Path]:
    """A Q&A file: one Python-literal dict per line (``repr``, single quotes), gzip.

    Lines 1-2 answer the same question twice; line 3 has no unixTime ("14 days ago");
    line 4 is a truncated literal; line 5 has no answer; line 6 has a unixTime that is text;
    line 7 is a list, not a dict; line 8 repeats line 1.
    """
    folder.mkdir(parents=True, exist_ok=True)
    first = {"questionType": "yes/no", "asin": "A1", "answerTime": "Jun 27, 2014",
             "unixTime": 1403852400, "question": "Does it fit a Badger 1?",
             "answerType": "Y", "answer": "Yes, it does."}  # fmt: skip
    lines = [
        repr(first),
        repr({"questionType": "yes/no", "asin": "A1", "answerTime": "Jun 28, 2014",
              "unixTime": 1403938800, "question": "Does it fit a Badger 1?",
              "answerType": "N", "answer": "Not mine."}),
        repr({"questionType": "open-ended", "asin": "A1", "answerTime": "14 days ago",
              "question": "How loud is it?", "answer": "Quiet enough for a café."}),
        "{'questionType': 'yes/no', 'asin': 'A2', 'question': ",
        repr({"questionType": "open-ended", "asin": "A2", "answerTime": "Apr 28, 2014",
              "unixTime": 1398668400, "question": "Model number?"}),
        repr({"questionType": "yes/no", "asin": "A3", "answerTime": "May 1, 2014",
              "unixTime": "yesterday", "question": "Is it steel?", "answerType": "?",
              "answer": "Maybe"}),
        "['not', 'a', 'dict']",
        repr(first),
    ]  # fmt: skip
    return {"qa": _write_gzip_lines(folder / "qa_Appliances.json.gz", lines)}


# ----------------------------------------------------------------------------- MovieLens

MOVIELENS_GENRES = [
    "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
]  # fmt: skip


def write_movielens(folder: Path) -> dict[str, Path]:
    """The three MovieLens 100K tables as brotli Parquet files (real column names).

    users row 3 has a fractional age; ratings row 4 is by that user, row 5 is of an unknown
    movie, row 6 has a negative timestamp, row 7 repeats row 1's (user, movie) pair and row 8
    has no user_id.
    """
    folder.mkdir(parents=True, exist_ok=True)
    flags = {
        1: ["Animation", "Children's", "Comedy"],
        2: ["Action", "Adventure", "Thriller"],
        3: [],
    }
    items = pd.DataFrame(
        {
            "movie_id": [1, 2, 3],
            "movie_title": ["Toy Story (1995)", "GoldenEye (1995)", "Odd Movie (1996)"],
            "release_date": ["01-Jan-1995", "01-Jan-1995", None],
            "video_release_date": [np.nan, np.nan, np.nan],
            "IMDb_URL": [f"http://us.imdb.com/M/title-exact?m{i}" for i in (1, 2, 3)],
            "unknown": [0, 0, 1],
            **{g: [int(g in flags[m]) for m in (1, 2, 3)] for g in MOVIELENS_GENRES},
        }
    )
    users = pd.DataFrame(
        {
            "user_id": [1, 2, 3],
            "age": [24.0, 53.0, 30.5],
            "gender": ["M", "F", "M"],
            "occupation": ["technician", "other", "writer"],
            "zip_code": ["85711", "94043", "32067"],
        }
    )
    ratings = pd.DataFrame(
        {
            "user_id": pd.array([1, 1, 2, 3, 2, 2, 1, None], dtype="Int64"),
            "movie_id": [1, 2, 1, 2, 9, 2, 1, 3],
            "rating": [5, 3, 4, 2, 1, 4, 4, 3],
            "timestamp": [881250949, 881250950, 891717742, 878887116, 891717800, -5,
                          881250999, 881250000],
        }
    )  # fmt: skip
    out = {
        "ratings": folder / "MovieLens100k_data.parquet.brotli",
        "items": folder / "MovieLens100k_items.parquet.brotli",
        "users": folder / "MovieLens100k_users.parquet.brotli",
    }
    for name, frame in (("ratings", ratings), ("items", items), ("users", users)):
        frame.to_parquet(out[name], compression="brotli", index=False)
    return out


# ----------------------------------------------------------------------------- Myntra


def _jpeg(color: tuple[int, int, int]) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (6, 8), color).save(buf, format="JPEG")
    return buf.getvalue()


def write_myntra(folder: Path) -> dict[str, Path]:
    """The catalogue CSV and an images.tar.gz of ``images/<product_id>.jpg`` JPEGs.

    CSV line 7 has too many fields, line 8 has no product_id, line 9 a description with two
    parts instead of five. The archive's 4th member is not an image and its 5th is the photo
    of a product that is not in the catalogue.
    """
    folder.mkdir(parents=True, exist_ok=True)
    catalog = folder / "products.csv"
    rows = [
        ["product_id", "title", "description", "category"],
        ["10000", "Palm Tree Girls Jace White Skirts",
         "Apparel - Bottomwear - Skirts - White - Casual", "Apparel"],
        ["10006", "Nike Men AS T90 Black Tshirts",
         "Apparel - Topwear - Tshirts - Black - Sports", "Apparel"],
        ["10010", "United Colors of Benetton Men Blue Shirt",
         "Apparel - Topwear - Shirts - Blue - Casual", "Apparel"],
        ["10012", "Genesis Maroon Formal Shirt",
         "Apparel - Topwear - Shirts - Maroon - Formal", "Apparel"],
        ["10020", "NIKE Women Air Shoes, Black",
         "Footwear - Shoes - Sports Shoes - Black - Sports", "Footwear"],
        ["10030", "Broken row with", "too", "many", "fields", "Apparel"],
        ["", "Nike Men Socks", "Apparel - Topwear - Tshirts - White - Casual", "Apparel"],
        ["10040", "Puma Men Cap", "Accessories - Headwear", "Accessories"],
    ]  # fmt: skip
    with catalog.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    archive = folder / "images.tar.gz"
    members = [
        ("images/10000.jpg", _jpeg((200, 30, 30))),
        ("images/10006.jpg", _jpeg((30, 200, 30))),
        ("images/10010.jpg", _jpeg((30, 30, 200))),
        ("images/README.txt", b"not an image\n"),
        ("images/99999.jpg", _jpeg((90, 90, 90))),
    ]
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return {"catalog": catalog, "images": archive}


# ----------------------------------------------------------------------------- CPSC

CPSC_COLUMNS = [
    "Recall Number", "Product Safety Warning Number", "Date", "Product Safety Warning Date",
    "Recall Heading", "Name of product", "Description", "Hazard Description", "Consumer Action",
    "Original Product Safety Warning Announcement", "Remedy Type", "Units", "Incidents",
    "Remedy", "Sold At Label", "Sold At", "Importers", "Manufacturers", "Distributors",
    "Manufactured In", "Custom Label", "Custom Field",
]  # fmt: skip


def write_cpsc_recalls(folder: Path) -> dict[str, Path]:
    """A CPSC recall export: CSV with a UTF-8 byte-order mark and quoted multi-line fields.

    The first recall spans lines 2-4 (its Importers field holds line breaks); line 6 is a
    Spanish-language copy of the recall on line 7; line 8 has too few fields; line 9 has no
    recall number; line 10 has a date that is not a date. Recall 24-100 names Acme as
    manufacturer and retailer, and QVC as retailer twice.
    """
    folder.mkdir(parents=True, exist_ok=True)
    recalls: list[dict[str, str]] = [
        {"Recall Number": "25-191", "Date": "March 20, 2025",
         "Recall Heading": "Acme Recalls Espresso Machines Due to Burn Hazard",
         "Name of product": "Steam Espresso Machines",
         "Description": "This recall involves espresso machines.&nbsp;Model 90195.",
         "Hazard Description": "The handle can eject, posing a burn hazard.",
         "Remedy Type": "Refund", "Units": "About 12,300",
         "Incidents": "The firm has received 18 reports.",
         "Remedy": "Consumers should stop using the machines.", "Sold At Label": "Sold At",
         "Sold At": "Best Buy, Costco and other stores nationwide and online at BestBuy.com "
                    "from August 2023 through January 2025 for between $40 and $60.",
         "Importers": "Widget Co. Ltd., of China; and Gadget LLC, of Austin, Texas\xa0\n\n\xa0",
         "Manufacturers": "Acme Inc., of Springfield, Ill.", "Manufactured In": "China"},
        {"Recall Number": "24-100", "Date": "June 02, 2024",
         "Recall Heading": "Acme Recalls Toasters Due to Fire Hazard",
         "Description": "Toasters.", "Hazard Description": "Fire.", "Remedy Type": "Repair",
         "Manufacturers": "Acme Corp. of Springfield, Ill.",
         "Distributors": "Big Box Stores Inc., of Bentonville, Ark.",
         "Sold At": "Acme and QVC from May 2023 through April 2024 for about $25.",
         "Custom Label": "Retailer:", "Custom Field": "QVC Inc., of West Chester, Pa."},
        {"Recall Number": "10-238", "Date": "May 19, 2010",
         "Recall Heading": "Walmart retira del mercado cafeteras"},
        {"Recall Number": "10-238", "Date": "May 19, 2010",
         "Recall Heading": "Walmart Recalls Coffee Makers Due to Fire Hazard",
         "Description": "The coffee maker can overheat.", "Remedy Type": "Refund",
         "Units": '"About 900,000"', "Sold At Label": "Sold Exclusively At",
         "Sold At": "Walmart stores nationwide from March 2008 through January 2010 for about "
                    "$30.",
         "Importers": '"Walmart Stores Inc., of Bentonville, Ark."'},
    ]  # fmt: skip
    later: list[dict[str, str]] = [
        {"Recall Number": "", "Date": "July 1, 2001", "Recall Heading": "Nameless recall"},
        {"Recall Number": "01-001", "Date": "sometime in 2001",
         "Recall Heading": "Acme Recalls Kettles", "Description": "Kettles.",
         "Manufacturers": "Acme Inc., of Springfield, Ill."},
        {"Recall Number": "02-002", "Date": "January 15, 2002",
         "Recall Heading": "Beta Recalls Gas Grills", "Name of product": "Gas Grills",
         "Description": "Grills.",
         "Manufacturers": "Beta GmbH, of Germany (burners); and True Manufacturing Co. Inc., "
                          "of O’Fallon, Missouri (refrigerators)",
         "Distributors": "The Metal Ware Corporation, of Two Rivers, Wis., and Petra "
                         "Industries, of Edmond, Okla.",
         "Sold At": "Wal-Mart, Sears and other department stores nationwide from 1995 to 1999.",
         "Custom Label": "Important Message from CPSC:",
         "Custom Field": "CPSC urges consumers to keep the range top clear."},
    ]  # fmt: skip
    path = folder / "recalls.csv"
    with path.open("w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(CPSC_COLUMNS)
        for rec in recalls:
            writer.writerow([rec.get(c, "") for c in CPSC_COLUMNS])
        writer.writerow(["99-999", "May 1, 2000", "Short row"])
        for rec in later:
            writer.writerow([rec.get(c, "") for c in CPSC_COLUMNS])
    return {"recalls": path}


# ----------------------------------------------------------------------------- clothing


def write_clothing_reviews(folder: Path) -> dict[str, Path]:
    """The Women's E-Commerce Clothing Reviews table as brotli Parquet (pandas index kept as
    ``__index_level_0__``, as in the real file).

    Row 4 has no review text, row 5 repeats row 3, row 6 has Recommended IND 2 (not 0/1) and
    row 8 has no division, department or class.
    """
    folder.mkdir(parents=True, exist_ok=True)
    cols = [
        "Clothing ID", "Age", "Title", "Review Text", "Rating", "Recommended IND",
        "Positive Feedback Count", "Division Name", "Department Name", "Class Name",
    ]  # fmt: skip
    rows = [
        [767, 33, None, "Absolutely wonderful - silky and sexy.", 4, 1, 0,
         "Initmates", "Intimate", "Intimates"],
        [1080, 34, "Love this dress!", "Love this dress! it's sooo pretty.", 5, 1, 4,
         "General", "Dresses", "Dresses"],
        [1077, 60, "Some major design flaws", "I had such high hopes for this dress.", 3, 0, 0,
         "General", "Dresses", "Dresses"],
        [1080, 50, "Runs big", None, 4, 1, 0, "General", "Dresses", "Dresses"],
        [1077, 60, "Some major design flaws", "I had such high hopes for this dress.", 3, 0, 0,
         "General", "Dresses", "Dresses"],
        [1049, 50, "My favorite buy!", "I love, love, love this jumpsuit.", 5, 2, 0,
         "General", "Dresses", "Dresses"],
        [1080, 39, "Flattering", "Flattering shirt.", 5, 1, 6, "General Petite", "Tops", "Knits"],
        [1095, 25, None, "Great.", 5, 1, 0, None, None, None],
    ]  # fmt: skip
    path = folder / "WomensClothingE-CommerceReviews.parquet.brotli"
    pd.DataFrame(rows, columns=cols).to_parquet(path, compression="brotli", index=True)
    return {"reviews": path}
