"""QA linking for customer service: a question -> products, past answers and review passages.

Four retrieval signals, each usable alone (``method=``) for comparison, and their fusion:

- ``bm25``: lexical BM25 (``bm25s``, Lucene variant, English stop words) over the product text
  (title and description; for a product without text, its questions and answers), the answer
  texts and the review passages. It lists only the items that share a word with the
  question (none for a question whose words are in no text), and refuses a question of only
  stop words ("Is it?");
- ``dense``: cosine similarity of the question's MiniLM vector with the stored ``text_vec``
  of products, answers and passages (a product without text is the mean of its questions'
  and answers' vectors);
- ``graph``: the product context. The similarities of the stored questions, answers and
  passages to the asked question are propagated over the graph to their products: a product
  scores the best similarity among the items linked to it (a similar past question about it
  counts most); an answer or a passage scores its product's score, ties broken by its own
  similarity. A product no item is linked to (nobody asked about it yet, as every product
  added live) gets the graph score its own dense similarity predicts: the least-squares line
  of the linked products' graph scores on their dense scores, for this question (of slope 1
  where those do not vary, as with one product linked). With ``product_id`` the asked
  product's score is 1 (and it comes first in the product list of every method).
- ``fusion`` (default): for products ``dense + a * bm25 / max(bm25) + b * graph``; for
  answers and passages the same three signals plus ``c * product_text``, how well the own
  text of the item's product matches, ``dense + a * bm25 / max(bm25)`` of the
  product with the products' ``a`` (the asked product first), so that the answers about the
  products the question names rise among alike answers about other products. The weights are
  learned on the stored questions and their answers (:meth:`QAIndex.fit_fusion`: a grid
  search of the MRR of held-in questions asked with themselves and their answers left out,
  also out of the graph and out of the text and vector of a product represented by its
  questions and answers); reciprocal rank fusion of the
  three signals (``sum 1 / (60 + rank)``) when there are too few answered questions to
  learn from.
  A question asked again is answered by its past answers: in the fusion, the answers to the
  stored questions with the same text (:func:`question_key`: case, spacing and punctuation
  aside) come first, and their product first in the product list, when those questions are
  about one product (the asked one, when a product is given). A text asked about several
  products ("Is it dishwasher safe?") names none of them and gets no such rule. Embedding
  similarity cannot tell repeats: MiniLM puts "Will this fit model FEF366ECE?" and "will
  this fit model fef366cca" at 0.97.

A question that names a stored key (:meth:`QAIndex.named`: "Is P00123 waterproof?", the key
as a whole word; keys with a digit, and of digits only from six of them; in another case,
"is p00123 waterproof?", where that names one key only and the word is no common one)
gets what it names first in each list: the product named is the one asked on
when no ``product_id`` is given (one product named: its graph score is 1, as on its page),
an answer named or the answers of a question named come first among the answers, the
passages of a review named first among the passages. A question naming no key ranks as
without this rule.

Each product's evidence names the item its graph score comes from: its question, answer or
review passage most similar to the question asked.

Review passages are made by :func:`write_passages`: reviews longer than
:data:`PASSAGE_MAX_CHARS` are split at sentence ends into passages of at most that many
characters (a single longer sentence stays whole); shorter reviews are one passage. Each is a
``Passage`` node ``PART_OF`` its review, embedded like every text property.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import bm25s
import numpy as np
import pandas as pd
import pyarrow as pa

from graphfusion.columnar import find_key
from graphfusion.errors import NotFoundError, NotReadyError, ValidationError
from graphfusion.features.embed import text_content
from graphfusion.graph import _vectors, unit_rows
from graphfusion.store.base import BaseStore
from graphfusion.topk import top_rows
from graphfusion.values import count_arg, folded

__all__ = [
    "QAIndex",
    "QAResult",
    "METHODS",
    "NEEDS_NODES",
    "NEEDS_RELATIONSHIPS",
    "NEEDS_PROPERTIES",
    "MAX_QUESTION_CHARS",
    "PASSAGE_MAX_CHARS",
    "SIMILAR_QUESTION",
    "question_key",
    "split_passages",
    "write_passages",
]

log = logging.getLogger("graphfusion.qa")

#: The labels and relationship types the index reads (a schema without them is refused).
NEEDS_NODES = ("Product", "Question", "Answer", "Review", "Passage")
NEEDS_RELATIONSHIPS = ("ABOUT", "ANSWERS", "PART_OF")
#: The properties the index's queries read (a schema without them is refused before any
#: query, with each one named).
NEEDS_PROPERTIES = (
    "Product.id",
    "Product.title",
    "Product.description",
    "Product.text_vec",
    "Question.id",
    "Question.text",
    "Question.text_vec",
    "Answer.id",
    "Answer.text",
    "Answer.text_vec",
    "Review.id",
    "Review.text",
    "Passage.id",
    "Passage.text",
    "Passage.text_vec",
)
#: What :func:`write_passages` reads and writes.
PASSAGE_PROPERTIES = ("Review.id", "Review.text", "Passage.id", "Passage.text", "Passage.position")
#: Retrieval methods of :meth:`QAIndex.ask`.
METHODS = ("bm25", "dense", "graph", "fusion")
#: Longest question accepted, in characters.
MAX_QUESTION_CHARS = 10_000
#: Longest passage made from a review (a single longer sentence stays whole).
PASSAGE_MAX_CHARS = 300
#: Rank offset of reciprocal rank fusion.
RRF_K = 60
#: Candidate weights of BM25, graph and product text in the learned fusion (dense has
#: weight 1).
FUSION_GRID = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 4.0)
#: Products or answers per training question, by each signal, among which the learned
#: fusion's training ranks its own (:meth:`QAIndex.fit_fusion`).
FIT_CANDIDATES = 200
#: An answer or passage names its product in its evidence when the product's own text is
#: among this many best matches of the question.
TEXT_MATCH_EVIDENCE = 3
#: Evidence calls a stored question "similar" to the one asked from this cosine similarity
#: of their MiniLM vectors up; below it, the nearest one is named as such.
SIMILAR_QUESTION = 0.5
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_WORD = re.compile(r"(?u)\w+")


def split_passages(text: str, max_chars: int = PASSAGE_MAX_CHARS) -> list[str]:
    """Split a review into passages of whole sentences, each at most ``max_chars`` long.

    Args:
        text: The review text.
        max_chars: The longest passage (a single longer sentence stays whole).

    Returns:
        The passages in order (one for a short review; none for an empty one).
    """
    text = " ".join(str(text).split())
    if not text:
        return []
    if len(text) <= max_chars:
        return [text]
    out: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(text):
        if current and len(current) + 1 + len(sentence) > max_chars:
            out.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}".strip()
    if current:
        out.append(current)
    return out


def write_passages(store: BaseStore, max_chars: int = PASSAGE_MAX_CHARS) -> int:
    """Make the ``Passage`` nodes of every review (idempotent: keys are ``<review>#<n>``);
    the passages a review no longer has (its text changed or went) are deleted.

    Returns:
        The number of passages written.

    Raises:
        SchemaError: The schema lacks ``Review``, ``Passage``, ``PART_OF`` or one of
            :data:`PASSAGE_PROPERTIES`.
    """
    store.schema.require("review passages", ("Review", "Passage"), ("PART_OF",), PASSAGE_PROPERTIES)
    table = store.query_arrow(
        "MATCH (r:Review) WHERE r.text IS NOT NULL RETURN r.id AS id, r.text AS text"
    )
    keys: list[str] = []
    texts: list[str] = []
    positions: list[int] = []
    reviews: list[str] = []
    for rid, text in zip(
        table.column("id").to_pylist() if table.num_rows else [],
        table.column("text").to_pylist() if table.num_rows else [],
        strict=True,
    ):
        for n, passage in enumerate(split_passages(text, max_chars)):
            keys.append(f"{rid}#{n}")
            texts.append(passage)
            positions.append(n)
            reviews.append(rid)
    stored = store.query_arrow("MATCH (p:Passage) RETURN p.id AS id")
    wanted = set(keys)
    stale = [k for k in (stored.column("id").to_pylist() if stored.num_rows else [])
             if k not in wanted]  # fmt: skip
    if stale:
        store.query("MATCH (p:Passage) WHERE p.id IN $stale DETACH DELETE p", {"stale": stale})
    if not keys:
        return 0
    nodes = pa.table({"id": keys, "text": texts, "position": pa.array(positions, pa.int64())})
    store.write_node_table("Passage", nodes)
    rels = pa.table({"src": keys, "dst": reviews})
    store.write_rel_table("PART_OF", rels, start="Passage", end="Review")
    return len(keys)


@dataclass
class QAResult:
    """What :meth:`QAIndex.ask` found.

    Attributes:
        products: ``product_id``, ``title``, ``score``, ``evidence``.
        answers: ``answer_id``, ``text``, ``question``, ``product_id``, ``score``,
            ``evidence``.
        passages: ``passage_id``, ``text``, ``review_id``, ``product_id``, ``score``,
            ``evidence``.
    """

    products: pd.DataFrame
    answers: pd.DataFrame
    passages: pd.DataFrame

    def to_dict(self) -> dict[str, Any]:
        """As plain data."""
        return {
            name: frame.to_dict(orient="records")
            for name, frame in (
                ("products", self.products),
                ("answers", self.answers),
                ("passages", self.passages),
            )
        }


@dataclass
class _Named:
    """What a question names by id (:meth:`QAIndex.named`): rows of products, answers and
    passages, each with the evidence that says how it was named, in the question's order."""

    products: dict[int, str] = field(default_factory=dict)
    answers: dict[int, str] = field(default_factory=dict)
    passages: dict[int, str] = field(default_factory=dict)


@dataclass
class _Corpus:
    """One kind of searchable unit, with its BM25 index and unit vectors."""

    keys: list[str]
    texts: list[str]
    vecs: np.ndarray
    product: np.ndarray  # row of the linked product, -1 when none
    bm25: bm25s.BM25 | None
    doc_freq: Counter[str] = field(default_factory=Counter)  # documents holding each token
    mean_length: float = 0.0  # tokens per document
    repeats: int = 0  # rows of a key listed before (an answer to a question about two products)

    @classmethod
    def build(
        cls, keys: list[str], texts: list[str], vecs: np.ndarray, product: np.ndarray
    ) -> _Corpus:
        index = None
        doc_freq: Counter[str] = Counter()
        mean_length = 0.0
        tokens = [_tokens(t) for t in texts]
        if any(tokens):  # bm25s cannot index documents without a word ("No.", no text)
            for doc in tokens:
                doc_freq.update(set(doc))
            mean_length = float(np.mean([len(doc) for doc in tokens]))
            index = bm25s.BM25()
            index.index(tokens, show_progress=False)
        repeats = len(keys) - len(set(keys))
        return cls(keys, texts, unit_rows(vecs), product, index, doc_freq, mean_length, repeats)

    def bm25_scores(self, tokens: list[str]) -> np.ndarray:
        if self.bm25 is None or not tokens:
            return np.zeros(len(self.keys))
        return np.asarray(self.bm25.get_scores(tokens), dtype=np.float64)

    def bm25_score(self, tokens: list[str], doc: Counter[str]) -> float:
        """The BM25 score of one document given by its token counts, with the index's
        statistics (Lucene variant, as ``bm25s`` scores: the same for a stored document)."""
        if self.bm25 is None:
            return 0.0
        k1, b, n = self.bm25.k1, self.bm25.b, len(self.keys)
        norm = k1 * (1 - b + b * sum(doc.values()) / self.mean_length)
        total = 0.0
        for token in tokens:
            tf = doc.get(token, 0)
            if tf:
                df = self.doc_freq[token]
                total += np.log(1 + (n - df + 0.5) / (df + 0.5)) * tf / (norm + tf)
        return float(total)


class QAIndex:
    """Questions linked to products, past answers and review passages (module docstring).

    Args:
        store: The store (questions, answers and passages embedded: ``graphfusion embed``).
            Products, questions, answers and passages that have text but no text vector
            (stored after the last embed, by a load) are encoded here, in memory, once: their
            vectors are kept for the next index build (by the encoder's ``name`` and the
            text, so a changed text is encoded again); a store in which nothing has a vector
            is refused.
        encoder: The text encoder of the stored vectors (MiniLM by default).
        exclude_questions: Question keys to leave out, with their answers (benchmarks hold
            questions out this way): a collection of keys, not one string.
        extra_answers: Answers to add to the pool: a frame with ``answer_id``, ``text``,
            ``product_id`` of a stored product (no question: benchmarks put held-out answers
            back this way). They are candidates only: the text and vector of a product made
            of its questions and answers leave them out. Their vectors are kept for the next
            index build as those of texts stored since the last embed.
        learn_fusion: Learn the fusion from the stored questions (:meth:`fit_fusion`);
            otherwise, or with too few of them, the fusion is reciprocal rank fusion.
        fusion_weights: Weights learned before (the :attr:`fusion_weights` of an earlier index
            of the store, ``products`` and ``answers``): used as they are, and nothing is
            learned. The engine keeps them when new products make it rebuild the index.

    Raises:
        NotReadyError: The store has no products, or no text vectors (never embedded), or
            nothing with text to link a question to.
        ValidationError: ``fusion_weights`` are not two and three finite weights at least 0;
            ``exclude_questions`` is one string; ``extra_answers`` is no DataFrame, lacks a
            column or a value, reuses an answer id, or names a product not stored.
        SchemaError: The schema lacks some of :data:`NEEDS_NODES`,
            :data:`NEEDS_RELATIONSHIPS` and :data:`NEEDS_PROPERTIES` (labels keyed by another
            property than ``id``, say).
    """

    def __init__(
        self,
        store: BaseStore,
        *,
        encoder: Any | None = None,
        exclude_questions: Collection[str] = (),
        extra_answers: pd.DataFrame | None = None,
        learn_fusion: bool = True,
        fusion_weights: Mapping[str, Sequence[float] | np.ndarray] | None = None,
    ) -> None:
        given = _check_weights(fusion_weights) if fusion_weights is not None else None
        if isinstance(exclude_questions, str):  # a Collection[str] of its letters
            raise ValidationError(
                "exclude_questions must be a collection of question keys, not one string: "
                f"use {{{exclude_questions!r}}}"
            )
        if extra_answers is not None and not isinstance(extra_answers, pd.DataFrame):
            raise ValidationError(
                "extra_answers must be a pandas DataFrame (answer_id, text, product_id), got "
                f"{type(extra_answers).__name__}"
            )
        store.schema.require(
            "question answering", NEEDS_NODES, NEEDS_RELATIONSHIPS, NEEDS_PROPERTIES
        )
        self.fusion_weights: dict[str, np.ndarray] = {}
        if encoder is None:
            from graphfusion.features.text import TextEncoder

            encoder = TextEncoder()
        self.encoder = encoder
        dim = int(encoder.dim)
        q = store.query_arrow
        excluded = set(exclude_questions)
        prod = q(
            "MATCH (p:Product) RETURN p.id AS id, p.title AS title, "
            "p.description AS description, p.text_vec AS v ORDER BY id"
        )
        if prod.num_rows == 0:
            raise NotReadyError("the store has no products")
        self.products = prod.column("id").to_pylist()
        self.titles = [t or "" for t in prod.column("title").to_pylist()]
        index = {k: i for i, k in enumerate(self.products)}
        self._index = index
        self._folded_products: dict[str, str] = {}  # for "did you mean": the first of a form
        for key in self.products:
            if isinstance(key, str):
                self._folded_products.setdefault(folded(key), key)
        p_vecs, p_has = _vectors(prod.column("v"), dim)
        p_content = [
            text_content({"title": t, "description": d}, ("title", "description"))
            for t, d in zip(
                prod.column("title").to_pylist(),
                prod.column("description").to_pylist(),
                strict=True,
            )
        ]
        if not p_has.any() and not _any_vector(store):
            _not_ready(store, any(text is not None for text in p_content))
        # a product stored after the last embed (a load) has text but no vector yet
        p_has = _encode_missing(p_vecs, p_has, p_content, encoder)

        ques = q(
            "MATCH (x:Question)-[:ABOUT]->(p:Product) RETURN x.id AS id, x.text AS text, "
            "p.id AS p, x.text_vec AS v ORDER BY id"
        )
        keep = [k not in excluded for k in ques.column("id").to_pylist()]
        ques = ques.filter(pa.array(keep, pa.bool_())) if ques.num_rows else ques
        q_keys = ques.column("id").to_pylist() if ques.num_rows else []
        q_texts = [t or "" for t in ques.column("text").to_pylist()] if ques.num_rows else []
        q_prod = np.array(
            [index.get(p, -1) for p in ques.column("p").to_pylist()] if ques.num_rows else [],
            dtype=np.int64,
        )
        q_vecs, q_has = _vectors(ques.column("v"), dim) if ques.num_rows else _no_vectors(dim)
        _encode_missing(q_vecs, q_has, q_texts, encoder)
        self.questions = _Corpus(q_keys, q_texts, q_vecs, q_prod, None)
        self._same_text: dict[str, list[int]] = {}
        for row, text in enumerate(q_texts):
            self._same_text.setdefault(question_key(text), []).append(row)
        q_row = {k: i for i, k in enumerate(q_keys)}

        ans = q(
            "MATCH (a:Answer)-[:ANSWERS]->(x:Question)-[:ABOUT]->(p:Product) "
            "RETURN a.id AS id, a.text AS text, x.id AS qid, p.id AS p, a.text_vec AS v "
            "ORDER BY id"
        )
        # an answer without text has nothing to tell: it is no candidate
        a_rows = [
            i
            for i, (qid, text) in enumerate(
                zip(
                    ans.column("qid").to_pylist() if ans.num_rows else [],
                    ans.column("text").to_pylist() if ans.num_rows else [],
                    strict=True,
                )
            )
            if qid not in excluded and text is not None and text.strip()
        ]
        a_keys = [ans.column("id")[i].as_py() for i in a_rows]
        a_texts = [ans.column("text")[i].as_py() or "" for i in a_rows]
        a_q = [q_row.get(ans.column("qid")[i].as_py(), -1) for i in a_rows]
        a_prod = [index.get(ans.column("p")[i].as_py(), -1) for i in a_rows]
        a_vecs, a_has = _vectors(ans.column("v"), dim) if ans.num_rows else _no_vectors(dim)
        a_vecs, a_has = a_vecs[a_rows], a_has[a_rows]
        _encode_missing(a_vecs, a_has, a_texts, encoder)
        if extra_answers is not None and len(extra_answers):
            extra_keys, extra_texts, extra_prod = self._extra_rows(extra_answers, a_keys)
            a_keys += extra_keys
            a_texts += extra_texts
            a_q += [-1] * len(extra_texts)
            a_prod += extra_prod
            # kept across builds, as the texts stored since the last embed: the benchmark
            # builds several indexes with the same answers put back
            extra_vecs = _ENCODED.encode(extra_texts, encoder)
            a_vecs = np.vstack([a_vecs, extra_vecs]).astype(np.float32)
        self.answer_question = np.array(a_q, dtype=np.int64)
        self.answers = _Corpus.build(a_keys, a_texts, a_vecs, np.array(a_prod, dtype=np.int64))

        pas = q(
            "MATCH (s:Passage)-[:PART_OF]->(r:Review)-[:ABOUT]->(p:Product) "
            "RETURN s.id AS id, s.text AS text, r.id AS rid, p.id AS p, s.text_vec AS v "
            "ORDER BY id"
        )
        s_keys = pas.column("id").to_pylist() if pas.num_rows else []
        self.passage_review = pas.column("rid").to_pylist() if pas.num_rows else []
        s_texts = [t or "" for t in pas.column("text").to_pylist()] if pas.num_rows else []
        s_vecs, s_has = _vectors(pas.column("v"), dim) if pas.num_rows else _no_vectors(dim)
        _encode_missing(s_vecs, s_has, s_texts, encoder)
        self.passages = _Corpus.build(
            s_keys,
            s_texts,
            s_vecs,
            np.array(
                [index.get(p, -1) for p in pas.column("p").to_pylist()] if pas.num_rows else [],
                dtype=np.int64,
            ),
        )

        # a product without text is represented by its questions and answers
        texts = [
            f"{t} {d or ''}".strip()
            for t, d in zip(self.titles, prod.column("description").to_pylist(), strict=True)
        ]
        qa_text: list[list[str]] = [[] for _ in self.products]
        qa_vec = np.zeros_like(p_vecs, dtype=np.float64)
        qa_n = np.zeros(len(self.products))
        stored = (np.ones(len(q_keys), dtype=bool), self.answer_question >= 0)
        for corpus, is_stored in zip((self.questions, self.answers), stored, strict=True):
            for row, p in enumerate(corpus.product):
                if p >= 0 and is_stored[row]:  # an extra answer is no part of its product
                    qa_text[p].append(corpus.texts[row])
                    qa_vec[p] += corpus.vecs[row]
                    qa_n[p] += 1
        self._text_from_qa = np.array([not t for t in texts])
        self._vec_from_qa = ~p_has & (qa_n > 0)
        self._qa_vec, self._qa_n = qa_vec, qa_n
        for p in range(len(self.products)):
            if self._text_from_qa[p]:
                texts[p] = " ".join(qa_text[p])
            if self._vec_from_qa[p]:
                p_vecs[p] = qa_vec[p] / qa_n[p]
        self.product_corpus = _Corpus.build(
            self.products, texts, p_vecs, np.arange(len(self.products))
        )
        self._ids = self._id_index()
        self._folded_ids: dict[str, set[str]] = {}  # the keys of each folded form
        for key in self._ids:
            self._folded_ids.setdefault(folded(key), set()).add(key)
        if given is not None:
            self.fusion_weights, self.fusion_trained_on = given, 0
        else:
            self.fusion_trained_on = self.fit_fusion() if learn_fusion else 0

    def _extra_rows(
        self, extra: pd.DataFrame, stored: Collection[str]
    ) -> tuple[list[str], list[str], list[int]]:
        """The keys, texts and product rows of the answers put back (``extra_answers``).

        Raises:
            ValidationError: A column lacks; a row lacks an id, a text or a product; an id
                is an answer's already (stored, or twice); a product is not stored (the
                stored key it is in another case named).
        """
        for col in ("answer_id", "text", "product_id"):
            if col not in extra.columns:
                raise ValidationError(f"extra_answers lacks the column {col}")
        for col in ("answer_id", "text", "product_id"):
            blank = extra[col].isna() | (extra[col].astype(str).str.strip() == "")
            if blank.any():
                raise ValidationError(
                    f"extra_answers has {int(blank.sum())} row(s) with a missing {col}"
                )
        keys = extra["answer_id"].astype(str)
        taken = keys[keys.duplicated() | keys.isin(stored)]
        if len(taken):
            raise ValidationError(
                f"extra_answers: the answer_id {taken.iloc[0]!r} is already an answer's "
                f"({len(taken)} such row(s))"
            )
        products = [str(p) for p in extra["product_id"]]
        found = [find_key(self._index, p) for p in products]
        unknown = [p for p, row in zip(products, found, strict=True) if row is None]
        if unknown:
            hint = self._did_you_mean(unknown[0])
            rows = "1 such row" if len(unknown) == 1 else f"{len(unknown)} such rows"
            raise ValidationError(
                f"extra_answers: no product {unknown[0]!r} in the store{hint} ({rows})"
            )
        return list(keys), [str(t) for t in extra["text"]], [r for r in found if r is not None]

    # ------------------------------------------------------------------ asking
    def ask(
        self, question: str, product_id: str | None = None, k: int = 5, method: str = "fusion"
    ) -> QAResult:
        """Link a customer question to products, past answers and review passages.

        Args:
            question: The question text (1 to :data:`MAX_QUESTION_CHARS` characters).
            product_id: The product page it was asked on, if any. Without it, a question that
                names one product by id (:meth:`named`: "Is P00123 waterproof?", or the id
                of a question, answer, review or passage about it) is asked on that product.
            k: How many of each (1 to 100).
            method: One of :data:`METHODS`.

        Returns:
            Three ranked lists with scores and evidence, at most ``k`` rows each (fewer when
            the pool is smaller; with ``bm25``, only the items that share a word with the
            question, and the product asked on). Equal scores come in the order of the keys.
            An answer to a question about several products (a passage of a review about
            several) is listed once, for the product it scores best with.
            What the question names by id (:meth:`named`) comes first in each list, below
            the product asked on, with evidence that says so.

        Raises:
            ValidationError: Empty, too long or non-text question; a ``product_id`` that is
                not a non-empty string; bad k or method; with ``bm25``, a question of only
                stop words or one-letter words.
            NotFoundError: No product ``product_id`` (as stored, or as loads store it:
                :func:`~graphfusion.columnar.find_key`; case is not folded, the stored
                key it is in another case is named: "did you mean").
        """
        text = _check_question(question)
        k = count_arg("k", k, 100)
        if method not in METHODS:
            raise ValidationError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
        if method == "bm25" and not _tokens(text):
            raise ValidationError(
                f"the question {text[:40]!r} has only stop words or one-letter words: BM25 "
                "has no word to match; ask a longer question or use method dense or fusion"
            )
        asked, asked_as = None, _ASKED_ON
        if product_id is not None:
            asked = self._product_row(product_id)
        named = self.named(text)
        if asked is None and len(named.products) == 1:  # "Is P00123 waterproof?"
            asked, asked_as = next(iter(named.products)), _NAMED_ASKED
        scores = self.scores(text, asked)
        scores["named"], scores["asked_as"] = named, asked_as
        ranked = _named_first(
            {kind: scores[kind][method] for kind in ("products", "answers", "passages")},
            named,
            asked,
        )
        # BM25 says nothing of an item that shares no word with the question (score 0; the
        # product asked on comes first all the same)
        lexical = method == "bm25"
        return QAResult(
            products=self._products(ranked["products"], scores, k, lexical),
            answers=self._answers(ranked["answers"], scores, k, lexical),
            passages=self._passages(ranked["passages"], scores, k, lexical),
        )

    def _product_row(self, product_id: object) -> int:
        """The row of the product asked on, as the recommender finds a product
        (:func:`~graphfusion.columnar.find_key`), else a ValidationError (not text, or
        blank) or a NotFoundError that names the stored key it is in another case."""
        if not isinstance(product_id, str) or not product_id.strip():
            got = repr(product_id) if isinstance(product_id, str) else type(product_id).__name__
            raise ValidationError(f"product_id must be a non-empty string, got {got}")
        row = find_key(self._index, product_id)
        if row is None:
            hint = self._did_you_mean(product_id)
            raise NotFoundError(f"no product {product_id!r} in the store{hint}")
        return row

    def _did_you_mean(self, product_id: str) -> str:
        """`` (did you mean 'B0002KTL2'?)`` for a product key not stored that a stored one
        is, spaces around it and case aside; empty when none is."""
        near = self._folded_products.get(folded(product_id))
        return f" (did you mean {near!r}?)" if near is not None else ""

    def named(self, question: str) -> _Named:
        """The products, answers and passages the question names by id: every whole word of
        it (quotes, brackets and punctuation around it, and a possessive ``'s``, aside) that
        is the key of a stored product, question, answer, review or passage with a digit in
        it (a key of digits only needs six of them: ``2`` or ``2014`` is rather a number than
        a key). A word is the key it is exactly, else the key it is in another case
        (``b0002ktl2`` names ``B0002KTL2``) when no other stored key is that word in some
        case and the word is no common one (:func:`_foldable`: three digits or more, and not
        a number with a unit, ``1080p``, ``500ml``). A product is named by its own key, or by
        that of a question, answer, review or passage about it; an answer by its key or its
        question's; a passage by its key or its review's.

        Args:
            question: The question text.

        Returns:
            The rows named, each with the evidence that says how.
        """
        out = _Named()
        for token in _id_tokens(question):
            key = token if token in self._ids else self._folded_key(token)
            if key is None:
                continue
            for kind, row in self._ids[key]:
                self._name(out, kind, row, key)
        return out

    def _folded_key(self, token: str) -> str | None:
        """The one stored key that ``token`` is in another case, or None (none, several,
        or a token that is rather a common word: :func:`_foldable`)."""
        if not _foldable(token):
            return None
        keys = self._folded_ids.get(folded(token), ())
        return next(iter(keys)) if len(keys) == 1 else None

    def _name(self, out: _Named, kind: str, row: int, token: str) -> None:
        """Add to ``out`` what the key ``token`` of the ``kind`` at ``row`` names."""
        if kind == "product":
            out.products.setdefault(row, f"its id {token} is named in the question")
            return
        if kind == "question":
            product = int(self.questions.product[row])
            for a in np.flatnonzero(self.answer_question == row):
                out.answers.setdefault(
                    int(a), f"it answers the question {token} named in the question"
                )
        elif kind == "answer":
            product = int(self.answers.product[row])
            out.answers.setdefault(row, f"its id {token} is named in the question")
        elif kind == "review":
            product = int(self.passages.product[row])
            out.passages.setdefault(row, f"from the review {token} named in the question")
        else:  # a passage
            product = int(self.passages.product[row])
            out.passages.setdefault(row, f"its id {token} is named in the question")
        if product >= 0:
            how = f"the {kind} {token} named in the question is about it"
            out.products.setdefault(product, how)

    def _id_index(self) -> dict[str, list[tuple[str, int]]]:
        """The keys a question can name (:meth:`named`): each key's kind and row (a
        review's: one per passage)."""
        out: dict[str, list[tuple[str, int]]] = {}
        kinds = (
            ("product", self.products),
            ("question", self.questions.keys),
            ("answer", self.answers.keys),
            ("passage", self.passages.keys),
            ("review", self.passage_review),
        )
        for kind, keys in kinds:
            for row, key in enumerate(keys):
                if isinstance(key, str) and _id_like(key):
                    out.setdefault(key, []).append((kind, row))
        return out

    def scores(
        self, question: str, asked: int | None = None, *, leave_out: int | None = None
    ) -> dict[str, Any]:
        """Every signal's scores for every product, answer and passage (for benchmarks).

        Args:
            question: The question text (checked by :meth:`ask`).
            asked: Row of the product asked on.
            leave_out: Row of a stored question to ignore with its answers (it is the
                question asked: training the fusion on stored questions): out of the graph,
                and out of the text and vector of its product where they are made of its
                questions and answers.

        Returns:
            Per kind (``products``, ``answers``, ``passages``) the scores of every method
            (and, for answers and passages once the fusion is learned, ``product_text``);
            ``text_match``, how well each product's own text matches (once learned);
            ``sim_q``, the stored questions' similarities; ``same``, the rows of the stored
            questions with the question's text (:func:`question_key`) that the ranking puts
            first; ``same_text``, all of them (for the evidence); ``tokens``; ``asked``.
        """
        vec = unit_rows(np.asarray(self.encoder.encode([question]), dtype=np.float64))[0]
        tokens = [t for t in _tokens(question)]
        sim_q = self.questions.vecs @ vec if len(self.questions.keys) else np.zeros(0)
        if leave_out is not None:
            sim_q[leave_out] = -1.0
        same_text = np.array(
            [r for r in self._same_text.get(question_key(question), []) if r != leave_out],
            dtype=np.int64,
        )
        same = same_text if asked is None else same_text[self.questions.product[same_text] == asked]
        if len(np.unique(self.questions.product[same])) > 1:
            same = same[:0]  # asked about several products: it names none of them
        out: dict[str, Any] = {
            "sim_q": sim_q,
            "tokens": set(tokens),
            "same": same,
            "same_text": same_text,
        }
        dense: dict[str, np.ndarray] = {}
        lexical: dict[str, np.ndarray] = {}
        corpora = {
            "products": self.product_corpus,
            "answers": self.answers,
            "passages": self.passages,
        }
        for name, corpus in corpora.items():
            dense[name] = corpus.vecs @ vec if len(corpus.keys) else np.zeros(0)
            lexical[name] = corpus.bm25_scores(tokens)
        if leave_out is not None:
            self._leave_out_of_product(leave_out, vec, tokens, dense, lexical)
        # graph: the best similarity among the items linked to each product
        n_p = len(self.products)
        p_graph = np.full(n_p, -np.inf)
        left_out = [np.zeros(len(c.keys), dtype=bool) for c in (self.questions, self.answers)]
        if leave_out is not None:
            left_out[0][leave_out] = True
            left_out[1] = self.answer_question == leave_out
        for sims, corpus, out_of_it in (
            (sim_q, self.questions, left_out[0]),
            (dense["answers"], self.answers, left_out[1]),
            (dense["passages"], self.passages, np.zeros(len(self.passages.keys), dtype=bool)),
        ):
            linked = (corpus.product >= 0) & ~out_of_it
            np.maximum.at(p_graph, corpus.product[linked], sims[linked])
        p_graph = _imputed(p_graph, dense["products"])
        if asked is not None:
            p_graph[asked] = 1.0
        a_graph = _linked(p_graph, self.answers.product) + 1e-3 * dense["answers"]
        s_graph = _linked(p_graph, self.passages.product) + 1e-3 * dense["passages"]
        graph = {"products": p_graph, "answers": a_graph, "passages": s_graph}
        text_match = None  # how well each product's own text matches
        for name, corpus in corpora.items():
            methods = {"bm25": lexical[name], "dense": dense[name], "graph": graph[name]}
            weights = self.fusion_weights.get("answers" if name == "passages" else name)
            if weights is None:
                methods["fusion"] = _rrf([methods["bm25"], methods["dense"], methods["graph"]])
            else:
                if text_match is not None:
                    fill = text_match.min() - 1.0
                    methods["product_text"] = _linked(text_match, corpus.product, fill)
                signals = _signals(methods)
                methods["fusion"] = _fused(signals, weights)
                if name == "products":
                    text_match = _text_match(signals, weights)
                    if asked is not None:
                        text_match = _first(text_match, np.arange(n_p) == asked)
                    out["text_match"] = text_match
            if len(same) and name == "answers":  # the same question's answers come first
                methods["fusion"] = _first(methods["fusion"], np.isin(self.answer_question, same))
            elif len(same) and name == "products":
                first = np.isin(np.arange(n_p), self.questions.product[same])
                methods["fusion"] = _first(methods["fusion"], first)
            if name == "products" and asked is not None:
                for key, score in methods.items():  # the product asked on comes first
                    methods[key] = _first(score, np.arange(n_p) == asked)
            out[name] = methods
        out["asked"] = asked
        return out

    def _leave_out_of_product(
        self,
        row: int,
        vec: np.ndarray,
        tokens: list[str],
        dense: dict[str, np.ndarray],
        lexical: dict[str, np.ndarray],
    ) -> None:
        """Take the stored question ``row`` and its answers out of its product's scores where
        the product is represented by its questions and answers (a product without text of
        its own), so that a question asked with itself left out does not find itself, or its
        answers, in its product's text."""
        p = int(self.questions.product[row])
        if p < 0:
            return
        answers = np.flatnonzero(self.answer_question == row)
        if self._text_from_qa[p]:
            doc = Counter(_tokens(self.product_corpus.texts[p]))
            for text in [self.questions.texts[row], *(self.answers.texts[a] for a in answers)]:
                doc.subtract(_tokens(text))
            lexical["products"][p] = self.product_corpus.bm25_score(tokens, +doc)
        if self._vec_from_qa[p]:
            n = self._qa_n[p] - 1 - len(answers)
            taken = self.questions.vecs[row] + self.answers.vecs[answers].sum(axis=0)
            rest = (self._qa_vec[p] - taken) / max(n, 1)
            dense["products"][p] = float(unit_rows(rest[None])[0] @ vec) if n else 0.0

    # ------------------------------------------------------------------ learned fusion
    def fit_fusion(self, limit: int = 300, seed: int = 0) -> int:
        """Learn the fusion's weights from the stored questions and their answers.

        For up to ``limit`` answered questions (seeded sample), each asked with itself and
        its answers left out (``scores(leave_out=...)``), the weights are chosen on the grid
        :data:`FUSION_GRID`: first ``(a, b)`` of the products' ``dense + a * bm25 /
        max(bm25) + b * graph`` to maximize the MRR of the question's product, then ``(a, b,
        c)`` of the answers' ``dense + a * bm25 / max(bm25) + b * graph + c * product_text``
        (``product_text``: the products' ``dense + a * bm25 / max(bm25)`` with that ``a``)
        to maximize the MRR@10 of its own answers (passages take the answers' weights).
        Ranks are counted among each question's :data:`FIT_CANDIDATES` best products or
        answers by each signal (and its own), so that the search costs the same for any size
        of store; ties count against the question. With fewer than 20 answered questions
        nothing is learned and the fusion stays reciprocal rank fusion.

        Returns:
            The number of training questions used.
        """
        self.fusion_weights = {}
        answered = np.unique(self.answer_question[self.answer_question >= 0])
        if len(answered) < 20:
            return 0
        rng = np.random.default_rng(seed)
        chosen = rng.choice(answered, size=min(limit, len(answered)), replace=False)
        products: list[_Case] = []
        answers: list[_Case] = []
        for row in chosen:
            sc = self.scores(self.questions.texts[row], leave_out=int(row))
            product = int(self.questions.product[row])
            if product < 0:
                continue
            product_signals = _signals(sc["products"])
            products.append(_Case.of(product_signals, np.array([product])))
            own = np.flatnonzero(self.answer_question == row)
            if len(own):
                # the product text signal needs the products' weights: carry its two parts
                parts = [_linked(x, self.answers.product) for x in product_signals[:2]]
                answers.append(_Case.of(_signals(sc["answers"]) + parts, own))
        if not products:
            return 0
        weights = _best_weights(products, cutoff=None)
        self.fusion_weights["products"] = weights
        if answers:
            for case in answers:
                dense, bm25 = case.signals[-2:]
                case.signals = [*case.signals[:-2], _text_match([dense, bm25], weights)]
            self.fusion_weights["answers"] = _best_weights(answers, cutoff=10)
        return len(chosen)

    # ------------------------------------------------------------------ result frames
    def _evidence_words(self, text: str, tokens: set[str]) -> str | None:
        shared = sorted(tokens & set(_tokens(text)))[:5]
        return f"shares the words {', '.join(shared)}" if shared else None

    def _products(
        self, score: np.ndarray, sc: dict[str, Any], k: int, matched_only: bool = False
    ) -> pd.DataFrame:
        rows = _listed(score, k, matched_only)
        named = sc.get("named", _Named()).products
        evidence = []
        for p in rows:
            ev = []
            if sc["asked"] == p and sc.get("asked_as", _ASKED_ON) == _ASKED_ON:
                ev.append("the product the question was asked on")
            if p in named:
                ev.append(named[p])
            linked = np.flatnonzero(self.questions.product == p)
            if np.isin(linked, sc["same_text"]).any():
                ev.append("the same question was asked about it")
            else:
                source = self._graph_source(p, sc)
                if source:
                    ev.append(source)
            words = self._evidence_words(self.product_corpus.texts[p], sc["tokens"])
            if words:
                ev.append(words)
            evidence.append(ev)
        return pd.DataFrame(
            {
                "product_id": [self.products[p] for p in rows],
                "title": [self.titles[p] for p in rows],
                "score": score[rows].astype(float),
                "evidence": evidence,
            }
        )

    def _graph_source(self, p: int, sc: dict[str, Any]) -> str | None:
        """The evidence of product ``p``'s graph score: the item linked to it that is most
        similar to the question (its question, answer or review passage, as
        :meth:`scores` takes the best of them; a question among equals), or None when
        nothing is linked to it."""
        best: tuple[float, str, int] | None = None
        for kind, sims, corpus in (
            ("question", sc["sim_q"], self.questions),
            ("answer", sc["answers"]["dense"], self.answers),
            ("passage", sc["passages"]["dense"], self.passages),
        ):
            linked = np.flatnonzero(corpus.product == p)
            if len(linked):
                row = int(linked[np.argmax(sims[linked])])
                if best is None or sims[row] > best[0]:
                    best = (float(sims[row]), kind, row)
        if best is None:
            return None
        sim, kind, row = best
        if kind == "question":
            return (
                f"{_question_like(sim, 'its nearest question')} was asked about it "
                f"(similarity {sim:.2f}): {self.questions.texts[row]!r}"
            )
        text = (self.answers if kind == "answer" else self.passages).texts[row]
        what = "answer about it" if kind == "answer" else "review passage"
        return f"its nearest {what} (similarity {sim:.2f}): {_shortened(text)!r}"

    def _matched_product(self, p: int, sc: dict[str, Any]) -> str | None:
        """How well product ``p``'s own text fits the question (``"best"``, ``"2nd best"``),
        when among the :data:`TEXT_MATCH_EVIDENCE` best (not the product asked on)."""
        match = sc.get("text_match")
        if match is None or p < 0 or p == sc["asked"]:
            return None
        # its place among the products other than the one asked on (which comes first by
        # rule, not by its text), ties to the first of them (a stable sort's order)
        rank = int((match > match[p]).sum() + (match[:p] == match[p]).sum()) + 1
        if sc["asked"] is not None:
            rank -= 1
        if rank > TEXT_MATCH_EVIDENCE:
            return None
        return "best" if rank == 1 else f"{_ordinal(rank)} best"

    def _answers(
        self, score: np.ndarray, sc: dict[str, Any], k: int, matched_only: bool = False
    ) -> pd.DataFrame:
        rows = _listed(score, k, matched_only, self.answers)
        named = sc.get("named", _Named()).answers
        evidence, questions = [], []
        for a in rows:
            ev = [named[a]] if a in named else []
            qi = int(self.answer_question[a])
            questions.append(self.questions.texts[qi] if qi >= 0 else None)
            p = int(self.answers.product[a])
            same = " about the same product" if p >= 0 and p == sc["asked"] else ""
            if qi in sc["same_text"]:
                ev.append(f"answer to the same question{same}")
            elif qi >= 0:
                sim = sc["sim_q"][qi]
                ev.append(
                    f"answer to {_question_like(sim, 'another question')}{same} "
                    f"(similarity {sim:.2f})"
                )
            elif same:
                ev.append(f"an answer about {sc.get('asked_as', _ASKED_ON)}")
            matched = self._matched_product(p, sc)
            if matched:
                title = self.titles[p] or self.products[p]
                ev.append(f"about {title}, the product whose text fits the question {matched}")
            words = self._evidence_words(self.answers.texts[a], sc["tokens"])
            if words:
                ev.append(words)
            evidence.append(ev)
        return pd.DataFrame(
            {
                "answer_id": [self.answers.keys[a] for a in rows],
                "text": [self.answers.texts[a] for a in rows],
                "question": questions,
                "product_id": [
                    self.products[p] if p >= 0 else None for p in self.answers.product[rows]
                ],
                "score": score[rows].astype(float),
                "evidence": evidence,
            }
        )

    def _passages(
        self, score: np.ndarray, sc: dict[str, Any], k: int, matched_only: bool = False
    ) -> pd.DataFrame:
        rows = _listed(score, k, matched_only, self.passages)
        named = sc.get("named", _Named()).passages
        evidence = []
        for s in rows:
            p = int(self.passages.product[s])
            ev = [named[s]] if s in named else []
            if p >= 0:
                ev.append(f"from a review of {self.titles[p] or self.products[p]}")
            matched = self._matched_product(p, sc)
            if matched:
                ev.append(f"its product's text fits the question {matched}")
            words = self._evidence_words(self.passages.texts[s], sc["tokens"])
            if words:
                ev.append(words)
            evidence.append(ev)
        return pd.DataFrame(
            {
                "passage_id": [self.passages.keys[s] for s in rows],
                "text": [self.passages.texts[s] for s in rows],
                "review_id": [self.passage_review[s] for s in rows],
                "product_id": [
                    self.products[p] if p >= 0 else None for p in self.passages.product[rows]
                ],
                "score": score[rows].astype(float),
                "evidence": evidence,
            }
        )


# ----------------------------------------------------------------------------- helpers
#: The labels besides Product whose text the index links a question to.
_LINKED_TEXT = ("Question", "Answer", "Passage")


def _any_vector(store: BaseStore) -> bool:
    """Whether a question, an answer or a review passage has a text vector."""
    return any(
        store.query(f"MATCH (n:{label}) WHERE n.text_vec IS NOT NULL RETURN n.id AS id LIMIT 1")
        for label in _LINKED_TEXT
        if label in store.schema.nodes
    )


def _not_ready(store: BaseStore, product_text: bool) -> None:
    """Raise the NotReadyError of a store where nothing has a text vector: run ``embed``
    where something has text (``product_text``: a product's title or description), else
    say that there is nothing to link a question to (embedding cannot help).

    Raises:
        NotReadyError: Always.
    """
    if (
        any(
            store.query(f"MATCH (n:{label}) WHERE n.text IS NOT NULL RETURN n.id AS id LIMIT 1")
            for label in (*_LINKED_TEXT, "Review")
            if label in store.schema.nodes
        )
        or product_text
    ):
        raise NotReadyError("the store has no text vectors yet; run `graphfusion embed`")
    raise NotReadyError(
        "nothing in the store has text to link a question to: its products have no title or "
        "description, and it holds no questions, answers or reviews with text"
    )


def _no_vectors(dim: int) -> tuple[np.ndarray, np.ndarray]:
    """No rows of vectors, and their mask (:func:`graphfusion.graph._vectors` of nothing)."""
    return np.zeros((0, dim), dtype=np.float32), np.zeros(0, dtype=bool)


class _EncodedTexts:
    """Vectors of texts encoded by :func:`_encode_missing`, kept across index builds: the
    items stored since the last ``embed`` are encoded once, not at every build until
    ``embed`` stores their vectors. Keyed by the encoder's model (its ``name``, a digest of
    its files) and the text itself, so that a changed text is encoded again; the least
    recently used are dropped beyond ``max_items``. Threads may share it.

    What nothing is kept for is encoded as given, repeats included: the encoder's vectors
    of a text depend a little (about 3e-7) on the other texts of its batch, and a list
    encoded for the first time gets, bit for bit, the vectors of encoding it directly (the
    first vector of a repeated text is kept)."""

    def __init__(self, max_items: int) -> None:
        self.max_items = max_items
        self._vectors: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str], encoder: Any) -> np.ndarray:
        """The vectors of ``texts`` (one row each), encoding only those not kept."""
        model = getattr(encoder, "name", None)
        if not isinstance(model, str) or not model:  # no stable id: nothing to key on
            return np.asarray(encoder.encode(list(texts)))
        keys = [(model, text) for text in texts]
        with self._lock:
            rows: list[np.ndarray | None] = [self._vectors.get(key) for key in keys]
        missing = [i for i, row in enumerate(rows) if row is None]
        if missing:
            encoded = np.asarray(encoder.encode([texts[i] for i in missing]))
            for i, row in zip(missing, encoded, strict=True):
                rows[i] = row.copy()
        out = [row for row in rows if row is not None]
        with self._lock:
            for key, row in zip(keys, out, strict=True):
                self._vectors.setdefault(key, row)
                self._vectors.move_to_end(key)
            while len(self._vectors) > self.max_items:
                self._vectors.popitem(last=False)
        return np.stack(out)

    def clear(self) -> None:
        """Forget every vector."""
        with self._lock:
            self._vectors.clear()


