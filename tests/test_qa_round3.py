"""QA linking, round 3: schemas keyed by another property, ids named in the question, the
evidence of the graph score and the encoding of items stored since the last ``embed``. Small
hand-made shops in the Amazon QA format on the real embedded store, with the real MiniLM
encoder."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from builders import qa_file

from graphfusion import Engine
from graphfusion.errors import SchemaError
from graphfusion.features.text import TextEncoder
from graphfusion.qa import QAIndex, _id_like, _id_tokens, write_passages
from graphfusion.schema import default_schema_path, parse_schema

MUG, KETTLE, LAMP = "B0001MUG1", "B0002KTL2", "B0003LMP3"
ROWS = [
    (MUG, "Is the mug dishwasher safe?", "Yes, on the top rack."),
    (MUG, "How big is the mug?", "It holds 350 ml."),
    (KETTLE, "Does the kettle come in red?", "Only in black, sorry."),
    (LAMP, "Is the lamp shade made of glass?", "No, it is fabric."),
]
#: A review of the kettle: its passage fits questions about the whistle, its Q&A does not.
WHISTLE = "The whistle is very loud and shrill when the water boils, it wakes the whole house."


def _review(engine: Engine, rid: str, product: str, text: str) -> None:
    engine.store.upsert_nodes("Review", pd.DataFrame({"id": [rid], "text": [text]}))
    engine.store.upsert_relationships(
        "ABOUT", pd.DataFrame({"src": [rid], "dst": [product]}), start="Review", end="Product"
    )


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Engine]:
    """Three products known by their questions, answers and a review, all embedded."""
    engine = Engine(tmp_path / "store")
    engine.load("amazon_qa", qa=qa_file(tmp_path / "qa.json.gz", ROWS))
    _review(engine, "r1001", KETTLE, WHISTLE)
    _review(engine, "r1002", LAMP, "Bright enough to read by. The fabric shade is cream.")
    engine.embed(only=("text",))
    yield engine
    engine.close()


# ----------------------------------------------------------------- schemas of one's own
def _keyed_by_sku(*labels: str) -> Any:
    """The built-in schema with ``labels`` keyed by ``sku`` (and no ``id``)."""
    raw = yaml.safe_load(default_schema_path().read_text())
    for label in labels:
        node = raw["nodes"][label]
        node["key"] = "sku"
        node["properties"]["sku"] = node["properties"].pop("id")
    return parse_schema(raw, source="sku.yaml")


def test_a_schema_keyed_by_another_property_is_named_before_any_query(tmp_path: Path) -> None:
    """Products keyed by ``sku``: asking failed with LadybugDB's "Binder exception: Cannot
    find property id for p." (a QueryError) instead of naming what the schema lacks."""
    with Engine(tmp_path / "store", schema=_keyed_by_sku("Product", "Answer")) as engine:
        engine.store.upsert_nodes("Product", pd.DataFrame({"sku": ["p1"], "title": ["Mug"]}))
        with pytest.raises(SchemaError, match=r"question answering needs .*: Product\.id, "
                                              r"Answer\.id \(") as error:  # fmt: skip
            engine.ask("Is the mug blue?")
        assert "sku.yaml" in str(error.value)


def test_review_passages_of_a_schema_keyed_by_another_property_are_refused(
    tmp_path: Path,
) -> None:
    """``embed`` makes review passages first: reviews keyed by ``sku`` failed there with
    the database's message."""
    with Engine(tmp_path / "store", schema=_keyed_by_sku("Review")) as engine:
        engine.store.upsert_nodes("Review", pd.DataFrame({"sku": ["r1"], "text": ["Fine."]}))
        with pytest.raises(SchemaError, match=r"review passages needs .*: Review\.id \("):
            write_passages(engine.store)
        with pytest.raises(SchemaError, match=r"review passages needs .*Review\.id"):
            engine.embed(only=("text",))


# ----------------------------------------------------------------- ids in the question
def test_a_product_named_by_id_is_linked_first(shop: Engine) -> None:
    """ "Is B0002KTL2 dishwasher safe?" put the mug first (its question fits the words) and
    the kettle named by its id nowhere in particular."""
    plain = shop.ask("Is it dishwasher safe?", k=3)
    assert plain.products["product_id"][0] == MUG  # what the words alone find
    for method in ("fusion", "dense", "graph", "bm25"):
        result = shop.ask(f"Is {KETTLE} dishwasher safe?", k=3, method=method)
        assert result.products["product_id"][0] == KETTLE, method
        assert f"its id {KETTLE} is named in the question" in result.products["evidence"][0]
        assert "the product the question was asked on" not in result.products["evidence"][0]
    # as if asked on its page
    fused = shop.ask(f"Is {KETTLE} dishwasher safe?", k=5)
    page = shop.ask(f"Is {KETTLE} dishwasher safe?", product_id=KETTLE, k=5)
    for kind in ("products", "answers", "passages"):
        pd.testing.assert_series_equal(getattr(page, kind)["score"],
                                       getattr(fused, kind)["score"])  # fmt: skip
    kettle = fused.answers.index[fused.answers["product_id"] == KETTLE][0]
    assert "about the same product" in fused.answers["evidence"][kettle][0]


