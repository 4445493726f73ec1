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


def test_the_password_is_not_in_the_settings_repr(tmp_path: Path) -> None:
    """Settings get printed and logged while debugging; the password must not come with them."""
    settings = load_settings(
        _config(tmp_path, 'neo4j_uri = "neo4j://db:7687"\nneo4j_password = "s3cret-pw"\n')
    )
    assert settings.neo4j_password == "s3cret-pw"
    assert "s3cret-pw" not in repr(settings) and "s3cret-pw" not in str(settings)
    assert "neo4j://db:7687" in repr(settings)


def test_settings_both_at_the_top_and_in_the_graphfusion_table_are_refused(
    tmp_path: Path,
) -> None:
    """The top-level ``store`` was silently dropped in favour of the table's."""
    path = _config(tmp_path, 'store = "top"\n[graphfusion]\nneo4j_uri = "neo4j://db:7687"\n')
    with pytest.raises(ValidationError, match=r"store.*\[graphfusion\]"):
        load_settings(path)
    # other tables and keys of a shared file stay allowed beside [graphfusion]
    path = _config(tmp_path, 'title = "x"\n[tool]\na = 1\n[graphfusion]\nstore = "s"\n')
    assert load_settings(path).store == str(tmp_path / "s")


def test_a_missing_config_named_by_the_variable_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRAPHFUSION_CONFIG", str(tmp_path / "gone.toml"))
    with pytest.raises(ValidationError, match=r"gone\.toml.*GRAPHFUSION_CONFIG"):
        load_settings()


def test_home_folders_in_store_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``~`` is the home folder in a config file and in the environment, not a folder named
    ``~`` beside the config file or in the working folder."""
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    path = _config(tmp_path, 'store = "~/shop/store"\n', "home.toml")
    assert load_settings(path).store == str(home / "shop" / "store")
    monkeypatch.setenv("GRAPHFUSION_STORE", "~/env-store")
    assert load_settings(path).store == str(home / "env-store")
    monkeypatch.setenv("GRAPHFUSION_STORE", "~no-such-user-here/store")
    with pytest.raises(ValidationError, match=r"GRAPHFUSION_STORE.*no such home folder"):
        load_settings(path)


@pytest.mark.parametrize("var", ["GRAPHFUSION_STORE", "NEO4J_URI", "NEO4J_DATABASE"])
def test_a_blank_environment_setting_is_refused(
    var: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty variable is unset (the file's setting counts); one of spaces is a mistake,
    not a folder or server named by spaces."""
    path = _config(tmp_path, 'neo4j_uri = "neo4j://file:7687"\n', "blank.toml")
    monkeypatch.setenv(var, "")
    assert load_settings(path).neo4j_uri == "neo4j://file:7687"
    monkeypatch.setenv(var, "  ")
    with pytest.raises(ValidationError, match=f"{var} is blank"):
        load_settings(path)


def test_the_config_argument_must_be_a_path() -> None:
    with pytest.raises(ValidationError, match="config must be a file path"):
        load_settings(3)  # type: ignore[arg-type]


def test_a_store_flag_under_the_home_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shell leaves ``--store=~/shop`` as it is; the store is still in the home folder."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with load_settings().with_flags(store="~/shop/store").open() as store:
        assert isinstance(store, EmbeddedStore)
        assert Path(store.path) == tmp_path / "home" / "shop" / "store"
    assert not (tmp_path / "~").exists()  # the working folder


def test_a_store_folder_and_a_neo4j_server_both_in_the_environment_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user who set NEO4J_URI expects Neo4j; the embedded store in GRAPHFUSION_STORE won in
    silence. Both set is an error naming both, unless a flag picks one."""
    monkeypatch.setenv("GRAPHFUSION_STORE", str(tmp_path / "env-store"))
    monkeypatch.setenv("NEO4J_URI", "neo4j://localhost:1")
    settings = load_settings()
    with pytest.raises(ValidationError, match=r"GRAPHFUSION_STORE.*NEO4J_URI.*--store.*--neo4j"):
        settings.open()
    assert not (tmp_path / "env-store").exists()
    with settings.with_flags(store=str(tmp_path / "flag-store")).open() as store:
        assert isinstance(store, EmbeddedStore)
        assert Path(store.path) == tmp_path / "flag-store"
    with pytest.raises(StoreError, match=r"Neo4j at neo4j://localhost:1"):
        settings.with_flags(neo4j_uri="neo4j://localhost:1").open()
