"""Edges of the shop generators: ``~`` in their folders, custom presets, a write that fails
half-way, the order of their checks and a catalogue too small for a shop."""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
import tarfile
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from graphfusion.catalog_shop import DATA_ENV, default_source, generate_catalog_shop
from graphfusion.cli import main
from graphfusion.errors import ValidationError
from graphfusion.synthetic import (
    SIZES,
    GeneratorArgumentError,
    OutputFolderError,
    generate_shop,
)

# (article type, noun, colour); titles "<brand> <gender> <colour> <noun>"
_KINDS = (
    ("Apparel - Topwear - Tshirts", "Tshirts", "Black"),
    ("Apparel - Bottomwear - Jeans", "Jeans", "Blue"),
    ("Footwear - Shoes - Casual Shoes", "Casual Shoes", "White"),
)


def _catalogue(folder: Path, n: int = 12) -> Path:
    """A Myntra-format catalogue folder of ``n`` products, each with a photo."""
    folder.mkdir(parents=True)
    rows = []
    for i in range(n):
        kind, noun, colour = _KINDS[i % len(_KINDS)]
        gender = ("Men", "Women")[i % 2]
        title = f"{('Nike', 'Puma', 'Lee')[i % 3]} {gender} {colour} {noun}"
        rows.append((str(100 + i), title, f"{kind} - {colour} - Casual"))
    frame = pd.DataFrame(rows, columns=["product_id", "title", "description"])
    frame.to_csv(folder / "products.csv", index=False)
    with tarfile.open(folder / "images.tar.gz", "w:gz") as tar:
        for pid, _, _ in rows:
            buf = io.BytesIO()
            Image.new("RGB", (4, 4), (10, 20, 30)).save(buf, format="JPEG")
            info = tarfile.TarInfo(f"images/{pid}.jpg")
            info.size = buf.tell()
            buf.seek(0)
            tar.addfile(info, buf)
    return folder


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _catalogue(tmp_path_factory.mktemp("data") / "myntra_fashion")


# ----------------------------------------------------------------------------- ~ in folders


def test_tilde_in_the_synthetic_shop_folder_is_the_home_folder(home: Path) -> None:
    """``generate_shop("~/shop")`` wrote into a folder named ``~`` below the working folder,
    where ``load(shop="~/shop")`` (which expands ``~``) then found nothing."""
    manifest = generate_shop("~/shop", "tiny", seed=0)
    assert manifest.path == home / "shop"
    assert (home / "shop" / "manifest.json").is_file()
    assert not Path("~").exists()