#: The texts stored since the last ``embed``, encoded (at most this many kept: 384 floats
#: each for MiniLM, about 30 MB).
_ENCODED = _EncodedTexts(max_items=20_000)


def _encode_missing(
    vecs: np.ndarray, has: np.ndarray, texts: Sequence[str | None], encoder: Any
) -> np.ndarray:
    """Encode, in place, the rows of ``vecs`` that have no stored vector but a text: items
    stored after the last ``embed`` (a load), which would otherwise score 0 by meaning.
    Their vectors are kept for the next index build (:class:`_EncodedTexts`).

    Args:
        vecs: One row per item (zeros where none is stored); rows are filled in place.
        has: Which rows have a stored vector.
        texts: Each item's text (None or blank: nothing to encode).
        encoder: The text encoder of the stored vectors.

    Returns:
        Which rows have a vector now.
    """
    rows = [int(i) for i in np.flatnonzero(~has)]
    content = [(i, text_content({"text": texts[i]}, ("text",))) for i in rows]
    todo = [(i, text) for i, text in content if text is not None]
    if not todo:
        return has
    log.info("encoding %d texts stored since the last embed (`graphfusion embed` stores them)",
             len(todo))  # fmt: skip
    encoded = np.asarray(_ENCODED.encode([text for _, text in todo], encoder), dtype=vecs.dtype)
    done = np.array([i for i, _ in todo], dtype=np.int64)
    vecs[done] = encoded
    out = has.copy()
    out[done] = True
    return out


