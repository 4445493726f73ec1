"""QA linking quality: BM25, dense, graph and their fusion, on held-out questions.

Data sets:

- ``appliances``: Amazon product Q&A, Appliances (../shared/data/amazon_qa_appliances: 9,011
  answer lines on 1,153 products; the products have no text of their own);
- ``synthetic``: the generated ``bench`` shop (4,000 questions with their known answers),
  the embedded store prepared by ``benchmarks.recommend``.

Protocol: 20% of the questions that have an answer (seeded) are held out: they and their
answers leave the index (``QAIndex(exclude_questions=...)``). For each held-out question:

- answer retrieval: the held-out answers are put back into the candidate pool linked to
  their product only (``extra_answers``); rank the whole pool (stored answers plus the
  held-out ones); the question's own answer is the relevant item (for a question with several
  answers, the best ranked of them); MRR@10, Recall@1 and Recall@10;
- product linking: rank every product (no product id given) in an index without the
  held-out answers (an answer is written after its question is asked: in the pool it would
  lend its product the question's own answer as graph evidence, and its text to a product
  represented by its questions and answers); Recall@1, Recall@10 and MRR of the true product.

A second table links questions about **new products**: 10% of the products that have
questions and a text of their own (seeded) lose all their questions and answers, as a product
added today has none; each of those questions ranks every product, no product id given.
(The Appliances products have no text of their own, so a product there without questions
has nothing to be found by, and the table has no Appliances rows.)

A third table asks questions again: up to :data:`REPEATS` answered questions that stay in the
index (seeded), each asked verbatim with no product id: how often its own answer is ranked
first, and its product first.

Run::

    python -m benchmarks.qa [--datasets appliances,synthetic] [--seed 0] [--limit N]
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from benchmarks.common import (
    MAX_SEED,
    add_folder_arguments,
    add_out_argument,
    benchmark_parser,
    command_line,
    count,
    name_list,
    prepared_store,
    print_table,
    require_files,
    save_results,
)
from benchmarks.recommend import prepare as prepare_recommend
from graphfusion.features.embed import embed
from graphfusion.ingest import load
from graphfusion.qa import METHODS, QAIndex
from graphfusion.store import EmbeddedStore

os.environ.setdefault("HF_HUB_OFFLINE", "1")

NAME = "qa"
MODULE = "benchmarks.qa"
DATASETS = ("appliances", "synthetic")
#: The Q&A file of ``appliances`` under ``--data``.
APPLIANCES_QA = Path("amazon_qa_appliances") / "qa_Appliances.json.gz"
HELD_OUT = 0.2
NEW_PRODUCTS = 0.1
REPEATS = 300


def prepare(name: str, work: Path, data: Path) -> Path:
    """The embedded store of data set ``name`` (made once under ``work``)."""

    def build(store_dir: Path) -> dict[str, Any]:
        started = time.perf_counter()
        if name == "synthetic":
            source = prepare_recommend("synthetic", work.parent / "recommend", data)
            shutil.copytree(source, store_dir)
        else:
            with EmbeddedStore(store_dir) as store:
                qa_file = data / APPLIANCES_QA
                load(store, "amazon_qa", {"qa": qa_file}, progress=True)
                embed(store, only=("text",), progress=True)
        return {"prepare_s": round(time.perf_counter() - started, 1)}

    return prepared_store(work / name, build)


def _ranks(score: np.ndarray, relevant: list[int]) -> int:
    """1-based rank of the best-ranked relevant item (ties count against it)."""
    best = max(score[r] for r in relevant)
    return int((score > best).sum() + (score == best).sum())


def run(name: str, store_dir: Path, seed: int, limit: int | None) -> list[dict[str, Any]]:
    """Metrics of every method on one data set."""
    with EmbeddedStore(store_dir, read_only=True) as store:
        pairs = store.query_df(
            "MATCH (a:Answer)-[:ANSWERS]->(q:Question)-[:ABOUT]->(p:Product) "
            "RETURN q.id AS q, q.text AS qt, a.id AS a, a.text AS at, p.id AS p"
        ).sort_values(["q", "a"], kind="stable")
        questions = np.array(sorted(pairs["q"].unique()))
        rng = np.random.default_rng(seed)
        held = set(rng.choice(questions, size=round(HELD_OUT * len(questions)), replace=False))
        held_pairs = pairs[pairs["q"].isin(held)]
        extra = pd.DataFrame({"answer_id": held_pairs["a"], "text": held_pairs["at"],
                              "product_id": held_pairs["p"]})  # fmt: skip
        started = time.perf_counter()
        index = QAIndex(store, exclude_questions=held, extra_answers=extra)
        build_s = time.perf_counter() - started
        product_index = QAIndex(store, exclude_questions=held)
        new_products = _new_products(store, seed, limit)
    answer_row = {k: i for i, k in enumerate(index.answers.keys)}
    groups = list(held_pairs.groupby("q", sort=True))
    if limit:
        groups = groups[:limit]
    answer_ranks: dict[str, list[int]] = {m: [] for m in METHODS}
    started = time.perf_counter()
    for _, group in tqdm(groups, desc=f"qa {name}"):
        scores = index.scores(str(group["qt"].iloc[0]))
        own = [answer_row[a] for a in group["a"]]
        for m in METHODS:
            answer_ranks[m].append(_ranks(scores["answers"][m], own))
    per_question_ms = 1000 * (time.perf_counter() - started) / max(len(groups), 1)
    asked = [(str(g["qt"].iloc[0]), str(g["p"].iloc[0])) for _, g in groups]
    product_ranks = _product_ranks(product_index, asked, f"qa {name} products")
    repeat = _repeats(index, seed, min(REPEATS, limit or REPEATS))
    rows = []
    for m in METHODS:
        a = np.array(answer_ranks[m])
        p = np.array(product_ranks[m])
        rows.append({
            "dataset": name, "method": m, "questions": len(a),
            "answer_pool": len(index.answers.keys), "products": len(index.products),
            "answer_mrr@10": float(np.where(a <= 10, 1.0 / a, 0.0).mean()),
            "answer_recall@1": float((a <= 1).mean()),
            "answer_recall@10": float((a <= 10).mean()),
            "product_recall@1": float((p <= 1).mean()),
            "product_recall@10": float((p <= 10).mean()),
            "product_mrr": float((1.0 / p).mean()),
            **{f"new_{key}": value for key, value in new_products[m].items()},
            "index_build_s": build_s, "ms_per_question": per_question_ms,
            "fusion_weights": {k: w.tolist() for k, w in index.fusion_weights.items()},
            "product_fusion_weights": product_index.fusion_weights["products"].tolist()
            if "products" in product_index.fusion_weights else None,
            "repeats": len(repeat[m][0]),
            "repeat_answer_recall@1": float(np.mean(repeat[m][0])),
            "repeat_product_recall@1": float(np.mean(repeat[m][1])),
        })  # fmt: skip
    return rows


def _product_ranks(index: QAIndex, asked: list[tuple[str, str]], desc: str) -> dict[str, list[int]]:
    """Per method, the rank of each question's product among all products (no product id)."""
    row = {k: i for i, k in enumerate(index.products)}
    ranks: dict[str, list[int]] = {m: [] for m in METHODS}
    for text, product in tqdm(asked, desc=desc):
        scores = index.scores(text)
        for m in METHODS:
            ranks[m].append(_ranks(scores["products"][m], [row[product]]))
    return ranks


