"""Photos in zip archives (how most public data sets ship them) work as in tar archives:
listed at load time, read by the image encoder in one opening of the archive, fingerprinted
for the vector cache, with tar's rules for bad members, links and sizes."""

from __future__ import annotations

import io
import logging
import os
import shutil
import stat
import struct
import subprocess
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from graphfusion import Engine
from graphfusion.features import image as image_mod
from graphfusion.features.image import ImageEncoder
from graphfusion.readers import ARCHIVE_SEP, BadRecord, Record, read_source


def _picture(seed: int, kind: str) -> Image.Image:
    """A small picture: a red disc on noise, or blue stripes."""
    rng = np.random.default_rng(seed)
    pixels = (rng.normal(0, 18, (96, 112, 3)) + 225).clip(0, 255).astype(np.uint8)
    img = Image.fromarray(pixels)
    draw = ImageDraw.Draw(img)
    if kind == "disc":
        draw.ellipse((20, 15, 90, 80), fill=(215, 25, 30))
    else:
        for y in range(10, 90, 16):
            draw.rectangle((10, y, 100, y + 7), fill=(25, 45, 210))
    return img


def _encoded(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def photos() -> dict[str, bytes]:
    """Real JPEG and PNG files, made here."""
    return {
        "disc": _encoded(_picture(1, "disc"), "JPEG"),
        "stripes": _encoded(_picture(2, "stripes"), "PNG"),
        "disc2": _encoded(_picture(3, "disc"), "PNG"),
    }


@pytest.fixture(scope="module")
def encoder() -> ImageEncoder:
    """The default encoder (MobileNetV2, offline ImageNet weights), built once."""
    return ImageEncoder(num_workers=0)


def _zip(path: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]], **kw: Any) -> Path:
    with zipfile.ZipFile(path, "w", **kw) as z:
        for name, data in members:
            z.writestr(name, data)
    return path


