"""The text encoder: the real offline all-MiniLM-L6-v2."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from graphfusion.errors import ValidationError
from graphfusion.features.text import TextEncoder

TEXTS = [
    "Red cotton t-shirt, slim fit",
    "Stainless steel electric kettle, 1.7 litres",
    "Wireless headphones with noise cancelling",
    "Blue ceramic coffee mug, dishwasher safe",
]


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return TextEncoder()


def test_shape_dtype_and_unit_norm(encoder: TextEncoder) -> None:
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == (4, 384)
    assert encoder.dim == 384
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_deterministic_and_batch_size_independent(encoder: TextEncoder) -> None:
    first = encoder.encode(TEXTS)
    again = encoder.encode(TEXTS)
    one_by_one = TextEncoder(encoder.path, batch_size=1).encode(TEXTS)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(first, one_by_one, atol=1e-5)


def test_meaning_is_captured(encoder: TextEncoder) -> None:
    a, b, c = encoder.encode(["red cotton t-shirt", "crimson tee shirt", "steel water kettle"])
    assert float(a @ b) > float(a @ c) + 0.2


def test_bad_texts_are_reported_and_the_rest_encoded(encoder: TextEncoder) -> None:
    items = ["fine text", "", "   ", b"\xff\xfe bad bytes", None, 42, "also fine", b"bytes ok",
             "bad \ud800"]  # fmt: skip
    result = encoder.encode_many(items)
    assert result.ok == [0, 6, 7]
    assert result.vectors.shape == (3, 384)
    assert result.errors == {
        1: "empty text",
        2: "empty text",
        3: "bytes that are not UTF-8 text",
        4: "expected text, got NoneType",
        5: "expected text, got int",
        8: "text that is not valid Unicode (a lone surrogate)",  # the batch is not lost
    }
    np.testing.assert_allclose(result.vectors[0], encoder.encode(["fine text"])[0], atol=1e-6)


def test_errors(encoder: TextEncoder, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="text 1: empty text"):
        encoder.encode(["ok", ""])
    with pytest.raises(ValidationError, match="list of strings"):
        encoder.encode("a single string")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="does not exist"):
        TextEncoder(tmp_path / "nope")
    (tmp_path / "empty-model").mkdir()
    with pytest.raises(ValidationError, match="cannot load"):
        _ = TextEncoder(tmp_path / "empty-model").dim


def test_the_cache_name_follows_the_model_bytes(encoder: TextEncoder, tmp_path: Path) -> None:
    """A model changed in place (fine-tuned: same files, same sizes) is another model to the
    embed cache; the same bytes in another folder of the same name are the same one."""
    copy = tmp_path / "a" / encoder.path.name
    shutil.copytree(encoder.path, copy)
    assert TextEncoder(copy).name == encoder.name
    weights = max((p for p in copy.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a weight changed, the size kept
    weights.write_bytes(bytes(data))
    assert TextEncoder(copy).name != encoder.name
    with pytest.raises(ValidationError, match="batch_size"):
        TextEncoder(batch_size=True)  # type: ignore[arg-type]


def test_huge_text_is_cut_not_refused(encoder: TextEncoder) -> None:
    vectors = encoder.encode(["word " * 100_000])
    assert vectors.shape == (1, 384)


def test_threads_share_one_encoder(encoder: TextEncoder) -> None:
    """The service's worker threads share the engine's encoder: calls from many threads at
    once give what one thread gives."""
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"Is question number {i} about the blue mug answered?" for i in range(48)]
    want = np.stack([encoder.encode([t])[0] for t in texts])
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = np.stack(list(pool.map(lambda t: encoder.encode([t])[0], texts)))
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_a_folder_that_is_not_a_model_is_refused_before_its_files_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong folder (the project's, a home folder) is refused at once: the cache name hashes
    every file of a model folder, which for such a folder could mean gigabytes."""
    import graphfusion.features.text as text

    folder = tmp_path / "not-a-model"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "big.bin").write_bytes(b"x" * 1000)
    read: list[str] = []
    monkeypatch.setattr(text, "file_digest", lambda path: read.append(str(path)) or "0")
    with pytest.raises(ValidationError, match="not a sentence-transformers model"):
        TextEncoder(folder)
    assert read == []
    with pytest.raises(ValidationError, match="model must be"):
        TextEncoder(5)  # type: ignore[arg-type]


def test_an_unreadable_model_file_is_a_clear_error(
    encoder: TextEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import graphfusion.features.text as text

    copy = tmp_path / "m"
    shutil.copytree(encoder.path, copy)

    def fails(path: object) -> str:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(text, "file_digest", fails)
    with pytest.raises(ValidationError, match="cannot read the text model folder"):
        TextEncoder(copy)


def test_batch_size_takes_numpy_integers(encoder: TextEncoder) -> None:
    assert TextEncoder(encoder.path, batch_size=np.int64(8)).batch_size == 8  # type: ignore[arg-type]
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValidationError, match="batch_size"):
            TextEncoder(encoder.path, batch_size=bad)  # type: ignore[arg-type]


def test_the_device_is_checked_when_the_encoder_is_made(encoder: TextEncoder) -> None:
    """A bad device was taken in silence and failed at the first encoding as "cannot load a
    sentence-transformers model from <the model folder>: ...", blaming the model; ``auto``
    (as ImageEncoder takes it) was refused that way too."""
    import torch

    for bad in ("nonsense", "mps", None, 2.5):
        with pytest.raises(ValidationError, match="device must be cpu, cuda or auto"):
            TextEncoder(encoder.path, device=bad)  # type: ignore[arg-type]
    if not torch.cuda.is_available():
        with pytest.raises(ValidationError, match="CUDA is not available"):
            TextEncoder(encoder.path, device="cuda")
    auto = TextEncoder(encoder.path, device="auto")
    assert auto.device in ("cpu", "cuda")
    np.testing.assert_allclose(auto.encode(TEXTS[:1]), encoder.encode(TEXTS[:1]), atol=1e-5)