def _check_question(question: object) -> str:
    if isinstance(question, bytes):
        try:
            question = question.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError("the question is not valid UTF-8 text") from None
    if not isinstance(question, str):
        raise ValidationError(f"the question must be text, got {type(question).__name__}")
    try:
        question.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: bytes a command line could not decode
        raise ValidationError("the question is not valid UTF-8 text") from None
    text = " ".join(question.split())
    if not text:
        raise ValidationError("the question is empty")
    if not any(ch.isalnum() for ch in text):
        raise ValidationError("the question has no words (only punctuation or symbols)")
    if len(text) > MAX_QUESTION_CHARS:
        raise ValidationError(
            f"the question is {len(text):,} characters long; at most {MAX_QUESTION_CHARS:,}"
        )
    return text


def _check_weights(weights: Mapping[str, Sequence[float] | np.ndarray]) -> dict[str, np.ndarray]:
    """Learned fusion weights as :meth:`QAIndex.fit_fusion` makes them, or ValidationError."""
    sizes = {"products": 2, "answers": 3}
    if not isinstance(weights, Mapping) or set(weights) != set(sizes):
        raise ValidationError("fusion_weights must map 'products' and 'answers' to weights")
    out = {}
    for name, size in sizes.items():
        try:
            values = np.asarray(weights[name], dtype=np.float64)
        except (TypeError, ValueError):
            raise ValidationError(f"fusion_weights[{name!r}] must be numbers") from None
        if values.shape != (size,) or not np.isfinite(values).all() or (values < 0).any():
            raise ValidationError(
                f"fusion_weights[{name!r}] must be {size} finite weights at least 0"
            )
        out[name] = values
    return out


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def question_key(text: str) -> str:
    """What two questions must share to count as the same question: their words, lower-cased
    (``"Is it   dishwasher-safe?"`` and ``"is it dishwasher safe"`` are the same)."""
    return " ".join(_WORD.findall(text.lower()))


