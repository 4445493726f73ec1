"""Features, round 3: what a shop's real photos, texts and model folders brought up."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from graphfusion import Engine
from graphfusion.errors import ValidationError
from graphfusion.features.base import EncodeResult
from graphfusion.features.cache import content_hash
from graphfusion.features.embed import cache_for
from graphfusion.features.image import ImageEncoder
from graphfusion.features.text import TextEncoder


@pytest.fixture(scope="module")
def image_encoder() -> ImageEncoder:
    # a small max_pixels: a "huge" photo is then a 900 x 700 one
    return ImageEncoder(num_workers=0, max_pixels=256 * 256 * 4)


@pytest.fixture(scope="module")
def text_encoder() -> TextEncoder:
    return TextEncoder()


def _photo(size: tuple[int, int] = (900, 700)) -> Image.Image:
    rng = np.random.default_rng(3)
    w, h = size
    pixels = (rng.normal(0, 20, (h, w, 3)) + 200).clip(0, 255).astype(np.uint8)
    pixels[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = (30, 60, 200)
    return Image.fromarray(pixels)


def _saved(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


# ----------------------------------------------------------------------------- images


def test_a_large_phone_photo_stored_as_mpo_is_decoded_reduced_like_a_jpeg(
    image_encoder: ImageEncoder,
) -> None:
    """Many phones and cameras write JPEGs with a second, smaller picture (a preview, a depth
    map) in an MPF block: Pillow opens them as MPO. One over ``max_pixels`` was refused as
    "only JPEG can be decoded reduced", although it is a JPEG."""
    photo = _photo()
    mpo = _saved(photo, "MPO", save_all=True, append_images=[photo.resize((90, 70))])
    jpeg = _saved(photo, "JPEG")
    assert Image.open(io.BytesIO(mpo)).format == "MPO"
    result = image_encoder.encode_many([mpo, jpeg])
    assert result.errors == {}
    assert result.ok == [0, 1]
    assert float(result.vectors[0] @ result.vectors[1]) > 0.999  # its first picture


def test_a_large_png_is_still_refused_with_the_reason(image_encoder: ImageEncoder) -> None:
    result = image_encoder.encode_many([_saved(_photo(), "PNG")])
    assert "only JPEG can be decoded reduced" in result.errors[0]


@pytest.mark.parametrize(
    ("data", "want"),
    [
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64), "HEIC/HEIF image"),
        (b"\x00\x00\x00\x18ftypheix\x00\x00\x00\x00mif1heix" + bytes(64), "HEIC/HEIF image"),
        (b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1MiHEheic" + bytes(64), "HEIC/HEIF image"),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG image"),
        (b'<svg xmlns="http://www.w3.org/2000/svg" width="10"/>', "SVG image"),
        (b"\xff\x0a" + bytes(64), "JPEG XL image"),
        (b"\x00\x00\x00\x0cJXL \r\n\x87\n" + bytes(64), "JPEG XL image"),
    ],
    ids=["heic", "heix", "mif1-heic", "svg-xml", "svg", "jxl-codestream", "jxl-container"],
)
def test_a_photo_in_a_format_pillow_cannot_read_is_named_not_called_a_non_image(
    image_encoder: ImageEncoder, tmp_path: Path, data: bytes, want: str
) -> None:
    """An iPhone's HEIC photo, a vector SVG logo or a JPEG XL file were reported as "not an
    image (unknown file format)": the user was told the file is no image at all."""
    path = tmp_path / "photo"
    path.write_bytes(data)
    result = image_encoder.encode_many([data, path])
    assert result.ok == []
    for reason in result.errors.values():
        assert want in reason
        assert "not an image" not in reason
        assert "convert it" in reason


def test_a_file_that_is_no_image_is_still_called_so(image_encoder: ImageEncoder) -> None:
    result = image_encoder.encode_many([b"just some text, not a picture"])
    assert result.errors == {0: "not an image (unknown file format)"}


# ----------------------------------------------------------------------------- text


def test_a_text_of_only_invisible_characters_is_refused_as_embed_refuses_it(
    text_encoder: TextEncoder,
) -> None:
    """``embed`` counts a title of only zero-width or control characters as no text, but
    TextEncoder encoded it (every such text the same vector of an empty sentence)."""
    items = ["\u200b\u200b", "\x00", "\u200b \t\x01", "red\x00shirt", "red shirt 👕", "ok"]
    result = text_encoder.encode_many(items)
    assert result.ok == [3, 4, 5]
    for index in (0, 1, 2):
        assert result.errors[index] == "no visible character (only spaces, control or zero-width)"
    with pytest.raises(ValidationError, match="text 0: no visible character"):
        text_encoder.encode(["\u200b"])


def test_a_model_path_that_is_a_file_says_so(text_encoder: TextEncoder) -> None:
    """The path of a file inside the model folder was reported as "does not exist"."""
    with pytest.raises(ValidationError, match="is a file, not a model folder"):
        TextEncoder(text_encoder.path / "config.json")


def _model_copy(source: Path, target: Path) -> Path:
    """A copy of a model folder, its large files linked (not copied)."""
    for file in source.rglob("*"):
        if not file.is_file():
            continue
        dest = target / file.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if file.stat().st_size > 1_000_000:
            os.symlink(file, dest)
        else:
            shutil.copyfile(file, dest)
    return target


