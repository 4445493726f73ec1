"""Recommendation quality: popularity, MF-BPR, LightGCN and the fusion GNN, over 3 seeds.

Data sets (each prepared once into ``--work``: loaded and embedded, then reused):

- ``synthetic``: the generated ``bench`` shop (10k users, 5k products, 200k interactions);
- ``movielens``: MovieLens 100K (titles and genres as text, user demographics);
- ``gift_cards``: Amazon Reviews 2018 Gift Cards, 5-core;
- ``myntra``: the Myntra catalogue's real products and photos with generated users
  (``graphfusion generate --catalog myntra``; the model sees titles and photos only).

Protocol (``graphfusion.train``): per-user random 8:1:1 split of the interactions, BPR with
sampled negatives, early stopping on validation Recall@20, full ranking over the products the
user did not interact with in training; Recall and NDCG at 10 and 20 on the test split, mean
and standard deviation over the seeds. The ``cold`` setting (synthetic and myntra) removes
every interaction of 20% of the products from training; a quarter of these products validate
(the fusion model's content-only blend weights), the others are tested apart: each user's
held-out cold products ranked among all tested cold products, where only content can rank
them.

Run::

    python -m benchmarks.recommend [--datasets synthetic,movielens,gift_cards,myntra]
        [--models fusion,lightgcn,mf,popularity] [--settings warm,cold]
        [--seeds 0,1,2] [--epochs 100] [--work DIR] [--data ../shared/data]
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import (
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
    seed_list,
)
from graphfusion.catalog_shop import generate_catalog_shop
from graphfusion.features.embed import embed
from graphfusion.ingest import load
from graphfusion.store import EmbeddedStore
from graphfusion.synthetic import generate_shop
from graphfusion.train import MODELS, TrainConfig, train

os.environ.setdefault("HF_HUB_OFFLINE", "1")

NAME = "recommend"
MODULE = "benchmarks.recommend"
DATASETS = ("synthetic", "movielens", "gift_cards", "myntra")
COLD_DATASETS = ("synthetic", "myntra")
METRICS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")
COLD_SHARE = 0.2
GOAL = 1.10  # fusion / LightGCN Recall@20 on synthetic and myntra
# The same training settings for every model.
LR, BATCH_SIZE, PATIENCE = 0.01, 8192, 10


#: The files each data set reads under ``--data`` to be prepared (synthetic is generated).
DATA_FILES: dict[str, tuple[str, ...]] = {
    "synthetic": (),
    "movielens": tuple(
        f"movielens_100k/MovieLens100k_{part}.parquet.brotli" for part in ("data", "items", "users")
    ),
    "gift_cards": (
        "amazon_gift_cards/Gift_Cards_5.json.gz",
        "amazon_gift_cards/meta_Gift_Cards.json.gz",
    ),
    "myntra": ("myntra_fashion/products.csv",),
}


def data_needs(names: Iterable[str], work: Path, data: Path) -> dict[str, list[Path]]:
    """The files under ``data`` that each of ``names`` reads, for the data sets not yet
    prepared in ``work`` (a prepared store is reused and needs none)."""
    return {
        name: [data / rel for rel in DATA_FILES[name]]
        for name in names
        if not (work / name / "prepared.json").exists()
    }


def _prepare_synthetic(folder: Path, data: Path) -> tuple[str, dict[str, Any]]:
    shop = folder / "shop"
    if not (shop / "manifest.json").exists():
        generate_shop(shop, "bench", seed=0, progress=True)
    return "synthetic", {"shop": shop}


def _prepare_movielens(folder: Path, data: Path) -> tuple[str, dict[str, Any]]:
    base = data / "movielens_100k"
    return "movielens", {
        "ratings": base / "MovieLens100k_data.parquet.brotli",
        "items": base / "MovieLens100k_items.parquet.brotli",
        "users": base / "MovieLens100k_users.parquet.brotli",
    }


def _prepare_gift_cards(folder: Path, data: Path) -> tuple[str, dict[str, Any]]:
    base = data / "amazon_gift_cards"
    return "amazon_reviews", {
        "reviews": base / "Gift_Cards_5.json.gz",
        "meta": base / "meta_Gift_Cards.json.gz",
    }


def _prepare_myntra(folder: Path, data: Path) -> tuple[str, dict[str, Any]]:
    shop = folder / "shop"
    if not (shop / "manifest.json").exists():
        generate_catalog_shop(shop, "myntra", source=data / "myntra_fashion", progress=True)
    return "catalog_shop", {"shop": shop}


PREPARE: dict[str, Callable[[Path, Path], tuple[str, dict[str, Any]]]] = {
    "synthetic": _prepare_synthetic,
    "movielens": _prepare_movielens,
    "gift_cards": _prepare_gift_cards,
    "myntra": _prepare_myntra,
}


def prepare(name: str, work: Path, data: Path) -> Path:
    """Load and embed data set ``name`` into ``work/name/store`` once; the store's folder."""
    folder = work / name

    def build(store_dir: Path) -> dict[str, Any]:
        mapping, sources = PREPARE[name](folder, data)
        started = time.perf_counter()
        with EmbeddedStore(store_dir) as store:
            report = load(store, mapping, sources, progress=True)
            loaded = time.perf_counter()
            embed(store, progress=True)
            counts = store.counts().to_dict()
        return {
            "load_s": round(loaded - started, 1),
            "embed_s": round(time.perf_counter() - loaded, 1),
            "rejected": len(report.rejected),
            "counts": counts,
        }

    return prepared_store(folder, build)


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def run(
    name: str,
    store_dir: Path,
    models: Sequence[str],
    seeds: Sequence[int],
    epochs: int,
    cold: bool,
) -> list[dict[str, Any]]:
    """Train every model with every seed; one summary row per model."""
    rows = []
    with EmbeddedStore(store_dir) as store:
        for model in models:
            runs: list[dict[str, Any]] = []
            for seed in seeds:
                config = TrainConfig(
                    model=model, epochs=epochs, seed=seed, patience=PATIENCE, lr=LR,
                    batch_size=BATCH_SIZE, cold_items=COLD_SHARE if cold else 0.0,
                )  # fmt: skip
                result = train(store, config, out_dir=store_dir.parent / "models",
                               write_back=False, progress=True)  # fmt: skip
                scores = result.cold if cold else result.test
                runs.append({
                    **scores, "warm_recall@20": result.test["recall@20"],
                    "seconds_per_epoch": result.seconds_per_epoch,
                    **({"taste_seconds": result.taste_seconds} if result.taste_history else {}),
                    "best_epoch": result.best_epoch, "epochs": len(result.history),
                    **({"blend": result.blend} if result.blend else {}),
                })  # fmt: skip
                print(f"  {name} {'cold' if cold else 'warm'} {result.summary()}", flush=True)
            row: dict[str, Any] = {"dataset": name, "setting": "cold" if cold else "warm",
                                   "model": model, "runs": runs}  # fmt: skip
            for metric in (*METRICS, "seconds_per_epoch"):
                row[metric], row[f"{metric}_std"] = _mean_std([r[metric] for r in runs])
            rows.append(row)
    return rows


