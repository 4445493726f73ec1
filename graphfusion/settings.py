"""Where the command line finds its store: flags, then the environment, then a config file.

A config file is TOML with the store settings at the top level or under ``[graphfusion]``::

    store = "/data/shop-store"          # embedded store folder
    schema = "shop-schema.yaml"         # a schema of one's own (else the store's, or built-in)
    # or a Neo4j server:
    neo4j_uri = "neo4j://db.example.com:7687"
    neo4j_username = "neo4j"
    neo4j_password = "secret"
    neo4j_database = "shop"

The file is ``--config FILE``, else ``$GRAPHFUSION_CONFIG``, else ``./graphfusion.toml`` when it
exists. Each setting is taken from the first place that has it: the command's flag, the
environment variable (``GRAPHFUSION_STORE``, ``GRAPHFUSION_SCHEMA``, ``NEO4J_URI``,
``NEO4J_USERNAME``, ``NEO4J_PASSWORD``, ``NEO4J_DATABASE``), the config file.

Without a ``schema``, an embedded store opens with the schema it was made with (a schema of
one's own is kept in its folder), and a Neo4j store with the built-in schema.

A relative ``store`` folder (or ``schema`` file) in a config file is taken relative to the
folder of that file, so
a config file keeps naming the same store from wherever a command runs: ``store = "data"`` in
``/srv/shop/graphfusion.toml`` is ``/srv/shop/data``. A relative ``--store`` flag or
``GRAPHFUSION_STORE`` is taken relative to the working folder, as usual. A ``store`` or
``schema`` that starts with ``~`` (in the file or the variable) is in the home folder.

An empty variable counts as unset; one of blanks only is refused. The password is left out of
the settings' ``repr``. A store folder and a Neo4j server both set (``GRAPHFUSION_STORE`` and
``NEO4J_URI``) are refused when the store is opened, unless a flag picks one (``--store`` or
``--neo4j``): which one was meant cannot be told.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from graphfusion.errors import ValidationError
from graphfusion.schema import Schema, load_schema
from graphfusion.store import BaseStore, EmbeddedStore, Neo4jStore
from graphfusion.store.embedded import stored_schema
from graphfusion.values import home_path

__all__ = ["CONFIG_ENV", "DEFAULT_CONFIG", "ENVIRONMENT", "Settings", "load_settings"]

#: Environment variable naming the config file.
CONFIG_ENV = "GRAPHFUSION_CONFIG"
#: Config file read from the working folder when it exists.
DEFAULT_CONFIG = Path("graphfusion.toml")
#: The environment variable of each setting.
ENVIRONMENT = {
    "store": "GRAPHFUSION_STORE",
    "schema": "GRAPHFUSION_SCHEMA",
    "neo4j_uri": "NEO4J_URI",
    "neo4j_username": "NEO4J_USERNAME",
    "neo4j_password": "NEO4J_PASSWORD",
    "neo4j_database": "NEO4J_DATABASE",
}


@dataclass(frozen=True)
class Settings:
    """Store settings, each from a flag, the environment or the config file (or None).

    Attributes:
        store: Embedded store folder. A relative folder from a config file has already been
            joined to that file's folder (``source``'s parent); one from a flag or the
            environment stays relative to the working folder.
        neo4j_uri: Neo4j server URI; when set, the store is Neo4j (``store`` may not be set
            too).
        neo4j_username: Neo4j user name.
        neo4j_password: Neo4j password (not in the ``repr``).
        neo4j_database: Neo4j database.
        schema: A schema file of one's own (relative as ``store``); when None, an embedded
            store's own schema (:func:`graphfusion.store.embedded.stored_schema`), a Neo4j
            store the built-in one.
        source: The config file read, if any.
    """

    store: str | None = None
    schema: str | None = None
    neo4j_uri: str | None = None
    neo4j_username: str | None = None
    neo4j_password: str | None = field(default=None, repr=False)
    neo4j_database: str | None = None
    source: Path | None = None

    def with_flags(
        self,
        *,
        store: str | None = None,
        neo4j_uri: str | None = None,
        schema: str | None = None,
    ) -> Settings:
        """These settings with a command's ``--store``, ``--neo4j`` and ``--schema`` flags on
        top.

        A flag for one kind of store clears the other kind's location, so ``--store DIR``
        wins over ``NEO4J_URI`` and ``--neo4j URI`` over ``GRAPHFUSION_STORE``.
        """
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        if store is not None:
            values.update(store=str(store), neo4j_uri=None)
        if neo4j_uri is not None:
            values.update(neo4j_uri=neo4j_uri, store=None)
        if schema is not None:
            values.update(schema=str(schema))
        return Settings(**values)

    def load_schema(self) -> Schema:
        """The schema the store these settings name is opened with (see ``schema``).

        Raises:
            SchemaError: The schema file cannot be read or breaks a rule.
        """
        if self.schema:
            return load_schema(self.schema)
        return load_schema() if self.neo4j_uri else stored_schema(self.store or None)

    def open(self, *, read_only: bool = False, create: bool = True) -> BaseStore:
        """Open the store these settings name: Neo4j when ``neo4j_uri`` is set, else the
        embedded store (``store``, ``~`` there the home folder, or ``./.graphfusion``; made
        where missing when ``create``).

        Raises:
            ValidationError: Both ``store`` and ``neo4j_uri`` are set (both variables, say,
                and no flag to pick one).
        """
        if self.store and self.neo4j_uri:
            raise ValidationError(
                f"both a store folder ({ENVIRONMENT['store']}={self.store}) and a Neo4j "
                f"server ({ENVIRONMENT['neo4j_uri']}={self.neo4j_uri}) are set; unset one, "
                "or pick one with --store DIR or --neo4j URI"
            )
        schema = self.load_schema()
        if self.neo4j_uri:
            return Neo4jStore(
                self.neo4j_uri,
                user=self.neo4j_username,
                password=self.neo4j_password,
                database=self.neo4j_database,
                schema=schema,
                read_only=read_only,
            )
        return EmbeddedStore(
            self.store or None,  # the store reads ~ as the home folder
            schema=schema,
            read_only=read_only,
            create=create,
        )


def _read_config(path: Path) -> dict[str, str]:
    """The settings in the config file ``path``, a relative ``store`` joined to its folder.

    Raises:
        ValidationError: The file cannot be read, is not TOML, or holds an unknown, empty or
            conflicting setting.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValidationError(f"config file {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(f"config file {path} is not valid TOML: {exc}") from None
    table = data.get("graphfusion", data)
    if not isinstance(table, dict):
        raise ValidationError(f"config file {path}: [graphfusion] must be a table")
    if table is not data:  # the top level's settings would be ignored
        outside = [key for key in ENVIRONMENT if key in data]
        if outside:
            raise ValidationError(
                f"config file {path}: {', '.join(outside)} at the top level and a "
                "[graphfusion] table; put every setting in [graphfusion]"
            )
    unknown = sorted(set(table) - set(ENVIRONMENT) - {"graphfusion"})
    if unknown:
        raise ValidationError(
            f"config file {path}: unknown setting(s) {', '.join(unknown)}; "
            f"known: {', '.join(ENVIRONMENT)}"
        )
    out: dict[str, str] = {}
    for key in ENVIRONMENT:
        if key in table:
            value = table[key]
            if not isinstance(value, str) or not value.strip():
                raise ValidationError(f"config file {path}: {key} must be a non-empty string")
            out[key] = value
    if "store" in out and "neo4j_uri" in out:
        raise ValidationError(f"config file {path}: set store or neo4j_uri, not both")
    for key in ("store", "schema"):  # relative to the file's folder, not the working folder
        if key in out:
            out[key] = str(path.parent / home_path(out[key], f"config file {path}: {key}"))
    return out


def _environment() -> dict[str, str]:
    """The settings set in the environment (an empty variable is unset).

    Raises:
        ValidationError: A variable holds blanks only.
    """
    out: dict[str, str] = {}
    for key, var in ENVIRONMENT.items():
        value = os.environ.get(var)
        if value and not value.strip():
            raise ValidationError(f"{var} is blank; set it to a value or unset it")
        if value:
            out[key] = str(home_path(value, var)) if key in ("store", "schema") else value
    return out


def load_settings(config: str | os.PathLike[str] | None = None) -> Settings:
    """The environment's settings over the config file's (see the module docstring).

    Args:
        config: The config file; ``$GRAPHFUSION_CONFIG`` or ``./graphfusion.toml`` when None.
            A file named explicitly (argument or variable) must exist. A relative ``store``
            in it is taken relative to its folder.

    Raises:
        ValidationError: ``config`` is not a path; the file is missing, not TOML, or holds an
            unknown or empty setting; a variable holds blanks only.
    """
    if config is not None and not isinstance(config, str | os.PathLike):
        raise ValidationError(f"config must be a file path, got {type(config).__name__}")
    path: Path | None = None
    by_variable = False
    if config is not None:
        path = Path(config)
    elif os.environ.get(CONFIG_ENV):
        path, by_variable = Path(os.environ[CONFIG_ENV]), True
    elif DEFAULT_CONFIG.is_file():
        path = DEFAULT_CONFIG
    environment = _environment()
    try:
        from_file = _read_config(path) if path is not None else {}
    except ValidationError as exc:
        if by_variable:  # say where the name came from: no --config was given
            raise ValidationError(f"{exc} (named by ${CONFIG_ENV})") from None
        raise
    values: dict[str, str | None] = {key: None for key in ENVIRONMENT}
    values.update(from_file)
    values.update(environment)
    # A location in the environment outranks the other kind of location in the file.
    if "store" in environment and "neo4j_uri" not in environment:
        values["neo4j_uri"] = None
    if "neo4j_uri" in environment and "store" not in environment:
        values["store"] = None
    return Settings(**values, source=path)
