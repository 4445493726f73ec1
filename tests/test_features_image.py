"""ImageEncoder: real MobileNetV2 ImageNet weights (offline), inputs, bad images, backbones."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import re
import struct
import tarfile
import threading
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFile

from graphfusion.errors import ValidationError
from graphfusion.features import image as image_mod
from graphfusion.features.base import EncodeResult
from graphfusion.features.image import ImageBatchResult, ImageEncoder
from graphfusion.readers import ARCHIVE_SEP


def _circle(seed: int, size: tuple[int, int] = (260, 240)) -> Image.Image:
    """A red disc on a noisy light background."""
    rng = np.random.default_rng(seed)
    w, h = size
    pixels = (rng.normal(0, 18, (h, w, 3)) + 225).clip(0, 255).astype(np.uint8)
    img = Image.fromarray(pixels)
    ImageDraw.Draw(img).ellipse((w * 0.2, h * 0.15, w * 0.8, h * 0.85), fill=(215, 25, 30))
    return img


def _striped_square() -> Image.Image:
    """A blue square with white stripes."""
    img = Image.new("RGB", (250, 250), "white")
    draw = ImageDraw.Draw(img)
    draw.rectangle((40, 40, 210, 210), fill=(25, 45, 210))
    for y in range(40, 210, 20):
        draw.rectangle((40, y, 210, y + 8), fill=(250, 250, 250))
    return img


def _jpeg(img: Image.Image, **kwargs: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=92, **kwargs)
    return buf.getvalue()


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims a size and holds no pixel data (opens without decoding anything)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def _unit(v: np.ndarray) -> bool:
    return bool(np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5))


@pytest.fixture(scope="module")
def encoder() -> ImageEncoder:
    """The default encoder (MobileNetV2, offline ImageNet weights), built once."""
    return ImageEncoder(num_workers=0)


@pytest.fixture(scope="module")
def pics(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Image files, and a tar.gz holding two of them."""
    root = tmp_path_factory.mktemp("pics")
    files = {
        "circle1": root / "circle1.jpg",
        "circle2": root / "circle2.jpg",
        "stripes": root / "stripes.jpg",
    }
    files["circle1"].write_bytes(_jpeg(_circle(1)))
    files["circle2"].write_bytes(_jpeg(_circle(2)))
    files["stripes"].write_bytes(_jpeg(_striped_square()))
    archive = root / "shop.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        readme = root / "README"
        readme.write_text("product pictures\n")
        tar.add(readme, arcname="README")
        tar.add(files["stripes"], arcname="images/0-stripes.jpg")
        tar.add(files["circle1"], arcname="images/1.jpg")
        tar.add(files["circle2"], arcname="./images/2.jpg")
    files["archive"] = archive
    return files


def _member(pics: dict[str, Path], name: str) -> str:
    return f"{pics['archive']}{ARCHIVE_SEP}{name}"


# ----------------------------------------------------------------------------- basics


def test_default_backbone_shape_dtype_unit_rows(
    encoder: ImageEncoder, pics: dict[str, Path]
) -> None:
    assert encoder.dim == 1280
    assert re.fullmatch(r"mobilenet_v2:[0-9a-f]{12}", encoder.name)
    assert encoder.name == "mobilenet_v2:b03531047ffa"  # sha256 of torchvision's file
    vectors = encoder.encode([pics["circle1"], str(pics["circle2"]), pics["stripes"]])
    assert vectors.shape == (3, 1280)
    assert vectors.dtype == np.float32
    assert _unit(vectors)
    assert encoder.encode([]).shape == (0, 1280)


def test_deterministic(encoder: ImageEncoder, pics: dict[str, Path]) -> None:
    items = [pics["circle1"], pics["stripes"]]
    np.testing.assert_allclose(encoder.encode(items), encoder.encode(items), atol=1e-6)


