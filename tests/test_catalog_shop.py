"""The catalogue shop: a small fake Myntra-format catalogue, generated users, the loader."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from graphfusion.catalog_shop import (
    DATA_ENV,
    MIN_VIEWS,
    default_source,
    generate_catalog_shop,
    parse_title,
)
from graphfusion.cli import main
from graphfusion.errors import ValidationError
from graphfusion.ingest import load
from graphfusion.mapping import builtin_mappings
from graphfusion.store import EmbeddedStore
from graphfusion.transforms import TRANSFORMS

# (master, sub, article type, noun in the title)
_TYPES = (
    ("Apparel", "Topwear", "Tshirts", "Tshirts"),
    ("Apparel", "Topwear", "Shirts", "Shirt"),
    ("Apparel", "Bottomwear", "Jeans", "Jeans"),
    ("Footwear", "Shoes", "Casual Shoes", "Casual Shoes"),
    ("Accessories", "Bags", "Handbags", "Handbag"),
    ("Accessories", "Watches", "Watches", "Watch"),
)
_COLOURS = ("Black", "Blue", "White", "Red", "Navy Blue")
_USAGES = ("Casual", "Sports", "Formal")
_BRANDS = ("Nike", "Puma", "United Colors of Benetton", "Fastrack", "Lee")
_GENDERS = ("Men", "Women", "Men", "Women", "Unisex", "Boys", "Girls", "")
_N = 60
_NO_PHOTO = ("1058", "1059")  # products without an image in the archive
_BAD_ROW = ("9999", "Broken Row Without Parts", "Apparel - Topwear", "Apparel")

_RGB = {
    "Black": (20, 20, 20),
    "Blue": (30, 60, 200),
    "White": (240, 240, 240),
    "Red": (200, 30, 30),
    "Navy Blue": (20, 30, 90),
}


def _catalogue_rows() -> list[tuple[str, str, str, str]]:
    rows = []
    for i in range(_N):
        master, sub, kind, noun = _TYPES[i % len(_TYPES)]
        colour = _COLOURS[(i // 2) % len(_COLOURS)]
        usage = _USAGES[(i // 3) % len(_USAGES)]
        brand = _BRANDS[(i // 5) % len(_BRANDS)]
        gender = _GENDERS[(i // 7) % len(_GENDERS)]
        words = [brand, gender, colour, noun] if gender else [brand, colour, noun]
        title = " ".join(words)
        rows.append(
            (str(1000 + i), title, f"{master} - {sub} - {kind} - {colour} - {usage}", master)
        )
    return rows


def _make_catalogue(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = _catalogue_rows()
    frame = pd.DataFrame(
        [*rows[:10], _BAD_ROW, *rows[10:]],
        columns=["product_id", "title", "description", "category"],
    )
    frame.to_csv(folder / "products.csv", index=False)
    with tarfile.open(folder / "images.tar.gz", "w:gz") as tar:
        for pid, _, desc, _ in rows:
            if pid in _NO_PHOTO:
                continue
            buf = io.BytesIO()
            Image.new("RGB", (6, 8), _RGB[desc.split(" - ")[3]]).save(buf, format="JPEG")
            info = tarfile.TarInfo(f"images/{pid}.jpg")
            info.size = buf.tell()
            buf.seek(0)
            tar.addfile(info, buf)
    return folder


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fake myntra_fashion folder: 60 products (+1 malformed row), 58 photos."""
    return _make_catalogue(tmp_path_factory.mktemp("data") / "myntra_fashion")


