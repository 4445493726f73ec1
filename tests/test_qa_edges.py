"""QA linking at its edges: small hand-made shops in the Amazon QA format on the real embedded
store, with the real MiniLM encoder."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from builders import qa_file

from graphfusion import Engine
from graphfusion.errors import NotReadyError
from graphfusion.qa import METHODS, QAIndex, _Corpus, _rrf, write_passages

FIRST = [
    ("A1", "Will the zorblax quuxify?", "Yes, every morning."),
    ("A1", "How loud is the motor?", "Quiet enough for a flat."),
    ("A2", "Does the door lock?", "Yes, with a key."),
    ("A2", "Is the hose long enough?", "About two metres."),
]


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Engine]:
    """A small embedded Amazon QA store (text vectors for every question and answer)."""
    engine = Engine(tmp_path / "store")
    engine.load("amazon_qa", qa=qa_file(tmp_path / "first.json.gz", FIRST))
    engine.embed(only=("text",))
    yield engine
    engine.close()


def _cosine(qa: QAIndex, a: str, b: str) -> float:
    va, vb = np.asarray(qa.encoder.encode([a, b]), dtype=np.float64)
    return float(va @ vb / np.linalg.norm(va) / np.linalg.norm(vb))


def test_items_loaded_after_the_last_embed_are_encoded_by_the_index(
    shop: Engine, tmp_path: Path
) -> None:
    """Questions, answers, products and review passages stored after the last ``embed`` had
    no vector and scored 0 by meaning (as if unrelated to every question): a question asked
    again in other words ranked its product last by dense, and the evidence said "its nearest
    question ... (similarity 0.00)". The index encodes the texts that have no vector."""
    added = [("A3", "Is the fridge door reversible?", "Yes, the hinges can be swapped over.")]
    shop.load("amazon_qa", qa=qa_file(tmp_path / "more.json.gz", added, first_day=10))
    # a product with a title and a review of it, written without embed
    shop.store.upsert_nodes("Product", pd.DataFrame({"id": ["P9"], "title": ["Zorblax grinder"]}))
    shop.store.upsert_nodes(
        "Review", pd.DataFrame({"id": ["r1"], "text": ["The titanium burrs grind espresso fine."]})
    )
    shop.store.upsert_relationships(
        "ABOUT", pd.DataFrame({"src": ["r1"], "dst": ["P9"]}), start="Review", end="Product"
    )
    write_passages(shop.store)
    missing = {
        label: shop.cypher(f"MATCH (n:{label}) WHERE n.text_vec IS NULL RETURN n.id AS id")["id"]
        for label in ("Question", "Answer", "Passage", "Product")
    }
    # the new question, its answer, the passage; the products without text have none either
    assert [len(missing[label]) for label in ("Question", "Answer", "Passage")] == [1, 1, 1]
    assert "P9" in set(missing["Product"])

    asked = "Can the fridge door be made to open the other way?"
    for method in ("dense", "graph", "fusion"):
        result = shop.ask(asked, k=3, method=method)
        assert result.products["product_id"][0] == "A3", method
        assert result.answers["text"][0] == added[0][2], method
    evidence = shop.ask(asked, k=1).products["evidence"][0]
    sim = _cosine(shop.qa_index(), asked, added[0][1])
    assert sim > 0.5 and f"similarity {sim:.2f}" in evidence[0]
    qa = shop.qa_index()
    sc = qa.scores("What are the grinder's burrs made of?")
    p9 = qa.products.index("P9")
    assert sc["products"]["dense"][p9] == pytest.approx(
        _cosine(qa, "What are the grinder's burrs made of?", "Zorblax grinder"), abs=1e-5
    )
    assert shop.ask("What are the grinder's burrs made of?", k=1).passages["review_id"][0] == "r1"
    row = qa.passages.keys.index("r1#0")
    assert sc["passages"]["dense"][row] > 0.3


