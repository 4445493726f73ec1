"""A relative store folder in a config file is relative to that file, not the working folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from graphfusion.cli import main
from graphfusion.settings import ENVIRONMENT, load_settings
from graphfusion.store import EmbeddedStore


@pytest.fixture
def elsewhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A clean environment, run from a working folder that is not the config file's."""
    for var in [*ENVIRONMENT.values(), "GRAPHFUSION_CONFIG"]:
        monkeypatch.delenv(var, raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def _config(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "graphfusion.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_relative_store_in_a_config_file_is_relative_to_that_file(
    elsewhere: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path / "project", 'store = "data/store"\n')
    assert Path(load_settings(config).store or "") == tmp_path / "project" / "data" / "store"
    # the same through the variable naming the file, and a file named relatively
    monkeypatch.setenv("GRAPHFUSION_CONFIG", str(config))
    assert Path(load_settings().store or "") == tmp_path / "project" / "data" / "store"
    assert Path(load_settings(Path("..") / "project" / "graphfusion.toml").store or "") == (
        Path("..") / "project" / "data" / "store"
    )
    with load_settings(config).open() as store:
        assert isinstance(store, EmbeddedStore)
        assert Path(store.path).resolve() == (tmp_path / "project" / "data" / "store").resolve()
    assert not (elsewhere / "data").exists()


def test_absolute_stores_and_the_working_folders_own_file_are_unchanged(
    elsewhere: Path, tmp_path: Path
) -> None:
    config = _config(tmp_path / "project", f'store = "{tmp_path / "abs"}"\n')
    assert load_settings(config).store == str(tmp_path / "abs")
    _config(elsewhere, '[graphfusion]\nstore = "here"\n')  # ./graphfusion.toml
    settings = load_settings()
    assert settings.store == "here" and settings.source == Path("graphfusion.toml")


def test_flags_and_the_environment_stay_relative_to_the_working_folder(
    elsewhere: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path / "project", 'store = "data"\n')
    assert load_settings(config).with_flags(store="flagged").store == "flagged"
    monkeypatch.setenv("GRAPHFUSION_STORE", "from-env")
    assert load_settings(config).store == "from-env"


def test_the_command_line_finds_the_store_next_to_its_config_file(
    elsewhere: Path, tmp_path: Path
) -> None:
    config = _config(tmp_path / "project", 'store = "data"\n')
    res = CliRunner().invoke(main, ["--config", str(config), "stats", "--json"])
    assert res.exit_code == 1, res.output  # a command that only reads makes no store
    assert "no graphfusion store at" in res.output
    assert str(tmp_path / "project" / "data") in res.output.replace("\n", "")
    res = CliRunner().invoke(main, ["--config", str(config), "stats", "--store", "flagged"])
    assert res.exit_code == 1 and "flagged" in res.output
    assert str(tmp_path / "project" / "flagged") not in res.output.replace("\n", "")
