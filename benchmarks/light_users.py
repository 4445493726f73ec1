"""Light users: how well are users with one or two interactions served?

:class:`graphfusion.recommend.Recommender` serves users with at most
:data:`~graphfusion.recommend.LIGHT_USER_MAX` interactions by its cold-start blend
(popularity, the mean fused vector of their products, that of users with the same demographics
and the model's own scores; :mod:`graphfusion.light`), not by the model's scores alone. This
benchmark measures that choice and the blend's weights chosen on the store.

On a copy of a store prepared by ``benchmarks.recommend`` (``synthetic``: the bench shop;
``myntra``: the Myntra catalogue with generated users, where content predicts the
interactions; ``movielens``: MovieLens 100K, with user demographics), ``--users`` users (at
most a quarter of those with at least 10 distinct products; seeded) keep one (half of them) or
two (the others) of their products, drawn at random; their other interactions are deleted
from the store. A fusion model is trained on the rest (the benchmark's settings) and
served. Training is asked to choose the light-user blend's weights on the store
(``TrainConfig(light_users=LIGHT_SHARE)``: a share of the other users with at least 10
products keep one or two of them in training; a third of them search for weights, a third
confirm them and a third test the served ones; see :mod:`graphfusion.light`). For each
benchmark user, every product they do not keep is ranked by:

- ``popularity``: log(1 + interactions);
- ``default blend``: the blend with :data:`graphfusion.light.DEFAULT_WEIGHTS` (what is served
  without ``light_users``);
- ``cold-start blend``: what ``recommend`` serves them (the weights training chose);
- ``model``: the model path of heavier users (fused vectors, bias and neighbourhoods);
- ``their products``: the mean fused vector of their products alone (the blend's taste part);
- ``found blend``: the blend with the weights training's search found, whether or not it
  served them (their gain did not clear :data:`graphfusion.light.MIN_Z` standard errors).

Each ranking is scored per user by the hits among its top 20 of their deleted products,
divided by the number deleted (Recall@20 as :mod:`graphfusion.evaluate` and training's own
light-user search count it) and by min(20, that number) (so a user who lost more than 20
products can still reach 1); means over the users. The found blend's gain over the default
blend on the benchmark's users is given per user, paired, with its standard error, in both
counts.

Run::

    python -m benchmarks.light_users [--datasets synthetic,myntra,movielens] [--users 600]
        [--seed 0]
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

from benchmarks.common import (
    MAX_SEED,
    add_folder_arguments,
    add_out_argument,
    benchmark_parser,
    command_line,
    count,
    name_list,
    print_table,
    require_files,
    save_results,
)
from benchmarks.recommend import BATCH_SIZE, LR, PATIENCE, data_needs, prepare
from graphfusion import recommend
from graphfusion.light import DEFAULT_WEIGHTS
from graphfusion.light import paired_gain as mean_and_error
from graphfusion.recommend import Recommender
from graphfusion.store import EmbeddedStore
from graphfusion.train import INTERACTIONS, TrainConfig, load_interactions, train

os.environ.setdefault("HF_HUB_OFFLINE", "1")

NAME = "light-users"
MODULE = "benchmarks.light_users"
DATASETS = ("synthetic", "myntra", "movielens")
MIN_PRODUCTS = 10
K = 20
#: Per user: Recall@20 as the protocol counts it (``graphfusion.evaluate``: hits over the
#: number of lost products, as training's own light-user search counts it), and hits over
#: min(20, that number) (a user who lost more than 20 products can still reach 1).
METRICS = ("recall@20", "hits/min(20,lost)")
#: ``TrainConfig.light_users`` of the training run.
LIGHT_SHARE = 0.25


def make_light(
    store: EmbeddedStore, users: int, seed: int
) -> dict[str, tuple[list[str], list[str]]]:
    """Delete all but one or two products' interactions of ``users`` users; per user, the
    kept and the deleted product keys."""
    frame, user_keys, item_keys = load_interactions(store)
    per_user = frame.groupby("user")["item"].unique()
    counts = per_user.map(len)
    candidates = sorted(int(u) for u in counts.index[counts.to_numpy() >= MIN_PRODUCTS])
    rng = np.random.default_rng(seed)
    chosen = rng.choice(candidates, min(users, len(candidates) // 4), replace=False)
    out = {}
    for n, u in enumerate(chosen):
        products = sorted(int(i) for i in per_user[u])
        keep = sorted(int(i) for i in rng.choice(products, 1 + n % 2, replace=False))
        kept = [item_keys[i] for i in keep]
        out[user_keys[u]] = (kept, [item_keys[i] for i in products if i not in keep])
        for rel in INTERACTIONS:  # types from the schema's interaction list
            store.query(
                f"MATCH (:User {{id: $u}})-[r:{rel}]->(p:Product) WHERE NOT p.id IN $keep DELETE r",
                {"u": user_keys[u], "keep": kept},
            )
    return out


def _rankings(
    rec: Recommender, found: dict[str, float] | None
) -> dict[str, Callable[[str], np.ndarray]]:
    st = rec.state

    def mine(user: str) -> np.ndarray:
        u = st.user_index[user]
        return st.seen.indices[st.seen.indptr[u] : st.seen.indptr[u + 1]]

    def model(user: str) -> np.ndarray:
        with mock.patch.object(recommend, "LIGHT_USER_MAX", 0):  # the heavier users' path
            scores, how = rec.scores(user)
        assert how == "model"
        return scores

    rankings = {
        "popularity": lambda user: rec._popularity().astype(np.float64),
        "default blend": lambda user: rec._blend(st.user_index[user], DEFAULT_WEIGHTS),
        "cold-start blend": lambda user: rec.scores(user)[0],
        "model": model,
        "their products": lambda user: st.item_vecs @ st.item_vecs[mine(user)].mean(0),
    }
    if found:
        rankings["found blend"] = lambda user: rec._blend(st.user_index[user], found)
    return rankings


def run(
    name: str, source: Path, work: Path, users: int, seed: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One row per ranking and number of kept products; what training chose and how the
    weights it found fare on the benchmark's users."""
    folder = work / "store"
    if folder.exists():
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, folder)
    with EmbeddedStore(folder) as store:
        light = make_light(store, users, seed)
        started = time.perf_counter()
        config = TrainConfig(model="fusion", epochs=100, lr=LR, batch_size=BATCH_SIZE,
                             patience=PATIENCE, seed=seed, light_users=LIGHT_SHARE)  # fmt: skip
        result = train(store, config, progress=True)
        train_s = time.perf_counter() - started
        print(f"  {name}: {result.summary()}", flush=True)
        rec = Recommender(store)
        st = rec.state
        found = result.light_search["found"] if result.light_search else None
        per_user: dict[str, dict[str, np.ndarray]] = {}
        for ranking, scores_of in _rankings(rec, found).items():
            hits, lost = [], []
            for user, (_, deleted) in light.items():
                u = st.user_index[user]
                scores = np.array(scores_of(user), dtype=np.float64)
                scores[st.seen.indices[st.seen.indptr[u] : st.seen.indptr[u + 1]]] = -np.inf
                top = set(np.argpartition(-scores, K)[:K].tolist())
                truth = {st.item_index[p] for p in deleted}
                hits.append(len(top & truth))
                lost.append(len(truth))
            h, n = np.array(hits, dtype=np.float64), np.array(lost, dtype=np.float64)
            per_user[ranking] = {METRICS[0]: h / n, METRICS[1]: h / np.minimum(K, n)}
    kept_of = np.array([len(kept) for kept, _ in light.values()])
    gains = {}
    if "found blend" in per_user:
        gains = {metric: paired_gain(per_user["found blend"][metric],
                                     per_user["default blend"][metric])
                 for metric in METRICS}  # fmt: skip
    rows = [
        {"dataset": name, "ranking": ranking, "kept": int(kept), "users": int(mask.sum()),
         **{metric: float(values[metric][mask].mean()) for metric in METRICS}}
        for ranking, values in per_user.items()
        for kept in sorted(set(kept_of.tolist()))
        if (mask := kept_of == kept).any()
    ]  # fmt: skip
    training = {"train_s": train_s, "light_weights": result.light_weights,
                "light_test": result.light, "light_search": result.light_search,
                "found_gain": gains, "summary": result.summary()}  # fmt: skip
    return rows, training


