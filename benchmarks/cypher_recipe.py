"""Quality of the pure-Cypher recommendation recipe (``graphfusion.cypher_recipes``).

On a copy of each prepared store of ``benchmarks.recommend``, the fusion model is trained with
that benchmark's settings (its taste model included) and written back (``fused_vec`` and
``rec_vec``), then the same split's test interactions are ranked (training and validation
products left out, full ranking) by:

- the recipe two versions ago: the cosine of the stored ``fused_vec``;
- the recipe one version ago: the GNN's own scores, ``u . i + b`` (its ``rec_vec`` was those
  lifted to a cosine: ``git show 7763141``), without the served blend;
- the recipe: the cosine of the stored ``rec_vec``, factors of the served model's whole score
  matrix (``graphfusion.rec_vectors``);
- the served model (``TrainResult.test``: the GNN's scores blended with the neighbourhood
  and taste kernels), which the recipe approximates.

Last, the recipe's own query runs on the store for ``--users`` users (the store holds every
interaction, so it leaves out all of a user's products), timed, and its top 10 is compared
with numpy's ranking of the same vectors.

Run::

    python -m benchmarks.cypher_recipe [--datasets synthetic,myntra] [--seeds 0,1,2]
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.common import (
    add_folder_arguments,
    add_out_argument,
    benchmark_parser,
    command_line,
    count,
    name_list,
    print_table,
    require_files,
    save_results,
    seed_list,
)
from benchmarks.recommend import BATCH_SIZE, DATASETS, LR, PATIENCE, data_needs, prepare
from graphfusion.cypher_recipes import SEEN, recommend_query
from graphfusion.evaluate import full_ranking_metrics, random_split
from graphfusion.features.embed import read_vectors
from graphfusion.graph import unit_rows
from graphfusion.store import EmbeddedStore
from graphfusion.train import TrainConfig, _per_user, load_interactions, train

os.environ.setdefault("HF_HUB_OFFLINE", "1")

NAME = "cypher-recipe"
MODULE = "benchmarks.cypher_recipe"
RANKINGS = {
    "fused_cosine": "the recipe two versions ago: cosine of fused_vec",
    "gnn_scores": "the recipe one version ago: the GNN's u . i + b",
    "rec_cosine": "the recipe: cosine of rec_vec (factors of the served scores)",
    "served": "the served model (GNN, neighbourhoods and taste model)",
}
K = 10


def _query_agreement(
    store: EmbeddedStore,
    users: list[str],
    items: list[str],
    rec: tuple[np.ndarray, np.ndarray],
    picked: np.ndarray,
) -> tuple[float, float]:
    """Share of the ``picked`` users whose top 10 by the recipe's query on the store is the
    top 10 of numpy's cosine of the same ``rec`` vectors over the products they never chose,
    and the query's mean time in milliseconds."""
    query = recommend_query("ladybug", dim=rec[0].shape[1])
    index = {k: i for i, k in enumerate(items)}
    same, spent = 0, 0.0
    for u in picked.tolist():
        chosen = {
            index[r["p"]]
            for t in SEEN
            for r in store.query(f"MATCH (:User {{id: $u}})-[:{t}]->(p:Product) RETURN p.id AS p",
                                 {"u": users[u]})
        }  # fmt: skip
        cosine = unit_rows(rec[1]) @ unit_rows(rec[0][u : u + 1])[0]
        cosine[list(chosen)] = -np.inf
        want = set(np.argsort(-cosine, kind="stable")[:K].tolist())
        started = time.perf_counter()
        rows = store.query(query, {"user_id": users[u], "k": K})
        spent += time.perf_counter() - started
        same += {index[r["id"]] for r in rows} == want
    return same / max(len(picked), 1), 1000 * spent / max(len(picked), 1)