#: How evidence names the product asked on: given as ``product_id``, or named by id.
_ASKED_ON = "the product asked on"
_NAMED_ASKED = "the product named in the question"
#: What a key named in a question may have around it: quotes, brackets and punctuation.
_ID_EDGES = "\"'`.,;:!?()[]{}<>«»“”‘’"


def _id_like(key: str) -> bool:
    """Whether a stored key can be named in a question (:meth:`QAIndex.named`): it has a
    digit, and a letter or at least six characters (``P00123``, an ISBN; not ``2``,
    ``2014`` or a word such as ``mug``, which a question holds as a number or a word)."""
    return (
        any(ch.isdigit() for ch in key)
        and (any(ch.isalpha() for ch in key) or len(key) >= 6)
        and not any(ch.isspace() for ch in key)
    )


#: A number with a unit or an ordinal (``1080p``, ``500ml``, ``100w``, ``2nd``): a word, not a
#: key written in another case.
_NUMBER_WITH_UNIT = re.compile(r"\d{1,5}[^\W\d_]{1,4}")


def _foldable(token: str) -> bool:
    """Whether a word of a question may name a key written in another case
    (:meth:`QAIndex.named`): it has a letter and at least three digits (``b0002ktl2``,
    ``p00123``; not ``mp3`` or ``4k``), and is not a number with a unit or an ordinal
    (``1080p``, ``500ml``), which a question holds as words."""
    form = folded(token)
    return (
        sum(ch.isdigit() for ch in form) >= 3
        and any(ch.isalpha() for ch in form)
        and not _NUMBER_WITH_UNIT.fullmatch(form)
    )