def _symlink(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    """A symbolic link as Info-ZIP stores one (``zip -y``): Unix mode S_IFLNK, the target
    as the member's data."""
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def _central(path: Path) -> dict[str, int]:
    """Member name -> offset of its central directory header."""
    with zipfile.ZipFile(path) as z:
        offset, count = z.start_dir, len(z.infolist())
    data = path.read_bytes()
    out = {}
    for _ in range(count):
        assert data[offset : offset + 4] == b"PK\x01\x02"
        nlen, elen, clen = struct.unpack("<HHH", data[offset + 28 : offset + 34])
        out[data[offset + 46 : offset + 46 + nlen].decode("cp437")] = offset
        offset += 46 + nlen + elen + clen
    return out


def _patch(path: Path, name: str, **fields: int) -> None:
    """Rewrite fields of a member's headers: ``flag`` and ``method`` in both (local and
    central), ``size`` (uncompressed) in the central one, which readers go by."""
    with zipfile.ZipFile(path) as z:
        local = z.getinfo(name).header_offset
    central = _central(path)[name]
    data = bytearray(path.read_bytes())
    for field, value in fields.items():
        if field == "size":
            struct.pack_into("<I", data, central + 24, value)
            continue
        at = {"flag": (6, 8), "method": (8, 10)}[field]
        struct.pack_into("<H", data, local + at[0], value)
        struct.pack_into("<H", data, central + at[1], value)
    path.write_bytes(bytes(data))


def _rename_raw(path: Path, old: str, new: bytes) -> None:
    """Give a member a name of raw bytes (as other systems write them), same length."""
    data = path.read_bytes()
    assert len(old.encode()) == len(new) and data.count(old.encode()) == 2
    path.write_bytes(data.replace(old.encode(), new))


def _rows(path: Path) -> list[Record | BadRecord]:
    return list(read_source("images", path, name="images"))


def _member(archive: Path, name: str) -> str:
    return f"{archive}{ARCHIVE_SEP}{name}"


# ----------------------------------------------------------------------------- listing


_LAYOUT = [
    "shop/",
    "shop/shirts/p1.jpg",
    "shop/README.txt",
    "__MACOSX/shop/shirts/._p1.jpg",
    "shop/shoes/deep/p2.PNG",
    "shop/._p3.jpg",
    "shop/p3.jpeg",
]


def test_a_zip_is_listed_as_the_same_tar_is(
    tmp_path: Path, photos: dict[str, bytes], caplog: pytest.LogCaptureFixture
) -> None:
    """Nested folders, folders and other files left out, macOS metadata skipped (and
    counted): the rows are those of a tar archive of the same members, in the same order."""
    members = [(n, b"" if n.endswith("/") else photos["disc"]) for n in _LAYOUT]
    archive = _zip(tmp_path / "shop photos.zip", members, compression=zipfile.ZIP_DEFLATED)
    tar_path = tmp_path / "shop.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name.rstrip("/"))
            if name.endswith("/"):
                info.type = tarfile.DIRTYPE
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    with caplog.at_level(logging.INFO, logger="graphfusion.readers"):
        rows = _rows(archive)
    assert "skipped 2 macOS metadata files" in caplog.text
    assert all(isinstance(r, Record) for r in rows)
    assert [(r.line, r.data) for r in rows if isinstance(r, Record)] == [
        (2, {"id": "p1", "path": _member(archive.resolve(), "shop/shirts/p1.jpg"),
             "file": "shop/shirts/p1.jpg"}),
        (5, {"id": "p2", "path": _member(archive.resolve(), "shop/shoes/deep/p2.PNG"),
             "file": "shop/shoes/deep/p2.PNG"}),
        (7, {"id": "p3", "path": _member(archive.resolve(), "shop/p3.jpeg"),
             "file": "shop/p3.jpeg"}),
    ]  # fmt: skip
    tar_rows = _rows(tar_path)
    assert [(r.line, r.data["id"], r.data["file"]) for r in tar_rows if isinstance(r, Record)] == [
        (r.line, r.data["id"], r.data["file"]) for r in rows if isinstance(r, Record)
    ]


def test_member_names_of_other_systems(
    tmp_path: Path, photos: dict[str, bytes], encoder: ImageEncoder
) -> None:
    """Names not marked UTF-8 (flag bit 11) are UTF-8 when they decode so (as most tools
    write them), else code page 437 (the zip standard's); names marked UTF-8 are UTF-8;
    Windows' backslashes separate folders. Each is read back at embed time by that name."""
    win = zipfile.ZipInfo("photos\\win.jpg")
    win.create_system = 0  # made on Windows (PowerShell 5's Compress-Archive)
    members = [
        ("photos/cafXY.jpg", photos["disc"]),  # becomes UTF-8 "café" without the flag
        ("photos/naQve.jpg", photos["disc"]),  # becomes cp1252 "naïve" without the flag
        ("photos/日本.jpg", photos["disc"]),  # UTF-8 with the flag (as zipfile writes it)
        (win, photos["disc"]),
    ]
    archive = _zip(tmp_path / "names.zip", members)
    _rename_raw(archive, "photos/cafXY.jpg", "photos/café.jpg".encode())
    _rename_raw(archive, "photos/naQve.jpg", b"photos/na\xefve.jpg")
    rows = [r for r in _rows(archive) if isinstance(r, Record)]
    assert [(r.data["id"], r.data["file"]) for r in rows] == [
        ("café", "photos/café.jpg"),
        ("na∩ve", "photos/na∩ve.jpg"),  # 0xef in code page 437
        ("日本", "photos/日本.jpg"),
        ("win", "photos/win.jpg"),
    ]
    result = encoder.encode_many([r.data["path"] for r in rows])
    assert result.errors == {} and result.ok == [0, 1, 2, 3]


def test_a_tar_whose_last_member_is_a_zip_is_a_tar(
    tmp_path: Path, photos: dict[str, bytes], encoder: ImageEncoder
) -> None:
    """An uncompressed tar ends with its last member (and zeros): when that is a zip, the
    file ends like a zip archive too (``zipfile.is_zipfile`` says yes); it is read as a tar."""
    inner = _zip(tmp_path / "inner.zip", [("other.jpg", photos["stripes"])])
    archive = tmp_path / "photos.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(tmp_path / "inner.zip", arcname="extra/inner.zip")
        info = tarfile.TarInfo("img/p1.jpg")
        info.size = len(photos["disc"])
        tar.addfile(info, io.BytesIO(photos["disc"]))
        tar.add(inner, arcname="extra/last.zip")
    assert zipfile.is_zipfile(archive)
    rows = [r for r in _rows(archive) if isinstance(r, Record)]
    assert [r.data["file"] for r in rows] == ["img/p1.jpg"]
    result = encoder.encode_many([rows[0].data["path"]])
    assert result.errors == {}
    np.testing.assert_allclose(result.vectors, encoder.encode([photos["disc"]]), atol=1e-6)


def _unicode_path_field(name: str, raw: bytes) -> bytes:
    """An Info-ZIP Unicode Path extra field naming ``name``, written for the name ``raw``."""
    utf8 = name.encode()
    return struct.pack("<HHBI", 0x7075, 5 + len(utf8), 1, zlib.crc32(raw)) + utf8


def test_a_name_in_a_code_page_with_its_unicode_path_field(
    tmp_path: Path, photos: dict[str, bytes], encoder: ImageEncoder
) -> None:
    """WinRAR and Info-ZIP on Windows write a name in the system's code page (here Cyrillic,
    cp866) and its UTF-8 form in a Unicode Path extra field: the UTF-8 name is the one given,
    unless the field was written for another name (a member renamed by another tool)."""
    names = {"photos/Привет.jpg": "photos/PPPPPP.jpg", "photos/Мир.jpg": "photos/MMM.jpg"}
    members = []
    for real, placeholder in names.items():
        info = zipfile.ZipInfo(placeholder)
        written_for = real.encode("cp866") if real.endswith("т.jpg") else b"stale"
        info.extra = _unicode_path_field(real, written_for)
        members.append((info, photos["disc"]))
    archive = _zip(tmp_path / "winrar.zip", members)
    for real, placeholder in names.items():
        _rename_raw(archive, placeholder, real.encode("cp866"))
    rows = [r for r in _rows(archive) if isinstance(r, Record)]
    mojibake = "photos/Мир.jpg".encode("cp866").decode("cp437")
    assert [r.data["file"] for r in rows] == ["photos/Привет.jpg", mojibake]
    result = encoder.encode_many([r.data["path"] for r in rows])
    assert result.errors == {} and result.ok == [0, 1]


def test_a_damaged_zip_says_so(
    tmp_path: Path, photos: dict[str, bytes], encoder: ImageEncoder
) -> None:
    """A zip cut short (a download that stopped) has lost its table of contents, which is
    at its end; a name marked UTF-8 that is not makes zipfile refuse the whole archive."""
    whole = _zip(tmp_path / "whole.zip", [("a.jpg", photos["disc"]), ("b.jpg", photos["disc"])])
    cut = tmp_path / "cut.zip"
    cut.write_bytes(whole.read_bytes()[: len(photos["disc"]) + 40])
    (cut_bad,) = _rows(cut)
    assert isinstance(cut_bad, BadRecord) and cut_bad.line == 1
    assert cut_bad.reason.startswith("a damaged zip archive")
    assert "cut short" in cut_bad.reason
    marked = _zip(tmp_path / "marked.zip", [("é.jpg", photos["disc"])])
    _rename_raw(marked, "é.jpg", b"\xff\xfe.jpg")
    (marked_bad,) = _rows(marked)
    assert isinstance(marked_bad, BadRecord)
    assert marked_bad.reason.startswith("not a readable zip archive")
    assert "UTF-8" in marked_bad.reason
    # the same reasons when the archives were loaded whole and damaged afterwards
    result = encoder.encode_many([_member(cut, "a.jpg"), _member(marked, "x.jpg")])
    assert result.errors == {0: cut_bad.reason, 1: marked_bad.reason}


# ----------------------------------------------------------------------------- encoding


def test_zip_members_are_encoded_in_one_opening(
    tmp_path: Path,
    photos: dict[str, bytes],
    encoder: ImageEncoder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each archive is opened once however many of its photos are asked for, in any order
    and any compression; the vectors are those of the same files read directly."""
    disc = tmp_path / "disc.jpg"
    disc.write_bytes(photos["disc"])
    members = [
        zipfile.ZipInfo("images/stored.jpg"),
        zipfile.ZipInfo("images/deflated.png"),
        zipfile.ZipInfo("images/deep/er/bzip2.png"),
        zipfile.ZipInfo("images/lzma.jpg"),
    ]
    for info, method in zip(
        members,
        [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA],
        strict=True,
    ):
        info.compress_type = method
    datas = [photos["disc"], photos["stripes"], photos["disc2"], photos["disc"]]
    entries = [(zipfile.ZipInfo("images/deep/"), b""), *zip(members, datas, strict=True)]
    archive = _zip(tmp_path / "shop.zip", entries)
    opened: list[str] = []
    real = zipfile.ZipFile

    def counting(file: Any, *args: Any, **kwargs: Any) -> zipfile.ZipFile:
        opened.append(str(file))
        return real(file, *args, **kwargs)

    monkeypatch.setattr(image_mod.zipfile, "ZipFile", counting)
    items: list[Any] = [
        _member(archive, "images/lzma.jpg"),
        disc,
        _member(archive, "./images/deflated.png"),
        _member(archive, "images/missing.jpg"),
        _member(archive, "images/deep/er/bzip2.png"),
        _member(archive, "images/stored.jpg"),
        _member(archive, "images/stored.jpg"),  # the same member twice
        _member(archive, "images/deep/"),  # a folder
    ]
    result = encoder.encode_many(items)
    assert opened == [str(archive.resolve())]
    assert result.ok == [0, 1, 2, 4, 5, 6]
    assert result.errors == {
        3: "archive member not found",
        7: "archive member is not a regular file",
    }
    direct = encoder.encode([photos["disc"], photos["stripes"], photos["disc2"]])
    for row, want in zip(result.vectors, [0, 0, 1, 2, 0, 0], strict=True):
        np.testing.assert_allclose(row, direct[want], atol=1e-6)


def test_bad_zip_members_get_a_reason_and_the_rest_are_encoded(
    tmp_path: Path, photos: dict[str, bytes], encoder: ImageEncoder
) -> None:
    names = ["good.jpg", "crc.jpg", "deflate.png", "text.jpg", "empty.jpg", "secret.jpg",
             "deflate64.jpg", "big.jpg", "good2.png"]  # fmt: skip
    datas = [photos["disc"], photos["disc"], photos["stripes"], b"not a picture\n", b"",
             photos["disc"], photos["disc"], photos["disc"], photos["disc2"]]  # fmt: skip
    infos = []
    for name in names:
        info = zipfile.ZipInfo(name)
        info.compress_type = zipfile.ZIP_DEFLATED if name == "deflate.png" else zipfile.ZIP_STORED
        infos.append(info)
    archive = _zip(tmp_path / "bad.zip", list(zip(infos, datas, strict=True)))
    with zipfile.ZipFile(archive) as z:
        crc_at = z.getinfo("crc.jpg").header_offset + 30 + len("crc.jpg") + 200
        deflate = z.getinfo("deflate.png")
        deflate_at = deflate.header_offset + 30 + len("deflate.png") + 5
    data = bytearray(archive.read_bytes())
    data[crc_at] ^= 0xFF  # one bad byte: the CRC does not match
    data[deflate_at : deflate_at + 40] = bytes(range(7, 47))  # a broken deflate stream
    archive.write_bytes(bytes(data))
    _patch(archive, "secret.jpg", flag=0x1)  # encrypted (traditional PKWARE)
    _patch(archive, "deflate64.jpg", method=9)  # what Windows writes for large files
    limit = max(image_mod.MAX_FILE_BYTES, 8 * encoder.max_pixels)
    _patch(archive, "big.jpg", size=limit + 1)
    result = encoder.encode_many([_member(archive, n) for n in names])
    assert result.ok == [0, 8]
    errors = result.errors
    assert errors[1].startswith("archive member is damaged") and "CRC" in errors[1]
    assert errors[2].startswith("archive member is damaged")
    assert errors[3] == "not an image (unknown file format)"
    assert errors[4] == "empty file"
    assert errors[5] == "archive member is encrypted (unzip it with its password)"
    assert errors[6] == (
        "archive member is compressed with a method that cannot be read (deflate64, method 9)"
    )
    assert errors[7] == f"file too large to be an image ({limit + 1} bytes)"


def test_zip_members_that_are_links_give_their_target(
    tmp_path: Path, photos: dict[str, bytes], encoder: ImageEncoder
) -> None:
    """Symbolic links (``zip -y``) are read as their target, before or after them in the
    archive; a link to nothing, out of the archive, or in a loop is not (as in tar)."""
    archive = _zip(
        tmp_path / "links.zip",
        [
            _symlink("images/early.jpg", "circle.jpg"),
            ("images/circle.jpg", photos["disc"]),
            ("images/stripes.png", photos["stripes"]),
            _symlink("variant/red.jpg", "../images/circle.jpg"),
            _symlink("variant/chain.jpg", "red.jpg"),
            _symlink("variant/gone.jpg", "nothing.jpg"),
            _symlink("variant/out.jpg", "../../etc/passwd"),
            _symlink("variant/abs.jpg", "/etc/passwd"),
            _symlink("loop/a.jpg", "b.jpg"),
            _symlink("loop/b.jpg", "a.jpg"),
        ],
    )
    names = ["variant/red.jpg", "images/early.jpg", "variant/chain.jpg", "images/circle.jpg",
             "variant/gone.jpg", "variant/out.jpg", "variant/abs.jpg", "loop/a.jpg"]  # fmt: skip
    result = encoder.encode_many([_member(archive, n) for n in names])
    assert result.ok == [0, 1, 2, 3]
    (circle,) = encoder.encode([photos["disc"]])
    for row in result.vectors:
        np.testing.assert_allclose(row, circle, atol=1e-6)
    assert result.errors[4] == "archive member not found (variant/gone.jpg links to nothing.jpg)"
    assert result.errors[5] == result.errors[6] == "archive member links outside the archive"
    assert result.errors[7] == "archive member is a loop of links"


def test_zip64_and_streamed_zips(
    tmp_path: Path,
    photos: dict[str, bytes],
    encoder: ImageEncoder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Zip64 records (more than 65,535 members or 4 GiB; forced here) and members written
    with data descriptors (a zip written to a pipe) are read."""
    z64 = tmp_path / "z64.zip"
    with monkeypatch.context() as m:
        m.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 1)  # the zip64 end records for 2 members
        with zipfile.ZipFile(z64, "w") as z:
            for name in ("a/p1.jpg", "a/p2.png"):
                with z.open(name, "w", force_zip64=True) as fh:
                    fh.write(photos["disc"] if name.endswith("jpg") else photos["stripes"])
    assert b"PK\x06\x06" in z64.read_bytes()

    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self.data = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b: Any) -> int:
            self.data += bytes(b)
            return len(b)

    pipe = Pipe()
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("s/p3.png", photos["disc2"])
    streamed = tmp_path / "streamed.zip"
    streamed.write_bytes(bytes(pipe.data))
    rows = [r for r in _rows(z64) + _rows(streamed) if isinstance(r, Record)]
    assert [r.data["id"] for r in rows] == ["p1", "p2", "p3"]
    result = encoder.encode_many([r.data["path"] for r in rows])
    assert result.errors == {}
    want = encoder.encode([photos["disc"], photos["stripes"], photos["disc2"]])
    np.testing.assert_allclose(result.vectors, want, atol=1e-6)


