"""Embedding the stored graph: vectors on the nodes, the cache, bad input, vector search."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from graphfusion import Engine
from graphfusion.errors import ValidationError
from graphfusion.features.behaviour import FEATURES, behaviour_features
from graphfusion.features.image import ImageEncoder
from graphfusion.features.text import TextEncoder
from graphfusion.ingest import load
from graphfusion.store import EmbeddedStore


@pytest.fixture(scope="module")
def text_encoder() -> TextEncoder:
    return TextEncoder()


@pytest.fixture(scope="module")
def shop_engine(
    tiny_shop: Path, tmp_path_factory: pytest.TempPathFactory, text_encoder: TextEncoder
) -> Iterator[Engine]:
    """The tiny shop, loaded and embedded (text and behaviour; a test adds images)."""
    engine = Engine(tmp_path_factory.mktemp("embedded") / "store")
    load(engine.store, "synthetic", {"shop": tiny_shop})
    engine.embed(["text", "behaviour"], text_encoder=text_encoder)
    yield engine
    engine.close()


def _vector_count(engine: Engine, label: str, prop: str) -> int:
    rows = engine.cypher(f"MATCH (n:{label}) WHERE n.{prop} IS NOT NULL RETURN count(n) AS c")
    return int(rows["c"][0])


def test_every_node_with_text_gets_a_vector(shop_engine: Engine) -> None:
    counts = shop_engine.stats().nodes
    for label in ("Product", "Review", "Question", "Answer"):
        assert _vector_count(shop_engine, label, "text_vec") == counts[label], label
    for label in ("User", "Product", "Supplier"):
        assert _vector_count(shop_engine, label, "behaviour_vec") == counts[label], label
    vec = shop_engine.cypher("MATCH (p:Product {id: 'p0001'}) RETURN p.text_vec AS v")["v"][0]
    assert len(vec) == 384
    assert abs(np.linalg.norm(vec) - 1.0) < 1e-4


def test_second_run_recomputes_nothing(shop_engine: Engine, text_encoder: TextEncoder) -> None:
    report = shop_engine.embed(["text", "behaviour"], text_encoder=text_encoder)
    assert sum(report.encoded.values()) == 0
    assert sum(report.cached.values()) == 0
    assert report.unchanged["Product.text_vec"] == 40
    assert report.errors == []


def test_changed_content_is_reencoded_and_cache_reused(
    tmp_path: Path, text_encoder: TextEncoder
) -> None:
    with Engine(tmp_path / "s") as engine:
        products = pd.DataFrame(
            {"id": ["a", "b", "c"], "title": ["Red mug", "Blue lamp", "Red mug"]}
        )
        engine.store.upsert_nodes("Product", products)
        first = engine.embed("text", text_encoder=text_encoder)
        # the same text twice is encoded once
        assert first.encoded["Product.text_vec"] + first.cached["Product.text_vec"] == 3
        engine.store.upsert_nodes("Product", pd.DataFrame({"id": ["b"], "title": ["Green lamp"]}))
        second = engine.embed("text", text_encoder=text_encoder)
        assert second.encoded["Product.text_vec"] == 1
        assert second.unchanged["Product.text_vec"] == 2
        # back to the old title: served from the content cache, not encoded again
        engine.store.upsert_nodes("Product", pd.DataFrame({"id": ["b"], "title": ["Blue lamp"]}))
        third = engine.embed("text", text_encoder=text_encoder)
        assert third.encoded["Product.text_vec"] == 0
        assert third.cached["Product.text_vec"] == 1
        got = engine.cypher("MATCH (p:Product {id: 'b'}) RETURN p.text_vec AS v")["v"][0]
        np.testing.assert_allclose(got, text_encoder.encode(["Blue lamp"])[0], atol=1e-5)


def test_embedding_only_some_nodes(tmp_path: Path, text_encoder: TextEncoder) -> None:
    """``keys`` limits a run to the nodes named (what ``add_products`` embeds): the others
    keep what they had until a run without it."""
    from graphfusion.features.embed import embed

    with Engine(tmp_path / "s") as engine:
        engine.store.upsert_nodes("Product", pd.DataFrame({"id": ["a", "b"], "title": ["x", "y"]}))
        engine.embed(text_encoder=text_encoder)
        engine.store.upsert_nodes(
            "Product", pd.DataFrame({"id": ["b", "c", "d"], "title": ["Y2", "Red mug", "Lamp"]})
        )
        report = embed(engine.store, text_encoder=text_encoder, keys={"Product": ["c"]})
        assert report.encoded["Product.text_vec"] == 1
        behaviour = report.encoded["Product.behaviour_vec"] + report.cached["Product.behaviour_vec"]
        assert behaviour == 1  # the same features as a and b's: from the cache
        assert report.encoded.get("User.behaviour_vec", 0) == 0
        rows = engine.cypher(
            "MATCH (p:Product) RETURN p.id AS id, p.text_vec IS NOT NULL AS t, "
            "p.behaviour_vec IS NOT NULL AS b ORDER BY id"
        )
        assert rows["t"].tolist() == [True, True, True, False]
        assert rows["b"].tolist() == [True, True, True, False]
        got = engine.cypher("MATCH (p:Product {id: 'c'}) RETURN p.text_vec AS v")["v"][0]
        np.testing.assert_allclose(got, text_encoder.encode(["Red mug"])[0], atol=1e-5)
        stale = engine.cypher("MATCH (p:Product {id: 'b'}) RETURN p.text_vec AS v")["v"][0]
        np.testing.assert_allclose(stale, text_encoder.encode(["y"])[0], atol=1e-5)
        later = engine.embed(text_encoder=text_encoder)  # b's new title and d
        assert later.encoded["Product.text_vec"] == 2
        for bad in ({"Nope": ["a"]}, {"Product": "a"}, {"Product": [1]}, ["a"]):
            with pytest.raises(ValidationError, match="keys"):
                embed(engine.store, text_encoder=text_encoder, keys=bad)  # type: ignore[arg-type]


def test_nodes_without_text_are_reported_and_the_rest_proceed(
    tmp_path: Path, text_encoder: TextEncoder
) -> None:
    with Engine(tmp_path / "s") as engine:
        engine.store.upsert_nodes(
            "Question", pd.DataFrame({"id": ["q1", "q2", "q3"], "text": ["Is it red?", None, " "]})
        )
        report = engine.embed("text", text_encoder=text_encoder, report=tmp_path / "r.csv")
        assert report.encoded["Question.text_vec"] == 1
        assert {(e.key, e.reason) for e in report.errors} == {
            ("q2", "no text in text"),
            ("q3", "no text in text"),
        }
        assert "q2" in (tmp_path / "r.csv").read_text()


def test_supplied_vectors_with_nan_are_reported_nothing_lost(tmp_path: Path) -> None:
    with Engine(tmp_path / "s") as engine:
        engine.store.upsert_nodes("Product", pd.DataFrame({"id": ["a", "b"]}))
        good = np.ones((2, 384)) / np.sqrt(384)
        assert engine.add_vectors("Product", "text_vec", ["a", "b"], good)[0] == 2
        bad = good.copy()
        bad[0, 5] = np.nan
        written, errors = engine.add_vectors("Product", "text_vec", ["a", "zzz"], bad)
        assert written == 0
        assert [(e.key, e.reason) for e in errors] == [
            ("a", "vector holds NaN or infinite values"),
            ("zzz", "no Product with this key"),
        ]
        kept = engine.cypher("MATCH (p:Product {id: 'a'}) RETURN p.text_vec AS v")["v"][0]
        np.testing.assert_allclose(kept, good[0], atol=1e-6)
        with pytest.raises(ValidationError, match="dimension 384"):
            engine.add_vectors("Product", "text_vec", ["a"], np.ones((1, 10)))
        with pytest.raises(ValidationError, match="not a vector"):
            engine.add_vectors("Product", "title", ["a"], np.ones((1, 10)))
        with pytest.raises(ValidationError, match="repeated: \\['a'\\]"):
            engine.add_vectors("Product", "text_vec", ["a", "b", "a"], np.ones((3, 384)))
        with pytest.raises(ValidationError, match="not one string"):
            engine.add_vectors("Product", "text_vec", "ab", np.ones((2, 384)))


def test_similar_matches_brute_force(shop_engine: Engine) -> None:
    rows = shop_engine.cypher("MATCH (p:Product) RETURN p.id AS id, p.text_vec AS v ORDER BY id")
    matrix = np.asarray(rows["v"].tolist(), dtype=np.float64)
    ids = rows["id"].tolist()
    query = ids.index("p0007")
    scores = matrix @ matrix[query] / np.linalg.norm(matrix, axis=1) / np.linalg.norm(matrix[query])
    order = [i for i in np.argsort(-scores, kind="stable") if i != query][:5]
    got = shop_engine.similar("p0007", "text", k=5)
    assert got["id"].tolist() == [ids[i] for i in order]
    np.testing.assert_allclose(got["score"].to_numpy(), scores[order], atol=1e-4)
    assert "p0007" not in got["id"].tolist()


def test_similar_by_behaviour_and_bad_arguments(shop_engine: Engine) -> None:
    assert len(shop_engine.similar("p0001", "behaviour", k=3)) == 3
    with pytest.raises(ValidationError, match="no product 'nope'"):
        shop_engine.similar("nope")
    with pytest.raises(ValidationError, match="k must be"):
        shop_engine.similar("p0001", k=0)
    with pytest.raises(ValidationError, match="unknown modality"):
        shop_engine.similar("p0001", "smell")
    with pytest.raises(ValidationError, match="no fused vector yet; run `graphfusion train`"):
        shop_engine.similar("p0001", "fused")
    assert len(shop_engine.similar("p0001", k=np.int64(2))) == 2  # a numpy integer is an int
    with pytest.raises(ValidationError, match="k must be"):
        shop_engine.similar("p0001", k=np.True_)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="only must be"):
        shop_engine.embed(only=5)  # type: ignore[arg-type]
    for nothing in ([], (), set()):  # embedded nothing in silence
        with pytest.raises(ValidationError, match="only names no modality"):
            shop_engine.embed(only=nothing)
    assert not any(shop_engine.embed(only={"behaviour"}).encoded.values())  # a set names them too
    with pytest.raises(ValidationError, match="text_encoder must be an encoder"):
        shop_engine.embed(only="text", text_encoder="x")


def test_behaviour_features(shop_engine: Engine) -> None:
    for label, names in FEATURES.items():
        frame = behaviour_features(shop_engine.store, label)
        assert list(frame.columns) == names
        assert len(frame) == shop_engine.stats().nodes[label]
        np.testing.assert_allclose(frame.mean().to_numpy(), 0.0, atol=1e-9)
    raw = behaviour_features(shop_engine.store, "Supplier", standardize=False)
    # the planted defective supplier has the highest (smoothed) complaint share
    assert raw["complaint_share"].idxmax() == "s04"
    with pytest.raises(ValidationError):
        behaviour_features(shop_engine.store, "Brand")


def test_behaviour_of_an_empty_or_sparse_graph(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path / "s") as store:
        store.upsert_nodes("Supplier", pd.DataFrame({"id": ["lonely"]}))
        store.upsert_nodes("Product", pd.DataFrame({"id": ["p"], "price": [3.0]}))
        frame = behaviour_features(store, "Supplier")
        assert frame.loc["lonely"].tolist() == [0.0] * 8
        assert np.isfinite(behaviour_features(store, "Product").to_numpy()).all()
        assert behaviour_features(store, "User").empty


@pytest.fixture(scope="module")
def image_encoder() -> ImageEncoder:
    return ImageEncoder()


def test_image_vectors_with_bad_files_reported(
    tiny_shop: Path, tmp_path: Path, image_encoder: ImageEncoder
) -> None:
    good = sorted((tiny_shop / "images").glob("*.png"))[:4]
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(good[0].read_bytes()[:200])
    not_image = tmp_path / "notes.png"
    not_image.write_text("this is text")
    paths = [str(p) for p in good] + [str(corrupt), str(not_image), str(tmp_path / "gone.png")]
    ids = [f"i{n}" for n in range(len(paths))]
    with Engine(tmp_path / "s") as engine:
        engine.store.upsert_nodes("Image", pd.DataFrame({"id": ids, "path": paths}))
        report = engine.embed("image", image_encoder=image_encoder)
        assert report.encoded["Image.image_vec"] == 4
        reasons = {e.key: e.reason for e in report.errors}
        assert set(reasons) == {"i4", "i5", "i6"}
        assert "file not found" in reasons["i6"]
        assert _vector_count(engine, "Image", "image_vec") == 4
        stored = engine.cypher("MATCH (i:Image {id: 'i0'}) RETURN i.image_vec AS v")["v"][0]
        np.testing.assert_allclose(stored, image_encoder.encode([good[0]])[0], atol=1e-5)
        # the broken files stay broken: a second run reports them again, encodes nothing
        again = engine.embed("image", image_encoder=image_encoder)
        assert again.encoded["Image.image_vec"] == 0
        assert {e.key for e in again.errors} == {"i4", "i5", "i6"}


def test_similar_by_image_prefers_the_same_category(
    shop_engine: Engine, image_encoder: ImageEncoder, tiny_shop: Path
) -> None:
    shop_engine.embed("image", image_encoder=image_encoder)
    truth = json.loads((tiny_shop / "ground_truth.json").read_text())["product_style"]
    hits = total = 0
    for pid in list(truth)[:10]:
        got = shop_engine.similar(pid, "image", k=3)
        assert len(got) == 3
        assert pid not in got["id"].tolist()
        hits += sum(truth[o]["category"] == truth[pid]["category"] for o in got["id"])
        total += 3
    # 6 leaf categories: chance is about 1/6; real image features do far better
    assert hits / total > 0.5


def _readme_cypher() -> list[str]:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    return re.findall(r"```cypher\n(.*?)```", readme, flags=re.S)


def test_readme_embedded_cypher_gives_what_similar_gives(shop_engine: Engine) -> None:
    blocks = [b for b in _readme_cypher() if "array_cosine_similarity" in b and "$id" in b]
    assert blocks
    for block in blocks:
        got = shop_engine.cypher(block, {"id": "p0003"})
        expected = shop_engine.similar("p0003", "text", k=len(got))
        assert got["id"].tolist() == expected["id"].tolist()


def _noise_bmp(path: Path, seed: int) -> None:
    """An uncompressed 64x64 photo of noise: the same file size whatever the seed."""
    pixels = np.random.default_rng(seed).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="BMP")


def test_a_photo_replaced_in_place_is_encoded_again_and_a_copy_is_not(
    tmp_path: Path, image_encoder: ImageEncoder
) -> None:
    photo = tmp_path / "photo.bmp"
    _noise_bmp(photo, 0)
    with Engine(tmp_path / "s") as engine:
        engine.store.upsert_nodes("Image", pd.DataFrame({"id": ["i0"], "path": [str(photo)]}))
        assert engine.embed("image", image_encoder=image_encoder).encoded["Image.image_vec"] == 1
        # new pixels, same size and modification time (as `cp -p` of another shot leaves it)
        before = photo.stat()
        _noise_bmp(photo, 1)
        os.utime(photo, ns=(before.st_atime_ns, before.st_mtime_ns))
        after = photo.stat()
        assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
        report = engine.embed("image", image_encoder=image_encoder)
        assert report.encoded["Image.image_vec"] == 1
        stored = engine.cypher("MATCH (i:Image {id: 'i0'}) RETURN i.image_vec AS v")["v"][0]
        np.testing.assert_allclose(stored, image_encoder.encode([photo])[0], atol=1e-5)
        # the same bytes under another path and time: nothing to encode
        moved = tmp_path / "moved" / "photo.bmp"
        moved.parent.mkdir()
        shutil.copyfile(photo, moved)
        engine.store.upsert_nodes("Image", pd.DataFrame({"id": ["i0"], "path": [str(moved)]}))
        report = engine.embed("image", image_encoder=image_encoder)
        assert report.encoded["Image.image_vec"] == 0
        assert report.unchanged["Image.image_vec"] == 1


def test_a_vector_of_content_that_is_gone_is_removed_and_comes_back_from_the_cache(
    tmp_path: Path, text_encoder: TextEncoder, image_encoder: ImageEncoder
) -> None:
    """A vector embed made from content the node no longer has (its text removed, its photo
    replaced by a broken file) is removed, not left to stand for the old content; a vector
    supplied from outside (add_vectors) on a node without text is not embed's to remove."""
    photo = tmp_path / "photo.bmp"
    _noise_bmp(photo, 0)
    good = photo.read_bytes()
    with Engine(tmp_path / "s") as engine:
        engine.store.upsert_nodes(
            "Product",
            pd.DataFrame({"id": ["a", "b", "c"], "title": ["Red mug", "Blue lamp", None]}),
        )
        engine.store.upsert_nodes("Image", pd.DataFrame({"id": ["i0"], "path": [str(photo)]}))
        supplied = np.ones((1, 384)) / np.sqrt(384)
        assert engine.add_vectors("Product", "text_vec", ["c"], supplied) == (1, [])
        engine.embed(["text", "image"], text_encoder=text_encoder, image_encoder=image_encoder)
        engine.store.query("MATCH (p:Product {id: 'b'}) SET p.title = NULL")
        photo.write_bytes(good[:100])  # truncated in place
        report = engine.embed(
            ["text", "image"], text_encoder=text_encoder, image_encoder=image_encoder
        )
        reasons = {e.key: e.reason for e in report.errors}
        assert set(reasons) == {"b", "c", "i0"}
        assert "removed" in reasons["b"] and "removed" in reasons["i0"]
        assert "removed" not in reasons["c"]
        rows = engine.cypher(
            "MATCH (p:Product) RETURN p.id AS id, p.text_vec IS NOT NULL AS has ORDER BY id"
        )
        assert rows["has"].tolist() == [True, False, True]
        assert _vector_count(engine, "Image", "image_vec") == 0
        # the content back: its vector from the cache, nothing encoded
        engine.store.query("MATCH (p:Product {id: 'b'}) SET p.title = 'Blue lamp'")
        photo.write_bytes(good)
        back = engine.embed(
            ["text", "image"], text_encoder=text_encoder, image_encoder=image_encoder
        )
        assert (back.encoded["Product.text_vec"], back.cached["Product.text_vec"]) == (0, 1)
        assert (back.encoded["Image.image_vec"], back.cached["Image.image_vec"]) == (0, 1)
        got = engine.cypher("MATCH (p:Product {id: 'b'}) RETURN p.text_vec AS v")["v"][0]
        np.testing.assert_allclose(got, text_encoder.encode(["Blue lamp"])[0], atol=1e-5)
        assert _vector_count(engine, "Image", "image_vec") == 1


