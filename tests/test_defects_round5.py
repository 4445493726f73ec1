"""Defect analysis, round 5: the benchmark's real-text check scores as a store does, the
products at risk of a ranking are capped, and the warning of a store never embedded reads
cleanly on the command line."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from graphfusion.defects import AT_RISK_TOP, analyse, review_scores
from graphfusion.errors import ValidationError
from graphfusion.features.embed import embed
from graphfusion.features.text import TextEncoder
from graphfusion.store import EmbeddedStore

try:
    from test_defects import BROKE, FINE, _write_supply_graph
except ImportError:  # tests/ imported as a package
    from tests.test_defects import BROKE, FINE, _write_supply_graph

#: The repository: the command line test runs the package found there.
ROOT = Path(__file__).resolve().parents[1]
#: (title, text, rating) of real-looking clothing reviews, some of which only deny a defect.
REAL = [
    ("Love it", "Nothing is broken, zero issues after many washes.", 5),
    (None, "No flaws at all. The fabric is soft and the fit is true to size.", 5),
    ("Perfect", "Not damaged in shipping, no defects, no problems at all.", 4),
    ("Fell apart", "The seams ripped after one wash and the colour faded.", 1),
    ("Disappointed", "It arrived damaged, with a hole in the sleeve.", 2),
    ("Great dress", "Flattering and comfortable, would buy again.", 5),
]


def _real_frame() -> pd.DataFrame:
    """``REAL`` in the columns of the real-text check's data set."""
    return pd.DataFrame(REAL, columns=["Title", "Review Text", "Rating"])


def test_the_benchmark_scores_real_texts_as_a_store_does(tmp_path: Path) -> None:
    """The real-text check scored review vectors without their texts: a review that only
    denies defects ("Nothing is broken, zero issues") was read as the defects it names, as
    the library never does on a store. Its scores are now those of ``review_scores``."""
    from benchmarks.defects import real_text_scores

    encoder = TextEncoder()
    ids = [f"r{i}" for i in range(len(REAL))]
    with EmbeddedStore(tmp_path / "store") as store:
        store.write_node_table("Product", pa.table({"id": ["dress"], "title": ["Dress"]}))
        store.write_node_table("Review", pa.table({
            "id": ids, "title": [r[0] for r in REAL], "text": [r[1] for r in REAL],
            "rating": pa.array([float(r[2]) for r in REAL], pa.float64()),
        }))  # fmt: skip
        store.write_rel_table("ABOUT", pa.table({"src": ids, "dst": ["dress"] * len(ids)}),
                              start="Review", end="Product")  # fmt: skip
        embed(store, only=("text",))
        stored = review_scores(store, encoder).set_index("review_id")["text_score"]
    ours = real_text_scores(_real_frame(), encoder)
    assert ours.tolist() == pytest.approx(stored.loc[ids].tolist(), abs=1e-3)
    assert (ours[:3] < 0.5).all() and (ours[3:5] > 0.5).all()  # denials are no defects


def _many_quiet(store: EmbeddedStore, n: int) -> None:
    """Supplier ``big`` with ``n`` products of one five-star review each (all of them at
    risk, without evidence) and ``bad``, a product with a one-star defect report; no text
    vectors, so the ratings decide."""
    graph = {f"p{i:03d}": [(5.0, FINE)] for i in range(n)} | {"bad": [(1.0, BROKE)] * 3}
    _write_supply_graph(store, {"big": graph})


def test_products_at_risk_are_capped(tmp_path: Path) -> None:
    """A widespread defect returned every product of the node as at risk (thousands in a
    real store, in every row of the ranking, the JSON and the REST answer). Now at most
    ``at_risk`` of them (default :data:`AT_RISK_TOP`), riskiest first, and
    ``at_risk_count`` says how many there are."""
    n = AT_RISK_TOP + 15
    with EmbeddedStore(tmp_path / "store") as store:
        _many_quiet(store, n)
        analysis = analyse(store)
    for level in ("supplier", "batch"):
        row = analysis.ranking(level, 1).iloc[0]
        everyone = analysis.ranking(level, 1, at_risk=10_000).iloc[0]["at_risk_products"]
        assert len(everyone) == n and "bad" not in everyone
        assert row["at_risk_products"] == everyone[:AT_RISK_TOP]
        assert row["at_risk_count"] == n
        assert analysis.ranking(level, 1, at_risk=3).iloc[0]["at_risk_products"] == everyone[:3]
    assert "at_risk_count" not in analysis.ranking("product", 1).columns


@pytest.mark.parametrize("bad", [0, -1, 10_001, 2.5, True, "5", None])
def test_a_bad_at_risk_cap_is_refused(tmp_path: Path, bad: object) -> None:
    with EmbeddedStore(tmp_path / "store") as store:
        _many_quiet(store, 2)
        analysis = analyse(store)
    with pytest.raises(ValidationError, match=r"at_risk must be an integer in 1\.\.10000"):
        analysis.ranking("supplier", 1, at_risk=bad)  # type: ignore[arg-type]


