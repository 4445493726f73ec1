"""How much of the synthetic bench shop's test interactions can any model rank at all?

The recommendation benchmark asks the fusion model to beat LightGCN by 10% on the synthetic
bench shop, where every model lands near popularity, and to be far above it on cold-start
products. This benchmark measures, on the same per-user 8:1:1 split of the same prepared store
(``benchmarks/.work/recommend/synthetic``, made by ``python -m benchmarks.recommend
--datasets synthetic``), three rankings that read the generator's hidden
``ground_truth.json``, which no model sees:

- ``popularity``: log(1 + training interactions of the product);
- ``known attributes``: popularity plus, per hidden product attribute (category, colour,
  brand, price level), ``w * log(share of the user's training products with the product's
  value, smoothed towards the overall share / the overall share)``, the weights chosen by
  coordinate search on the validation split: the best an estimator of the users' tastes from
  their few training interactions can do with the attributes handed to it;
- ``true tastes``: the generator's own affinity (2 category + 1 colour + 1.2 brand - 0.6 price
  distance) plus ``alpha`` log popularity, ``alpha`` chosen on validation: the noise ceiling.

A second table does the same for the cold-start setting (the products held out, split into
validation and tested ones, exactly as ``TrainConfig(cold_items=0.2)`` does): ``chance``
(20 / the number of tested cold products), ``known attributes`` without popularity (the cold
products have none), weights chosen on the validation cold products, and ``true tastes``.

Run::

    python -m benchmarks.recommend_ceiling [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import command_line, print_table, save_results
from benchmarks.recommend import COLD_SHARE
from graphfusion.evaluate import full_ranking_metrics, random_split
from graphfusion.store import EmbeddedStore
from graphfusion.train import (
    _cold_split,
    _cold_validation,
    _per_user,
    _rank_among,
    load_interactions,
)

NAME = "recommend-ceiling"
MODULE = "benchmarks.recommend_ceiling"
ATTRIBUTES = ("category", "colour", "brand", "price_level")
GRID = (0.0, 0.15, 0.3, 0.5, 0.75, 1.0)
SMOOTHING = 2.0
LEVELS = {"low": 0, "mid": 1, "high": 2}


def _recall(scores: np.ndarray, seen: list[list[int]], truth: list[list[int]]) -> float:
    return float(full_ranking_metrics(scores, seen, truth, ks=(20,))["recall@20"])


def _attribute_features(
    train: pd.DataFrame, items: list[str], style: dict[str, Any], n_u: int
) -> dict[str, np.ndarray]:
    """Per hidden attribute, ``(n_u, n_i)``: log of the user's smoothed share of training
    products with the product's value over the overall share."""
    n_user = np.bincount(train["user"], minlength=n_u).astype(np.float64)[:, None]
    feats = {}
    for attr in ATTRIBUTES:
        values = sorted({style[i][attr] for i in items})
        code = np.array([values.index(style[i][attr]) for i in items])
        counts = np.zeros((n_u, len(values)))
        np.add.at(counts, (train["user"].to_numpy(), code[train["item"].to_numpy()]), 1)
        base = np.bincount(code[train["item"]], minlength=len(values)) / len(train)
        share = (counts + SMOOTHING * base) / (n_user + SMOOTHING)
        feats[attr] = np.log(share / base)[:, code]
    return feats


def _fit_weights(
    base: np.ndarray, feats: dict[str, np.ndarray], recall: Callable[[np.ndarray], float]
) -> dict[str, float]:
    """Attribute weights by coordinate search (two passes over :data:`GRID`) on ``recall``."""
    weights = dict.fromkeys(ATTRIBUTES, 0.3)

    def known(w: dict[str, float]) -> np.ndarray:
        return base + sum(w[a] * feats[a] for a in ATTRIBUTES)

    best = recall(known(weights))
    for _ in range(2):
        for attr in ATTRIBUTES:
            for value in GRID:
                trial = {**weights, attr: value}
                score = recall(known(trial))
                if score > best:
                    best, weights = score, trial
    return weights


def _affinity(users: list[str], items: list[str], truth: dict[str, Any]) -> np.ndarray:
    """The generator's affinity of every user for every product."""
    style, tastes = truth["product_style"], truth["user_preferences"]
    affinity = np.zeros((len(users), len(items)))
    cat = np.array([style[i]["category"] for i in items])
    col = np.array([style[i]["colour"] for i in items])
    brand = np.array([style[i]["brand"] for i in items])
    level = np.array([LEVELS[style[i]["price_level"]] for i in items])
    for u, key in enumerate(users):
        t = tastes[key]
        affinity[u] = (
            2.0 * np.isin(cat, t["categories"])
            + 1.0 * np.isin(col, t["colours"])
            + 1.2 * np.isin(brand, t["brands"])
            - 0.6 * np.abs(LEVELS[t["price_level"]] - level)
        )
    return affinity