def _id_tokens(text: str) -> list[str]:
    """The words of ``text`` that may be keys, in order, once each: every whitespace-split
    word as it is, without the quotes and punctuation around it, and without a possessive
    ``'s`` (``"P00123's"``)."""
    out: dict[str, None] = {}
    for word in text.split():
        bare = word.strip(_ID_EDGES)
        forms = [word, bare]
        for possessive in ("'s", "’s"):
            if bare.endswith(possessive):
                forms.append(bare[: -len(possessive)].strip(_ID_EDGES))
        for form in forms:
            if form and _id_like(form):
                out.setdefault(form, None)
    return list(out)


def _named_first(
    scores: dict[str, np.ndarray], named: _Named, asked: int | None
) -> dict[str, np.ndarray]:
    """The scores of one method with what the question names by id moved first in each
    list (:func:`_first`), below the product asked on; unchanged when it names nothing
    besides the product asked on."""
    out = dict(scores)
    for kind, rows in (
        ("products", named.products),
        ("answers", named.answers),
        ("passages", named.passages),
    ):
        if not set(rows) - ({asked} if kind == "products" else set()):
            continue
        mask = np.zeros(len(out[kind]), dtype=bool)
        mask[list(rows)] = True
        out[kind] = _first(out[kind], mask)
        if kind == "products" and asked is not None:
            out[kind] = _first(out[kind], np.arange(len(mask)) == asked)
    return out


