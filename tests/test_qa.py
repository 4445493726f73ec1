"""QA linking on the real embedded store with the tiny shop and the real MiniLM encoder."""

from __future__ import annotations

import gzip
import json
import re
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from graphfusion import Engine
from graphfusion.cli import main
from graphfusion.errors import NotReadyError, ValidationError
from graphfusion.ingest import load
from graphfusion.qa import (
    FIT_CANDIDATES,
    FUSION_GRID,
    METHODS,
    SIMILAR_QUESTION,
    QAIndex,
    _best_weights,
    _Case,
    _Corpus,
    _fused,
    _imputed,
    _linked,
    _rrf,
    _signals,
    _tokens,
    question_key,
    split_passages,
    write_passages,
)


@pytest.fixture(scope="module")
def embedded(tiny_shop: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("qa") / "store"
    with Engine(folder) as engine:
        load(engine.store, "synthetic", {"shop": tiny_shop})
        engine.embed(only=("text",))
    return folder


@pytest.fixture
def engine(embedded: Path, private_copy: Callable[[Path], Engine]) -> Engine:
    """A private copy of the prepared store."""
    return private_copy(embedded)


def test_split_passages() -> None:
    assert split_passages("  Short   review. ") == ["Short review."]
    assert split_passages("") == []
    text = "First sentence is here. " * 20
    parts = split_passages(text, max_chars=60)
    assert all(len(p) <= 60 for p in parts) and len(parts) == 10
    assert " ".join(parts) == " ".join(text.split())
    long_one = "x" * 500
    assert split_passages(f"{long_one}. Tail.", max_chars=100) == [f"{long_one}.", "Tail."]


def test_passages_are_nodes_of_their_review(engine: Engine) -> None:
    reviews = engine.stats().nodes["Review"]
    assert engine.stats().nodes["Passage"] >= reviews
    rows = engine.cypher(
        "MATCH (s:Passage)-[:PART_OF]->(r:Review) RETURN s.id AS s, r.id AS r, "
        "s.text_vec IS NOT NULL AS v"
    )
    assert (rows["s"].str.split("#").str[0] == rows["r"]).all() and rows["v"].all()
    before = engine.stats()
    write_passages(engine.store)  # idempotent
    assert engine.stats().nodes["Passage"] == before.nodes["Passage"]
    assert engine.stats().relationships["PART_OF"] == before.relationships["PART_OF"]
    # a review whose text got shorter keeps only the passages it has now
    rid = rows["r"].iloc[0]
    engine.store.upsert_nodes("Review", pd.DataFrame({"id": [rid], "text": ["Long. " * 200]}))
    write_passages(engine.store, max_chars=50)
    assert len(engine.cypher("MATCH (s:Passage)-[:PART_OF]->(r:Review {id: $r}) RETURN s.id AS s",
                             {"r": rid})) > 1  # fmt: skip
    engine.store.upsert_nodes("Review", pd.DataFrame({"id": [rid], "text": ["No complaints."]}))
    write_passages(engine.store)
    now = engine.cypher("MATCH (s:Passage) WHERE s.id STARTS WITH $r RETURN s.text AS t",
                        {"r": f"{rid}#"})  # fmt: skip
    assert now["t"].tolist() == ["No complaints."]
    assert engine.stats().nodes["Passage"] == before.nodes["Passage"]


def test_a_store_never_embedded_is_not_ready(tiny_shop: Path, tmp_path: Path) -> None:
    with Engine(tmp_path / "raw" / "store") as engine:
        load(engine.store, "synthetic", {"shop": tiny_shop})
        with pytest.raises(NotReadyError, match="graphfusion embed"):
            engine.ask("Is the mug dishwasher safe?")


def test_a_stored_question_finds_its_product_and_answer(engine: Engine) -> None:
    row = engine.cypher(
        "MATCH (a:Answer)-[:ANSWERS]->(q:Question)-[:ABOUT]->(p:Product) "
        "RETURN q.text AS q, a.id AS a, p.id AS p ORDER BY q.id LIMIT 1"
    ).iloc[0]
    result = engine.ask(row["q"], k=5)
    assert row["p"] in set(result.products["product_id"].iloc[:3])
    assert engine.ask(row["q"], k=1, method="graph").products["product_id"][0] == row["p"]
    assert row["a"] in set(result.answers["answer_id"])
    assert result.answers["score"].is_monotonic_decreasing
    first = result.answers["evidence"].iloc[0]
    assert any("same question" in e or "similar question" in e for e in first)
    assert len(result.passages) == 5 and result.passages["product_id"].notna().all()
    for method in METHODS:
        other = engine.ask(row["q"], k=3, method=method)
        assert len(other.products) == 3 and len(other.answers) == 3


def test_a_question_asked_again_gets_its_own_answers_first(engine: Engine) -> None:
    qa = QAIndex(engine.store)
    asked_about: dict[str, set[int]] = {}
    for text, p in zip(qa.questions.texts, qa.questions.product, strict=True):
        asked_about.setdefault(question_key(text), set()).add(int(p))
    answered = np.unique(qa.answer_question[qa.answer_question >= 0])
    once = [q for q in answered if len(asked_about[question_key(qa.questions.texts[q])]) == 1]
    many = [q for q in answered if len(asked_about[question_key(qa.questions.texts[q])]) > 1]
    assert len(once) >= 10 and many  # the tiny shop has both kinds
    for q in once[:10]:
        text = qa.questions.texts[q].upper().replace("?", " ?!")  # case and punctuation aside
        own = {qa.answers.keys[a] for a in np.flatnonzero(qa.answer_question == q)}
        result = qa.ask(text, k=3)
        assert result.answers["answer_id"][0] in own
        assert result.answers["evidence"][0][0] == "answer to the same question"
        assert result.products["product_id"][0] == qa.products[qa.questions.product[q]]
        assert "the same question was asked about it" in result.products["evidence"][0]
    # asked on another product's page, the repeat names no answer of that product
    q = once[0]
    other = next(p for p in qa.products if p != qa.products[qa.questions.product[q]])
    sc = qa.scores(qa.questions.texts[q], qa.products.index(other))
    assert not len(sc["same"])
    # but its evidence still says the question was asked about its own product (it said
    # "a similar question ... (similarity 1.00)")
    own = qa.products[qa.questions.product[q]]
    listed = qa.ask(qa.questions.texts[q], product_id=other, k=100).products
    assert "the same question was asked about it" in listed.set_index("product_id").evidence[own]
    # a text asked about several products names none of them: the plain fusion ranks
    sc = qa.scores(qa.questions.texts[many[0]])
    assert not len(sc["same"])
    np.testing.assert_allclose(
        sc["answers"]["fusion"], _fused(_signals(sc["answers"]), qa.fusion_weights["answers"])
    )
    # with the product page of one of them, that product's answers to it come first
    q = many[0]
    page = int(qa.questions.product[q])
    result = qa.ask(qa.questions.texts[q], product_id=qa.products[page], k=1)
    answered_q = qa.answer_question[qa.answers.keys.index(result.answers["answer_id"][0])]
    assert answered_q >= 0 and qa.questions.product[answered_q] == page
    assert question_key(qa.questions.texts[answered_q]) == question_key(qa.questions.texts[q])


def test_question_key() -> None:
    assert question_key("Is it   Dishwasher-safe?") == question_key("is it dishwasher safe")
    assert question_key("Will this fit model FEF366ECE?") != question_key(
        "will this fit model fef366cca"
    )


def test_product_page_question_prefers_that_products_answers(engine: Engine) -> None:
    qa = QAIndex(engine.store)
    product = qa.products[qa.answers.product[0]]
    free = qa.ask("Is it any good?", k=40, method="graph").answers
    paged = qa.ask("Is it any good?", product_id=product, k=40, method="graph").answers
    ranks_free = np.flatnonzero(free["product_id"] == product)
    ranks_paged = np.flatnonzero(paged["product_id"] == product)
    assert len(ranks_paged) and (not len(ranks_free) or ranks_paged[0] <= ranks_free[0])
    assert qa.ask("Is it any good?", product_id=product, k=1).products["product_id"][0] == product


def test_held_out_questions_and_answers_put_back(engine: Engine) -> None:
    pairs = engine.cypher(
        "MATCH (a:Answer)-[:ANSWERS]->(q:Question)-[:ABOUT]->(p:Product) "
        "RETURN q.id AS q, q.text AS qt, a.id AS a, a.text AS at, p.id AS p ORDER BY q.id"
    )
    held = pairs.iloc[:5]
    extra = pd.DataFrame({"answer_id": held["a"], "text": held["at"], "product_id": held["p"]})
    qa = QAIndex(engine.store, exclude_questions=set(held["q"]), extra_answers=extra)
    assert not set(held["q"]) & set(qa.questions.keys)
    assert set(held["a"]) <= set(qa.answers.keys)
    assert (qa.answer_question[[qa.answers.keys.index(a) for a in held["a"]]] == -1).all()


def test_rrf() -> None:
    fused = _rrf([np.array([3.0, 2.0, 1.0]), np.array([1.0, 2.0, 3.0]), np.array([0, 5.0, 0])])
    assert int(np.argmax(fused)) == 1


@pytest.mark.parametrize(
    ("question", "kwargs", "message"),
    [
        ("", {}, "empty"),
        ("   \n ", {}, "empty"),
        ("x" * 100_000, {}, "characters long"),
        (b"\xff\xfe broken", {}, "UTF-8"),
        ("caf\udce9 mug?", {}, "UTF-8"),  # a byte a command line could not decode
        ("???", {}, "no words"),
        ("\u200b\u200b", {}, "no words"),
        (42, {}, "must be text"),
        ("Is it blue?", {"product_id": "nope"}, "no product"),
        ("Is it blue?", {"k": 0}, "k must"),
        ("Is it blue?", {"method": "magic"}, "unknown method"),
    ],
)
def test_bad_questions(engine: Engine, question: object, kwargs: dict[str, object],
                       message: str) -> None:  # fmt: skip
    with pytest.raises(ValidationError, match=message):
        engine.ask(question, **kwargs)  # type: ignore[arg-type]


def test_other_languages_and_bytes_give_results(engine: Engine) -> None:
    result = engine.ask("¿Es apto para lavavajillas esta taza?", k=3)
    assert len(result.products) == 3 and np.isfinite(result.products["score"]).all()
    assert len(engine.ask(b"Is the mug dishwasher safe?", k=2).answers) == 2


def test_cli(embedded: Path, tmp_path: Path) -> None:
    folder = tmp_path / "store"
    shutil.copytree(embedded, folder)
    runner = CliRunner()
    res = runner.invoke(main, ["ask", "Is the mug dishwasher safe?", "--k", "2", "--json",
                               "--store", str(folder)])  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert set(data) == {"products", "answers", "passages"} and len(data["answers"]) == 2
    res = runner.invoke(main, ["ask", "Is the mug dishwasher safe?", "--store", str(folder)])
    assert res.exit_code == 0 and "== answers" in res.output and "  1. " in res.output
    res = runner.invoke(main, ["ask", "  ", "--store", str(folder)])
    assert res.exit_code == 1 and "empty" in res.output and "Traceback" not in res.output
    assert runner.invoke(main, ["ask", "q", "--k", "0"]).exit_code == 2


def test_fusion_weights_are_learned_from_stored_questions(engine: Engine) -> None:
    qa = QAIndex(engine.store)
    assert qa.fusion_trained_on >= 20
    assert set(qa.fusion_weights) == {"answers", "products"}
    assert all(float(w) in FUSION_GRID for ws in qa.fusion_weights.values() for w in ws)
    assert len(qa.fusion_weights["products"]) == 2 and len(qa.fusion_weights["answers"]) == 3
    sc = qa.scores("Is the mug dishwasher safe?")
    want = _fused(_signals(sc["answers"]), qa.fusion_weights["answers"])
    np.testing.assert_allclose(sc["answers"]["fusion"], want)
    # the answers' and passages' fourth signal: how well their product's own text matches
    dense, bm25, _ = _signals(sc["products"])
    match = dense + qa.fusion_weights["products"][0] * bm25
    for name, corpus in (("answers", qa.answers), ("passages", qa.passages)):
        np.testing.assert_allclose(sc[name]["product_text"], _linked(match, corpus.product))
    assert "product_text" not in sc["products"]
    given = QAIndex(engine.store, fusion_weights={"products": [1, 0], "answers": [0, 0, 2]})
    assert given.fusion_trained_on == 0
    np.testing.assert_array_equal(given.fusion_weights["answers"], [0.0, 0.0, 2.0])
    for bad in (
        {"products": [1, 0]},
        {"products": [1, 0], "answers": [0, 0]},
        {"products": [1, float("nan")], "answers": [0, 0, 1]},
        {"products": [1, 0], "answers": [0, -1, 1]},
        {"products": ["a", "b"], "answers": [0, 0, 1]},
        [1, 0, 0],
    ):
        with pytest.raises(ValidationError, match="fusion_weights"):
            QAIndex(engine.store, fusion_weights=bad)  # type: ignore[arg-type]
    plain = QAIndex(engine.store, learn_fusion=False)
    assert plain.fusion_weights == {} and plain.fusion_trained_on == 0
    rrf = plain.scores("Is the mug dishwasher safe?")["answers"]
    np.testing.assert_allclose(rrf["fusion"], _rrf([rrf["bm25"], rrf["dense"], rrf["graph"]]))


def test_one_document_bm25_score_is_the_index_score() -> None:
    texts = [
        "the dishwasher safe mug in blue, blue",
        "a red kettle that is not dishwasher safe",
        "steel pan, pan and pan with a lid",
        "blue lid for a mug",
    ]
    corpus = _Corpus.build(list("abcd"), texts, np.eye(4), np.arange(4))
    for query in (["dishwasher", "blue"], ["pan", "lid", "lid"], ["mug", "unknownword"]):
        got = [corpus.bm25_score(query, Counter(_tokens(t))) for t in texts]
        np.testing.assert_allclose(got, corpus.bm25_scores(query), rtol=1e-5)
    assert corpus.bm25_score(["blue"], Counter(_tokens(texts[0]))) > corpus.bm25_score(
        ["blue"], Counter(_tokens("the dishwasher safe mug in blue"))
    )  # fewer occurrences score less


def _qa_line(asin: str, question: str, answer: str, day: int) -> str:
    return repr({"questionType": "open-ended", "asin": asin, "answerTime": "Jun 27, 2014",
                 "unixTime": 1403852400 + 86400 * day, "question": question,
                 "answer": answer})  # fmt: skip


def test_a_question_left_out_leaves_the_text_of_its_product(tmp_path: Path) -> None:
    """Products without text of their own are their questions and answers (the Amazon QA
    data): training the fusion asks each stored question with itself left out of them."""
    lines = [
        _qa_line("A1", "Will the zorblax quuxify?", "Yes, every morning.", 0),
        _qa_line("A1", "How loud is the motor?", "Quiet enough for a flat.", 1),
        _qa_line("A2", "Is the hose long enough?", "About two metres.", 2),
        _qa_line("A2", "Does the door lock?", "Yes, with a key.", 3),
        _qa_line("A3", "Can the shelf be moved?", "There are three heights.", 4),
    ]
    path = tmp_path / "qa_Appliances.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    with Engine(tmp_path / "store") as engine:
        load(engine.store, "amazon_qa", {"qa": path})
        engine.embed(only=("text",))
        qa = QAIndex(engine.store, learn_fusion=False)
    row = qa.questions.texts.index("Will the zorblax quuxify?")
    p = int(qa.questions.product[row])
    assert qa._text_from_qa.all() and qa._vec_from_qa.all()
    kept = qa.scores(qa.questions.texts[row])["products"]
    left = qa.scores(qa.questions.texts[row], leave_out=row)["products"]
    assert kept["bm25"][p] > 0 and left["bm25"][p] == 0  # its words were in no other text
    others = np.arange(len(qa.products)) != p
    np.testing.assert_array_equal(left["bm25"][others], kept["bm25"][others])
    np.testing.assert_array_equal(left["dense"][others], kept["dense"][others])
    # the product's vector: the mean of its other question's and that question's answers'
    own = np.flatnonzero(qa.answer_question == row)
    assert len(own) == 1
    rest = [qa.questions.vecs[i] for i in np.flatnonzero(qa.questions.product == p) if i != row]
    rest += [qa.answers.vecs[i] for i in np.flatnonzero(qa.answers.product == p) if i != own[0]]
    mean = np.mean(rest, axis=0)
    asked = qa.encoder.encode([qa.questions.texts[row]])[0]
    want = mean @ asked / np.linalg.norm(mean) / np.linalg.norm(asked)
    assert left["dense"][p] == pytest.approx(want, abs=1e-6)
    assert left["dense"][p] < kept["dense"][p]
    # its graph score: the best similarity of the items left, not of its own answer
    sc = qa.scores(qa.questions.texts[row], leave_out=row)
    others_q = [i for i in np.flatnonzero(qa.questions.product == p) if i != row]
    others_a = [i for i in np.flatnonzero(qa.answers.product == p) if i != own[0]]
    best = max(sc["sim_q"][others_q].max(), sc["answers"]["dense"][others_a].max())
    assert sc["products"]["graph"][p] == pytest.approx(best)
    assert sc["answers"]["dense"][own[0]] > best  # which would have been the score
    # an answer put back into the pool is a candidate, not its product's text
    with Engine(tmp_path / "store") as engine:
        shelf = engine.cypher(
            "MATCH (q:Question)-[:ABOUT]->(p:Product) WHERE q.text = $t "
            "RETURN q.id AS q, p.id AS p",
            {"t": "Can the shelf be moved?"},
        )
        extra = pd.DataFrame({"answer_id": ["x1"], "text": ["There are three heights."],
                              "product_id": shelf["p"]})  # fmt: skip
        held = QAIndex(engine.store, learn_fusion=False, exclude_questions=set(shelf["q"]),
                       extra_answers=extra)  # fmt: skip
    p3 = held.products.index(shelf["p"][0])
    assert held.product_corpus.texts[p3] == ""
    found = held.scores("How many heights are there?")
    assert found["products"]["bm25"][p3] == 0 and found["products"]["dense"][p3] == 0
    assert found["answers"]["bm25"][held.answers.keys.index("x1")] > 0


def test_imputed_graph_scores_of_products_nobody_asked_about() -> None:
    graph = np.array([0.5, 0.7, -np.inf, 0.9, -np.inf])
    own = np.array([0.1, 0.2, 0.4, 0.3, 0.0])
    # the linked products' line: graph = 0.3 + 2 * own
    np.testing.assert_allclose(_imputed(graph, own), [0.5, 0.7, 1.1, 0.9, 0.3])
    np.testing.assert_array_equal(_imputed(graph[[0, 1, 3]], own[[0, 1, 3]]), [0.5, 0.7, 0.9])
    flat = np.array([0.2, 0.2, 0.2, 0.2, 0.2])  # own scores that do not vary: the mean
    np.testing.assert_allclose(_imputed(graph, flat), [0.5, 0.7, 0.7, 0.9, 0.7])
    np.testing.assert_array_equal(_imputed(np.full(3, -np.inf), own[:3]), [0.0, 0.0, 0.0])


def test_a_product_nobody_asked_about_is_found_by_its_text(trained_store: Path,
                                                           private_copy: Callable[[Path], Engine]
                                                           ) -> None:  # fmt: skip
    """A product added live has no questions, answers or reviews: the fusion ranks it by its
    own text (it used to get the lowest graph score, below every product with questions)."""
    engine = private_copy(trained_store)
    frame = pd.DataFrame({
        "id": ["pnew"],
        "title": ["Zorblax titanium espresso grinder"],
        "description": ["A hand grinder with conical titanium burrs for espresso."],
    })  # fmt: skip
    assert not engine.add_products(frame).rejected
    question = "Are the burrs of the zorblax espresso grinder made of titanium?"
    for method in METHODS:
        if method == "graph":
            continue
        products = engine.ask(question, k=3, method=method).products
        assert products["product_id"].iloc[0] == "pnew", method
    # its graph score is imputed from its text, not the lowest of all
    qa = engine._qa
    assert qa is not None
    sc = qa.scores(question)
    row = qa.products.index("pnew")
    assert sc["products"]["graph"][row] > np.median(sc["products"]["graph"])


def test_fusion_answers_held_out_questions_better_than_dense(engine: Engine) -> None:
    """The benchmark's protocol on the tiny shop: a fifth of the questions held out, their
    answers put back linked to their product; the fusion's answer MRR@10 beats dense's."""
    pairs = engine.cypher(
        "MATCH (a:Answer)-[:ANSWERS]->(q:Question)-[:ABOUT]->(p:Product) "
        "RETURN q.id AS q, q.text AS qt, a.id AS a, a.text AS at, p.id AS p ORDER BY q.id, a.id"
    )
    questions = sorted(pairs["q"].unique())
    held = set(np.random.default_rng(0).choice(questions, len(questions) // 5, replace=False))
    out = pairs[pairs["q"].isin(held)]
    extra = pd.DataFrame({"answer_id": out["a"], "text": out["at"], "product_id": out["p"]})
    qa = QAIndex(engine.store, exclude_questions=held, extra_answers=extra)
    assert qa.fusion_trained_on >= 20
    mrr = {"dense": [], "fusion": []}
    for _, group in out.groupby("q"):
        sc = qa.scores(group["qt"].iloc[0])
        own = [qa.answers.keys.index(a) for a in group["a"]]
        for method, ranks in mrr.items():
            score = sc["answers"][method]
            rank = int((score >= score[own].max()).sum())
            ranks.append(1 / rank if rank <= 10 else 0.0)
    assert len(mrr["dense"]) >= 8
    assert np.mean(mrr["fusion"]) > np.mean(mrr["dense"])


def test_best_weights_find_the_signal_that_tells_the_positives() -> None:
    """Planted training cases: only the third signal marks each case's positive; the search
    gives it the smallest weight that ranks every positive first, and the second signal (all
    zeros) the first weight of the grid."""
    rng = np.random.default_rng(0)
    cases = []
    for _ in range(30):
        dense, hint = rng.normal(size=1000), rng.normal(size=1000)
        pos = int(rng.integers(1000))
        hint[pos] = 3.0 + abs(dense).max()
        case = _Case.of([dense, np.zeros(1000), hint], np.array([pos]))
        assert len(case.positive) <= 1 + 3 * FIT_CANDIDATES and case.positive.sum() == 1
        np.testing.assert_array_equal(case.signals[2][case.positive], [hint[pos]])
        cases.append(case)
    weights = _best_weights(cases, cutoff=10)
    assert weights[0] == FUSION_GRID[0] and weights[1] > 0
    for case in cases:  # every positive first, which no smaller weight of the hint gives
        score = _fused(case.signals, weights)
        assert score[case.positive][0] == score.max()
    smaller = [w for w in FUSION_GRID if w < weights[1]][-1]
    assert any(
        _fused(c.signals, [0.0, smaller])[c.positive][0] < _fused(c.signals, [0.0, smaller]).max()
        for c in cases
    )
    small = _Case.of([np.arange(5.0), np.ones(5)], np.array([0]))
    assert len(small.positive) == 5  # every item of a small pool is a candidate


def test_evidence_names_the_product_whose_text_fits_the_question(engine: Engine) -> None:
    qa = QAIndex(engine.store)
    p = int(qa.answers.product[0])
    title, key = qa.titles[p], qa.products[p]
    result = qa.ask(f"What is the {title} made of?", k=100)
    about = result.answers[result.answers["product_id"] == key]
    assert len(about)
    best = f"about {title}, the product whose text fits the question best"
    assert all(best in evidence for evidence in about["evidence"])
    others = result.answers[result.answers["product_id"] != key]["evidence"]
    assert not any(best in evidence for evidence in others)
    reviews = result.passages[result.passages["product_id"] == key]["evidence"]
    assert len(reviews) and all("its product's text fits the question best" in e for e in reviews)
    # on the product's own page, the page says it instead
    paged = qa.ask(f"What is the {title} made of?", product_id=key, k=100).answers
    mine = paged[paged["product_id"] == key]["evidence"]
    assert not any("fits the question" in " ".join(e) for e in mine)


def test_bm25_lists_only_what_shares_a_word_with_the_question(engine: Engine) -> None:
    """BM25 has nothing to say about an item that shares no word with the question: it used
    to fill the lists with arbitrary items scored 0.0 (and every item for a question of
    stop words only, such as "the")."""
    for stop_words_only in ("the", "Is it?", "To be or not to be?", "a"):
        with pytest.raises(ValidationError, match="only stop words"):
            engine.ask(stop_words_only, method="bm25")
        for method in ("dense", "graph", "fusion"):  # the other signals still answer
            assert len(engine.ask(stop_words_only, k=2, method=method).products) == 2
    nothing = engine.ask("zorblaxian quuxification", k=5, method="bm25")
    assert all(frame.empty for frame in (nothing.products, nothing.answers, nothing.passages))
    # on a product page, that product still comes first, alone
    paged = engine.ask("zorblaxian quuxification", product_id="p0001", k=5, method="bm25")
    assert paged.products["product_id"].tolist() == ["p0001"] and paged.answers.empty
    result = engine.ask("Is the mug dishwasher safe?", k=100, method="bm25")
    for frame in (result.products, result.answers, result.passages):
        assert 0 < len(frame) < 100 and (frame["score"] > 0).all()
        assert all(any(e.startswith("shares the words") for e in ev) for ev in frame["evidence"])


def test_tied_scores_rank_in_the_stored_order(engine: Engine) -> None:
    """Items with the same score come in the order of their keys, as the evidence's
    "fits the question best" counts them; they used to come in whatever order a partial
    sort left them."""
    from graphfusion.topk import top_rows

    np.testing.assert_array_equal(top_rows(np.zeros(300), 10), np.arange(10))
    score = np.array([1.0, 0, 1, 0, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2])
    np.testing.assert_array_equal(top_rows(score, 4), [21, 0, 2, 4])
    for method in METHODS:
        products = engine.ask("Is the mug dishwasher safe?", k=100, method=method).products
        tied = products["score"].to_numpy()[1:] == products["score"].to_numpy()[:-1]
        ids = products["product_id"].to_numpy()
        assert (ids[1:][tied] > ids[:-1][tied]).all(), method
        if method == "bm25":
            assert tied.any()  # products of the same text


def test_an_answer_without_text_is_no_answer(engine: Engine) -> None:
    """An answer node with no text (a blank answer in the source) used to be listed, first
    for its question asked again, with an empty text."""
    row = engine.cypher(
        "MATCH (a:Answer)-[:ANSWERS]->(q:Question) WITH q, count(a) AS n, min(a.id) AS a "
        "WHERE n = 1 RETURN q.text AS q, a ORDER BY a LIMIT 1"
    ).iloc[0]
    engine.store.query("MATCH (a:Answer {id: $a}) SET a.text = NULL, a.text_vec = NULL",
                       {"a": row["a"]})  # fmt: skip
    engine._qa = None
    for method in METHODS:
        answers = engine.ask(row["q"], k=100, method=method).answers
        assert row["a"] not in set(answers["answer_id"]), method
        assert (answers["text"].str.strip() != "").all()


def test_text_fit_evidence_on_a_product_page_ranks_the_other_products(engine: Engine) -> None:
    """On another product's page, the answers about the product whose text fits the
    question best say "best": the page's product comes first in the text match by rule,
    not by its text, and used to push them to "2nd best"."""
    qa = QAIndex(engine.store)
    p = int(qa.answers.product[0])
    title, key = qa.titles[p], qa.products[p]
    page = next(x for x in qa.products if x != key)
    result = qa.ask(f"What is the {title} made of?", product_id=page, k=100)
    about = result.answers[result.answers["product_id"] == key]["evidence"]
    assert len(about)
    best = f"about {title}, the product whose text fits the question best"
    assert all(best in evidence for evidence in about)
    reviews = result.passages[result.passages["product_id"] == key]["evidence"]
    assert len(reviews) and all("its product's text fits the question best" in e for e in reviews)


def test_extra_answers_are_checked(engine: Engine) -> None:
    """Extra answers with a missing text or key used to go in as the text "nan" or "None",
    and one with a stored answer's key as a second answer of that key."""
    good = {"answer_id": ["x1"], "text": ["It is blue."], "product_id": ["p0001"]}
    assert "x1" in QAIndex(engine.store, learn_fusion=False,
                           extra_answers=pd.DataFrame(good)).answers.keys  # fmt: skip
    stored = engine.cypher("MATCH (a:Answer) RETURN a.id AS a LIMIT 1")["a"][0]
    for column, value, message in [
        ("text", None, "missing"),
        ("text", float("nan"), "missing"),
        ("text", "  ", "missing"),
        ("answer_id", None, "missing"),
        ("answer_id", stored, "already"),
    ]:
        frame = pd.DataFrame({**good, column: [value]})
        with pytest.raises(ValidationError, match=message):
            QAIndex(engine.store, learn_fusion=False, extra_answers=frame)
    twice = pd.DataFrame({name: values * 2 for name, values in good.items()})
    with pytest.raises(ValidationError, match="already"):
        QAIndex(engine.store, learn_fusion=False, extra_answers=twice)


def test_only_alike_questions_are_called_similar(engine: Engine) -> None:
    """Evidence called every stored question "similar", even at similarity 0.39 ("Does this
    mug come in green?" for a dishwasher question); below SIMILAR_QUESTION it names the
    nearest question as such."""
    result = engine.ask("Is the mug dishwasher safe?", k=20, method="fusion")
    pattern = r"(similar question|nearest question|another question).*?\(similarity (-?[\d.]+)\)"
    seen = set()
    for ev in [*result.products["evidence"], *result.answers["evidence"]]:
        for entry in ev:
            for which, sim in re.findall(pattern, entry):
                seen.add(which)
                assert (which == "similar question") == (float(sim) >= SIMILAR_QUESTION), entry
    assert {"similar question", "nearest question"} <= seen