def _cell(row: dict[str, Any], metric: str) -> str:
    return f"{row[metric]:.4f} ± {row[f'{metric}_std']:.4f}"


def main(argv: list[str] | None = None) -> int:
    """Run, print the table and save ``benchmarks/results/recommend.json``."""
    parser = benchmark_parser(MODULE, __doc__)
    parser.add_argument(
        "--datasets",
        type=name_list(DATASETS, "data sets"),
        default=",".join(DATASETS),
        help="comma-separated data sets",
    )
    parser.add_argument(
        "--models",
        type=name_list(MODELS, "models"),
        default=",".join(MODELS),
        help="comma-separated models",
    )
    parser.add_argument(
        "--seeds",
        type=seed_list,
        default="0,1,2",
        help="comma-separated seeds, one training run each",
    )
    parser.add_argument("--epochs", type=count(), default=100, help="most epochs per run")
    parser.add_argument(
        "--settings",
        type=name_list(("warm", "cold"), "settings"),
        default="warm,cold",
        help="warm, cold (synthetic and myntra only) or both",
    )
    add_folder_arguments(
        parser,
        "benchmarks/.work/recommend",
        "folder of the prepared stores (made once, then reused)",
    )
    add_out_argument(parser, NAME)
    args = parser.parse_args(argv)
    datasets, models, seeds, wanted = args.datasets, args.models, args.seeds, args.settings
    if wanted == ["cold"] and not set(datasets) & set(COLD_DATASETS):
        parser.error(f"the cold setting runs on {' and '.join(COLD_DATASETS)} only, "
                     f"not on {', '.join(datasets)}")  # fmt: skip
    require_files(parser, data_needs(datasets, args.work, args.data))
    rows: list[dict[str, Any]] = []
    prepared = {}
    for name in datasets:
        store_dir = prepare(name, args.work, args.data)
        prepared[name] = json.loads((store_dir.parent / "prepared.json").read_text())
        settings = [False] * ("warm" in wanted)
        settings += [True] * ("cold" in wanted and name in COLD_DATASETS)
        for cold in settings:
            rows.extend(run(name, store_dir, models, seeds, args.epochs, cold))
    lightgcn = {(r["dataset"], r["setting"]): r for r in rows if r["model"] == "lightgcn"}
    table = []
    for r in rows:
        base = lightgcn.get((r["dataset"], r["setting"]))
        ratio = r["recall@20"] / base["recall@20"] if base and base["recall@20"] else None
        table.append([
            r["dataset"], r["setting"], r["model"], *(_cell(r, m) for m in METRICS),
            f"{r['seconds_per_epoch']:.2f}", "-" if ratio is None else f"{ratio:.2f}",
        ])  # fmt: skip
    headers = ["data set", "setting", "model", "Recall@10", "Recall@20", "NDCG@10", "NDCG@20",
               "s/epoch", "R@20 / LightGCN"]  # fmt: skip
    title = f"Recommendation, mean ± std over seeds {','.join(map(str, seeds))}"
    text = print_table(headers, table, title=title)
    results = {"seeds": seeds, "epochs": args.epochs, "cold_share": COLD_SHARE, "lr": LR,
               "batch_size": BATCH_SIZE, "patience": PATIENCE,
               "goal_ratio": GOAL, "prepared": prepared, "rows": rows}  # fmt: skip
    path = save_results(NAME, results, out=args.out, command=command_line(MODULE, argv),
                        tables=[text])  # fmt: skip
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