def test_a_vector_supplied_over_an_embedded_one_is_not_removed_with_its_content(
    tmp_path: Path, text_encoder: TextEncoder
) -> None:
    """add_vectors over a vector embed made: the supplied one is the node's own, so embed
    does not remove it when the node's text goes (it took it for its own before)."""
    with Engine(tmp_path / "s") as engine:
        engine.store.upsert_nodes("Product", pd.DataFrame({"id": ["a"], "title": ["Red mug"]}))
        engine.embed("text", text_encoder=text_encoder)
        supplied = np.ones((1, 384)) / np.sqrt(384)
        assert engine.add_vectors("Product", "text_vec", ["a"], supplied) == (1, [])
        engine.store.query("MATCH (p:Product {id: 'a'}) SET p.title = NULL")
        report = engine.embed("text", text_encoder=text_encoder)
        assert [(e.key, e.reason) for e in report.errors] == [
            ("a", "no text in title, description")
        ]
        got = engine.cypher("MATCH (p:Product {id: 'a'}) RETURN p.text_vec AS v")["v"][0]
        np.testing.assert_allclose(got, supplied[0], atol=1e-6)


def test_a_text_of_only_invisible_characters_is_no_text(
    tmp_path: Path, text_encoder: TextEncoder
) -> None:
    """A title of zero-width or control characters gets no vector of its own (it was encoded
    as if it were text); beside a description it adds nothing to it."""
    invisible = "\u200b\u200d\x07 \ufeff"
    with Engine(tmp_path / "s") as engine:
        engine.store.upsert_nodes(
            "Product",
            pd.DataFrame(
                {
                    "id": ["a", "b"],
                    "title": [invisible, invisible],
                    "description": [None, "Red mug"],
                }
            ),
        )
        report = engine.embed("text", text_encoder=text_encoder)
        assert [(e.key, e.reason) for e in report.errors] == [
            ("a", "no text in title, description")
        ]
        got = engine.cypher("MATCH (p:Product {id: 'b'}) RETURN p.text_vec AS v")["v"][0]
        np.testing.assert_allclose(got, text_encoder.encode(["Red mug"])[0], atol=1e-5)