@pytest.mark.skipif(shutil.which("zip") is None, reason="Info-ZIP's zip is not installed")
def test_zips_made_by_info_zip(
    tmp_path: Path, photos: dict[str, bytes], encoder: ImageEncoder
) -> None:
    """The zip command line tool: zip64 (-fz), symbolic links kept (-y), a password (-P)."""
    folder = tmp_path / "shop photos"
    (folder / "img").mkdir(parents=True)
    (folder / "img" / "p1.jpg").write_bytes(photos["disc"])
    (folder / "img" / "p2.png").write_bytes(photos["stripes"])
    os.symlink("p1.jpg", folder / "img" / "p3.jpg")
    plain, locked = tmp_path / "plain.zip", tmp_path / "locked.zip"
    subprocess.run(["zip", "-q", "-r", "-y", "-fz", str(plain), "img"], cwd=folder, check=True)
    subprocess.run(["zip", "-q", "-r", "-P", "pw", str(locked), "img"], cwd=folder, check=True)
    rows = [r for r in _rows(plain) if isinstance(r, Record)]
    assert sorted(r.data["file"] for r in rows) == ["img/p1.jpg", "img/p2.png", "img/p3.jpg"]
    result = encoder.encode_many([_member(plain, f"img/p{n}") for n in ("1.jpg", "3.jpg")])
    assert result.errors == {}
    np.testing.assert_allclose(result.vectors[0], result.vectors[1], atol=1e-6)
    result = encoder.encode_many([_member(locked, "img/p1.jpg")])
    assert result.errors == {0: "archive member is encrypted (unzip it with its password)"}