@pytest.fixture(scope="module")
def shop(catalogue: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shop over the fake catalogue (seed 1). Do not modify it."""
    out = tmp_path_factory.mktemp("shop") / "shop"
    generate_catalog_shop(out, "myntra", source=catalogue, users=300, interactions=6000, seed=1)
    return out


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


# ----------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("title", "brand", "gender"),
    [
        ("United Colors of Benetton Men Blue Shirt", "United Colors of Benetton", "Men"),
        ("Nike Men's Breakli Navy Blue Track Pants", "Nike", "Men"),
        ("Palm Tree Girls Sp Jace Sko White Skirts", "Palm Tree", "Girls"),
        ("Gini and Jony Infants Boys Pink Tshirt", "Gini and Jony", "Infant"),
        ("Genesis Maroon Formal Shirt", "Genesis", None),
        ("Fastrack  Unisex Black   Watch", "Fastrack", "Unisex"),
    ],
)
def test_parse_title(title: str, brand: str, gender: str | None) -> None:
    assert parse_title(title) == (brand, gender)


def test_brand_rule_matches_the_myntra_mapping() -> None:
    raw = yaml.safe_load(builtin_mappings()["myntra"].read_text(encoding="utf-8"))
    brand_spec = next(n for n in raw["nodes"] if n["label"] == "Brand")
    sep = brand_spec["properties"]["name"]["sep"]
    for _, title, _, _ in _catalogue_rows():
        assert parse_title(title)[0] == TRANSFORMS["lead"](title, {"sep": sep})


# ----------------------------------------------------------------------------- the files


def test_files_hold_only_raw_content(shop: Path, catalogue: Path) -> None:
    assert sorted(p.name for p in shop.iterdir()) == [
        "ground_truth.json",
        "interactions.csv",
        "manifest.json",
        "products.csv",
        "users.csv",
    ]
    products = _read(shop / "products.csv")
    assert list(products.columns) == ["product_id", "title", "image"]
    assert len(products) == _N
    titles = {pid: title for pid, title, _, _ in _catalogue_rows()}
    archive = str((catalogue / "images.tar.gz").resolve())
    for pid, title, image in products.itertuples(index=False):
        raw = pid.removeprefix("myntra:")
        assert pid.startswith("myntra:")
        assert title == titles[raw]
        assert image == ("" if raw in _NO_PHOTO else f"{archive}::images/{raw}.jpg")
    assert list(_read(shop / "users.csv").columns) == ["id", "age", "gender"]
    inter = _read(shop / "interactions.csv")
    assert list(inter.columns) == ["user_id", "product_id", "type", "ts", "weight"]
    assert set(inter["type"]) == {"VIEWED", "PURCHASED", "FAVORITED"}
    # no attribute leaks into what a model reads
    text = (shop / "products.csv").read_text() + (shop / "users.csv").read_text()
    for word in ("Sports", "Formal", "Topwear", "Bottomwear", "Apparel", "Footwear"):
        assert word not in text


def test_manifest_and_ground_truth(shop: Path, catalogue: Path) -> None:
    manifest = json.loads((shop / "manifest.json").read_text())
    assert manifest["generator"] == "graphfusion.catalog_shop"
    assert manifest["complete"] is True
    counts = manifest["counts"]
    assert counts["products"] == _N
    assert counts["images"] == _N - len(_NO_PHOTO)
    assert counts["skipped_products"] == 1
    assert counts["users"] == 300
    inter = _read(shop / "interactions.csv")
    assert counts["interactions"] == len(inter)
    assert counts["viewed"] + counts["purchased"] + counts["favorited"] == len(inter)
    assert 0.8 * 6000 <= len(inter) <= 1.2 * 6000

    gt = json.loads((shop / "ground_truth.json").read_text())
    assert gt["catalog"] == "myntra"
    assert gt["seed"] == 1
    assert gt["counts"] == counts
    assert gt["source"] == str(catalogue.resolve())
    assert len(gt["product_attributes"]) == _N
    assert gt["product_attributes"]["myntra:1001"] == {
        "master_category": "Apparel",
        "sub_category": "Topwear",
        "article_type": "Shirts",
        "colour": "Black",
        "usage": "Casual",
        "gender": "Men",
        "brand": "Nike",
    }
    assert gt["product_attributes"]["myntra:1049"]["gender"] is None
    tastes = gt["user_tastes"]
    assert len(tastes) == 300
    for taste in tastes.values():
        assert taste["gender"] in {"Men", "Women", "Boys", "Girls"}
        assert 1 <= len(taste["article_types"]) <= 2
        assert 1 <= len(taste["colours"]) <= 2
        assert taste["usage"] in _USAGES
        assert len(taste["brands"]) <= 2
    assert sum(1 for t in tastes.values() if t["brands"]) > 0
    assert set(gt["light_users"]) <= set(tastes)


def test_deterministic(catalogue: Path, tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, seed in ((a, 3), (b, 3), (c, 4)):
        generate_catalog_shop(out, source=catalogue, users=80, interactions=1500, seed=seed)
    for name in ("products.csv", "users.csv", "interactions.csv", "ground_truth.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "interactions.csv").read_bytes() != (c / "interactions.csv").read_bytes()
    # writing again into a shop of ours overwrites it
    generate_catalog_shop(a, source=catalogue, users=80, interactions=1500, seed=4)
    assert (a / "interactions.csv").read_bytes() == (c / "interactions.csv").read_bytes()


# ----------------------------------------------------------------------------- the tastes


def test_interactions_follow_tastes(shop: Path) -> None:
    gt = json.loads((shop / "ground_truth.json").read_text())
    attrs, tastes = gt["product_attributes"], gt["user_tastes"]
    views = _read(shop / "interactions.csv").query("type == 'VIEWED'")
    share = Counter(a["article_type"] for a in attrs.values())
    hit, base = [], []
    for user, group in views.groupby("user_id"):
        tasted = tastes[user]["article_types"]
        kinds = [attrs[p]["article_type"] for p in group["product_id"]]
        hit.append(np.mean([k in tasted for k in kinds]))
        base.append(sum(share[t] for t in tasted) / len(attrs))
    # each user's views are enriched in their article types, well above the catalogue share
    assert np.mean(hit) > np.mean(base) + 0.25
    assert np.mean(np.array(hit) > np.array(base)) > 0.8

    fits = {"Men": {"Men"}, "Women": {"Women"}, "Boys": {"Boys"}, "Girls": {"Girls"}}
    on_gender = [
        attrs[p]["gender"] in fits[tastes[u]["gender"]]
        for u, p in zip(views["user_id"], views["product_id"], strict=True)
    ]
    gender_base = np.mean(
        [
            np.mean([a["gender"] in fits[t["gender"]] for a in attrs.values()])
            for t in tastes.values()
        ]
    )
    assert np.mean(on_gender) > 1.5 * gender_base


def test_interaction_shapes(shop: Path) -> None:
    inter = _read(shop / "interactions.csv")
    assert not inter.duplicated(["user_id", "product_id", "type"]).any()
    viewed = inter.query("type == 'VIEWED'")
    other = inter.query("type != 'VIEWED'")
    pairs = set(zip(viewed["user_id"], viewed["product_id"], strict=True))
    assert set(zip(other["user_id"], other["product_id"], strict=True)) <= pairs
    ts = pd.to_datetime(inter["ts"], format="%Y-%m-%dT%H:%M:%S")
    assert ts.min() >= pd.Timestamp("2023-01-01") and ts.max() <= pd.Timestamp("2025-01-01")
    assert (inter["weight"].astype(float) >= 1).all()
    per_user = inter.query("type == 'VIEWED'").groupby("user_id").size()
    gt = json.loads((shop / "ground_truth.json").read_text())
    light = set(gt["light_users"])
    assert (per_user[per_user.index.isin(light)] <= 2).all()
    assert (per_user[~per_user.index.isin(light)] >= MIN_VIEWS).all()
    assert not inter.query("type == 'FAVORITED'")["user_id"].isin(light).any()
    assert inter["user_id"].nunique() == 300


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"users": 0}, "users must be between 1"),
        ({"users": -5}, "users must be between 1"),
        ({"users": 2.5}, "users must be a positive integer"),
        ({"users": True}, "users must be a positive integer"),
        ({"users": 2_000_000}, "users must be between 1"),
        ({"interactions": 0}, "interactions must be between 1"),
        ({"users": 100, "interactions": 200}, "at least 3 per user"),
        ({"users": 10, "interactions": 10 * _N + 1}, "at most users x products"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"seed": "1"}, "seed must be a non-negative integer"),
        ({"catalog": "amazon"}, "unknown catalogue 'amazon'"),
    ],
)
def test_bad_arguments(catalogue: Path, tmp_path: Path, kwargs: dict, message: str) -> None:
    args = {"catalog": "myntra", "source": catalogue, "users": 20, "interactions": 200, **kwargs}
    with pytest.raises(ValidationError, match=message):
        generate_catalog_shop(tmp_path / "out", **args)
    assert not (tmp_path / "out").exists()


def test_bad_sources(catalogue: Path, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="does not exist"):
        generate_catalog_shop(tmp_path / "out", source=tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValidationError, match=r"has no products\.csv"):
        generate_catalog_shop(tmp_path / "out", source=tmp_path / "empty")
    (tmp_path / "empty" / "products.csv").write_text("product_id,title\n1,Nike Men Shirt\n")
    with pytest.raises(ValidationError, match=r"has no images\.tar\.gz"):
        generate_catalog_shop(tmp_path / "out", source=tmp_path / "empty")
    (tmp_path / "empty" / "images").mkdir()
    with pytest.raises(ValidationError, match=r"lacks the columns \['description'\]"):
        generate_catalog_shop(tmp_path / "out", source=tmp_path / "empty")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="holds no catalogue shop manifest"):
        generate_catalog_shop(foreign, source=catalogue, users=20, interactions=200)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    # a photo archive that is not one, cut short, or empty makes no shop (it made one
    # without photos, or with part of them, and said nothing)
    archive = (catalogue / "images.tar.gz").read_bytes()
    for name, data, message in (
        ("noise", bytes(range(256)) * 20, "not a readable tar archive"),
        ("cut", archive[: len(archive) // 2], "truncated or damaged"),
    ):
        broken = tmp_path / name
        broken.mkdir()
        shutil.copy(catalogue / "products.csv", broken / "products.csv")
        (broken / "images.tar.gz").write_bytes(data)
        with pytest.raises(ValidationError, match=message):
            generate_catalog_shop(tmp_path / f"out-{name}", source=broken, users=20,
                                  interactions=200)  # fmt: skip
    # an archive whose photos are of other products (the wrong archive) made a shop without
    # a single photo, and said nothing
    other = tmp_path / "other-photos"
    other.mkdir()
    shutil.copy(catalogue / "products.csv", other / "products.csv")
    (other / "images").mkdir()
    Image.new("RGB", (6, 8)).save(other / "images" / "77777.jpg")
    with pytest.raises(ValidationError, match=r"none of the 60 products has a photo in .*images"):
        generate_catalog_shop(tmp_path / "out-other", source=other, users=20, interactions=200)
    assert not (tmp_path / "out-other").exists()


def test_default_source(catalogue: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_ENV, str(catalogue.parent))
    assert default_source("myntra") == catalogue
    manifest = generate_catalog_shop(tmp_path / "out", users=20, interactions=200)
    assert manifest.source == catalogue.resolve()
    monkeypatch.delenv(DATA_ENV)
    monkeypatch.chdir(tmp_path)
    assert default_source() == Path("../shared/data/myntra_fashion")
    with pytest.raises(ValidationError, match=DATA_ENV):
        generate_catalog_shop(tmp_path / "out2")


# ----------------------------------------------------------------------------- the loader


def test_load_into_store(shop: Path, catalogue: Path, tmp_path: Path) -> None:
    counts = json.loads((shop / "manifest.json").read_text())["counts"]
    with EmbeddedStore(tmp_path / "store") as store:
        report = load(store, "catalog_shop", {"shop": shop})
        assert report.rejected == []
        assert report.nodes == {"Product": _N, "Image": _N - 2, "User": 300}
        stored = store.counts()
        assert stored.nodes["Product"] == _N
        assert stored.nodes["Image"] == _N - 2
        assert stored.nodes["User"] == 300
        assert stored.nodes.get("Brand", 0) == 0
        assert stored.nodes.get("Category", 0) == 0
        assert stored.relationships["HAS_IMAGE"] == _N - 2
        assert stored.relationships["VIEWED"] == counts["viewed"]
        assert stored.relationships["PURCHASED"] == counts["purchased"]
        assert stored.relationships["FAVORITED"] == counts["favorited"]
        assert stored.relationships.get("OF_BRAND", 0) == 0
        rows = store.query("MATCH (p:Product) WHERE p.description IS NOT NULL RETURN count(p) AS n")
        assert rows[0]["n"] == 0
        rows = store.query(
            "MATCH (p:Product {id: 'myntra:1003'})-[:HAS_IMAGE]->(i:Image) RETURN i.path AS path"
        )
    archive, member = rows[0]["path"].split("::")
    assert Path(archive) == (catalogue / "images.tar.gz").resolve()
    with tarfile.open(archive) as tar:
        fh = tar.extractfile(member)
        assert fh is not None
        with Image.open(fh) as img:
            assert img.size == (6, 8)


# ----------------------------------------------------------------------------- the CLI


def test_cli_generate_catalog(catalogue: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "shop"
    res = runner.invoke(
        main,
        ["generate", "--catalog", "myntra", "--source", str(catalogue), "--out", str(out),
         "--users", "40", "--interactions", "700", "--seed", "2", "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["catalog"] == "myntra" and data["seed"] == 2
    assert data["counts"]["users"] == 40
    assert data["counts"]["products"] == _N
    assert (out / "products.csv").exists()
    res = runner.invoke(
        main, ["generate", "--catalog", "myntra", "--source", str(catalogue), "--out",
               str(tmp_path / "text"), "--users", "20", "--interactions", "200"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "wrote the myntra catalogue shop (seed 0)" in res.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--catalog", "amazon"], 2, "Invalid value for '--catalog'"),
        (["--catalog", "myntra", "--size", "small"], 2, "cannot go with --catalog"),
        (["--users", "10"], 2, "--users needs --catalog"),
        (["--source", "x"], 2, "--source needs --catalog"),
        (["--catalog", "myntra", "--users", "0"], 2, "Invalid value for '--users'"),
        (["--catalog", "myntra", "--source", "NOWHERE"], 1, "error: the myntra catalogue"),
    ],
)
def test_cli_generate_catalog_errors(
    tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    res = CliRunner().invoke(main, ["generate", "--out", str(tmp_path / "o"), *args])
    assert res.exit_code == code, res.output
    assert message in res.output
    if code == 1:
        assert len(res.output.strip().splitlines()) == 1


def test_a_zip_of_photos_is_a_catalogue_source(catalogue: Path, tmp_path: Path) -> None:
    """Kaggle ships the Myntra photos as a zip: a catalogue folder with images.zip (and no
    images.tar.gz) gives the same photo references, into the zip."""
    import zipfile

    folder = tmp_path / "myntra zip"
    folder.mkdir()
    shutil.copy(catalogue / "products.csv", folder / "products.csv")
    with (
        tarfile.open(catalogue / "images.tar.gz") as tar,
        zipfile.ZipFile(folder / "images.zip", "w") as zipped,
    ):
        for member in tar.getmembers():
            data = tar.extractfile(member)
            assert data is not None
            zipped.writestr(member.name, data.read())
    out = tmp_path / "shop"
    generate_catalog_shop(out, "myntra", source=folder, users=50, interactions=2000, seed=1)
    archive = str((folder / "images.zip").resolve())
    for pid, image in _read(out / "products.csv")[["product_id", "image"]].itertuples(index=False):
        raw = pid.removeprefix("myntra:")
        assert image == ("" if raw in _NO_PHOTO else f"{archive}::images/{raw}.jpg")
