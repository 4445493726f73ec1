"""Defect propagation quality on the synthetic bench shop (3 seeds) and a real-text check.

For each seed the ``bench`` shop (40 suppliers, 300 batches, 5,000 products, 20,000 reviews;
defective batches and suppliers planted with hidden rates, shown by reviews and photos with
noise) is generated, loaded and embedded (text and image) into ``--work``, once. Then:

- ROC AUC and precision@10 of the propagated batch and supplier risk
  (:func:`graphfusion.defects.analyse`) against the ground truth, and of two baselines in the
  same run: (a) the raw complaint share (reviews rated 1-2) of each supplier's or batch's
  products, (b) their mean review rating (lower = riskier);
- at-risk products: among products without a defect review, the 10 with the highest risk;
  precision = the share of them in a defective batch;
- real text: on ../shared/data/womens_clothing_reviews, the ROC AUC of the review *text*
  defect score (the rating is not used) for telling 1-2 star from 4-5 star reviews, on a
  seeded sample.

Run::

    python -m benchmarks.defects [--seeds 0,1,2] [--sample 4000] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import command_line, print_table, save_results
from benchmarks.features import DEFAULT_DATA
from graphfusion.defects import DEFECT_PHRASES, FINE_PHRASES, TEXT_SCALE, analyse
from graphfusion.features.embed import embed
from graphfusion.features.text import TextEncoder
from graphfusion.graph import unit_rows
from graphfusion.ingest import load
from graphfusion.store import EmbeddedStore
from graphfusion.synthetic import generate_shop

os.environ.setdefault("HF_HUB_OFFLINE", "1")

NAME = "defects"


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC by the rank-sum formula (ties get mean ranks); NaN without both classes."""
    y = np.asarray(labels, dtype=bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    if not n1 or not n0:
        return float("nan")
    ranks = pd.Series(np.asarray(scores, dtype=float)).rank().to_numpy()
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def precision_at(labels: np.ndarray, scores: np.ndarray, k: int = 10) -> float:
    """Share of positives among the ``k`` highest scores (ties broken by position)."""
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")[:k]
    return float(np.asarray(labels, dtype=bool)[order].mean())


def prepare(seed: int, work: Path) -> tuple[Path, dict[str, Any]]:
    """The embedded store and ground truth of the bench shop of ``seed`` (made once)."""
    folder = work / f"seed{seed}"
    shop, store_dir, done = folder / "shop", folder / "store", folder / "prepared.json"
    reuse = work.parent / "recommend" / "synthetic"  # benchmarks.recommend's seed-0 shop
    if not done.exists() and seed == 0 and (reuse / "prepared.json").exists():
        shutil.copytree(reuse / "shop", shop, dirs_exist_ok=True)
        shutil.copytree(reuse / "store", store_dir, dirs_exist_ok=True)
        done.write_text(json.dumps({"copied_from": str(reuse)}))
    if not done.exists():
        generate_shop(shop, "bench", seed=seed, progress=True)
        started = time.perf_counter()
        with EmbeddedStore(store_dir) as store:
            store.reset()
            load(store, "synthetic", {"shop": shop}, progress=True)
            embed(store, only=("text", "image"), progress=True)
        done.write_text(json.dumps({"prepare_s": round(time.perf_counter() - started, 1)}))
    return store_dir, json.loads((shop / "ground_truth.json").read_text())


def _baselines(analysis: Any, level: str) -> dict[str, pd.Series]:
    reviews = analysis.reviews.merge(
        analysis.products[["product_id", "batch_id", "supplier_id"]], on="product_id"
    )
    rating = pd.to_numeric(reviews["rating"], errors="coerce")
    reviews = reviews.assign(low=rating <= 2, rating=rating)
    key = f"{level}_id"
    grouped = reviews.groupby(key)
    return {"complaint share": grouped["low"].mean(), "mean rating": -grouped["rating"].mean()}


def run_seed(seed: int, work: Path, encoder: TextEncoder) -> dict[str, Any]:
    """Metrics of one seed."""
    store_dir, truth = prepare(seed, work)
    with EmbeddedStore(store_dir, read_only=True) as store:
        started = time.perf_counter()
        analysis = analyse(store, encoder)
        seconds = time.perf_counter() - started
    out: dict[str, Any] = {"seed": seed, "analyse_s": seconds}
    levels = (
        ("batch", analysis.batches, truth["defective_batches"]),
        ("supplier", analysis.suppliers, truth["defective_suppliers"]),
    )
    for level, frame, bad in levels:
        key = f"{level}_id"
        labels = frame[key].isin(bad).to_numpy()
        methods = {"propagated risk": frame["risk"]}
        for name, series in _baselines(analysis, level).items():
            methods[name] = frame[key].map(series).fillna(series.median())
        for name, score in methods.items():
            out[f"{level}/{name}/auc"] = auc(labels, score.to_numpy())
            out[f"{level}/{name}/p@10"] = precision_at(labels, score.to_numpy())
    quiet = analysis.products[analysis.products["defect_reviews"] == 0]
    labels = quiet["product_id"].isin(truth["defective_products"]).to_numpy()
    out["at_risk/p@10"] = precision_at(labels, quiet["risk"].to_numpy())
    out["at_risk/candidates"] = len(quiet)
    return out


def real_text(data: Path, sample: int, seed: int, encoder: TextEncoder) -> dict[str, Any]:
    """ROC AUC of the text defect score on real clothing reviews (1-2 vs 4-5 stars)."""
    frame = pd.read_parquet(data / "womens_clothing_reviews" /
                            "WomensClothingE-CommerceReviews.parquet.brotli")  # fmt: skip
    frame = frame[frame["Rating"].isin([1, 2, 4, 5]) & frame["Review Text"].notna()]
    frame = frame.sample(n=min(sample, len(frame)), random_state=seed)
    texts = (frame["Title"].fillna("") + ". " + frame["Review Text"]).str.strip(". ").tolist()
    unit = unit_rows(encoder.encode(texts))
    bad = unit_rows(encoder.encode(list(DEFECT_PHRASES)))
    good = unit_rows(encoder.encode(list(FINE_PHRASES)))
    margin = (unit @ bad.T).max(1) - (unit @ good.T).max(1)
    score = 1.0 / (1.0 + np.exp(-TEXT_SCALE * margin))
    labels = frame["Rating"].isin([1, 2]).to_numpy()
    return {"reviews": len(frame), "low_share": float(labels.mean()), "auc": auc(labels, score)}


def main(argv: list[str] | None = None) -> int:
    """Run, print the tables and save ``benchmarks/results/defects.json``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--sample", type=int, default=4000)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--work", type=Path, default=Path("benchmarks/.work/defects"))
    args = parser.parse_args(argv)
    encoder = TextEncoder()
    runs = [run_seed(int(s), args.work, encoder) for s in args.seeds.split(",") if s]
    rows = []
    for level in ("batch", "supplier"):
        for name in ("propagated risk", "complaint share", "mean rating"):
            cell = []
            for metric in ("auc", "p@10"):
                values = [r[f"{level}/{name}/{metric}"] for r in runs]
                sd = statistics.pstdev(values) if len(values) > 1 else 0.0
                cell.append(f"{statistics.fmean(values):.3f} ± {sd:.3f}")
            rows.append([level, name, *cell])
    text = print_table(["level", "method", "ROC AUC", "precision@10"], rows,
                       title=f"Defects, bench shop, seeds {args.seeds}")  # fmt: skip
    at_risk = [r["at_risk/p@10"] for r in runs]
    real = real_text(args.data, args.sample, 0, encoder)
    text2 = print_table(
        ["check", "value"],
        [["at-risk products precision@10 (mean over seeds)", f"{statistics.fmean(at_risk):.3f}"],
         ["real reviews: text defect score ROC AUC (1-2 vs 4-5 stars)", f"{real['auc']:.3f}"],
         ["real reviews scored", real["reviews"]]],
        title="At-risk products and real text",
    )  # fmt: skip
    path = save_results(NAME, {"runs": runs, "real_text": real}, command=command_line(NAME, argv),
                        tables=[text, text2])  # fmt: skip
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