def test_zip_members_with_worker_processes(
    tmp_path: Path, photos: dict[str, bytes], encoder: ImageEncoder
) -> None:
    archive = _zip(tmp_path / "w.zip", [(f"p{i}.png", photos["stripes"]) for i in range(3)])
    workers = ImageEncoder(num_workers=2)
    got = workers.encode([_member(archive, f"p{i}.png") for i in range(3)])
    np.testing.assert_allclose(got, encoder.encode([photos["stripes"]] * 3), atol=1e-6)


# ----------------------------------------------------------------------------- end to end


def _catalog(folder: Path) -> Path:
    catalog = folder / "products.csv"
    catalog.write_text(
        "product_id,title,description,category\n"
        "1,Nike Men Red Tshirt,Apparel - Topwear - Tshirts - Red - Sports,Apparel\n"
        "2,Puma Men Blue Shirt,Apparel - Topwear - Shirts - Blue - Casual,Apparel\n"
        "3,Puma Women Red Dress,Apparel - Dress - Dresses - Red - Casual,Apparel\n",
        encoding="utf-8",
    )
    return catalog


def _shop_zip(path: Path, photos: dict[str, bytes], third: bytes) -> Path:
    return _zip(
        path,
        [
            ("images/", b""),
            ("images/1.jpg", photos["disc"]),
            ("__MACOSX/images/._1.jpg", b"\x00\x05\x16\x07"),
            ("images/2.png", photos["stripes"]),
            ("images/3.png", third),
        ],
        compression=zipfile.ZIP_DEFLATED,
    )


