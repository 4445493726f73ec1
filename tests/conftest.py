"""Shared fixtures: a generated tiny shop and real embedded stores."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Tests never talk to a server unless asked to, and never read a user's store setting.
os.environ.pop("GRAPHFUSION_STORE", None)

from graphfusion.store import EmbeddedStore

if TYPE_CHECKING:
    from graphfusion import Engine
from graphfusion.synthetic import generate_shop


@pytest.fixture(scope="session")
def tiny_shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny synthetic shop (seed 0), generated once per session. Do not modify it."""
    out = tmp_path_factory.mktemp("shop") / "tiny"
    generate_shop(out, "tiny", seed=0)
    return out


@pytest.fixture(scope="session")
def trained_store(tiny_shop: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store folder with the tiny shop, all its vectors and a fusion model, made once per
    session. Do not modify it: open a private copy (``private_copy``) to write."""
    from graphfusion import Engine

    folder = tmp_path_factory.mktemp("trained") / "store"
    with Engine(folder) as engine:
        engine.load("synthetic", shop=tiny_shop)
        engine.embed()
        engine.train("fusion", epochs=6, batch_size=256, lr=0.01, patience=6)
    return folder


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home folder of the test's own (``$HOME``: ``tmp_path/home``), with the working folder
    ``tmp_path/work``, both empty: ``~`` in paths must land in the first."""
    (tmp_path / "home").mkdir()
    (tmp_path / "work").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path / "home"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    """A fresh, empty embedded store."""
    with EmbeddedStore(tmp_path / "store") as s:
        yield s


@pytest.fixture
def private_copy(tmp_path: Path) -> Iterator[Callable[[Path], Engine]]:
    """Open a private copy of a prepared store folder (tests that write must not share)."""
    from graphfusion import Engine

    opened: list[Engine] = []

    def open_copy(folder: Path) -> Engine:
        target = tmp_path / f"store-{len(opened)}"
        shutil.copytree(folder, target)
        opened.append(Engine(target))
        return opened[-1]

    yield open_copy
    for engine in opened:
        engine.close()
