"""Tests for the synthetic shop generator (``graphfusion.synthetic``)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from graphfusion.errors import ValidationError
from graphfusion.synthetic import (
    CSV_FILES,
    DEFECT_SIGNALS,
    IMAGE_SIZE,
    SIZES,
    OutputFolderError,
    ShopManifest,
    generate_shop,
)

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")


def read(path: Path, name: str) -> pd.DataFrame:
    """Read one generated CSV with every column as a string (ids like ``c01`` stay intact)."""
    return pd.read_csv(path / f"{name}.csv", dtype=str, keep_default_na=False)


def file_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ShopManifest, Path]]:
    out = tmp_path_factory.mktemp("shop") / "tiny"
    manifest = generate_shop(out, "tiny", seed=7)
    yield manifest, out


@pytest.fixture(scope="module")
def truth(shop: tuple[ShopManifest, Path]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((shop[1] / "ground_truth.json").read_text("utf-8"))
    return data


# -- determinism ---------------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    a = generate_shop(tmp_path / "a", "tiny", seed=3)
    b = generate_shop(tmp_path / "b", "tiny", seed=3)
    c = generate_shop(tmp_path / "c", "tiny", seed=4)
    files_a, files_b, files_c = (file_bytes(m.path) for m in (a, b, c))
    assert len([n for n in files_a if n.endswith(".png")]) == SIZES["tiny"].products
    assert files_a.keys() == files_b.keys()
    for name in files_a:  # CSV, JSON and PNG files alike
        assert files_a[name] == files_b[name], name
    for name in ("products.csv", "interactions.csv", "reviews.csv", "ground_truth.json"):
        assert files_a[name] != files_c[name], name


def test_small_preset_is_deterministic(tmp_path: Path) -> None:
    a = generate_shop(tmp_path / "a", "small", seed=11)
    b = generate_shop(tmp_path / "b", "small", seed=11)
    for name in CSV_FILES:
        assert (a.path / f"{name}.csv").read_bytes() == (b.path / f"{name}.csv").read_bytes()
    assert a.counts == b.counts
    assert a.counts["users"] == SIZES["small"].users
    assert 0.85 * SIZES["small"].interactions <= a.counts["interactions"]
    assert a.counts["interactions"] <= 1.15 * SIZES["small"].interactions


# -- manifest and counts -------------------------------------------------------------------------


def test_manifest_counts_match_files(shop: tuple[ShopManifest, Path]) -> None:
    manifest, out = shop
    on_disk = json.loads((out / "manifest.json").read_text("utf-8"))
    assert on_disk["generator"] == "graphfusion.synthetic"
    assert on_disk["version"] == 1
    assert (on_disk["size"], on_disk["seed"]) == ("tiny", 7)
    assert (manifest.size, manifest.seed, manifest.path) == ("tiny", 7, out)
    assert on_disk["counts"] == manifest.counts
    for name in CSV_FILES:
        assert manifest.counts[name] == len(read(out, name)), name
    assert manifest.counts["images"] == len(list((out / "images").glob("*.png")))


def test_tiny_sizes_are_as_documented(shop: tuple[ShopManifest, Path]) -> None:
    manifest, out = shop
    spec = SIZES["tiny"]
    counts = manifest.counts
    assert counts["users"] == spec.users == 60
    assert counts["products"] == spec.products == 40
    assert counts["brands"] == 5 and counts["suppliers"] == 4 and counts["batches"] == 10
    assert counts["questions"] == 40
    assert 100 <= counts["reviews"] <= 120
    assert 1_300 <= counts["interactions"] <= 1_700
    cats = read(out, "categories")
    assert (cats["level"] == "1").sum() == spec.categories == 6
    assert (cats["level"] == "0").sum() == spec.top_categories


# -- integrity -----------------------------------------------------------------------------------


def test_primary_ids_unique_and_well_formed(shop: tuple[ShopManifest, Path]) -> None:
    out = shop[1]
    patterns = {
        "categories": r"c\d{2}",
        "brands": r"b\d{2}",
        "suppliers": r"s\d{2}",
        "batches": r"bt\d{3}",
        "products": r"p\d{4}",
        "users": r"u\d{4}",
        "reviews": r"r\d{5}",
        "questions": r"q\d{4}",
        "answers": r"a\d{4}",
    }
    for name, pattern in patterns.items():
        ids = read(out, name)["id"]
        assert ids.is_unique, name
        assert ids.str.fullmatch(pattern).all(), name


def test_foreign_keys_exist(shop: tuple[ShopManifest, Path]) -> None:
    out = shop[1]
    t = {name: read(out, name) for name in CSV_FILES}
    ids = {name: set(df["id"]) for name, df in t.items() if "id" in df.columns}
    cats = t["categories"]
    tops = cats[cats["level"] == "0"]
    leaves = cats[cats["level"] == "1"]
    assert (tops["parent_id"] == "").all()
    assert set(leaves["parent_id"]) <= set(tops["id"])
    products = t["products"]
    assert set(products["category_id"]) <= set(leaves["id"])
    assert set(products["brand_id"]) <= ids["brands"]
    assert set(products["supplier_id"]) <= ids["suppliers"]
    assert set(products["batch_id"]) <= ids["batches"]
    assert set(t["batches"]["supplier_id"]) <= ids["suppliers"]
    batch_supplier = dict(zip(t["batches"]["id"], t["batches"]["supplier_id"], strict=True))
    assert (products["batch_id"].map(batch_supplier) == products["supplier_id"]).all()
    assert (products["image_file"] == "images/" + products["id"] + ".png").all()
    for name, cols in {
        "interactions": ("user_id", "product_id"),
        "reviews": ("user_id", "product_id"),
        "questions": ("product_id",),
    }.items():
        for col in cols:
            assert set(t[name][col]) <= ids["users" if col == "user_id" else "products"]
    assert set(t["answers"]["question_id"]) == ids["questions"]  # every question is answered
    assert set(t["follows"]["user_id"]) | set(t["follows"]["followee_id"]) <= ids["users"]


def test_interactions_are_consistent(shop: tuple[ShopManifest, Path]) -> None:
    out = shop[1]
    inter = read(out, "interactions")
    assert set(inter["type"]) == {"VIEWED", "PURCHASED", "FAVORITED"}
    assert not inter.duplicated(["user_id", "product_id", "type"]).any()
    weights = inter["weight"].astype(float)
    assert (weights >= 1).all() and (weights == weights.round()).all()
    assert (weights[inter["type"] == "VIEWED"] > 1).any()  # repeated views are aggregated
    pairs = {
        t: set(zip(g["user_id"], g["product_id"], strict=True)) for t, g in inter.groupby("type")
    }
    assert pairs["PURCHASED"] <= pairs["VIEWED"]
    assert pairs["FAVORITED"] <= pairs["VIEWED"]
    per_user = inter.groupby("user_id").size()
    assert len(per_user) == SIZES["tiny"].users
    assert per_user.min() >= 3

    reviews = read(out, "reviews")
    reviewed = set(zip(reviews["user_id"], reviews["product_id"], strict=True))
    assert reviewed <= pairs["PURCHASED"]
    assert not reviews.duplicated(["user_id", "product_id"]).any()

    follows = read(out, "follows")
    assert len(follows) > 0
    assert (follows["user_id"] != follows["followee_id"]).all()
    assert not follows.duplicated(["user_id", "followee_id"]).any()


def test_timestamps_are_iso_and_causal(shop: tuple[ShopManifest, Path]) -> None:
    out = shop[1]
    columns = {
        "batches": "produced_at",
        "products": "created_at",
        "interactions": "ts",
        "reviews": "ts",
        "questions": "ts",
        "answers": "ts",
        "follows": "ts",
    }
    for name, col in columns.items():
        assert read(out, name)[col].str.fullmatch(ISO.pattern).all(), name
    products = read(out, "products").set_index("id")
    batches = read(out, "batches").set_index("id")
    assert (products["created_at"] >= products["batch_id"].map(batches["produced_at"])).all()
    inter = read(out, "interactions")
    assert (inter["ts"] >= inter["product_id"].map(products["created_at"])).all()
    bought = inter[inter["type"] == "PURCHASED"].set_index(["user_id", "product_id"])["ts"]
    reviews = read(out, "reviews")
    keys = pd.MultiIndex.from_arrays([reviews["user_id"], reviews["product_id"]])
    assert (reviews["ts"].to_numpy() >= bought.reindex(keys).to_numpy()).all()
    questions = read(out, "questions").set_index("id")
    answers = read(out, "answers")
    assert (answers["ts"] >= answers["question_id"].map(questions["ts"])).all()


def test_review_fields(shop: tuple[ShopManifest, Path]) -> None:
    reviews = read(shop[1], "reviews")
    ratings = reviews["rating"].astype(int)
    assert set(ratings) <= {1, 2, 3, 4, 5} and ratings.nunique() >= 4
    assert set(reviews["verified"]) <= {"True", "False"}
    assert (reviews["helpful"].astype(int) >= 0).all()
    assert reviews["text"].nunique() >= 0.9 * len(reviews)  # varied text
    assert reviews["title"].nunique() >= 10


# -- images --------------------------------------------------------------------------------------


def load_images(out: Path) -> tuple[pd.DataFrame, np.ndarray]:
    products = read(out, "products")
    pixels = []
    for rel in products["image_file"]:
        with Image.open(out / rel) as img:
            assert img.format == "PNG"
            assert img.mode == "RGB"
            assert img.size == (IMAGE_SIZE, IMAGE_SIZE) == (64, 64)
            pixels.append(np.asarray(img, dtype=np.float64).ravel())
    return products, np.stack(pixels)


def test_images_decode_with_right_size(shop: tuple[ShopManifest, Path]) -> None:
    products, pixels = load_images(shop[1])
    assert len(pixels) == len(products) == 40
    assert pixels.std(axis=1).min() > 10  # not blank


def test_same_category_images_are_closer(shop: tuple[ShopManifest, Path]) -> None:
    products, pixels = load_images(shop[1])
    dist = np.sqrt(((pixels[:, None, :] - pixels[None, :, :]) ** 2).sum(axis=-1))
    cat = products["category_id"].to_numpy(dtype=object)
    same = cat[:, None] == cat[None, :]
    off_diagonal = ~np.eye(len(cat), dtype=bool)
    within = dist[same & off_diagonal].mean()
    between = dist[~same].mean()
    assert within < 0.9 * between


def test_defective_images_show_damage(
    shop: tuple[ShopManifest, Path], truth: dict[str, Any]
) -> None:
    defects: dict[str, list[str]] = truth["image_defects"]
    assert defects and set(defects) <= set(truth["defective_products"])
    products, pixels = load_images(shop[1])
    images = pixels.reshape(len(products), IMAGE_SIZE, IMAGE_SIZE, 3)
    colour = [truth["product_style"][p]["colour"] for p in products["id"]]
    # Scratches and blotches are drawn after the pixel noise in two exact dark browns.
    dark = np.zeros(images.shape[:3], dtype=bool)
    for rgb in ((28, 24, 20), (60, 44, 30)):
        dark |= (images == np.array(rgb)).all(axis=-1)
    dark_share = dark.mean(axis=(1, 2))
    # Washout halves the saturation of the fill colour.
    spread = np.percentile(images.max(axis=-1) - images.min(axis=-1), 99, axis=(1, 2))
    scratched, washed = 0, []
    for i, pid in enumerate(products["id"]):
        if colour[i] == "black":  # dark fill, skip
            continue
        kinds = defects.get(pid, [])
        if not kinds:
            assert dark_share[i] < 0.001, pid
        if {"scratches", "blotches"} & set(kinds):
            assert dark_share[i] > 0.003, pid
            scratched += 1
        clean_same = [
            spread[j]
            for j, other in enumerate(products["id"])
            if colour[j] == colour[i] and other not in defects
        ]
        if "washout" in kinds and clean_same:
            washed.append(spread[i] / np.median(clean_same))
    assert scratched + len(washed) >= 1
    if washed:
        assert max(washed) < 0.9
        assert np.mean(washed) < 0.75


# -- ground truth --------------------------------------------------------------------------------


def test_ground_truth_defects(shop: tuple[ShopManifest, Path], truth: dict[str, Any]) -> None:
    out = shop[1]
    batches = read(out, "batches")
    products = read(out, "products")
    assert truth["seed"] == 7 and truth["size"] == "tiny"
    assert len(truth["defective_suppliers"]) >= 1
    assert batches.groupby("supplier_id").size().min() >= 2
    rates = truth["batch_defect_rate"]
    assert set(rates) == set(batches["id"])
    bad = set(truth["defective_batches"])
    for batch, rate in rates.items():
        assert (0.4 <= rate <= 0.6) if batch in bad else (0.02 <= rate <= 0.05), batch
    bad_supplier_of = set(batches[batches["id"].isin(bad)]["supplier_id"])
    assert bad_supplier_of == set(truth["defective_suppliers"])
    sup_rate = truth["supplier_defect_rate"]
    worst = max(sup_rate, key=sup_rate.__getitem__)
    assert worst in truth["defective_suppliers"]
    in_bad_batch = set(products[products["batch_id"].isin(bad)]["id"])
    assert set(truth["defective_products"]) == in_bad_batch
    style = truth["product_style"]
    assert set(style) == set(products["id"])
    first = products.iloc[0]
    assert style[first["id"]]["category"] == first["category_id"]
    assert style[first["id"]]["brand"] == first["brand_id"]
    assert style[first["id"]]["colour"] in first["title"].lower()


def test_defective_supplier_has_highest_complaint_share(
    shop: tuple[ShopManifest, Path], truth: dict[str, Any]
) -> None:
    out = shop[1]
    reviews = read(out, "reviews")
    products = read(out, "products").set_index("id")
    reviews["supplier_id"] = reviews["product_id"].map(products["supplier_id"])
    reviews["complaint"] = reviews["id"].isin(set(truth["complaint_reviews"]))
    share = reviews.groupby("supplier_id")["complaint"].mean().sort_values(ascending=False)
    assert share.index[0] in truth["defective_suppliers"]
    assert share.iloc[0] >= 0.2
    assert share.iloc[0] - share.iloc[1] >= 0.1
    # The signal is visible in the data itself, not only in the ground truth: low ratings.
    low = (reviews["rating"].astype(int) <= 2).groupby(reviews["supplier_id"]).mean()
    assert low.idxmax() in truth["defective_suppliers"]
    # Complaints also show in the texts and ratings.
    complaints = reviews[reviews["complaint"]]
    assert (complaints["rating"].astype(int) <= 3).all()
    assert reviews[~reviews["complaint"]]["rating"].astype(int).mean() > 3.5


def test_at_risk_product_exists(shop: tuple[ShopManifest, Path], truth: dict[str, Any]) -> None:
    out = shop[1]
    products = read(out, "products").set_index("id")
    reviews = read(out, "reviews")
    complained = set(reviews[reviews["id"].isin(set(truth["complaint_reviews"]))]["product_id"])
    at_risk = [
        p
        for p in truth["defective_products"]
        if products.loc[p, "supplier_id"] in truth["defective_suppliers"] and p not in complained
    ]
    assert at_risk
    assert set(at_risk) <= set(truth["at_risk_products"])


def test_realistic_defect_signal(tmp_path: Path) -> None:
    clear = generate_shop(tmp_path / "clear", "small", seed=5)
    real = generate_shop(tmp_path / "real", "small", seed=5, defect_signal="realistic")
    again = generate_shop(tmp_path / "again", "small", seed=5, defect_signal="realistic")
    files, files_clear = file_bytes(real.path), file_bytes(clear.path)
    assert file_bytes(again.path) == files
    assert json.loads(files["manifest.json"])["defect_signal"] == "realistic"
    # users and what they do do not depend on the defect signal
    same = ("categories", "brands", "suppliers", "users", "interactions", "questions", "answers",
            "follows")  # fmt: skip
    for name in same:
        assert files[f"{name}.csv"] == files_clear[f"{name}.csv"], name
    products, products_clear = read(real.path, "products"), read(clear.path, "products")
    assert products.drop(columns="supplier_id").equals(products_clear.drop(columns="supplier_id"))
    assert files["reviews.csv"] != files_clear["reviews.csv"]

    sig, spec = DEFECT_SIGNALS["realistic"], SIZES["small"]
    truth = json.loads(files["ground_truth.json"])
    assert truth.keys() == json.loads(files_clear["ground_truth.json"]).keys()
    assert len(truth["defective_suppliers"]) == round(sig.supplier_share * spec.suppliers) >= 4
    bad = set(truth["defective_batches"])
    for batch, rate in truth["batch_defect_rate"].items():
        assert (0.15 <= rate <= 0.35) if batch in bad else (0.02 <= rate <= 0.05), batch
    batches = read(real.path, "batches")
    per_supplier = batches.groupby("supplier_id")["id"].agg(list)
    for supplier in truth["defective_suppliers"]:  # good batches of bad suppliers
        assert 0 < sum(b in bad for b in per_supplier[supplier]) < len(per_supplier[supplier])
    sizes = per_supplier.map(len)
    assert sizes.max() >= 3 * sizes.min()  # suppliers of very different sizes
    assert set(truth["image_defects"]) <= set(truth["defective_products"])

    def complaints(out: Path, shop_truth: dict[str, Any]) -> pd.DataFrame:
        reviews = read(out, "reviews")
        batch_of = read(out, "products").set_index("id")["batch_id"]
        return reviews.assign(
            complaint=reviews["id"].isin(set(shop_truth["complaint_reviews"])),
            bad=reviews["product_id"].map(batch_of).isin(set(shop_truth["defective_batches"])),
            low=reviews["rating"].astype(int) <= 2,
        )

    reviews = complaints(real.path, truth)
    reviews_clear = complaints(clear.path, json.loads(files_clear["ground_truth.json"]))
    # defective batches complain moderately, and less plainly than with the clear signal
    share, share_clear = (r.loc[r["bad"], "complaint"].mean() for r in (reviews, reviews_clear))
    assert 0.08 < share < 0.3 < share_clear
    # complaints with good ratings, and low ratings that name no defect
    assert (reviews.loc[reviews["complaint"], "rating"].astype(int) >= 4).mean() > 0.1
    low, low_clear = (r.loc[~r["complaint"], "low"].mean() for r in (reviews, reviews_clear))
    assert low > 1.5 * low_clear
    with pytest.raises(ValueError, match="unknown defect_signal"):
        generate_shop(tmp_path / "x", "tiny", defect_signal="subtle")


def test_preferences_drive_purchases(
    shop: tuple[ShopManifest, Path], truth: dict[str, Any]
) -> None:
    inter = read(shop[1], "interactions")
    prefs, style = truth["user_preferences"], truth["product_style"]
    assert set(prefs) == set(read(shop[1], "users")["id"])
    bought = inter[inter["type"] == "PURCHASED"]
    hits = [
        style[p]["category"] in prefs[u]["categories"]
        for u, p in zip(bought["user_id"], bought["product_id"], strict=True)
    ]
    chance = np.mean([len(v["categories"]) for v in prefs.values()]) / SIZES["tiny"].categories
    assert np.mean(hits) > 2 * chance
    colour_hits = [
        style[p]["colour"] in prefs[u]["colours"]
        for u, p in zip(bought["user_id"], bought["product_id"], strict=True)
    ]
    colour_chance = np.mean([len(v["colours"]) for v in prefs.values()]) / SIZES["tiny"].colours
    assert np.mean(colour_hits) > 1.3 * colour_chance


def test_follows_prefer_similar_tastes(
    shop: tuple[ShopManifest, Path], truth: dict[str, Any]
) -> None:
    follows = read(shop[1], "follows")
    prefs = truth["user_preferences"]

    def shares(a: str, b: str) -> bool:
        return bool(set(prefs[a]["categories"]) & set(prefs[b]["categories"]))

    pairs = zip(follows["user_id"], follows["followee_id"], strict=True)
    linked = np.mean([shares(a, b) for a, b in pairs])
    users = sorted(prefs)
    baseline = np.mean([shares(a, b) for a in users for b in users if a != b])
    assert linked > baseline + 0.15


def test_answers_are_tied_to_true_attributes(
    shop: tuple[ShopManifest, Path], truth: dict[str, Any]
) -> None:
    out = shop[1]
    questions = read(out, "questions").set_index("id")
    answers = read(out, "answers").set_index("id")
    assert set(questions["qtype"]) <= {"yes/no", "open"}
    assert set(truth["answers"]) == set(questions.index)
    assert sum(len(v) for v in truth["answers"].values()) == len(answers)
    checked = 0
    for qid, answer_ids in truth["answers"].items():
        assert answer_ids
        q = questions.loc[qid]
        attrs = truth["product_attributes"][q["product_id"]]
        style = truth["product_style"][q["product_id"]]
        for aid in answer_ids:
            a = answers.loc[aid]
            assert a["question_id"] == qid
            if q["qtype"] == "yes/no":
                assert a["atype"] in {"yes", "no"}
                assert a["text"].split(". ")[-1].startswith(a["atype"].capitalize())
            for feature, value in attrs["features"].items():
                if q["qtype"] == "yes/no" and f" {feature}?" in q["text"]:
                    assert a["atype"] == ("yes" if value else "no"), (q["text"], a["text"])
                    checked += 1
            if q["text"].startswith("What colour"):
                assert style["colour"] in a["text"]
                checked += 1
            if "made of" in q["text"] or "material" in q["text"]:
                assert attrs["material"] in a["text"]
                checked += 1
    assert checked >= 5


# -- errors and re-use of directories ------------------------------------------------------------


def test_unknown_size_and_negative_seed_raise(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown shop size"):
        generate_shop(tmp_path / "x", "huge")
    with pytest.raises(ValueError, match="non-negative"):
        generate_shop(tmp_path / "y", "tiny", seed=-1)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    # graphfusion's errors (as every entry point raises), still ValueError and FileExistsError
    with pytest.raises(ValidationError, match="unknown shop size"):
        generate_shop(tmp_path / "x", "huge")
    (tmp_path / "a-file").write_text("x")
    for out in (tmp_path / "a-file", tmp_path / "a-file" / "below"):
        with pytest.raises(ValidationError):
            generate_shop(out, "tiny")
    # a size that is not text was a TypeError (unhashable list)
    for size in (["tiny"], {"users": 5}):
        with pytest.raises(ValidationError, match="unknown shop size"):
            generate_shop(tmp_path / "z", size)  # type: ignore[arg-type]
    assert not (tmp_path / "z").exists()


def test_foreign_non_empty_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(FileExistsError):
        generate_shop(tmp_path, "tiny")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine"

    other = tmp_path / "other"
    other.mkdir()
    (other / "manifest.json").write_text('{"generator": "someone else"}', encoding="utf-8")
    with pytest.raises(FileExistsError):
        generate_shop(other, "tiny")
    assert sorted(p.name for p in other.iterdir()) == ["manifest.json"]

    a_file = tmp_path / "file"
    a_file.write_text("x", encoding="utf-8")
    with pytest.raises(FileExistsError):
        generate_shop(a_file, "tiny")


def test_own_directory_is_overwritten(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "shop"
    generate_shop(out, "tiny", seed=1)
    (out / "notes.txt").write_text("keep me", encoding="utf-8")
    (out / "images" / "p9999.png").write_bytes(b"stale")
    first = (out / "products.csv").read_bytes()
    manifest = generate_shop(out, "tiny", seed=2, progress=True)
    assert "synthetic shop" in capsys.readouterr().err  # the tqdm bar
    assert manifest.seed == 2
    assert json.loads((out / "manifest.json").read_text("utf-8"))["seed"] == 2
    assert (out / "products.csv").read_bytes() != first
    assert (out / "notes.txt").read_text(encoding="utf-8") == "keep me"
    assert not (out / "images" / "p9999.png").exists()
    assert len(list((out / "images").glob("*.png"))) == manifest.counts["images"]


def test_an_unwritable_folder_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder that can be made but not written (read-only, another user's) raised a bare
    PermissionError from the first file written."""
    import graphfusion.synthetic as synthetic

    def refuse(path: Path, data: Any) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(synthetic, "_write_json", refuse)
    with pytest.raises(OutputFolderError, match=r"cannot write into .*out: Permission denied"):
        generate_shop(tmp_path / "out", "tiny")