def test_the_model_id_follows_only_the_files_that_make_the_vectors(
    text_encoder: TextEncoder, tmp_path: Path
) -> None:
    """The id keys every cached text vector. It hashed every file of the folder: an edited
    model card (README.md), a git checkout's ``.git`` folder (changed by a mere ``git
    fetch``), the ``.cache`` of ``huggingface-cli download``, or the ONNX, OpenVINO,
    TensorFlow, Flax and Rust weights a hub clone holds beside the PyTorch ones made another
    id, and the next embed encoded every text again, to the same vectors."""
    copy = _model_copy(text_encoder.path, tmp_path / text_encoder.path.name)
    assert TextEncoder(copy).name == text_encoder.name
    (copy / "README.md").write_text("# all-MiniLM-L6-v2\n\nA new model card.\n")
    (copy / ".gitattributes").write_text("*.bin filter=lfs\n")
    (copy / ".git" / "objects").mkdir(parents=True)
    (copy / ".git" / "FETCH_HEAD").write_text("0123abcd\n")
    (copy / ".cache" / "huggingface").mkdir(parents=True)
    (copy / ".cache" / "huggingface" / "model.safetensors.metadata").write_text("etag\n")
    (copy / "onnx").mkdir()
    (copy / "onnx" / "model_qint8_avx512.onnx").write_bytes(b"onnx")
    (copy / "openvino").mkdir()
    (copy / "openvino" / "openvino_model.bin").write_bytes(b"ov")
    for name in ("tf_model.h5", "flax_model.msgpack", "rust_model.ot", "LICENSE"):
        (copy / name).write_bytes(b"other")
    assert TextEncoder(copy).name == text_encoder.name
    # what does make the vectors still names another model
    for name in ("tokenizer_config.json", "1_Pooling/config.json", "modules.json"):
        changed = _model_copy(text_encoder.path, tmp_path / name.replace("/", "_") / "model")
        target = changed / name
        target.write_text(target.read_text() + " ")
        assert TextEncoder(changed).name != text_encoder.name, name


# ----------------------------------------------------------------------------- the cache


class _Encoder:
    """An encoder of the user's own (name, dim, encode_many): a constant direction."""

    def __init__(self, name: str, dim: int) -> None:
        self.name = name
        self.dim = dim
        self.calls = 0

    def encode_many(self, items: list[object], *, progress: bool = False) -> EncodeResult:
        self.calls += 1
        vectors = np.zeros((len(items), self.dim), dtype=np.float32)
        vectors[:, 0] = 1.0
        return EncodeResult(vectors, list(range(len(items))), {})


def test_a_cached_vector_of_another_size_is_made_again_not_a_crash(tmp_path: Path) -> None:
    """An encoder of one's own keeps its name while its size changes (an embeddings API asked
    for 384 numbers instead of 512, the schema's dim changed with it): the cache served the
    old 512-d vectors under that name and the whole embed failed ("Product.text_vec has
    dimension 384, got 512"), for every label after it too."""
    folder = tmp_path / "shop"
    with Engine(folder) as engine:
        engine.store.upsert_nodes(
            "Product", pd.DataFrame({"id": ["p1", "p2"], "title": ["Red kettle", "Blue mug"]})
        )
        cache = cache_for(engine.store)
        old = {content_hash("api", "Red kettle"): np.ones(512, dtype=np.float32)}
        cache.put_vectors("api", old)
        # a damaged row (its blob cut short) is no vector either
        cache._db.execute(
            "INSERT INTO vectors VALUES (?, ?, ?, ?)",
            ("api", content_hash("api", "Blue mug"), 384, b"\x00\x00\x80?" * 10),
        )
        cache._db.commit()
        cache.close()
        encoder = _Encoder("api", 384)
        report = engine.embed("text", text_encoder=encoder)
        assert report.errors == []
        assert report.encoded["Product.text_vec"] == 2 and encoder.calls == 1
        got = engine.cypher("MATCH (p:Product) RETURN p.text_vec AS v")["v"]
        assert all(len(v) == 384 and v[0] == 1.0 for v in got)
        # and the vectors made now are served from then on
        engine.cypher("MATCH (p:Product) SET p.text_vec = NULL")
        again = engine.embed("text", text_encoder=encoder)
        assert again.cached["Product.text_vec"] == 2 and encoder.calls == 1


def test_keys_and_texts_that_differ_only_in_case_are_kept_apart(tmp_path: Path) -> None:
    """Decided, not changed: the cache tells texts and node keys apart by case. Node keys
    ``p1`` and ``P1`` are two nodes of the store; and although MiniLM reads text in lower
    case, another model need not (``"US"`` and ``"us"``), so a text's vector is keyed by its
    exact characters: a case variant costs one more encoding, never a wrong vector."""
    encoder = _Encoder("api", 384)
    with Engine(tmp_path / "shop") as engine:
        engine.store.upsert_nodes(
            "Product", pd.DataFrame({"id": ["p1", "P1"], "title": ["Red mug", "RED MUG"]})
        )
        first = engine.embed("text", text_encoder=encoder, prune_cache=True)
        assert first.encoded["Product.text_vec"] == 2 and first.pruned == 0
        cache = cache_for(engine.store)
        assert set(cache.get_state("Product", "text_vec")) == {"p1", "P1"}
        cache.close()
        again = engine.embed("text", text_encoder=encoder, prune_cache=True)
        assert again.unchanged["Product.text_vec"] == 2 and again.pruned == 0