def test_batch_size_does_not_change_vectors(
    encoder: ImageEncoder, pics: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    items = [pics["circle1"], pics["circle2"], pics["stripes"], pics["circle1"], pics["stripes"]]
    monkeypatch.setattr(encoder, "batch_size", 64)
    big = encoder.encode(items)
    monkeypatch.setattr(encoder, "batch_size", 1)
    one = encoder.encode(items)
    monkeypatch.setattr(encoder, "batch_size", 3)
    three = encoder.encode(items)
    np.testing.assert_allclose(big, one, atol=1e-5)
    np.testing.assert_allclose(big, three, atol=1e-5)
    np.testing.assert_allclose(big[0], big[3], atol=1e-5)


def test_same_picture_same_vector_whatever_the_input_kind(
    encoder: ImageEncoder, pics: dict[str, Path]
) -> None:
    path = pics["circle1"]
    data = path.read_bytes()
    items: list[Any] = [
        str(path),
        path,
        data,
        bytearray(data),
        Image.open(path),  # lazy, not yet decoded
        Image.open(io.BytesIO(data)).convert("RGB"),  # decoded
        _member(pics, "images/1.jpg"),
    ]
    vectors = encoder.encode(items)
    for row in vectors[1:]:
        np.testing.assert_allclose(row, vectors[0], atol=1e-6)


def test_real_imagenet_features_separate_shapes(
    encoder: ImageEncoder, pics: dict[str, Path]
) -> None:
    c1, c2, stripes = encoder.encode([pics["circle1"], pics["circle2"], pics["stripes"]])
    same = float(c1 @ c2)
    different = max(float(c1 @ stripes), float(c2 @ stripes))
    assert same > 0.9
    assert same > different + 0.2


def test_result_type(encoder: ImageEncoder, pics: dict[str, Path]) -> None:
    result = encoder.encode_many([pics["circle1"]])
    assert isinstance(result, ImageBatchResult)
    assert isinstance(result, EncodeResult)
    assert result.ok == [0] and result.errors == {}
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.ok = []  # type: ignore[misc]


# ----------------------------------------------------------------------------- archives


def test_archive_members_read_in_one_pass(
    encoder: ImageEncoder, pics: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    real_open = tarfile.open

    def counting_open(name: Any = None, *args: Any, **kwargs: Any) -> tarfile.TarFile:
        opened.append(str(name))
        return real_open(name, *args, **kwargs)

    monkeypatch.setattr(image_mod.tarfile, "open", counting_open)
    items: list[Any] = [
        _member(pics, "images/2.jpg"),  # stored as ./images/2.jpg
        pics["circle1"],
        _member(pics, "images/1.jpg"),
        _member(pics, "images/missing.jpg"),
        _member(pics, "images/1.jpg"),  # the same member twice
        _member(pics, "images/0-stripes.jpg"),
        f"{pics['archive'].parent / 'nope.tar.gz'}{ARCHIVE_SEP}images/1.jpg",
    ]
    result = encoder.encode_many(items)
    assert opened == [str(pics["archive"].resolve())]
    assert result.ok == [0, 1, 2, 4, 5]
    assert result.errors[3] == "archive member not found"
    assert result.errors[6].startswith("archive not found")
    direct = encoder.encode([pics["circle2"], pics["circle1"], pics["stripes"]])
    np.testing.assert_allclose(result.vectors[0], direct[0], atol=1e-6)
    np.testing.assert_allclose(result.vectors[1], direct[1], atol=1e-6)
    np.testing.assert_allclose(result.vectors[2], direct[1], atol=1e-6)
    np.testing.assert_allclose(result.vectors[3], direct[1], atol=1e-6)
    np.testing.assert_allclose(result.vectors[4], direct[2], atol=1e-6)


def test_archive_that_is_not_a_tar(encoder: ImageEncoder, pics: dict[str, Path]) -> None:
    result = encoder.encode_many([f"{pics['circle1']}{ARCHIVE_SEP}images/1.jpg"])
    assert result.ok == []
    assert "not a readable tar archive" in result.errors[0]


def _link(name: str, kind: bytes, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def test_archive_members_that_are_links_give_their_target(
    encoder: ImageEncoder, pics: dict[str, Path], tmp_path: Path
) -> None:
    """tar stores a second name of a hard-linked file (a photo shared by two products) as a
    link to the first, and keeps symbolic links as links: each is read as its target, before
    or after it in the archive; a link to nothing, out of the archive, or in a loop is not."""
    archive = tmp_path / "links.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.addfile(_link("images/early.jpg", tarfile.SYMTYPE, "circle.jpg"))  # forward
        tar.add(pics["circle1"], arcname="images/circle.jpg")
        tar.add(pics["stripes"], arcname="./images/stripes.jpg")
        tar.addfile(_link("images/same.jpg", tarfile.LNKTYPE, "./images/stripes.jpg"))
        tar.addfile(_link("variant/red.jpg", tarfile.SYMTYPE, "../images/circle.jpg"))
        tar.addfile(_link("variant/chain.jpg", tarfile.SYMTYPE, "red.jpg"))
        tar.addfile(_link("variant/gone.jpg", tarfile.SYMTYPE, "nothing.jpg"))
        tar.addfile(_link("variant/out.jpg", tarfile.SYMTYPE, "../../etc/passwd"))
        tar.addfile(_link("variant/abs.jpg", tarfile.SYMTYPE, "/etc/passwd"))
        tar.addfile(_link("loop/a.jpg", tarfile.SYMTYPE, "b.jpg"))
        tar.addfile(_link("loop/b.jpg", tarfile.SYMTYPE, "a.jpg"))
    names = ["images/same.jpg", "variant/red.jpg", "images/early.jpg", "variant/chain.jpg",
             "images/circle.jpg", "variant/gone.jpg", "variant/out.jpg", "variant/abs.jpg",
             "loop/a.jpg"]  # fmt: skip
    result = encoder.encode_many([f"{archive}{ARCHIVE_SEP}{name}" for name in names])
    assert result.ok == [0, 1, 2, 3, 4]
    circle, stripes = encoder.encode([pics["circle1"], pics["stripes"]])
    np.testing.assert_allclose(result.vectors[0], stripes, atol=1e-6)
    for row in (1, 2, 3, 4):
        np.testing.assert_allclose(result.vectors[row], circle, atol=1e-6)
    assert result.errors[5] == "archive member not found (variant/gone.jpg links to nothing.jpg)"
    assert result.errors[6] == result.errors[7] == "archive member links outside the archive"
    assert result.errors[8] == "archive member is a loop of links"


def test_a_file_too_big_to_be_an_image_is_not_read(
    encoder: ImageEncoder, pics: dict[str, Path], tmp_path: Path
) -> None:
    """A path to a product video or a disk image (gigabytes) is refused by its size, before
    it is read into memory; so is such an archive member."""
    limit = max(image_mod.MAX_FILE_BYTES, 8 * encoder.max_pixels)
    video = tmp_path / "video.mp4"
    with open(video, "wb") as fh:
        fh.truncate(limit + 1)  # sparse: nothing written
    archive = tmp_path / "big.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("big.jpg")
        info.size = limit + 1
        tar.addfile(info)  # only the header: the archive ends before the data
    result = encoder.encode_many([video, pics["circle1"], f"{archive}{ARCHIVE_SEP}big.jpg"])
    assert result.ok == [1]
    assert result.errors[0] == f"file too large to be an image ({limit + 1} bytes)"
    assert result.errors[2] == f"file too large to be an image ({limit + 1} bytes)"


# ----------------------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory, pics: dict[str, Path]) -> dict[str, Any]:
    """One of each kind of bad item."""
    root = tmp_path_factory.mktemp("bad")
    good = pics["circle1"].read_bytes()
    text = root / "notes.jpg"
    text.write_text("this is not a picture\n")
    truncated = root / "truncated.jpg"
    truncated.write_bytes(good[: len(good) // 2])
    corrupt = root / "corrupt.jpg"
    corrupt.write_bytes(good[:20] + bytes(range(256)) * 8)
    empty = root / "empty.jpg"
    empty.write_bytes(b"")
    return {
        "missing": root / "missing.jpg",
        "text": text,
        "truncated": truncated,
        "corrupt": corrupt,
        "empty": empty,
        "folder": root,
        "huge_png": _png_header(10_000, 10_000),
        "bomb": _png_header(50_000, 50_000),
    }


EXPECTED_REASONS = {
    "missing": "file not found",
    "text": "not an image",
    "truncated": "truncated",
    "corrupt": "corrupt JPEG",
    "empty": "empty file",
    "folder": "folder",
    "huge_png": "too large",
    "bomb": "too large",
    "member": "archive member not found",
    "int": "unsupported item type int",
    "blank": "empty path",
}


def _bad_items(pics: dict[str, Path], bad: dict[str, Any]) -> tuple[list[Any], list[str]]:
    names = list(EXPECTED_REASONS)
    values = {**bad, "member": _member(pics, "images/gone.jpg"), "int": 42, "blank": ""}
    items = [pics["circle1"]] + [values[n] for n in names] + [pics["stripes"]]
    return items, names


def test_bad_items_reported_good_ones_encoded(
    encoder: ImageEncoder, pics: dict[str, Path], bad: dict[str, Any]
) -> None:
    items, names = _bad_items(pics, bad)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning (or other) escapes
        result = encoder.encode_many(items)
    last = len(items) - 1
    assert result.ok == [0, last]
    assert result.vectors.shape == (2, 1280) and _unit(result.vectors)
    assert sorted(result.errors) == list(range(1, last))
    for index, name in enumerate(names, start=1):
        assert EXPECTED_REASONS[name] in result.errors[index], (name, result.errors[index])
    good = encoder.encode([pics["circle1"], pics["stripes"]])
    np.testing.assert_allclose(result.vectors, good, atol=1e-6)


def test_bad_items_with_worker_processes(
    pics: dict[str, Path],
    bad: dict[str, Any],
    encoder: ImageEncoder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    items, _ = _bad_items(pics, bad)
    items = [*items, pics["circle2"], Image.open(pics["stripes"])]  # lazy PIL image too
    reference = encoder.encode_many(items)
    monkeypatch.setattr(encoder, "num_workers", 2)
    monkeypatch.setattr(encoder, "batch_size", 4)
    result = encoder.encode_many(items)
    assert result.ok == reference.ok
    assert result.errors == reference.errors
    np.testing.assert_allclose(result.vectors, reference.vectors, atol=1e-5)


def test_truncated_refused_even_when_pillow_is_told_to_accept_it(
    encoder: ImageEncoder, bad: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    result = encoder.encode_many([bad["truncated"]])
    assert result.ok == []
    assert "truncated" in result.errors[0]


def test_huge_jpeg_is_decoded_reduced(encoder: ImageEncoder, tmp_path: Path) -> None:
    big = Image.new("RGB", (10_000, 10_000), (225, 225, 225))
    ImageDraw.Draw(big).ellipse((2_000, 1_500, 8_000, 8_500), fill=(215, 25, 30))
    path = tmp_path / "huge.jpg"
    big.save(path, quality=80)
    small = big.resize((500, 500), Image.Resampling.BILINEAR)
    del big
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = encoder.encode_many([path, small])
    assert result.ok == [0, 1], result.errors
    assert float(result.vectors[0] @ result.vectors[1]) > 0.95


def test_odd_modes_and_shapes(encoder: ImageEncoder, tmp_path: Path) -> None:
    base = _circle(3)
    rgba = Image.new("RGBA", base.size, (0, 0, 0, 0))
    ImageDraw.Draw(rgba).ellipse((52, 36, 208, 204), fill=(215, 25, 30, 255))
    on_white = Image.new("RGB", base.size, "white")
    ImageDraw.Draw(on_white).ellipse((52, 36, 208, 204), fill=(215, 25, 30))
    items: list[Any] = []
    for mode, fmt in [("L", "PNG"), ("P", "GIF"), ("LA", "PNG"), ("CMYK", "JPEG"), ("1", "PNG")]:
        buf = io.BytesIO()
        base.convert(mode).save(buf, fmt)
        items.append(buf.getvalue())
    deep = (np.asarray(base.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(deep).save(buf, "PNG")  # 16-bit grayscale
    items.append(buf.getvalue())
    buf = io.BytesIO()
    rgba.save(buf, "PNG")
    items += [buf.getvalue(), on_white]
    thin = tmp_path / "thin.png"
    Image.new("RGB", (3, 6_000), "green").save(thin)  # would resize to 256 x 512,000
    items.append(thin)
    result = encoder.encode_many(items)
    assert result.errors == {}
    assert _unit(result.vectors)
    transparent, white = result.vectors[-3], result.vectors[-2]
    assert float(transparent @ white) > 0.999  # transparency lies on white
    gray8, gray16 = result.vectors[0], result.vectors[5]
    assert float(gray8 @ gray16) > 0.999


def test_a_premultiplied_gray_image_is_laid_on_white(encoder: ImageEncoder) -> None:
    """A PIL image in mode La (gray with premultiplied alpha), which Pillow converts only to
    LA, is encoded as its LA twin is (it failed: "conversion from La to L not supported")."""
    la = _circle(3).convert("LA")
    premultiplied = la.convert("La")
    result = encoder.encode_many([premultiplied, la])
    assert result.errors == {}
    assert float(result.vectors[0] @ result.vectors[1]) > 0.999


def test_exif_orientation_is_applied(encoder: ImageEncoder) -> None:
    upright = _striped_square().crop((0, 0, 250, 160))  # wide: rotation matters
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    tagged = _jpeg(stored, exif=exif.tobytes())
    plain, turned, rotated = encoder.encode([_jpeg(upright), tagged, _jpeg(stored)])
    assert float(plain @ turned) > 0.99
    assert float(plain @ turned) > float(plain @ rotated)


def test_automatic_worker_count(encoder: ImageEncoder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoder, "num_workers", None)
    monkeypatch.setattr(image_mod, "_cpu_count", lambda: 2)
    assert encoder._workers(10) == 0  # start-up would cost more than it saves
    assert encoder._workers(10_000) == 2
    monkeypatch.setattr(image_mod, "_cpu_count", lambda: 16)
    assert encoder._workers(10) == 0
    assert encoder._workers(10_000) == 4
    monkeypatch.setattr(encoder, "num_workers", 3)
    assert encoder._workers(1) == 3


def _within(seconds: float, fn: Callable[[], Any], unblock: Callable[[], None]) -> Any:
    """``fn()``, run in a thread so that a hang fails the test instead of stopping the suite;
    ``unblock`` is called on a hang to let the thread end."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        unblock()
        pytest.fail(f"still running after {seconds} s (blocked reading a FIFO?)")
    if "error" in box:
        raise box["error"]
    return box["value"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs (POSIX)")
def test_fifo_and_other_non_regular_files_are_not_read(
    encoder: ImageEncoder, pics: dict[str, Path], tmp_path: Path
) -> None:
    from graphfusion.features.embed import _ImageFingerprints

    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    loop = tmp_path / "loop.jpg"
    loop.symlink_to(tmp_path / "loop2.jpg")
    (tmp_path / "loop2.jpg").symlink_to(loop)

    def unblock() -> None:  # a writer that comes and goes: the reader gets end-of-file
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    items: list[Any] = [pics["circle1"], fifo, str(fifo)]
    if os.path.exists("/dev/null"):
        items.append("/dev/null")  # a device: was read (as an empty file)
    result = _within(30, lambda: encoder.encode_many(items), unblock)
    assert result.ok == [0]
    assert list(result.errors) == list(range(1, len(items)))
    assert all("not a regular file" in why for why in result.errors.values()), result.errors
    with pytest.raises(ValidationError, match=r"image 1: not a regular file"):
        _within(30, lambda: encoder.encode([pics["circle1"], fifo]), unblock)
    with pytest.raises(ValidationError, match=r"image 0: cannot read the file: .*link"):
        encoder.encode([loop])  # not "file not found"
    # embed fingerprints each image file (SHA-256 of its bytes) before encoding: not a FIFO
    fingerprint_of = _ImageFingerprints()
    assert _within(30, lambda: fingerprint_of(str(fifo)), unblock) == f"{fifo}:missing"
    assert len(fingerprint_of(str(pics["circle1"]))) == 64


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs (POSIX)")
def test_a_file_swapped_for_a_fifo_after_the_check_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from graphfusion.features import image

    fifo = tmp_path / "swapped.png"
    os.mkfifo(fifo)
    monkeypatch.setattr(image, "_path_problem", lambda path: None)  # it was a file then

    def unblock() -> None:
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    with pytest.raises(image._BadImage, match="not a regular file"):
        _within(30, lambda: image._read_file(fifo, image.MAX_FILE_BYTES), unblock)


def test_jpeg_over_pillows_bomb_limit_is_decoded_reduced(
    encoder: ImageEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    size = (14_000, 13_000)  # 182 million pixels
    limit = Image.MAX_IMAGE_PIXELS
    if limit is None or size[0] * size[1] <= 2 * limit:
        pytest.skip("Pillow's decompression-bomb limit is off or higher than usual")
    path = tmp_path / "big.jpg"
    Image.new("L", size).save(path)  # black: 2.8 MB, 0.5 s
    with pytest.raises(Image.DecompressionBombError):
        Image.open(path)  # what Pillow alone does
    small = Image.new("RGB", (520, 480))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = encoder.encode_many([path, small, _png_header(*size)])
    assert result.ok == [0, 1], result.errors
    assert float(result.vectors[0] @ result.vectors[1]) > 0.99
    assert "too large" in result.errors[2]  # other formats: still refused
    assert limit == Image.MAX_IMAGE_PIXELS  # Pillow's setting is left as it was
    # with max_pixels raised above its size, the JPEG is decoded in full
    monkeypatch.setattr(encoder, "max_pixels", 200_000_000)
    full = encoder.encode_many([path])
    assert full.ok == [0], full.errors
    assert float(full.vectors[0] @ result.vectors[1]) > 0.99


def test_16_bit_grayscale_scale_does_not_depend_on_the_brightest_pixel(
    encoder: ImageEncoder,
) -> None:
    gray = np.asarray(_circle(5).convert("L"), dtype=np.uint16)  # 0..255 in 16 bits
    brighter = gray.copy()
    brighter[0, 0] = 256  # one pixel above 255
    items = []
    for pixels in (gray, brighter):
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, "PNG")
        assert Image.open(buf).mode.startswith("I;16")
        items.append(buf.getvalue())
    a, b = encoder.encode(items)
    assert float(a @ b) > 0.99


# ----------------------------------------------------------------------------- encode()


def test_encode_raises_on_first_bad_item(
    encoder: ImageEncoder, pics: dict[str, Path], bad: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError, match=r"image 1: file not found"):
        encoder.encode([pics["circle1"], bad["missing"]])
    with pytest.raises(ValidationError, match=r"image 2: .*truncated"):
        encoder.encode([pics["circle1"], pics["stripes"], bad["truncated"]])
    with pytest.raises(ValidationError, match=r"image 0: empty path"):
        encoder.encode([""])
    with pytest.raises(ValidationError, match=r"image 1: archive member not found"):
        encoder.encode([pics["circle1"], _member(pics, "images/gone.jpg")])
    with pytest.raises(ValidationError, match=r"image 0: not an image"):
        encoder.encode([bad["text"].read_bytes()])


def test_encode_wants_a_sequence(encoder: ImageEncoder, pics: dict[str, Path]) -> None:
    for wrong in (str(pics["circle1"]), pics["circle1"], b"\xff\xd8", Image.new("RGB", (9, 9))):
        with pytest.raises(ValidationError, match="sequence"):
            encoder.encode(wrong)  # type: ignore[arg-type]

    def gen() -> Iterator[Path]:
        yield pics["circle1"]

    with pytest.raises(ValidationError, match="sequence"):
        encoder.encode_many(gen())  # type: ignore[arg-type]


def test_progress_bar(
    encoder: ImageEncoder, pics: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    encoder.encode([pics["circle1"], pics["stripes"]], progress=True)
    err = capsys.readouterr().err
    assert "2/2" in err and "img/s" in err


# ----------------------------------------------------------------------------- backbones


def test_unknown_backbone() -> None:
    with pytest.raises(ValueError, match=r"unknown image backbone 'resnet19'.*resnet18") as info:
        ImageEncoder("resnet19")
    assert isinstance(info.value, ValidationError)


def test_backbone_without_weights_asks_for_a_path_or_download(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"weights=PATH.*download=True"):
        ImageEncoder("resnet50")
    with pytest.raises(ValueError, match="does not exist"):
        ImageEncoder("resnet18", weights=tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="not both"):
        ImageEncoder("resnet18", weights=tmp_path / "w.pth", download=True)
    with pytest.raises(ValueError, match="batch_size"):
        ImageEncoder(batch_size=0)
    with pytest.raises(ValueError, match=r"device must be cpu, cuda or auto"):
        ImageEncoder(device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            ImageEncoder(device="cuda")


def test_resnet18_from_a_weights_file(tmp_path: Path, pics: dict[str, Path]) -> None:
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=10)  # any head size works
    path = tmp_path / "resnet18.pth"
    torch.save(model.state_dict(), path)
    enc = ImageEncoder("resnet18", weights=path, num_workers=0)
    assert enc.dim == 512
    assert re.fullmatch(r"resnet18:[0-9a-f]{12}", enc.name)
    vectors = enc.encode([pics["circle1"], pics["stripes"]])
    assert vectors.shape == (2, 512) and vectors.dtype == np.float32 and _unit(vectors)
    # the features are the pooled 512 values before fc
    img = Image.open(pics["circle1"]).convert("RGB")
    x = image_mod._preprocess(img).unsqueeze(0)
    model.fc = torch.nn.Identity()
    with torch.inference_mode():
        expected = torch.nn.functional.normalize(model.eval()(x), dim=1).numpy()
    np.testing.assert_allclose(vectors[0], expected[0], atol=1e-5)

    wrong = tmp_path / "wrong.pth"
    torch.save({"conv9.weight": torch.zeros(3)}, wrong)
    with pytest.raises(ValueError, match="do not fit resnet18"):
        ImageEncoder("resnet18", weights=wrong)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read the weights file"):
        ImageEncoder("resnet18", weights=junk)


# ----------------------------------------------------------------------------- speed


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("GRAPHFUSION_BENCH"), reason="set GRAPHFUSION_BENCH=1 to time the encoder"
)
def test_speed_report(
    encoder: ImageEncoder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Images/s for 256 JPEGs of about 224 x 224: workers 0 vs 2, bare model vs end to end."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(256):
        w, h = (int(v) for v in rng.integers(220, 300, 2))
        img = _circle(i, (w, h))
        paths.append(tmp_path / f"{i}.jpg")
        img.save(paths[-1], quality=90)
    encoder.encode(paths[:8])  # warm up
    lines = []
    for workers in (0, 2, 0, 2):
        monkeypatch.setattr(encoder, "num_workers", workers)
        start = time.perf_counter()
        encoder.encode(paths)
        seconds = time.perf_counter() - start
        lines.append(f"encode, num_workers={workers}: {seconds:.2f} s, {256 / seconds:.1f} img/s")
    batch = torch.randn(encoder.batch_size, 3, 224, 224)
    for _ in range(2):
        start = time.perf_counter()
        for _ in range(256 // encoder.batch_size):
            encoder._forward(batch)
        seconds = time.perf_counter() - start
        lines.append(f"bare model forward: {seconds:.2f} s, {256 / seconds:.1f} img/s")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
