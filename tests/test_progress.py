"""Progress bars honour tqdm's ``TQDM_DISABLE``: a bar asked for with ``progress=True`` was
made with ``disable=False``, which tqdm lets win over the variable, so CI logs and batch jobs
that set it still got every bar. Checked on a real store write and the real text encoder."""

from __future__ import annotations

import pandas as pd
import pytest

from graphfusion.features.text import TextEncoder
from graphfusion.progress import progress_bar, wanted
from graphfusion.store import EmbeddedStore


@pytest.mark.parametrize(
    ("progress", "switch", "shown"),
    [
        (True, None, True),
        (True, "1", False),
        (True, "True", False),
        (True, "0", True),
        (True, "false", True),
        (True, "", True),
        (False, None, False),
        (False, "0", False),
    ],
)
def test_wanted_is_the_callers_choice_unless_tqdm_disable_says_no(
    monkeypatch: pytest.MonkeyPatch, progress: bool, switch: str | None, shown: bool
) -> None:
    if switch is None:
        monkeypatch.delenv("TQDM_DISABLE", raising=False)
    else:
        monkeypatch.setenv("TQDM_DISABLE", switch)
    assert wanted(progress) is shown
    assert progress_bar(range(2), progress=progress).disable is (not shown)


@pytest.mark.parametrize("switch", [None, "1"])
def test_a_store_write_shows_its_bar_unless_disabled(
    store: EmbeddedStore,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    switch: str | None,
) -> None:
    if switch is None:
        monkeypatch.delenv("TQDM_DISABLE", raising=False)
    else:
        monkeypatch.setenv("TQDM_DISABLE", switch)
    frame = pd.DataFrame({"id": [f"b{i}" for i in range(50)]})
    assert store.upsert_nodes("Brand", frame, batch_size=10, progress=True) == 50
    err = capsys.readouterr().err
    assert ("Brand nodes" in err) is (switch is None)


@pytest.mark.parametrize("switch", [None, "1"])
def test_the_text_encoder_shows_its_bar_unless_disabled(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], switch: str | None
) -> None:
    if switch is None:
        monkeypatch.delenv("TQDM_DISABLE", raising=False)
    else:
        monkeypatch.setenv("TQDM_DISABLE", switch)
    vectors = TextEncoder().encode(["a mug", "a lamp"], progress=True)
    assert vectors.shape == (2, 384)
    assert ("Batches" in capsys.readouterr().err) is (switch is None)