@pytest.mark.parametrize(
    "question",
    [
        f"Is {KETTLE}'s lid dishwasher safe?",
        f"Is it ({KETTLE}) dishwasher safe?",
        f'Is "{KETTLE}", dishwasher safe?',
        f"Dishwasher safe: {KETTLE}.",
    ],
)
def test_an_id_in_quotes_brackets_or_a_possessive_is_named(shop: Engine, question: str) -> None:
    assert shop.ask(question, k=1).products["product_id"][0] == KETTLE


def test_a_question_answer_or_review_named_by_id_is_linked_first(shop: Engine) -> None:
    qa = shop.qa_index()
    lamp = qa.products.index(LAMP)
    lamp_question = qa.questions.keys[int(np.flatnonzero(qa.questions.product == lamp)[0])]
    result = shop.ask(f"About {lamp_question}: is it dishwasher safe?", k=2)
    assert result.products["product_id"][0] == LAMP
    assert result.answers["text"][0] == "No, it is fabric."
    assert (
        f"it answers the question {lamp_question} named in the question"
        in (result.answers["evidence"][0])
    )
    review = shop.ask("Is the mug in review r1001 dishwasher safe?", k=2)
    assert review.products["product_id"][0] == KETTLE
    assert review.passages["passage_id"][0] == "r1001#0"
    assert "from the review r1001 named in the question" in review.passages["evidence"][0]
    assert "the review r1001 named in the question is about it" in (review.products["evidence"][0])


def test_two_products_named_come_first_and_the_page_stays_above(shop: Engine) -> None:
    both = shop.ask(f"Which is lighter, {LAMP} or {KETTLE}? Is it dishwasher safe?", k=3)
    assert set(both.products["product_id"][:2]) == {LAMP, KETTLE}
    on_page = shop.ask(f"Is it lighter than {LAMP}?", product_id=MUG, k=3)
    assert on_page.products["product_id"][:2].tolist() == [MUG, LAMP]
    assert on_page.products["evidence"][0][0] == "the product the question was asked on"


def test_ids_are_matched_as_whole_words_and_questions_without_one_are_unchanged(
    shop: Engine,
) -> None:
    """Only whole words that are stored keys (in another case too: test_qa_round5.py); a
    question without one is ranked as before (the fused scores of :meth:`QAIndex.scores`)."""
    qa = shop.qa_index()
    for question in (
        f"Is {KETTLE}X dishwasher safe?",  # a longer word
        "Is it dishwasher safe? I got 2 of them in 2014.",
    ):
        assert not qa.named(question).products, question
        result = shop.ask(question, k=3)
        fused = qa.scores(" ".join(question.split()))["products"]["fusion"]
        expected = [qa.products[int(i)] for i in np.argsort(-fused, kind="stable")[:3]]
        assert result.products["product_id"].tolist() == expected


def test_which_keys_a_question_can_name() -> None:
    assert _id_like("P00123") and _id_like("0439023483") and _id_like("r1#0")
    assert not _id_like("2") and not _id_like("2014") and not _id_like("mug")
    assert _id_tokens("Is P1's (B0X1) ok, “A1”?") == ["P1's", "P1", "(B0X1)", "B0X1", "“A1”?", "A1"]


# ----------------------------------------------------------------- evidence of the graph score
def test_product_evidence_names_the_passage_its_graph_score_comes_from(shop: Engine) -> None:
    """The kettle's graph score came from its review passage about the whistle, and its
    evidence named its nearest question ("Does the kettle come in red?", similarity 0.2)."""
    asked = "How loud is the whistle when the water boils?"
    result = shop.ask(asked, k=3, method="graph")
    row = result.products.index[result.products["product_id"] == KETTLE][0]
    evidence = result.products["evidence"][row]
    qa = shop.qa_index()
    passage = qa.passages.keys.index("r1001#0")
    sim = float(qa.scores(asked)["passages"]["dense"][passage])
    assert result.products["score"][row] == pytest.approx(sim)  # the graph score is its own
    assert any(e.startswith(f"its nearest review passage (similarity {sim:.2f}): 'The whistle")
               for e in evidence), evidence  # fmt: skip
    assert not any("come in red" in e for e in evidence)