def _new_products(
    store: EmbeddedStore, seed: int, limit: int | None
) -> dict[str, dict[str, float]]:
    """Per method, product linking of the questions about :data:`NEW_PRODUCTS` of the
    products with questions and a text of their own (seeded), in an index without any of
    their questions and answers: ``questions``, ``product_recall@1``, ``product_recall@10``
    and ``product_mrr`` (NaN without such products)."""
    asked = store.query_df(
        "MATCH (q:Question)-[:ABOUT]->(p:Product) RETURN q.id AS q, q.text AS qt, p.id AS p, "
        "coalesce(p.title, '') + coalesce(p.description, '') AS own ORDER BY q.id"
    )
    products = np.array(sorted(set(asked.loc[asked["own"].str.strip() != "", "p"])))
    rng = np.random.default_rng(seed)
    new = set(rng.choice(products, size=round(NEW_PRODUCTS * len(products)), replace=False))
    asked = asked[asked["p"].isin(new)]
    if limit:
        asked = asked.head(limit)
    ranks: dict[str, list[int]] = {m: [] for m in METHODS}
    if len(asked):
        new_index = QAIndex(store, exclude_questions=set(asked["q"]))
        pairs = list(zip(asked["qt"].astype(str), asked["p"].astype(str), strict=True))
        ranks = _product_ranks(new_index, pairs, "new products")
    out = {}
    for m in METHODS:
        p = np.array(ranks[m], dtype=np.float64)
        out[m] = {
            "questions": len(p),
            "product_recall@1": float((p <= 1).mean()) if len(p) else float("nan"),
            "product_recall@10": float((p <= 10).mean()) if len(p) else float("nan"),
            "product_mrr": float((1.0 / p).mean()) if len(p) else float("nan"),
        }
    return out