def test_reciprocal_rank_fusion_of_equal_ranks_is_one_score() -> None:
    """Two items ranked (1, 1, 2) and (1, 2, 1) by the three signals have the same fused
    score; summed in signal order they differed in the last bit, so that the list put them
    out of key order (README: "Equal scores come in key order") and showed two scores."""
    tied = np.zeros(2)  # BM25 of a question sharing no word with either: both first
    for dense, graph in ((np.array([2.0, 1.0]), np.array([1.0, 2.0])),
                         (np.array([1.0, 2.0]), np.array([2.0, 1.0]))):  # fmt: skip
        fused = _rrf([tied, dense, graph])
        assert fused[0] == fused[1]
        assert fused[0] == pytest.approx(2 / 61 + 1 / 62)


def test_fused_lists_of_a_small_shop_keep_ties_in_key_order(shop: Engine) -> None:
    """A shop with fewer than 20 answered questions fuses by reciprocal rank: scores equal
    but for rounding must be equal and listed in key order."""
    assert shop.qa_index().fusion_weights == {}  # too few answered questions to learn
    for question in ("A2", "Which one?", "MATCH (n) DETACH DELETE n", "' OR 1=1 --"):
        result = shop.ask(question, k=100)
        for frame, key in ((result.products, "product_id"), (result.answers, "answer_id")):
            score, ids = frame["score"].to_numpy(), frame[key].to_numpy()
            close = np.isclose(score[1:], score[:-1], rtol=0, atol=1e-12)
            np.testing.assert_array_equal(score[1:][close], score[:-1][close])
            assert (ids[1:][close] > ids[:-1][close]).all(), (question, frame)


def test_a_shop_of_reviews_only_is_linked_by_its_review_passages(tmp_path: Path) -> None:
    """Products without text of their own and no Q&A, but reviews: once embedded, their
    passages have vectors. The index looked for vectors on questions and answers only and
    said "the store has no text vectors yet; run `graphfusion embed`" after every embed."""
    with Engine(tmp_path / "store") as engine:
        engine.store.upsert_nodes("Product", pd.DataFrame({"id": ["p1", "p2"]}))
        reviews = pd.DataFrame(
            {"id": ["r1", "r2"], "text": ["The mug is a lovely deep blue.", "The kettle whistles."]}
        )
        engine.store.upsert_nodes("Review", reviews)
        engine.store.upsert_relationships(
            "ABOUT", pd.DataFrame({"src": ["r1", "r2"], "dst": ["p1", "p2"]}),
            start="Review", end="Product",
        )  # fmt: skip
        with pytest.raises(NotReadyError, match="graphfusion embed"):
            engine.ask("Is the mug blue?")
        engine.embed(only=("text",))
        for method in METHODS:
            result = engine.ask("Is the mug blue?", k=2, method=method)
            assert result.passages["review_id"][0] == "r1", method
            if method == "bm25":  # lists what shares a word: the products have no text
                assert result.products.empty
            else:
                assert result.products["product_id"][0] == "p1", method


def test_a_shop_without_any_text_says_so(tmp_path: Path) -> None:
    """Products with neither title nor description, and nothing else: embedding cannot help,
    and the error said to run `graphfusion embed` all the same."""
    with Engine(tmp_path / "store") as engine:
        engine.store.upsert_nodes("Product", pd.DataFrame({"id": ["p1", "p2"]}))
        engine.embed(only=("text",))
        with pytest.raises(NotReadyError, match="no title or description") as error:
            engine.ask("Is the mug blue?")
        assert "graphfusion embed" not in str(error.value)


def test_a_corpus_without_a_word_to_index_scores_zero() -> None:
    """Documents of stop words only (answers "No." and "It is.", products without text)
    made bm25s raise "ValueError: max() arg is an empty sequence" while building the index."""
    corpus = _Corpus.build(["a", "b"], ["No.", "It is."], np.eye(2), np.arange(2))
    np.testing.assert_array_equal(corpus.bm25_scores(["blue"]), [0.0, 0.0])
    assert corpus.bm25_score(["blue"], Counter()) == 0.0