def run_seed(work: Path, seed: int) -> dict[str, Any]:
    """Test Recall@20 of the three rankings on the split of ``seed``."""
    with EmbeddedStore(work / "store", read_only=True) as store:
        frame, users, items = load_interactions(store)
    truth = json.loads((work / "shop" / "ground_truth.json").read_text())
    train, valid, test = random_split(frame, seed=seed)
    n_u, n_i = len(users), len(items)
    seen = _per_user(train, n_u)
    val, tst = _per_user(valid, n_u), _per_user(test, n_u)
    seen_valid = [a + b for a, b in zip(seen, val, strict=True)]
    log_pop = np.log1p(np.bincount(train["item"], minlength=n_i)).astype(np.float64)
    pop = np.tile(log_pop, (n_u, 1))
    out: dict[str, Any] = {"popularity": _recall(pop, seen_valid, tst)}
    feats = _attribute_features(train, items, truth["product_style"], n_u)
    weights = _fit_weights(pop, feats, lambda s: _recall(s, seen, val))
    known = pop + sum(weights[a] * feats[a] for a in ATTRIBUTES)
    out["known attributes"] = _recall(known, seen_valid, tst)
    out["known attributes weights"] = weights
    affinity = _affinity(users, items, truth)
    alpha = max((0.25, 0.5, 1.0, 2.0), key=lambda a: _recall(affinity + a * pop, seen, val))
    out["true tastes"] = _recall(affinity + alpha * pop, seen_valid, tst)
    out["true tastes alpha"] = alpha
    return out


def run_cold_seed(work: Path, seed: int) -> dict[str, Any]:
    """Cold-start Recall@20 (the recommendation benchmark's cold setting: tested cold products
    ranked among themselves) of chance, known attributes and true tastes, on ``seed``'s split."""
    with EmbeddedStore(work / "store", read_only=True) as store:
        frame, users, items = load_interactions(store)
    truth = json.loads((work / "shop" / "ground_truth.json").read_text())
    n_u, n_i = len(users), len(items)
    warm, cold_df, cold = _cold_split(frame, n_i, COLD_SHARE, seed)
    valid_df, test_df, valid_items, test_items = _cold_validation(cold_df, cold, seed)
    train, _, _ = random_split(warm, seed=seed)
    valid_truth, test_truth = _per_user(valid_df, n_u), _per_user(test_df, n_u)

    def recall(scores: np.ndarray, items_: np.ndarray, truth_: list[list[int]]) -> float:
        return float(_rank_among(scores, items_, truth_)["recall@20"])

    # a random order puts each held-out product in the top 20 with probability 20 / N
    out: dict[str, Any] = {"chance": 20 / len(test_items)}
    feats = _attribute_features(train, items, truth["product_style"], n_u)
    zero = np.zeros((n_u, n_i))
    weights = _fit_weights(zero, feats, lambda s: recall(s, valid_items, valid_truth))
    known = sum(weights[a] * feats[a] for a in ATTRIBUTES)
    out["known attributes"] = recall(np.asarray(known), test_items, test_truth)
    out["known attributes weights"] = weights
    out["true tastes"] = recall(_affinity(users, items, truth), test_items, test_truth)
    return out


def _table(
    runs: dict[int, dict[str, Any]], seeds: list[int], methods: tuple[str, ...], title: str
) -> str:
    rows = []
    for method in methods:
        values = np.array([runs[s][method] for s in seeds])
        per_seed = " / ".join(f"{v:.4f}" for v in values)
        rows.append([method, f"{values.mean():.4f} ± {values.std():.4f}", per_seed])
    return print_table(["ranking", "test Recall@20", "per seed"], rows, title=title)


def main(argv: list[str] | None = None) -> int:
    """Run, print the table and save ``benchmarks/results/recommend-ceiling.json``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--work", type=Path, default=Path("benchmarks/.work/recommend/synthetic"))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if not (args.work / "store").exists():
        parser.error(f"no prepared store in {args.work}; run benchmarks.recommend first")
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = {seed: run_seed(args.work, seed) for seed in seeds}
    cold = {seed: run_cold_seed(args.work, seed) for seed in seeds}
    tables = [
        _table(runs, seeds, ("popularity", "known attributes", "true tastes"),
               f"Synthetic bench shop: rankings from hidden ground truth, seeds {args.seeds}"),
        _table(cold, seeds, ("chance", "known attributes", "true tastes"),
               f"Synthetic bench shop, cold start: tested cold products ranked among "
               f"themselves, seeds {args.seeds}"),
    ]  # fmt: skip
    path = save_results(NAME, {"seeds": seeds, "runs": runs, "cold": cold}, out=args.out,
                        command=command_line(MODULE, argv), tables=tables)  # fmt: skip
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
