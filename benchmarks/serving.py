"""Serving speed: ``recommend()`` latency on the synthetic bench shop, single-threaded.

On a copy of the prepared ``bench`` shop store of ``benchmarks.recommend`` (10k users, 5k
products, 200k interactions; loaded and embedded), brought up to date by one ``embed`` pass
(timed apart, as ``embed_s``: a store prepared by an older version re-encodes the vectors whose
content keys changed since, such as every photo's before photos were keyed by their bytes, so
that ``add_products`` below measures its own work), a fusion model is trained (written back),
then, in one process with one thread:

- ``recommend(user, k=10)`` for 1,000 random users with enough interactions (the model path),
  with reasons and without; against a brute-force numpy top-K over all products (scores,
  seen mask, ``argpartition``) for the same users: p50, p99, throughput and the ratio;
- the neighbourhood kernels of the model path for the same users, each alone and all
  together (``Recommender._kernels``: what the blend costs);
- the same for cold-start users: light users (1-2 interactions) and new users with
  demographics only (the cold-start blend of ``graphfusion.recommend``);
- new products: ``add_products`` of one product at a time (store write, text embedding,
  the content path, ``rec_vec`` fitted to a sample of users' served scores), then
  ``recommend`` with its category;
- live interactions: ``add_interactions`` of one view at a time by a model user (store
  write, the user's vector, ``rec_vec`` refitted to their served scores).

Run::

    python -m benchmarks.serving [--users 1000] [--new-products 20] [--work DIR]
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from benchmarks.common import (
    MAX_SEED,
    add_folder_arguments,
    add_out_argument,
    benchmark_parser,
    command_line,
    count,
    print_table,
    save_results,
)
from benchmarks.recommend import prepare
from graphfusion.features.embed import embed
from graphfusion.recommend import LIGHT_USER_MAX, Recommender
from graphfusion.store import EmbeddedStore
from graphfusion.train import TrainConfig, train

os.environ.setdefault("HF_HUB_OFFLINE", "1")

NAME = "serving"
MODULE = "benchmarks.serving"
GOAL_P99_MS = 20.0
K = 10


def _latencies(fn: Callable[[Any], Any], items: Sequence[Any]) -> list[float]:
    out = []
    for item in items:
        t0 = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _summary(name: str, ms: list[float]) -> dict[str, Any]:
    qs = np.percentile(ms, [50, 99])
    return {
        "case": name,
        "calls": len(ms),
        "p50_ms": float(qs[0]),
        "p99_ms": float(qs[1]),
        "mean_ms": statistics.fmean(ms),
        "per_s": 1000.0 / statistics.fmean(ms),
    }


def _brute_force(rec: Recommender) -> Callable[[str], np.ndarray]:
    st = rec.state

    def top(user: str) -> np.ndarray:
        u = st.user_index[user]
        scores = st.item_vecs @ st.user_vecs[u] + st.item_bias
        scores[st.seen.indices[st.seen.indptr[u] : st.seen.indptr[u + 1]]] = -np.inf
        part = np.argpartition(-scores, K)[:K]
        return part[np.argsort(-scores[part])]

    return top


def _kernels_of(rec: Recommender, names: list[str]) -> Callable[[str], Any]:
    """A user's neighbourhood kernels ``names`` as the model path computes them."""
    return lambda user: rec._kernels([rec.state.user_index[user]], names)