def run(name: str, source: Path, work: Path, seeds: list[int], n_users: int) -> dict[str, Any]:
    """Every seed's metrics of each ranking on data set ``name``."""
    folder = work / "cypher-recipe" / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, folder)
    runs = []
    with EmbeddedStore(folder) as store:
        for seed in seeds:
            config = TrainConfig(model="fusion", epochs=100, seed=seed, patience=PATIENCE, lr=LR,
                                 batch_size=BATCH_SIZE)  # fmt: skip
            result = train(store, config, out_dir=work / "cypher-recipe-models" / name,
                           progress=True)  # fmt: skip
            frame, users, items = load_interactions(store, config.interactions,
                                                    config.type_weights)  # fmt: skip
            train_df, valid_df, test_df = random_split(frame, seed=seed)
            n_u = len(users)
            seen = [a + b for a, b in zip(_per_user(train_df, n_u), _per_user(valid_df, n_u),
                                          strict=True)]  # fmt: skip
            truth = _per_user(test_df, n_u)
            fused = (read_vectors(store, "User", "fused_vec", users),
                     read_vectors(store, "Product", "fused_vec", items))  # fmt: skip
            rec = (read_vectors(store, "User", "rec_vec", users),
                   read_vectors(store, "Product", "rec_vec", items))  # fmt: skip
            assert result.checkpoint is not None  # train saved the model it trained
            saved = torch.load(result.checkpoint, weights_only=True)["state_dict"]
            warm = np.bincount(train_df["item"], minlength=len(items)) > 0
            bias = saved["bias"].numpy().astype(np.float64) * warm
            scores = {
                "fused_cosine": unit_rows(fused[0]) @ unit_rows(fused[1]).T,
                "gnn_scores": fused[0] @ fused[1].T + bias,
                "rec_cosine": unit_rows(rec[0]) @ unit_rows(rec[1]).T,
            }
            entry: dict[str, Any] = {"seed": seed, "best_epoch": result.best_epoch}
            for key, s in scores.items():
                entry[key] = full_ranking_metrics(s.astype(np.float32), seen, truth, ks=(10, 20))
            entry["served"] = result.test
            picked = np.random.default_rng(seed).choice(n_u, size=min(n_users, n_u), replace=False)
            agreement, ms = _query_agreement(store, users, items, rec, picked)
            entry["query_top10_agreement"], entry["query_ms"] = agreement, ms
            print(f"  {name} seed {seed}: " + ", ".join(
                f"{k} {entry[k]['recall@20']:.4f}" for k in RANKINGS
            ) + f"; query agrees on {agreement:.0%}, {ms:.0f} ms a user", flush=True)  # fmt: skip
            runs.append(entry)
    return {"dataset": name, "runs": runs}


def _cell(runs: list[dict[str, Any]], key: str, metric: str) -> str:
    values = [r[key][metric] for r in runs]
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.4f} ± {std:.4f}"


def main(argv: list[str] | None = None) -> int:
    """Run, print the table and save ``benchmarks/results/cypher-recipe.json``."""
    parser = benchmark_parser(MODULE, __doc__)
    parser.add_argument(
        "--datasets",
        type=name_list(DATASETS, "data sets"),
        default="synthetic,myntra",
        help="comma-separated data sets of benchmarks.recommend",
    )
    parser.add_argument(
        "--seeds",
        type=seed_list,
        default="0,1,2",
        help="comma-separated seeds, one training run each",
    )
    parser.add_argument("--users", type=count(), default=100, help="users the query is run for")
    add_folder_arguments(
        parser,
        "benchmarks/.work",
        "work folder (the stores prepared under WORK/recommend)",
    )
    add_out_argument(parser, NAME)
    args = parser.parse_args(argv)
    require_files(parser, data_needs(args.datasets, args.work / "recommend", args.data))
    torch.set_num_threads(1)
    seeds = args.seeds
    results = []
    for name in args.datasets:
        source = prepare(name, args.work / "recommend", args.data)
        results.append(run(name, source, args.work, seeds, args.users))
    rows = [
        [res["dataset"], label, _cell(res["runs"], key, "recall@10"),
         _cell(res["runs"], key, "recall@20"), _cell(res["runs"], key, "ndcg@20")]
        for res in results
        for key, label in RANKINGS.items()
    ]  # fmt: skip
    table = print_table(["data set", "ranking", "Recall@10", "Recall@20", "NDCG@20"], rows,
                        title="Pure-Cypher recommendation recipe")  # fmt: skip
    for res in results:
        agree = statistics.fmean(r["query_top10_agreement"] for r in res["runs"])
        ms = statistics.fmean(r["query_ms"] for r in res["runs"])
        print(f"{res['dataset']}: the query's top 10 equals numpy's for {agree:.1%} of users; "
              f"{ms:.1f} ms a query")  # fmt: skip
    path = save_results(NAME, {"seeds": seeds, "k": K, "datasets": results},
                        out=args.out, command=command_line(MODULE, argv),
                        tables=[table])  # fmt: skip
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