def test_tilde_in_the_catalogue_shop_folders_is_the_home_folder(
    home: Path, catalogue: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The output folder, ``source`` and ``$GRAPHFUSION_DATA`` all took ``~`` literally: a
    catalogue under ``~`` "did not exist"."""
    shutil.copytree(catalogue, home / "data" / "myntra_fashion")
    manifest = generate_catalog_shop(
        "~/cshop", source="~/data/myntra_fashion", users=5, interactions=40
    )
    assert manifest.path == home / "cshop"
    assert manifest.source == (home / "data" / "myntra_fashion").resolve()
    assert (home / "cshop" / "manifest.json").is_file()
    assert not Path("~").exists()
    monkeypatch.setenv(DATA_ENV, "~/data")
    assert default_source() == home / "data" / "myntra_fashion"
    manifest = generate_catalog_shop("~/cshop2", users=5, interactions=40)
    assert manifest.source == (home / "data" / "myntra_fashion").resolve()


def test_cli_generate_with_a_quoted_tilde(home: Path) -> None:
    res = CliRunner().invoke(main, ["generate", "--out", "~/shop", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["path"] == str(home / "shop")
    assert (home / "shop" / "products.csv").is_file()


# ----------------------------------------------------------------------------- custom presets


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"users": 0}, r"users must be an integer of at least 1, got 0"),
        ({"users": 10.5}, r"users must be an integer of at least 1, got 10\.5"),
        ({"users": True}, r"users must be an integer of at least 1, got True"),
        ({"brands": 0}, r"brands must be an integer of at least 1"),
        ({"reviews": -1}, r"reviews must be an integer of at least 0"),
        ({"interactions": -5}, r"interactions must be an integer of at least 0"),
        ({"colours": 20}, r"colours must be an integer from 1 to 12, got 20"),
        ({"top_categories": 10}, r"top_categories must be an integer from 1 to 6, got 10"),
        ({"categories": 40}, r"categories must be an integer from 3 to 15 .*, got 40"),
        ({"categories": 2}, r"categories must be an integer from 3 to 15 .*, got 2"),
        ({"suppliers": 8}, r"batches \(10\) must be at least two per supplier \(16 for 8"),
        ({"products": 5}, r"products \(5\) must be at least batches \(10\)"),
        ({"light_user_share": 2.0}, r"light_user_share must be a number from 0 to 1, got 2\.0"),
        ({"follows_per_user": float("nan")}, r"follows_per_user must be a number of at least 0"),
    ],
)
def test_a_custom_preset_that_cannot_be_made_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: dict[str, object], message: str
) -> None:
    """A preset of one's own (a ``ShopSize`` added to ``SIZES``) crashed deep inside the
    generator (ZeroDivisionError, IndexError, "n < 0") or made another shop than it asked
    for, in silence: 18 categories for 40, no at-risk product for fewer products than
    batches."""
    monkeypatch.setitem(SIZES, "mine", dataclasses.replace(SIZES["tiny"], **change))
    with pytest.raises(GeneratorArgumentError, match=rf"preset 'mine': {message}"):
        generate_shop(tmp_path / "out", "mine")
    assert not (tmp_path / "out").exists()


def test_a_custom_preset_that_can_be_made_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = dataclasses.replace(SIZES["tiny"], users=1, reviews=0, questions=0, categories=15)
    monkeypatch.setitem(SIZES, "mine", spec)
    manifest = generate_shop(tmp_path / "out", "mine")
    assert manifest.counts["users"] == 1
    assert manifest.counts["reviews"] == 0 and manifest.counts["answers"] == 0
    assert manifest.counts["categories"] == spec.top_categories + spec.categories
    truth = json.loads((tmp_path / "out" / "ground_truth.json").read_text("utf-8"))
    assert truth["at_risk_products"]


def test_the_presets_pass_their_own_checks(tmp_path: Path) -> None:
    from graphfusion.synthetic import _check_size

    for name, spec in SIZES.items():
        _check_size(name, spec)


# ----------------------------------------------------------------------------- failed writes


def test_a_write_that_fails_half_way_is_an_output_folder_error(tmp_path: Path) -> None:
    """A file the generator could not write after the first (a full disk, a quota, a folder
    in the way) was a bare OSError from deep inside, not the documented OutputFolderError,
    and did not say that the folder now holds an incomplete shop."""
    out = tmp_path / "shop"
    generate_shop(out, "tiny")
    (out / "reviews.csv").unlink()
    (out / "reviews.csv").mkdir()
    with pytest.raises(OutputFolderError, match=r"cannot write .*reviews\.csv.*incomplete"):
        generate_shop(out, "tiny")
    assert json.loads((out / "manifest.json").read_text("utf-8"))["complete"] is False
    res = CliRunner().invoke(main, ["generate", "--out", str(out), "--json"])
    assert res.exit_code == 1
    assert res.output.startswith("error: cannot write ")
    assert len(res.output.strip().splitlines()) == 1
    (out / "reviews.csv").rmdir()  # running again finishes it
    assert generate_shop(out, "tiny").counts["reviews"] == SIZES["tiny"].reviews


def test_an_image_that_cannot_be_written_is_an_output_folder_error(tmp_path: Path) -> None:
    out = tmp_path / "shop"
    generate_shop(out, "tiny")
    (out / "images" / "p0007.png").unlink()
    (out / "images" / "p0007.png").mkdir()
    with pytest.raises(OutputFolderError, match=r"cannot write .*p0007\.png"):
        generate_shop(out, "tiny")


def test_a_catalogue_shop_write_that_fails_half_way(catalogue: Path, tmp_path: Path) -> None:
    out = tmp_path / "shop"
    generate_catalog_shop(out, source=catalogue, users=5, interactions=40)
    (out / "interactions.csv").unlink()
    (out / "interactions.csv").mkdir()
    with pytest.raises(OutputFolderError, match=r"cannot write .*interactions\.csv.*incomplete"):
        generate_catalog_shop(out, source=catalogue, users=5, interactions=40)


# ----------------------------------------------------------------------------- catalogue checks


def test_the_output_folder_is_checked_before_the_catalogue_is_read(
    catalogue: Path, tmp_path: Path
) -> None:
    """The whole catalogue (12,000 photos for Myntra) was read before a foreign or a file
    output folder was refused."""
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "products.csv").write_text("", encoding="utf-8")  # unreadable: no columns
    shutil.copy(catalogue / "images.tar.gz", broken / "images.tar.gz")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(OutputFolderError, match="holds no catalogue shop manifest"):
        generate_catalog_shop(foreign, source=broken, users=5, interactions=40)
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    with pytest.raises(OutputFolderError, match="is not a directory"):
        generate_catalog_shop(tmp_path / "a-file", source=broken, users=5, interactions=40)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]


def test_a_catalogue_of_fewer_products_than_a_user_views(tmp_path: Path) -> None:
    """A catalogue of 2 products asked for "at most users x products (1 x 2)" interactions
    where at least 3 were needed: no value could pass, and the message did not say why."""
    folder = _catalogue(tmp_path / "two", n=2)
    with pytest.raises(ValidationError, match=r"holds only 2 products .* at least 3"):
        generate_catalog_shop(tmp_path / "out", source=folder, users=1, interactions=3)
    assert not (tmp_path / "out").exists()