def test_load_and_embed_a_zip_of_photos(
    tmp_path: Path, photos: dict[str, bytes], encoder: ImageEncoder
) -> None:
    """``graphfusion load myntra --source images=images.zip``, then ``embed``: each photo's
    vector; nothing again on a second run, nor after the zip is moved; a zip rebuilt with a
    photo replaced gives that photo its new vector (as with tar, the archive's bytes and the
    member's name are the photos' fingerprints, so its other photos are encoded again)."""
    folder = tmp_path / "kaggle download"
    folder.mkdir()
    catalog = _catalog(folder)
    archive = _shop_zip(folder / "images.zip", photos, photos["disc2"])
    with Engine(tmp_path / "store") as engine:
        report = engine.load("myntra", catalog=catalog, images=archive)
        assert not report.rejected
        paths = engine.cypher(
            "MATCH (p:Product)-[:HAS_IMAGE]->(i:Image) "
            "RETURN p.id AS pid, i.path AS path ORDER BY pid"
        )
        assert paths["path"].tolist() == [
            _member(archive.resolve(), n) for n in ("images/1.jpg", "images/2.png", "images/3.png")
        ]
        first = engine.embed("image", image_encoder=encoder)
        assert first.encoded["Image.image_vec"] == 3 and not first.errors
        stored = engine.cypher("MATCH (i:Image) RETURN i.id AS id, i.image_vec AS v ORDER BY id")
        want = encoder.encode([photos["disc"], photos["stripes"], photos["disc2"]])
        np.testing.assert_allclose(np.stack(stored["v"].tolist()), want, atol=1e-5)
        again = engine.embed("image", image_encoder=encoder)
        assert again.encoded["Image.image_vec"] == 0
        assert again.unchanged["Image.image_vec"] == 3
        moved = tmp_path / "elsewhere" / "photos.zip"
        moved.parent.mkdir()
        shutil.move(archive, moved)
        engine.load("myntra", catalog=catalog, images=moved)
        after_move = engine.embed("image", image_encoder=encoder)
        assert after_move.encoded["Image.image_vec"] == 0 and not after_move.errors
        _shop_zip(moved, photos, photos["disc"])  # the third photo replaced
        changed = engine.embed("image", image_encoder=encoder)
        assert not changed.errors
        v3 = engine.cypher("MATCH (i:Image {id: 'myntra:3'}) RETURN i.image_vec AS v")["v"][0]
        np.testing.assert_allclose(v3, want[0], atol=1e-5)