def test_product_evidence_names_the_answer_its_graph_score_comes_from(shop: Engine) -> None:
    asked = "Does it hold 350 ml of coffee?"
    qa = shop.qa_index()
    sc = qa.scores(asked)
    mug = qa.products.index(MUG)
    answer = qa.answers.texts.index("It holds 350 ml.")
    assert sc["answers"]["dense"][answer] > sc["sim_q"][qa.questions.product == mug].max()
    result = shop.ask(asked, k=3, method="graph")
    row = result.products.index[result.products["product_id"] == MUG][0]
    assert f"its nearest answer about it (similarity {sc['answers']['dense'][answer]:.2f}): " \
        "'It holds 350 ml.'" in result.products["evidence"][row]  # fmt: skip


def test_a_question_stays_the_evidence_where_it_is_the_best(shop: Engine) -> None:
    result = shop.ask("Can I put the mug in the dishwasher?", k=1)
    assert any(e.startswith("a similar question was asked about it") and "dishwasher safe" in e
               for e in result.products["evidence"][0])  # fmt: skip


# ----------------------------------------------------------------- texts stored since embed
class _Counting:
    """The real MiniLM encoder, counting the texts it is given, under a name of its own."""

    def __init__(self, real: TextEncoder, name: str) -> None:
        self.real, self.name = real, name
        self.texts: list[str] = []

    @property
    def dim(self) -> int:
        return self.real.dim

    def encode(self, texts: Sequence[str], **kwargs: Any) -> np.ndarray:
        self.texts.extend(texts)
        return self.real.encode(texts, **kwargs)


def test_texts_stored_since_the_last_embed_are_encoded_once(shop: Engine, tmp_path: Path) -> None:
    """Every index build (each new product makes the engine build one) encoded them again."""
    added = [("B0004FAN4", "Is the fan quiet at night?", "Barely audible on low.")]
    shop.load("amazon_qa", qa=qa_file(tmp_path / "more.json.gz", added, first_day=10))
    encoder = _Counting(TextEncoder(), f"{TextEncoder().name}:{tmp_path}")
    first = QAIndex(shop.store, encoder=encoder)
    assert sorted(encoder.texts) == sorted(added[0][1:])
    encoder.texts.clear()
    second = QAIndex(shop.store, encoder=encoder)
    assert encoder.texts == []
    np.testing.assert_array_equal(second.questions.vecs, first.questions.vecs)
    np.testing.assert_array_equal(second.answers.vecs, first.answers.vecs)
    # a changed text is encoded again
    changed = [("B0004FAN4", "Is the fan quiet at night?", "Silent on its lowest setting.")]
    shop.load("amazon_qa", qa=qa_file(tmp_path / "changed.json.gz", changed, first_day=10))
    QAIndex(shop.store, encoder=encoder)
    assert encoder.texts == [changed[0][2]]
    assert shop.ask("Is the fan loud at night?", k=1).products["product_id"][0] == "B0004FAN4"


def test_the_engine_loads_its_text_model_once_for_every_index_build(
    shop: Engine, tmp_path: Path
) -> None:
    """The engine made a new TextEncoder (hashing and loading MiniLM) at every build: after
    each live product or load."""
    first = shop.qa_index()
    added = [("B0004FAN4", "Is the fan quiet at night?", "Barely audible on low.")]
    shop.load("amazon_qa", qa=qa_file(tmp_path / "more.json.gz", added, first_day=10))
    second = shop.qa_index()
    assert second is not first and second.encoder is first.encoder


# ----------------------------------------------------------------- products nobody asked about
def test_one_product_asked_about_does_not_lend_its_score_to_the_others(tmp_path: Path) -> None:
    """With one product linked to a question, every product nobody asked about got that
    product's graph score (the mean of one): 1 for the question asked again, so that an
    unrelated product tied with the one it was asked about, and came first by its key."""
    with Engine(tmp_path / "store") as engine:
        products = pd.DataFrame({"id": ["a2", "p1"], "title": ["Red kettle", "Blue mug"]})
        engine.store.upsert_nodes("Product", products)
        engine.store.upsert_nodes(
            "Question", pd.DataFrame({"id": ["q1"], "text": ["Is the mug blue?"]})
        )
        engine.store.upsert_relationships(
            "ABOUT", pd.DataFrame({"src": ["q1"], "dst": ["p1"]}), start="Question", end="Product"
        )  # fmt: skip
        engine.embed(only=("text",))
        result = engine.ask("Is the mug blue?", k=2, method="graph")
        assert result.products["product_id"].tolist() == ["p1", "a2"]
        sc = engine.qa_index().scores("Is the mug blue?")
        dense, graph = sc["products"]["dense"], sc["products"]["graph"]
        # the line of slope 1 through the one linked product
        assert graph[0] == pytest.approx(graph[1] + dense[0] - dense[1])


def test_imputed_graph_scores_with_one_product_linked() -> None:
    from graphfusion.qa import _imputed

    graph = np.array([-np.inf, 0.9, -np.inf])
    np.testing.assert_allclose(_imputed(graph, np.array([0.1, 0.6, 0.7])), [0.4, 0.9, 1.0])
