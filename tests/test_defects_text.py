"""Review defect scores on texts and ratings that are not the usual sentence and 1-5 stars:
reviews without text, texts without words, ratings outside the scale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from graphfusion.defects import PRIOR_WEIGHT, analyse
from graphfusion.features.embed import embed
from graphfusion.store import EmbeddedStore

#: (id, title, text, rating) of reviews of one product.
Row = tuple[str, str, str, float | None]

CRACKED = "It cracked after a week, poor quality, it fell apart."
FINE = "Works great, excellent quality, very happy with it."


def _store(path: Path, rows: list[Row], *, vectors: bool = True) -> EmbeddedStore:
    """An open store holding one product, ``mug``, and ``rows`` as its reviews (their text
    vectors embedded unless ``vectors`` is False)."""
    store = EmbeddedStore(path)
    store.write_node_table("Product", pa.table({"id": ["mug"], "title": ["Mug"]}))
    store.write_node_table("Review", pa.table({
        "id": [r[0] for r in rows], "title": [r[1] for r in rows], "text": [r[2] for r in rows],
        "rating": pa.array([r[3] for r in rows], pa.float64()),
    }))  # fmt: skip
    ids = [r[0] for r in rows]
    store.write_rel_table("ABOUT", pa.table({"src": ids, "dst": ["mug"] * len(ids)}),
                          start="Review", end="Product")  # fmt: skip
    if vectors:
        embed(store, only=("text",))
    return store


def test_a_review_without_text_reads_like_the_reviews_of_its_rating(tmp_path: Path) -> None:
    """A one-star review without text was a certain defect report (score (5 - 1) / 4 = 1),
    surer than any review that says what broke, and shown first as evidence with no text;
    a five-star one a certain report of no defect. Without text it reads like the reviews of
    its rating that have one."""
    one = [(f"a{i}", "", CRACKED if i % 2 else "Love it!", 1.0) for i in range(10)]
    five = [(f"c{i}", "", FINE, 5.0) for i in range(10)]
    blank: list[Row] = [("b1", "", "", 1.0), ("b5", "", "", 5.0)]  # no title, no text
    with _store(tmp_path / "store", [*one, *five, *blank]) as store:
        analysis = analyse(store)
    reviews = analysis.reviews.set_index("review_id")
    assert reviews.loc[["b1", "b5"], "text_score"].isna().all()
    assert reviews.loc["a0", "score"] < 0.1 < 0.9 < reviews.loc["a1", "score"]
    for blank_id, same in (("b1", [r[0] for r in one]), ("b5", [r[0] for r in five])):
        rating = float(reviews.at[blank_id, "rating"])
        scores = reviews.loc[same, "score"]
        prior = PRIOR_WEIGHT * (5 - rating) / 4
        expected = (scores.sum() + prior) / (len(same) + PRIOR_WEIGHT)
        assert reviews.at[blank_id, "score"] == pytest.approx(expected)
    assert 0.0 < reviews.at["b5", "score"] < reviews.at["b1", "score"] < 1.0
    assert reviews.at["b1", "score"] < reviews.at["a1", "score"]  # the text says more
    evidence = analysis.ranking("product", 1)["evidence"].iloc[0]
    assert evidence[0]["key"] == "a1" and evidence[0]["text"] == CRACKED


def test_without_any_text_vector_the_rating_decides(tmp_path: Path) -> None:
    """A store whose reviews were never embedded is scored on the ratings, (5 - rating) / 4."""
    rows: list[Row] = [("r1", "", CRACKED, 1.0), ("r2", "", FINE, 4.0), ("r3", "", "ok", 5.0)]
    with _store(tmp_path / "store", rows, vectors=False) as store:
        analysis = analyse(store)
    assert analysis.reviews["score"].tolist() == [1.0, 0.25, 0.0]


def test_a_review_without_words_shows_what_it_is(tmp_path: Path) -> None:
    """A defect review with neither title nor text was shown as evidence with an empty text."""
    rows: list[Row] = [("r1", "", "", 1.0), ("r2", "", "", 2.0), ("r3", "", "", 5.0)]
    with _store(tmp_path / "store", rows, vectors=False) as store:
        analysis = analyse(store)
    evidence = analysis.ranking("product", 1)["evidence"].iloc[0]
    assert [(e["key"], e["text"]) for e in evidence] == [
        ("r1", "(no text; rated 1 of 5)"),
        ("r2", "(no text; rated 2 of 5)"),
    ]
    paths = analysis.evidence_paths("mug")
    assert [p["text"] for p in paths] == ["(no text; rated 1 of 5)", "(no text; rated 2 of 5)"]


@pytest.mark.parametrize("text", [".", "!!!", "😡😡😡", "...?", "👍"])
def test_a_text_without_words_is_no_text(tmp_path: Path, text: str) -> None:
    """A text of punctuation or emoji alone has a vector, but one that says nothing the model
    knows: "." scored 0.63 (a defect report with three stars), any emoji 0.16. It is scored
    as a review without text."""
    rows: list[Row] = [("r1", "", CRACKED, 2.0), ("r2", "", FINE, 5.0), ("r3", "", text, 3.0)]
    with _store(tmp_path / "store", rows) as store:
        analysis = analyse(store)
    reviews = analysis.reviews.set_index("review_id")
    assert np.isnan(reviews.at["r3", "text_score"])
    assert reviews.at["r3", "score"] == pytest.approx(0.5)  # three stars, no other of three
    assert reviews.at["r3", "text"] == text  # shown as written


@pytest.mark.parametrize("rating", [0.0, -1.0, 7.0, 50.0, float("inf"), float("nan")])
def test_a_rating_off_the_scale_is_no_rating(tmp_path: Path, rating: float) -> None:
    """Loading refuses ratings outside 1..5, but a store written otherwise may hold them: a
    rating of 0 (often "not rated") was read as one star, a certain defect report without
    text; 7 as five stars. Such a rating counts as none."""
    rows: list[Row] = [
        ("r1", "", CRACKED, 1.0),
        ("r2", "", FINE, 5.0),
        ("r3", "", FINE, rating),
        ("r4", "", "", rating),
    ]
    with _store(tmp_path / "store", rows) as store:
        analysis = analyse(store)
    reviews = analysis.reviews.set_index("review_id")
    assert reviews.at["r3", "score"] == pytest.approx(reviews.at["r3", "text_score"])
    others = reviews.loc[["r1", "r2", "r3"], "score"].mean()
    assert reviews.at["r4", "score"] == pytest.approx(others)  # neither text nor rating