def _first(score: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``score`` with the ``mask`` entries moved above all others, their order kept."""
    if not mask.any():
        return score
    out = score.copy()
    out[mask] = score.max() + 1.0 + (score[mask] - score[mask].min())
    return out


def _signals(methods: dict[str, np.ndarray]) -> list[np.ndarray]:
    """What the learned fusion weighs: dense, max-normalized BM25 and graph scores, and the
    text match of their product where there is one (answers and passages)."""
    bm25 = methods["bm25"]
    top = float(bm25.max()) if len(bm25) else 0.0
    out = [methods["dense"], bm25 / top if top > 0 else bm25, methods["graph"]]
    if "product_text" in methods:
        out.append(methods["product_text"])
    return out


def _fused(signals: Sequence[np.ndarray], weights: Sequence[float] | np.ndarray) -> np.ndarray:
    """The first signal (dense) plus the weighted others."""
    out = np.asarray(signals[0], dtype=np.float64).copy()
    for weight, signal in zip(weights, signals[1:], strict=True):
        out += weight * signal
    return out


def _text_match(signals: Sequence[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """How well each product's own text matches, from the products' signals and weights:
    their fusion without its graph term (an answer's own similarity is in its product's
    graph score already)."""
    return signals[0] + weights[0] * signals[1]


@dataclass
class _Case:
    """One training question of :meth:`QAIndex.fit_fusion`: the signals of its candidates
    and which of them are its own (product or answers)."""

    signals: list[np.ndarray]
    positive: np.ndarray

    @classmethod
    def of(cls, signals: Sequence[np.ndarray], positives: np.ndarray) -> _Case:
        """The case of :data:`FIT_CANDIDATES` best items by each signal and the positives."""
        n = len(signals[0])
        keep = [positives]
        for signal in signals:
            if n > FIT_CANDIDATES:
                keep.append(np.argpartition(-signal, FIT_CANDIDATES - 1)[:FIT_CANDIDATES])
            else:
                keep.append(np.arange(n))
        rows = np.unique(np.concatenate(keep))
        return cls([np.asarray(x)[rows] for x in signals], np.isin(rows, positives))


def _best_weights(cases: Sequence[_Case], cutoff: int | None) -> np.ndarray:
    """The weights on the grid :data:`FUSION_GRID` (one per signal after the first) with the
    best mean reciprocal rank of each case's best-ranked positive among its candidates (0
    beyond ``cutoff``; ties count against it); the first in the grid's order among equals."""
    width = max(len(case.positive) for case in cases)
    n_signals = len(cases[0].signals)
    signals = np.zeros((len(cases), n_signals, width))
    signals[:, 0] = -np.inf  # padding ranks below every candidate
    positive = np.zeros((len(cases), width), dtype=bool)
    for i, case in enumerate(cases):
        m = len(case.positive)
        signals[i, :, :m] = case.signals
        positive[i, :m] = case.positive
    best, best_mrr = None, -1.0
    for weights in itertools.product(FUSION_GRID, repeat=n_signals - 1):
        score = signals[:, 0] + np.einsum("k,ckn->cn", np.array(weights), signals[:, 1:])
        top = np.where(positive, score, -np.inf).max(axis=1, keepdims=True)
        rank = (score >= top).sum(axis=1)
        reciprocal = 1.0 / rank
        if cutoff is not None:
            reciprocal[rank > cutoff] = 0.0
        mrr = float(reciprocal.mean())
        if mrr > best_mrr + 1e-12:
            best, best_mrr = weights, mrr
    return np.array(best)