def _repeats(index: QAIndex, seed: int, n: int) -> dict[str, tuple[list[bool], list[bool]]]:
    """Per method: whether each of ``n`` stored answered questions, asked again verbatim,
    gets one of its own answers first, and its product first."""
    answered = np.unique(index.answer_question[index.answer_question >= 0])
    chosen = np.random.default_rng(seed).choice(answered, min(n, len(answered)), replace=False)
    out: dict[str, tuple[list[bool], list[bool]]] = {m: ([], []) for m in METHODS}
    for q in tqdm(chosen, desc="asked again"):
        scores = index.scores(index.questions.texts[q])
        for m in METHODS:
            out[m][0].append(bool(index.answer_question[np.argmax(scores["answers"][m])] == q))
            top = int(np.argmax(scores["products"][m]))
            out[m][1].append(top == index.questions.product[q])
    return out


def main(argv: list[str] | None = None) -> int:
    """Run, print the table and save ``benchmarks/results/qa.json``."""
    parser = benchmark_parser(MODULE, __doc__)
    parser.add_argument(
        "--datasets",
        type=name_list(DATASETS, "data sets"),
        default=",".join(DATASETS),
        help="comma-separated data sets",
    )
    parser.add_argument("--seed", type=count(0, MAX_SEED), default=0)
    parser.add_argument(
        "--limit", type=count(), default=None, help="score at most N questions (default: all)"
    )
    add_folder_arguments(
        parser,
        "benchmarks/.work/qa",
        "folder of the prepared stores (synthetic's from WORK/../recommend)",
    )
    add_out_argument(parser, NAME)
    args = parser.parse_args(argv)
    datasets = args.datasets
    if "appliances" in datasets and not (args.work / "appliances" / "prepared.json").exists():
        require_files(parser, {"appliances": [args.data / APPLIANCES_QA]})
    rows: list[dict[str, Any]] = []
    for name in datasets:
        rows.extend(run(name, prepare(name, args.work, args.data), args.seed, args.limit))
    table = []
    for r in rows:
        base = {m["method"]: m for m in rows if m["dataset"] == r["dataset"]}
        gain = "-"
        if r["method"] == "fusion":
            gain = ", ".join(
                f"{(r['answer_mrr@10'] / base[b]['answer_mrr@10'] - 1) * 100:+.0f}% vs {b}"
                for b in ("bm25", "dense") if base[b]["answer_mrr@10"]
            )  # fmt: skip
        table.append([
            r["dataset"], r["method"], r["questions"], f"{r['answer_mrr@10']:.3f}",
            f"{r['answer_recall@1']:.3f}", f"{r['answer_recall@10']:.3f}",
            f"{r['product_recall@1']:.3f}", f"{r['product_recall@10']:.3f}",
            f"{r['product_mrr']:.3f}", gain,
        ])  # fmt: skip
    headers = ["data set", "method", "questions", "answer MRR@10", "answer R@1", "answer R@10",
               "product R@1", "product R@10", "product MRR", "fusion answer MRR"]  # fmt: skip
    text = print_table(headers, table, title=f"QA linking, {HELD_OUT:.0%} of questions held out")
    new_rows = [
        [r["dataset"], r["method"], r["new_questions"], f"{r['new_product_recall@1']:.3f}",
         f"{r['new_product_recall@10']:.3f}", f"{r['new_product_mrr']:.3f}"]
        for r in rows if r["new_questions"]
    ]  # fmt: skip
    new_table = print_table(
        ["data set", "method", "questions", "product R@1", "product R@10", "product MRR"],
        new_rows,
        title=f"Questions about new products ({NEW_PRODUCTS:.0%} of the products with "
        "questions, all their questions and answers left out)",
    )
    repeated = [
        [r["dataset"], r["method"], r["repeats"], f"{r['repeat_answer_recall@1']:.3f}",
         f"{r['repeat_product_recall@1']:.3f}"]
        for r in rows
    ]  # fmt: skip
    again = print_table(
        ["data set", "method", "questions", "own answer first", "its product first"],
        repeated,
        title="Stored questions asked again (verbatim, no product id)",
    )
    for r in rows:
        if r["method"] == "fusion":
            print(f"{r['dataset']}: learned fusion weights {r['fusion_weights']}")
    results = {"seed": args.seed, "held_out": HELD_OUT, "new_products": NEW_PRODUCTS,
               "repeats": REPEATS, "rows": rows}  # fmt: skip
    tables = [text, new_table, again]
    path = save_results(NAME, results, out=args.out, command=command_line(MODULE, argv),
                        tables=tables)  # fmt: skip
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