def paired_gain(new: np.ndarray, old: np.ndarray) -> dict[str, float]:
    """Mean per-user gain of ``new`` over ``old``, its standard error (paired,
    :func:`graphfusion.light.paired_gain`) and the number of users."""
    gain, error = mean_and_error(new, old)
    return {"gain": gain, "standard error": error, "users": len(new)}


def _gain(gain: dict[str, float] | None) -> str:
    return f"{gain['gain']:+.4f} ± {gain['standard error']:.4f}" if gain else "-"


def main(argv: list[str] | None = None) -> int:
    """Run, print the table and save ``benchmarks/results/light-users.json``."""
    parser = benchmark_parser(MODULE, __doc__)
    parser.add_argument(
        "--datasets",
        type=name_list(DATASETS, "data sets"),
        default=",".join(DATASETS),
        help="comma-separated data sets",
    )
    parser.add_argument(
        "--users",
        type=count(2),
        default=600,
        help="benchmark users made light (half keep one product, half two)",
    )
    parser.add_argument("--seed", type=count(0, MAX_SEED), default=0)
    add_folder_arguments(
        parser,
        "benchmarks/.work",
        "work folder (the stores prepared under WORK/recommend)",
    )
    add_out_argument(parser, NAME)
    args = parser.parse_args(argv)
    datasets = args.datasets
    require_files(parser, data_needs(datasets, args.work / "recommend", args.data))
    rows: list[dict[str, Any]] = []
    training: dict[str, dict[str, Any]] = {}
    for name in datasets:
        source = prepare(name, args.work / "recommend", args.data)
        got, training[name] = run(
            name, source, args.work / "light_users" / name, args.users, args.seed
        )
        rows += got
    table = [
        [r["dataset"], r["kept"], r["ranking"], r["users"], *(f"{r[m]:.4f}" for m in METRICS)]
        for r in sorted(rows, key=lambda r: (r["dataset"], r["kept"]))
    ]
    text = print_table(
        ["data set", "products kept", "ranking", "users", *METRICS],
        table,
        title="Light users: one or two products kept, the rest to find",
    )
    text2 = print_table(
        [
            "data set",
            "users searching / confirming",
            "weights found",
            "gain on the confirming users",
            "served",
            "tested users' Recall@20",
            "with the defaults",
            *(f"found - defaults, benchmark's users, {m}" for m in METRICS),
        ],
        [
            [
                name,
                " / ".join(str(n) for n in r["light_search"]["users"]),
                ", ".join(f"{k} {v:g}" for k, v in r["light_search"]["found"].items()),
                f"{r['light_search']['gain']:+.4f} ± {r['light_search']['standard error']:.4f}",
                r["light_search"]["served"],
                f"{r['light_test']['recall@20']:.4f}",
                f"{r['light_test']['default recall@20']:.4f}",
                *(_gain(r["found_gain"].get(m)) for m in METRICS),
            ]
            for name, r in training.items()
        ],
        title=f"The blend's weights searched in training (light_users={LIGHT_SHARE}) and "
        "training's own test of the served ones",
    )
    results = {"seed": args.seed, "users": args.users, "min_products": MIN_PRODUCTS,
               "light_share": LIGHT_SHARE, "rows": rows, "training": training}  # fmt: skip
    path = save_results(NAME, results, out=args.out, command=command_line(MODULE, argv),
                        tables=[text, text2])  # fmt: skip
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
