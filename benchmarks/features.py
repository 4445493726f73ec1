"""Feature throughput and the signal in the image modality.

Two parts, each on its own data:

1. Throughput, on the synthetic shop and on ../shared/data/myntra_fashion: texts/s and
   images/s end to end (``graphfusion.features.embed``: read the content from the store,
   encode, write the vectors back) against the bare encoder on the same inputs in the same run
   (the encoder's ``encode_many`` on the same texts / image paths), as a ratio (goal: 0.85).
2. Signal, on myntra_fashion with products split 80/20 by id: 1-nearest-neighbour accuracy of
   the test products' article type (third field of ``description``) and colour (fourth field)
   from image vectors alone and from text vectors of the title alone, against chance
   (the majority class, and the expected accuracy of a random neighbour).

Run: ``python -m benchmarks.features [--size bench] [--myntra ../shared/data/myntra_fashion]
[--limit N]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.common import DEFAULT_DATA, command_line, print_table, save_results
from graphfusion.features.embed import embed, text_content
from graphfusion.features.image import ImageEncoder
from graphfusion.features.text import TextEncoder
from graphfusion.ingest import load
from graphfusion.store import EmbeddedStore
from graphfusion.synthetic import generate_shop


def _contents(store: EmbeddedStore, label: str, prop: str) -> list[Any]:
    ptype = store.schema.node(label).prop(prop).type
    cols = ", ".join(f"n.{c} AS {c}" for c in ptype.inputs)
    rows = store.query(f"MATCH (n:{label}) RETURN {cols}")
    if ptype.encoder == "text":
        return [t for t in (text_content(r, ptype.inputs) for r in rows) if t]
    return [r[ptype.inputs[0]] for r in rows if r[ptype.inputs[0]]]


def throughput(store: EmbeddedStore, kind: str, encoder: Any, dataset: str) -> list[dict[str, Any]]:
    """Bare encoder vs end-to-end embed on the same inputs, per vector property of ``kind``."""
    rows: list[dict[str, Any]] = []
    props = [(lbl, p.name) for lbl, p in store.schema.vector_properties() if p.type.encoder == kind]
    items_all: list[Any] = []
    for label, prop in props:
        items_all += _contents(store, label, prop)
    if not items_all:
        return rows
    started = time.perf_counter()
    result = encoder.encode_many(items_all, progress=True)
    bare_s = time.perf_counter() - started
    started = time.perf_counter()
    report = embed(
        store,
        only=kind,
        text_encoder=encoder if kind == "text" else None,
        image_encoder=encoder if kind == "image" else None,
        progress=True,
    )
    e2e_s = time.perf_counter() - started
    n_e2e = sum(report.encoded.values()) + sum(report.cached.values())
    rows.append(
        {
            "dataset": dataset,
            "modality": kind,
            "items": len(items_all),
            "bare_items": len(result.ok),
            "bare_per_s": len(items_all) / bare_s,
            "end_to_end_items": n_e2e,
            "end_to_end_per_s": len(items_all) / e2e_s,
            "ratio": bare_s / e2e_s,
            "bare_s": bare_s,
            "end_to_end_s": e2e_s,
            "errors": len(report.errors),
        }
    )
    print(report.summary(), flush=True)
    return rows


def _knn_accuracy(
    train: np.ndarray, y_train: np.ndarray, test: np.ndarray, y_test: np.ndarray
) -> float:
    train = train / np.linalg.norm(train, axis=1, keepdims=True)
    test = test / np.linalg.norm(test, axis=1, keepdims=True)
    hits = 0
    for start in range(0, len(test), 1024):
        sims = test[start : start + 1024] @ train.T
        hits += int((y_train[sims.argmax(axis=1)] == y_test[start : start + 1024]).sum())
    return hits / len(test)


def signal(store: EmbeddedStore, catalog: Path, seed: int = 0) -> list[dict[str, Any]]:
    """1-NN accuracy of article type and colour from image vectors and title text vectors."""
    meta = pd.read_csv(catalog, dtype={"product_id": str})
    parts = meta["description"].str.split(" - ", expand=True)
    meta["article_type"], meta["colour"] = parts[2].str.strip(), parts[3].str.strip()
    meta["id"] = "myntra:" + meta["product_id"]
    meta = meta.set_index("id")
    img = store.query(
        "MATCH (p:Product)-[:HAS_IMAGE]->(i:Image) WHERE i.image_vec IS NOT NULL "
        "RETURN p.id AS id, i.image_vec AS v"
    )
    image_vecs = {r["id"]: r["v"] for r in img}
    ids = sorted(set(image_vecs) & set(meta.index))
    titles = meta.loc[ids, "title"].fillna("").tolist()
    text = TextEncoder().encode_many(titles, progress=True)
    title_vecs = {ids[i]: text.vectors[row] for row, i in enumerate(text.ok)}
    ids = [i for i in ids if i in title_vecs]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(ids))
    cut = int(0.8 * len(ids))
    train_ids = [ids[i] for i in order[:cut]]
    test_ids = [ids[i] for i in order[cut:]]
    rows = []
    for target in ("article_type", "colour"):
        y_train = meta.loc[train_ids, target].to_numpy()
        y_test = meta.loc[test_ids, target].to_numpy()
        shares = pd.Series(y_train).value_counts(normalize=True)
        test_shares = pd.Series(y_test).map(shares).fillna(0.0)
        row: dict[str, Any] = {
            "target": target,
            "classes": int(meta[target].nunique()),
            "train": len(train_ids),
            "test": len(test_ids),
            "chance_majority": float((y_test == shares.index[0]).mean()),
            "chance_random_neighbour": float(test_shares.mean()),
        }
        for name, vecs in (("image", image_vecs), ("title_text", title_vecs)):
            train = np.asarray([vecs[i] for i in train_ids], dtype=np.float32)
            test = np.asarray([vecs[i] for i in test_ids], dtype=np.float32)
            row[f"knn_{name}"] = _knn_accuracy(train, y_train, test, y_test)
        rows.append(row)
    return rows


def _myntra_subset(folder: Path, limit: int | None, work: Path) -> dict[str, Path]:
    catalog = folder / "products.csv"
    if not limit:
        return {"catalog": catalog, "images": folder / "images.tar.gz"}
    frame = pd.read_csv(catalog, dtype=str).sample(n=limit, random_state=0)
    small = work / "products.csv"
    frame.to_csv(small, index=False)
    return {"catalog": small, "images": folder / "images.tar.gz"}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the tables and save ``benchmarks/results/features.json``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="bench", choices=["tiny", "small", "bench"])
    parser.add_argument("--myntra", type=Path, default=DEFAULT_DATA / "myntra_fashion")
    parser.add_argument("--limit", type=int, default=None, help="Myntra products to use.")
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    text_encoder, image_encoder = TextEncoder(), ImageEncoder()
    speed: list[dict[str, Any]] = []
    quality: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="gf-bench-features-") as tmp:
        work = Path(tmp)
        if not args.skip_synthetic:
            shop = work / "shop"
            generate_shop(shop, args.size, seed=0, progress=True)
            with EmbeddedStore(work / "synthetic") as store:
                load(store, "synthetic", {"shop": shop}, progress=True)
                speed += throughput(store, "text", text_encoder, f"synthetic {args.size}")
                speed += throughput(store, "image", image_encoder, f"synthetic {args.size}")
        if args.myntra.exists():
            sources = _myntra_subset(args.myntra, args.limit, work)
            with EmbeddedStore(work / "myntra") as store:
                load(store, "myntra", sources, progress=True)
                speed += throughput(store, "text", text_encoder, "myntra_fashion")
                speed += throughput(store, "image", image_encoder, "myntra_fashion")
                quality = signal(store, sources["catalog"])
        else:
            print(f"{args.myntra} not found: the myntra part is skipped")
    tables = [
        print_table(
            ["dataset", "modality", "items", "bare /s", "end to end /s", "ratio", "errors"],
            [
                [
                    r["dataset"],
                    r["modality"],
                    r["items"],
                    r["bare_per_s"],
                    r["end_to_end_per_s"],
                    r["ratio"],
                    r["errors"],
                ]
                for r in speed
            ],
            title="Encoding throughput: end to end (store -> encoder -> store) vs bare encoder",
        )
    ]
    if quality:
        tables.append(
            print_table(
                [
                    "target",
                    "classes",
                    "test",
                    "image 1-NN",
                    "title text 1-NN",
                    "majority",
                    "random neighbour",
                ],
                [
                    [
                        q["target"],
                        q["classes"],
                        q["test"],
                        q["knn_image"],
                        q["knn_title_text"],
                        q["chance_majority"],
                        q["chance_random_neighbour"],
                    ]
                    for q in quality
                ],
                title="myntra_fashion, 80/20 split by product: 1-NN accuracy on the test products",
            )
        )
    save_results(
        "features",
        {"throughput": speed, "myntra_knn": quality},
        out=args.out,
        command=command_line("benchmarks.features", argv),
        tables=tables,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