def test_a_store_never_embedded_logs_its_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The warning that reviews lack text vectors was the only ``warnings.warn`` of the
    package (every other module logs to ``graphfusion.*``): on the command line it printed
    as ``.../defects.py:696: UserWarning: ...`` followed by a line of the library's source."""
    with EmbeddedStore(tmp_path / "store") as store:
        _many_quiet(store, 2)
        with warnings.catch_warnings(record=True) as record, caplog.at_level(logging.WARNING):
            warnings.simplefilter("always")
            analyse(store)
    assert [str(w.message) for w in record if "text vector" in str(w.message)] == []
    (message,) = [r for r in caplog.records if "text vector" in r.getMessage()]
    assert message.name == "graphfusion.defects" and message.levelno == logging.WARNING
    assert message.getMessage().startswith("defect analysis: none of the 5 reviews with text")


def test_the_command_line_prints_the_warning_cleanly(tmp_path: Path) -> None:
    """``graphfusion defects`` on a store never embedded: the warning is one plain line on
    stderr, without a file name, line number, category or source line."""
    with EmbeddedStore(tmp_path / "store") as store:
        _many_quiet(store, 2)
    done = subprocess.run(  # the command line of the package next to the tests
        [sys.executable, "-c", "from graphfusion.cli import main; main()",
         "defects", "--store", str(tmp_path / "store"), "--top", "1"],
        capture_output=True, text=True, timeout=300, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "text vector" in line]
    assert len(lines) == 1 and lines[0].startswith("defect analysis: none of the 5 reviews")
    assert "UserWarning" not in done.stderr and "defects.py" not in done.stderr
    assert "1. big" in done.stdout


def test_the_real_text_check_runs_alone(tmp_path: Path) -> None:
    """``--text-only`` runs the real-text check without making a shop (a full run takes
    about an hour on two cores) and saves it alone."""
    from benchmarks.common import DEFAULT_DATA
    from benchmarks.defects import REAL_REVIEWS, main

    if not (DEFAULT_DATA / REAL_REVIEWS).is_file():
        pytest.skip("the real clothing reviews are not here")
    out = tmp_path / "text.json"
    work = tmp_path / "work"
    assert main(["--text-only", "--sample", "40", "--work", str(work), "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["benchmark"] == "defects-text"
    assert set(results["results"]) == {"real_text"}
    assert results["results"]["real_text"]["reviews"] == 40
    assert 0.0 <= results["results"]["real_text"]["auc"] <= 1.0
    assert not work.exists()  # no shop


def _photos(store: EmbeddedStore, products: list[str], odd: str) -> None:
    """A photo for each of ``products``, all alike but ``odd``'s."""
    dim = store.schema.node("Image").prop("image_vec").type.dim
    rng = np.random.default_rng(0)
    base = rng.normal(size=dim)
    vectors = (base + 0.01 * rng.normal(size=(len(products), dim))).astype(np.float32)
    vectors[products.index(odd)] = -base
    ids = [f"img-{p}" for p in products]
    store.write_node_table("Image", pa.table({
        "id": ids, "image_vec": pa.array(list(vectors), pa.list_(pa.float32(), dim)),
    }))  # fmt: skip
    store.write_rel_table("HAS_IMAGE", pa.table({"src": products, "dst": ids}),
                          start="Product", end="Image")  # fmt: skip


@pytest.mark.parametrize("category", [None, "mugs"])
def test_a_photo_without_a_category_says_what_it_was_compared_with(
    tmp_path: Path, category: str | None
) -> None:
    """Photos of products without a category are scored among each other, as one category;
    an odd one was shown as "photo unlike its category's", for a product without one. The
    evidence now says which photos it was compared with, and ``image_category`` names the
    category (None: the products without one)."""
    products = [f"a{i}" for i in range(12)]
    with EmbeddedStore(tmp_path / "store") as store:
        _write_supply_graph(store, {"s": {p: [(5.0, FINE)] for p in products}})
        _photos(store, products, "a0")
        if category is not None:
            store.write_node_table("Category", pa.table({"id": [category]}))
            store.write_rel_table("IN_CATEGORY", pa.table({"src": products,
                                                           "dst": [category] * 12}),
                                  start="Product", end="Category")  # fmt: skip
        analysis = analyse(store, sources=("image",))
    (item,) = analysis.ranking("product", 1)["evidence"].iloc[0]
    assert (item["kind"], item["product_id"], item["key"]) == ("image", "a0", "img-a0")
    expected = {None: "photo unlike the photos of the other products without a category",
                "mugs": "photo unlike its category's"}  # fmt: skip
    assert item["text"] == expected[category]
    products_frame = analysis.products.set_index("product_id")
    assert products_frame.at["a0", "image_category"] == category
    assert products_frame["image"].idxmax() == "a0"
