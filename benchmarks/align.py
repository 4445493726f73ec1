"""Cross-modal retrieval on myntra_fashion: text <-> image, after alignment.

Products split 80/20 by id (seed 0); the aligners are fitted on the training products' (title
text vector, image vector) pairs and measured on the test products: text-to-image and
image-to-text Recall@1/5/10 and median rank, for a random projection of the raw vectors to a
common size, CCA and the contrastive heads, beside chance.

Run: ``python -m benchmarks.align [--myntra ../shared/data/myntra_fashion] [--limit N]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import command_line, print_table, require_files, save_results
from benchmarks.features import DEFAULT_DATA, _myntra_subset
from graphfusion.align import CCA, ContrastiveAligner, RandomProjection, cross_modal_retrieval
from graphfusion.features.embed import embed
from graphfusion.ingest import load
from graphfusion.store import EmbeddedStore

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pairs(store: EmbeddedStore) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Products with both a text and an image vector: ids, text matrix, image matrix."""
    rows = store.query(
        "MATCH (p:Product)-[:HAS_IMAGE]->(i:Image) WHERE p.text_vec IS NOT NULL "
        "AND i.image_vec IS NOT NULL RETURN p.id AS id, p.text_vec AS t, i.image_vec AS v "
        "ORDER BY id"
    )
    ids = [r["id"] for r in rows]
    return ids, np.asarray([r["t"] for r in rows]), np.asarray([r["v"] for r in rows])


def main(argv: list[str] | None = None) -> int:
    """Run, print the table and save ``benchmarks/results/align.json``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--myntra", type=Path, default=DEFAULT_DATA / "myntra_fashion")
    parser.add_argument("--limit", type=int, default=None, help="Myntra products to use.")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    require_files(
        parser,
        {"the Myntra catalogue": [args.myntra / "products.csv"]},
        hint="Point --myntra at the folder of the Myntra catalogue (products.csv, images)",
    )
    if (args.limit is not None and args.limit < 2) or args.dim < 1:
        parser.error("--limit must be at least 2 and --dim at least 1")
    with tempfile.TemporaryDirectory(prefix="gf-bench-align-") as tmp:
        sources = _myntra_subset(args.myntra, args.limit, Path(tmp))
        with EmbeddedStore(Path(tmp) / "store") as store:
            load(store, "myntra", sources, progress=True)
            embed(store, only=["text", "image"], progress=True)
            ids, text, image = pairs(store)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(ids))
    cut = int(0.8 * len(ids))
    train, test = order[:cut], order[cut:]
    aligners: dict[str, Any] = {
        "random projection": RandomProjection(args.dim),
        "CCA": CCA(args.dim, reg=0.1),
        "contrastive": ContrastiveAligner(args.dim, epochs=30),
    }
    results: list[dict[str, Any]] = []
    n = len(test)
    chance = {"recall@1": 1 / n, "recall@5": 5 / n, "recall@10": 10 / n, "median_rank": n / 2}
    results.append({"method": "chance", "direction": "either", **chance})
    for name, aligner in aligners.items():
        aligner.fit(text[train], image[train])
        t, v = aligner.transform1(text[test]), aligner.transform2(image[test])
        results.append({"method": name, "direction": "text->image", **cross_modal_retrieval(t, v)})
        results.append({"method": name, "direction": "image->text", **cross_modal_retrieval(v, t)})
    table = print_table(
        ["method", "direction", "R@1", "R@5", "R@10", "median rank"],
        [
            [
                r["method"],
                r["direction"],
                r["recall@1"],
                r["recall@5"],
                r["recall@10"],
                r["median_rank"],
            ]
            for r in results
        ],
        title=f"myntra_fashion text <-> image retrieval, {n} test products, dim {args.dim}",
    )
    save_results(
        "align",
        {"products": len(ids), "test": n, "dim": args.dim, "results": results},
        out=args.out,
        command=command_line("benchmarks.align", argv),
        tables=[table],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
