"""Store settings: flags, then the environment, then the config file."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphfusion.errors import StoreError, ValidationError
from graphfusion.settings import ENVIRONMENT, load_settings
from graphfusion.store import EmbeddedStore


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in [*ENVIRONMENT.values(), "GRAPHFUSION_CONFIG"]:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)


def _config(tmp_path: Path, text: str, name: str = "graphfusion.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_nothing_set_means_the_default_embedded_store() -> None:
    settings = load_settings()
    assert settings.store is None and settings.neo4j_uri is None and settings.source is None


def test_the_config_file_in_the_working_folder_is_read(tmp_path: Path) -> None:
    _config(tmp_path, 'store = "from-file"\n')
    settings = load_settings()
    assert settings.store == "from-file"
    assert settings.source == Path("graphfusion.toml")


def test_environment_outranks_the_file_and_flags_outrank_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _config(
        tmp_path,
        '[graphfusion]\nneo4j_uri = "neo4j://file:7687"\nneo4j_username = "file-user"\n'
        'neo4j_database = "file-db"\n',
        "other.toml",
    )
    monkeypatch.setenv("NEO4J_USERNAME", "env-user")
    settings = load_settings(path)
    assert (settings.neo4j_uri, settings.neo4j_username, settings.neo4j_database) == (
        "neo4j://file:7687",
        "env-user",
        "file-db",
    )
    # a store folder in the environment outranks a Neo4j server in the file
    monkeypatch.setenv("GRAPHFUSION_STORE", "env-store")
    settings = load_settings(path)
    assert (settings.store, settings.neo4j_uri) == ("env-store", None)
    # and a --neo4j flag outranks the environment's folder
    flagged = settings.with_flags(neo4j_uri="neo4j://flag:7687")
    assert (flagged.store, flagged.neo4j_uri) == (None, "neo4j://flag:7687")
    assert flagged.with_flags(store="flag-store").store == "flag-store"


def test_config_named_by_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _config(tmp_path, 'store = "named"\n', "named.toml")
    monkeypatch.setenv("GRAPHFUSION_CONFIG", str(path))
    assert load_settings().store == str(tmp_path / "named")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("store = [1", "not valid TOML"),
        ('stroe = "x"\n', "unknown setting"),
        ("store = 3\n", "non-empty string"),
        ('store = "  "\n', "non-empty string"),
        ('store = "a"\nneo4j_uri = "neo4j://b"\n', "not both"),
        ('graphfusion = "x"\n', "must be a table"),
    ],
)
def test_bad_config_files(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        load_settings(_config(tmp_path, text, "bad.toml"))


def test_a_missing_named_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"missing\.toml"):
        load_settings(tmp_path / "missing.toml")


def test_open_gives_the_store_the_settings_name(tmp_path: Path) -> None:
    _config(tmp_path, f'store = "{tmp_path / "s"}"\n')
    with load_settings().open() as store:
        assert isinstance(store, EmbeddedStore)
        assert Path(store.path) == tmp_path / "s"
    # no server here: the error shows the Neo4j store was the one opened
    with pytest.raises(StoreError, match=r"Neo4j at neo4j://localhost:1"):
        load_settings().with_flags(neo4j_uri="neo4j://localhost:1").open()