def main(argv: list[str] | None = None) -> int:
    """Run, print the table and save ``benchmarks/results/serving.json``."""
    parser = benchmark_parser(MODULE, __doc__)
    parser.add_argument("--users", type=count(), default=1000, help="users timed per case")
    parser.add_argument(
        "--new-products", type=count(), default=20, help="products added one at a time"
    )
    parser.add_argument("--epochs", type=count(), default=15, help="most training epochs")
    parser.add_argument("--seed", type=count(0, MAX_SEED), default=0)
    add_folder_arguments(
        parser,
        "benchmarks/.work",
        "work folder (the store prepared under WORK/recommend)",
        data_help="folder of the real data sets (the synthetic shop needs none)",
    )
    add_out_argument(parser, NAME)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    source = prepare("synthetic", args.work / "recommend", args.data)
    folder = args.work / "serving" / "store"
    if folder.exists():
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, folder)
    rng = np.random.default_rng(args.seed)
    results: dict[str, Any] = {"k": K, "goal_p99_ms": GOAL_P99_MS, "threads": 1}
    with EmbeddedStore(folder) as store:
        t0 = time.perf_counter()
        current = embed(store, progress=True)
        results["embed_s"] = time.perf_counter() - t0
        results["embed_encoded"] = {k: v for k, v in current.encoded.items() if v}
        print(f"embed pass: {results['embed_s']:.1f} s, encoded {results['embed_encoded']}")
        t0 = time.perf_counter()
        trained = train(store, TrainConfig(model="fusion", epochs=args.epochs, lr=0.01,
                                           batch_size=8192, patience=5), progress=True)  # fmt: skip
        results["train_s"] = time.perf_counter() - t0
        results["train"] = trained.summary()
        # new users: demographics only
        n_new = min(args.users, 200)
        new = pd.DataFrame({
            "id": [f"serving-new-{i}" for i in range(n_new)],
            "age": rng.integers(18, 70, n_new),
            "gender": rng.choice(["female", "male"], n_new),
            "occupation": rng.choice(["nurse", "engineer", "teacher", "student"], n_new),
        })  # fmt: skip
        store.write_node_table("User", pa.Table.from_pandas(new, preserve_index=False))
        t0 = time.perf_counter()
        rec = Recommender(store)
        results["build_s"] = time.perf_counter() - t0
        st = rec.state
        counts = np.diff(st.seen.indptr)
        heavy = [st.users[i] for i in np.flatnonzero(counts > LIGHT_USER_MAX)]
        light = [st.users[i] for i in np.flatnonzero((counts > 0) & (counts <= LIGHT_USER_MAX))]
        users = list(rng.choice(heavy, size=min(args.users, len(heavy)), replace=False))
        light = list(rng.choice(light, size=min(args.users, len(light)), replace=False))
        rows = []
        brute = _latencies(_brute_force(rec), users)
        rows.append(_summary("brute-force numpy top-10 (model users)", brute))
        ms = _latencies(lambda u: rec.recommend(u, K, explain=False), users)
        rows.append(_summary("recommend, model users, no reasons", ms))
        ms = _latencies(lambda u: rec.recommend(u, K), users)
        rows.append(_summary("recommend, model users, with reasons", ms))
        ms = _latencies(lambda u: rec.recommend(u, K, diversity=0.3), users)
        rows.append(_summary("recommend, model users, diversity 0.3", ms))
        ms = _latencies(lambda u: rec.recommend(u, K), light)
        rows.append(_summary(f"recommend, light users (1-{LIGHT_USER_MAX} interactions)", ms))
        ms = _latencies(lambda u: rec.recommend(u, K), list(new["id"]))
        rows.append(_summary("recommend, new users (demographics only)", ms))
        kernels = rec.fusion.available if rec.fusion is not None else ()
        if kernels and st.kernel is not None:  # what each kernel of the blend costs
            for names in [[k] for k in kernels] + [list(kernels)]:
                rows.append(_summary(f"kernels {', '.join(names)} (model users, alone)",
                                     _latencies(_kernels_of(rec, names), users)))  # fmt: skip
        # new products, one at a time
        twins = rng.choice(len(st.items), size=args.new_products, replace=False)
        cat = rec.catalogue

        def add(i: int) -> None:
            j = int(twins[i])
            rec.add_products(pd.DataFrame({
                "id": [f"serving-p{i}"], "title": [f"{cat.title[j]} (new)"],
                "description": ["A new product."], "price": [float(cat.price[j])],
                "category_id": [cat.category[j]], "brand_id": [cat.brand[j]],
            }))  # fmt: skip

        ms = _latencies(add, list(range(args.new_products)))
        rows.append(_summary("add_products, one new product", ms))
        first = users[: args.new_products]

        def by_category(i: int) -> None:
            name = cat.category_names[cat.category[int(twins[i])] or ""]
            rec.recommend(first[i], K, category=name)

        ms = _latencies(by_category, list(range(args.new_products)))
        rows.append(_summary("recommend with a category filter, after new products", ms))

        def view(i: int) -> None:
            u = st.user_index[first[i]]
            unseen = np.flatnonzero(~np.isin(np.arange(len(st.items)), st.seen[u].indices))
            rec.add_interactions(pd.DataFrame({
                "user_id": [first[i]], "product_id": [st.items[int(rng.choice(unseen))]],
                "type": ["VIEWED"], "ts": ["2026-11-30T12:00:00"],
            }))  # fmt: skip

        ms = _latencies(view, list(range(args.new_products)))
        rows.append(_summary("add_interactions, one view (a model user)", ms))
    base = rows[0]["p99_ms"]
    table = [
        [r["case"], r["calls"], f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}", f"{r['per_s']:,.0f}",
         f"{r['p99_ms'] / base:.1f}"]
        for r in rows
    ]  # fmt: skip
    headers = ["case", "calls", "p50 ms", "p99 ms", "calls/s", "p99 / brute force"]
    text = print_table(headers, table, title=f"Serving, bench shop, k={K}, one thread")
    results.update({"rows": rows, "users": len(users), "light_users": len(light)})
    path = save_results(NAME, results, out=args.out, command=command_line(MODULE, argv),
                        tables=[text])  # fmt: skip
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