def _imputed(graph: np.ndarray, own: np.ndarray) -> np.ndarray:
    """The products' graph scores with those of products that no item is linked to
    (``-inf``: nobody asked about them yet) imputed from their own dense score ``own``: the
    least-squares line of the linked products' graph scores on their dense scores; where
    their dense scores do not vary (one product linked), the line of slope 1 through their
    means, so that a product's graph score follows its own fit to the question (their mean
    gave every product nobody asked about the score of the one product asked about: 1 for
    the question asked again); 0 when no product is linked."""
    unlinked = np.isneginf(graph)
    if not unlinked.any():
        return graph
    out = graph.copy()
    if unlinked.all():
        out[:] = 0.0
        return out
    x, y = own[~unlinked], graph[~unlinked]
    spread = float(np.var(x))
    slope = float(np.mean((x - x.mean()) * (y - y.mean()))) / spread if spread > 1e-12 else 1.0
    out[unlinked] = y.mean() + slope * (own[unlinked] - x.mean())
    return out


def _linked(product_score: np.ndarray, product: np.ndarray, fill: float = -1.0) -> np.ndarray:
    """Each item's product score (``fill`` for items without a product)."""
    out = np.full(len(product), fill, dtype=np.float64)
    linked = product >= 0
    out[linked] = product_score[product[linked]]
    return out


def _tokens(text: str) -> list[str]:
    stop = _stopwords()
    return [t for t in _TOKEN.findall(text.lower()) if t not in stop]


def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


#: Longest answer or passage text quoted in a product's evidence.
_QUOTED_CHARS = 100


def _shortened(text: str) -> str:
    """``text`` cut to :data:`_QUOTED_CHARS` characters at a word, "..." marking a cut."""
    if len(text) <= _QUOTED_CHARS:
        return text
    cut = text[:_QUOTED_CHARS].rsplit(" ", 1)[0] or text[:_QUOTED_CHARS]
    return f"{cut}..."


def _listed(
    score: np.ndarray, k: int, matched_only: bool, corpus: _Corpus | None = None
) -> np.ndarray:
    """The rows a result lists: the ``k`` best (:func:`top_rows`), only those that scored
    above 0 when ``matched_only`` (bm25: items sharing a word with the question), and of
    the rows of a ``corpus`` one per key, its best: an answer to a question about two
    products (or a passage of a review about two) is a candidate per product, listed once."""
    repeats = corpus.repeats if corpus is not None else 0
    rows = top_rows(score, k + repeats)
    if matched_only:
        rows = rows[score[rows] > 0]
    if corpus is None or not repeats:
        return rows[:k]
    seen: set[str] = set()
    kept: list[int] = []
    for row in rows:
        if corpus.keys[row] not in seen:
            seen.add(corpus.keys[row])
            kept.append(int(row))
    return np.asarray(kept[:k], dtype=np.int64)


def _question_like(sim: float, unlike: str) -> str:
    """How evidence names a stored question of similarity ``sim`` to the one asked:
    "a similar question" from :data:`SIMILAR_QUESTION` up, else ``unlike``."""
    return "a similar question" if sim >= SIMILAR_QUESTION else unlike


def _rrf(rankings: Sequence[np.ndarray]) -> np.ndarray:
    """Reciprocal rank fusion of several score vectors (ties share the best rank).

    Each item's terms are added smallest first, so that items with the same ranks in another
    order of the signals get the same score to the last bit (and tie in key order)."""
    if not len(rankings) or not len(rankings[0]):
        return np.zeros(0)
    terms = np.stack(
        [1.0 / (RRF_K + pd.Series(-score).rank(method="min").to_numpy()) for score in rankings]
    )
    total = np.zeros(terms.shape[1])
    for term in np.sort(terms, axis=0):
        total += term
    return total
