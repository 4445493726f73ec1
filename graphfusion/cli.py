"""The ``graphfusion`` command line.

Every command exits 0 on success, 2 on bad usage and 1 on failure with a one-line reason
(a traceback only with ``--debug``). Store settings come from flags, then the environment
(``GRAPHFUSION_STORE``, ``NEO4J_URI``, ``NEO4J_USERNAME``, ``NEO4J_PASSWORD``,
``NEO4J_DATABASE``), then a config file (``--config FILE``, ``$GRAPHFUSION_CONFIG`` or
``./graphfusion.toml``; see :mod:`graphfusion.settings`). The commands that only read take
``--read-only`` to open a store another process holds (a running ``graphfusion serve``).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import click

from graphfusion.catalog_shop import (
    CATALOGS,
    DEFAULT_INTERACTIONS,
    DEFAULT_USERS,
    MAX_INTERACTIONS,
    MAX_USERS,
)
from graphfusion.defaults import EPOCHS, MAX_SCORES, MAX_SETTING, TASTE_EPOCHS
from graphfusion.errors import GraphFusionError, StoreLockedError
from graphfusion.ingest import check_report, check_sources, load
from graphfusion.mapping import load_mapping
from graphfusion.settings import Settings, load_settings
from graphfusion.values import json_safe

if TYPE_CHECKING:
    from graphfusion.engine import Engine
    from graphfusion.store import BaseStore

F = TypeVar("F", bound=Callable[..., Any])

#: Most items of a list that ``graphfusion cypher`` prints in its table (``--json`` prints
#: them all): a vector is a glance at its first values and its length, not a line of
#: thousands of characters.
TABLE_LIST_ITEMS = 5

DEMO_QUERIES: list[tuple[str, str]] = [
    (
        "Most purchased products",
        "MATCH (u:User)-[:PURCHASED]->(p:Product) "
        "RETURN p.id AS product, p.title AS title, count(u) AS buyers "
        "ORDER BY buyers DESC, product LIMIT 5",
    ),
    (
        "Suppliers by share of 1-2 star reviews",
        "MATCH (s:Supplier)-[:SUPPLIES]->(p:Product)<-[:ABOUT]-(r:Review) "
        "RETURN s.id AS supplier, s.name AS name, count(r) AS reviews, "
        "round(avg(CASE WHEN r.rating <= 2 THEN 1.0 ELSE 0.0 END), 3) AS low_share "
        "ORDER BY low_share DESC, supplier LIMIT 5",
    ),
    (
        "Questions with their answers, for one product",
        "MATCH (a:Answer)-[:ANSWERS]->(q:Question)-[:ABOUT]->(p:Product) "
        "WITH p, q, a ORDER BY p.id, q.id LIMIT 3 "
        "RETURN p.title AS product, q.text AS question, a.text AS answer",
    ),
]


def _echo_json(data: Any) -> None:
    """``data`` as strict JSON (:func:`graphfusion.values.json_safe`: NaN and infinities, a
    missing price say, become null; dates are ISO 8601)."""
    click.echo(json.dumps(json_safe(data), indent=2, ensure_ascii=False, allow_nan=False))


def _command(fn: F) -> F:
    """Turn library errors into exit code 1 with one line, unless --debug."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        debug = bool((ctx.find_root().obj or {}).get("debug"))
        try:
            return fn(*args, **kwargs)
        except BrokenPipeError:  # the reader left (`| head`): not an error
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # keep Python's exit flush quiet
            sys.exit(0)
        except GraphFusionError as exc:
            if debug:
                raise
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except (OSError, ValueError, RuntimeError) as exc:
            if debug:
                raise
            click.echo(f"error: {type(exc).__name__}: {exc}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


class _FiniteRange(click.FloatRange):
    """A float range that also refuses NaN (which passes every bound: each comparison with it
    is false) and infinities, as bad usage naming the flag."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


def _store_options(fn: F) -> F:
    fn = click.option(
        "--neo4j",
        "neo4j_uri",
        metavar="URI",
        help="Neo4j server URI (default $NEO4J_URI when no store folder is set).",
    )(fn)
    fn = click.option(
        "--store",
        type=click.Path(file_okay=False, path_type=Path),
        metavar="DIR",
        help="Embedded store folder (default $GRAPHFUSION_STORE or ./.graphfusion).",
    )(fn)
    return fn


def _read_only_option(fn: F) -> F:
    """``--read-only``, for the commands that only read."""
    return click.option(
        "--read-only",
        is_flag=True,
        help="Open the store without write access, beside another process that holds it "
        "(a running `graphfusion serve`, say).",
    )(fn)


def _store(
    store: Path | None,
    neo4j_uri: str | None,
    *,
    create: bool = False,
    read_only: bool | None = None,
) -> BaseStore:
    """The store the flags and settings name, open (close it, or use ``with``); only ``load``
    and ``demo`` make an embedded store where there is none (a mistyped --store is an error
    elsewhere). ``read_only``: the command's ``--read-only`` (None: a command without it).

    The commands that only move data (``load``, ``stats``, ``cypher``) use the store alone:
    :func:`_engine` imports torch and PyTorch Geometric, seconds before any work."""
    try:
        return _chosen(store, neo4j_uri).open(create=create, read_only=bool(read_only))
    except StoreLockedError as exc:
        if read_only is False:  # the command can do what the message asks: say how
            raise StoreLockedError(f"{exc}; pass --read-only to read beside it") from None
        raise


def _chosen(store: Path | None, neo4j_uri: str | None) -> Settings:
    """The settings with the command's ``--store`` and ``--neo4j`` on top."""
    return _settings().with_flags(store=str(store) if store else None, neo4j_uri=neo4j_uri)


@contextmanager
def _engine(
    store: Path | None,
    neo4j_uri: str | None,
    *,
    create: bool = False,
    read_only: bool | None = None,
) -> Iterator[Engine]:
    """The engine on :func:`_store`'s store, closed on leaving."""
    from graphfusion.engine import Engine

    with Engine(_store(store, neo4j_uri, create=create, read_only=read_only)) as engine:
        yield engine


def _parse_sources(values: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path:
            raise click.BadParameter(f"{item!r}: expected NAME=PATH", param_hint="--source")
        if name.strip() in out:
            raise click.BadParameter(
                f"source {name.strip()!r} given more than once", param_hint="--source"
            )
        out[name.strip()] = path
    return out


def _parse_params(values: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r}: expected NAME=VALUE", param_hint="--param")
        if name in out:
            raise click.BadParameter(
                f"parameter {name!r} given more than once", param_hint="--param"
            )
        try:
            out[name] = _json_or_text(raw)
        except ValueError as exc:
            raise click.BadParameter(f"{name}: {exc}", param_hint="--param") from None
    return out


def _json_or_text(raw: str) -> Any:
    """``raw`` read as JSON, else the text itself.

    Raises:
        ValueError: JSON holding NaN or an infinity (``NaN``, ``Infinity``, ``1e999``: no
            JSON, but Python's parser takes them; the store finds NaN above every number).
    """
    odd: list[str] = []

    def number(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            odd.append(text)
        return value

    try:
        value = json.loads(raw, parse_constant=number, parse_float=number)
    except json.JSONDecodeError:
        return raw
    if odd:
        raise ValueError(f"{odd[0]} is not a finite number")
    return value


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="TOML file with store settings (default $GRAPHFUSION_CONFIG or ./graphfusion.toml); "
    "flags and environment variables come first.",
)
@click.option(
    "--schema",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="YAML schema of one's own (default $GRAPHFUSION_SCHEMA, the config file's, else the "
    "one the store was made with, else the built-in).",
)
@click.version_option(package_name="graphfusion")
@click.pass_context
def main(ctx: click.Context, debug: bool, config: Path | None, schema: Path | None) -> None:
    """graphfusion: multimodal knowledge fusion on an e-commerce graph."""
    # settings read by the commands that use them
    ctx.obj = {"debug": debug, "config": config, "schema": schema}


def _settings() -> Settings:
    """The store settings (flags aside), read on first use: a broken ./graphfusion.toml does
    not stop commands that open no store (``generate``, ``--help``)."""
    obj = click.get_current_context().find_root().obj
    if "settings" not in obj:
        try:
            obj["settings"] = load_settings(obj["config"]).with_flags(schema=obj["schema"])
        except GraphFusionError as exc:  # it names the config file or the variable
            raise click.UsageError(str(exc)) from None
    settings: Settings = obj["settings"]
    return settings


@main.command()
@click.option(
    "--size",
    type=click.Choice(["tiny", "small", "bench"]),
    default="tiny",
    show_default=True,
    help="Preset of the synthetic shop (not with --catalog).",
)
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), required=True, metavar="DIR"
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "--defect-signal",
    type=click.Choice(["clear", "realistic"]),
    default="clear",
    show_default=True,
    help="How plainly the planted defects show in reviews and photos (not with --catalog).",
)
@click.option(
    "--catalog",
    type=click.Choice(sorted(CATALOGS)),
    help="Instead of a synthetic shop: this real catalogue's products and photos, with "
    "generated users and interactions.",
)
@click.option(
    "--source",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="With --catalog: the catalogue folder [default: $GRAPHFUSION_DATA/<folder> or "
    "../shared/data/<folder>; "
    + ", ".join(f"{name}: {spec.folder}" for name, spec in sorted(CATALOGS.items()))
    + "].",
)
@click.option(
    "--users",
    type=click.IntRange(1, MAX_USERS),
    default=DEFAULT_USERS,
    show_default=True,
    help="With --catalog: number of users.",
)
@click.option(
    "--interactions",
    type=click.IntRange(1, MAX_INTERACTIONS),
    default=DEFAULT_INTERACTIONS,
    show_default=True,
    help="With --catalog: target number of interaction rows (approximate).",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@click.pass_context
@_command
def generate(
    ctx: click.Context,
    size: str,
    out: Path,
    seed: int,
    defect_signal: str,
    catalog: str | None,
    source: Path | None,
    users: int,
    interactions: int,
    as_json: bool,
) -> None:
    """Write a generated shop with known ground truth into DIR.

    By default a synthetic shop (--size). With --catalog myntra: the real Myntra catalogue's
    titles and photos (referenced in its archive, not copied) with generated users whose
    hidden tastes over the products' attributes drive their interactions; load it with
    `graphfusion load catalog_shop --source shop=DIR`.
    """
    from click.core import ParameterSource

    def given(name: str) -> bool:
        return ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)

    if catalog is None:
        for name in ("source", "users", "interactions"):
            if given(name):
                raise click.UsageError(f"--{name} needs --catalog")
        from graphfusion.synthetic import generate_shop

        manifest = generate_shop(out, size, seed, progress=not as_json, defect_signal=defect_signal)
        if as_json:
            summary = {"path": str(manifest.path), "size": size, "seed": seed,
                       "defect_signal": defect_signal}  # fmt: skip
            _echo_json({**summary, "counts": manifest.counts})
            return
        counts = ", ".join(f"{k} {v}" for k, v in manifest.counts.items())
        click.echo(f"wrote the {size} shop (seed {seed}) to {manifest.path}: {counts}")
        return
    for name in ("size", "defect_signal"):
        if given(name):
            flag = "--" + name.replace("_", "-")
            raise click.UsageError(f"{flag} is for the synthetic shop; it cannot go with --catalog")
    from graphfusion.catalog_shop import generate_catalog_shop

    shop = generate_catalog_shop(
        out,
        catalog,
        source=source,
        users=users,
        interactions=interactions,
        seed=seed,
        progress=not as_json,
    )
    if as_json:
        _echo_json(shop.to_dict())
        return
    counts = ", ".join(f"{k} {v}" for k, v in shop.counts.items())
    click.echo(f"wrote the {catalog} catalogue shop (seed {seed}) to {shop.path}: {counts}")


@main.command("load")
@click.argument("mapping")
@click.option(
    "--source", "sources", multiple=True, metavar="NAME=PATH", help="A source of the mapping."
)
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Rejected rows (.csv or .jsonl).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 200_000),
    default=None,
    help="Rows per write [default: 200,000 embedded, 10,000 Neo4j].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@_store_options
@_command
def load_cmd(
    mapping: str,
    sources: tuple[str, ...],
    report: Path | None,
    batch_size: int | None,
    as_json: bool,
    store: Path | None,
    neo4j_uri: str | None,
) -> None:
    """Load sources into the store through MAPPING (a built-in name or a mapping file).

    Built-in mappings: synthetic (--source shop=DIR), amazon_reviews (--source reviews=PATH
    --source meta=PATH), amazon_qa (--source qa=PATH), movielens, myntra, catalog_shop,
    cpsc_recalls, clothing_reviews. Exits 0 when the load ran, even with rejected rows.
    """
    parsed = _parse_sources(sources)
    checked = load_mapping(mapping, _chosen(store, neo4j_uri).load_schema())
    # before a store is made for a load that cannot run
    if report is None:
        check_sources(checked, parsed)
    else:
        check_report(checked, parsed, report)  # the sources too
    opened = _store(store, neo4j_uri, create=True)
    try:
        with opened:
            result = load(opened, checked, parsed, report=report, batch_size=batch_size,
                          progress=not as_json)  # fmt: skip
    except GraphFusionError:
        # a load that cannot run (a column the mapping names is not in its file, say: found
        # once the table is read) leaves no store folder it made
        if getattr(opened, "made_folder", False):
            shutil.rmtree(opened.path, ignore_errors=True)  # type: ignore[attr-defined]
        raise
    if as_json:
        _echo_json(result.to_dict())
    else:
        click.echo(result.summary())


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@_store_options
@_read_only_option
@_command
def stats(as_json: bool, store: Path | None, neo4j_uri: str | None, read_only: bool) -> None:
    """Node counts by label and relationship counts by type."""
    with _store(store, neo4j_uri, read_only=read_only) as opened:
        counts = opened.counts()
    if as_json:
        _echo_json(counts.to_dict())
        return
    click.echo("nodes:")
    for label, n in counts.nodes.items():
        click.echo(f"  {label:<16}{n:>10}")
    click.echo("relationships:")
    for rtype, n in counts.relationships.items():
        click.echo(f"  {rtype:<16}{n:>10}")


@main.command("cypher")
@click.argument("query")
@click.option(
    "--param", "params", multiple=True, metavar="NAME=VALUE", help="A parameter (JSON or text)."
)
@click.option("--json", "as_json", is_flag=True, help="Print rows as a JSON list of objects.")
@_store_options
@_read_only_option
@_command
def cypher_cmd(
    query: str,
    params: tuple[str, ...],
    as_json: bool,
    store: Path | None,
    neo4j_uri: str | None,
    read_only: bool,
) -> None:
    """Run a Cypher QUERY on the stored graph (values as --param, never pasted in)."""
    parsed = _parse_params(params)
    with _store(store, neo4j_uri, read_only=read_only) as opened:
        rows = opened.query(query, parsed)
    if as_json:
        _echo_json(rows)
        return
    import pandas as pd

    frame = pd.DataFrame.from_records([{k: _brief(v) for k, v in row.items()} for row in rows])
    click.echo(frame.to_string(index=False) if not frame.empty else "(no rows)")


def _brief(value: Any) -> Any:
    """``value`` for a text table: a list of more than :data:`TABLE_LIST_ITEMS` items as the
    text of its first items and its length, at any depth (in maps and lists too)."""
    if isinstance(value, dict):
        return {k: _brief(v) for k, v in value.items()}
    if not isinstance(value, list):
        return value
    if len(value) <= TABLE_LIST_ITEMS:
        return [_brief(v) for v in value]
    shown = ", ".join(
        f"{v:.6g}" if isinstance(v, float) else str(_brief(v)) for v in value[:TABLE_LIST_ITEMS]
    )
    return _Shown(f"[{shown}, ... {len(value)} items]")


class _Shown(str):
    """Text standing for a value: shown without quotes inside a printed map or list."""

    def __repr__(self) -> str:
        return str(self)


@main.command("embed")
@click.option(
    "--only",
    type=click.Choice(["text", "image", "behaviour"]),
    multiple=True,
    help="Only these modalities (repeatable); all by default.",
)
@click.option(
    "--text-model",
    type=click.Path(exists=True, file_okay=False),
    help="A sentence-transformers folder.",
)
@click.option(
    "--image-backbone", default="mobilenet_v2", show_default=True, help="A torchvision model name."
)
@click.option(
    "--image-weights",
    type=click.Path(exists=True, dir_okay=False),
    help="Weights file for the backbone.",
)
@click.option("--download", is_flag=True, help="Let torchvision download the backbone's weights.")
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Nodes without a vector (.jsonl/.csv).",
)
@click.option(
    "--prune-cache",
    is_flag=True,
    help="Afterwards drop the cached vectors no node uses now, and shrink the cache file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@_store_options
@_command
def embed_cmd(
    only: tuple[str, ...],
    text_model: str | None,
    image_backbone: str,
    image_weights: str | None,
    download: bool,
    report: Path | None,
    prune_cache: bool,
    as_json: bool,
    store: Path | None,
    neo4j_uri: str | None,
) -> None:
    """Compute text, image and behaviour vectors for every node that needs one."""
    kinds = list(only) or None
    text_encoder = image_encoder = None
    if kinds is None or "text" in kinds:
        from graphfusion.features.text import TextEncoder

        text_encoder = TextEncoder(text_model)
    if kinds is None or "image" in kinds:
        from graphfusion.features.image import ImageEncoder

        image_encoder = ImageEncoder(image_backbone, weights=image_weights, download=download)
    with _engine(store, neo4j_uri) as engine:
        result = engine.embed(
            kinds,
            text_encoder=text_encoder,
            image_encoder=image_encoder,
            report=report,
            progress=not as_json,
            prune_cache=prune_cache,
        )
    if as_json:
        _echo_json(result.to_dict())
    else:
        click.echo(result.summary())


def _type_weights(value: str | None) -> dict[str, float] | Literal["default"] | None:
    """``--type-weights``: ``TYPE=W,...`` as a dict, ``none`` as None, omitted as "default"."""
    if value is None:
        return "default"
    if value.strip().lower() == "none":
        return None
    out: dict[str, float] = {}
    for part in value.split(","):
        rtype, sep, weight = part.partition("=")
        try:
            number = float(weight)
        except ValueError:
            sep = ""
        if not sep or not rtype.strip():
            raise click.BadParameter(
                f"expected TYPE=WEIGHT, got {part!r}", param_hint="--type-weights"
            )
        if not (math.isfinite(number) and number > 0):
            raise click.BadParameter(
                f"the weight of {rtype.strip()} must be a finite number > 0, got {weight.strip()}",
                param_hint="--type-weights",
            )
        name = rtype.strip().upper()
        if name in out:  # the last one silently won
            raise click.BadParameter(
                f"{name} is weighted more than once; give each type one weight",
                param_hint="--type-weights",
            )
        out[name] = number
    return out


@main.command("train")
@click.option(
    "--model", type=click.Choice(["fusion", "lightgcn", "mf", "popularity"]), default="lightgcn",
    show_default=True,
)  # fmt: skip
@click.option("--epochs", type=click.IntRange(1, 10_000), default=EPOCHS, show_default=True)
@click.option("--seed", type=click.IntRange(0, MAX_SETTING), default=0, show_default=True)
@click.option(
    "--cold-items",
    type=_FiniteRange(0.0, 0.9),
    default=0.0,
    show_default=True,
    help="Share of products whose interactions are all held out, to measure cold start.",
)
@click.option(
    "--light-users",
    type=_FiniteRange(0.0, 0.5),
    default=0.0,
    show_default=True,
    help="Share of users with 10+ products made light in training, to choose the light-user "
    "blend's weights on this store.",
)
@click.option(
    "--type-weights",
    callback=lambda ctx, param, value: _type_weights(value),
    default=None,
    metavar="TYPE=W,...|none",
    help="Fusion model: strength of each interaction type in the users' neighbourhood "
    "profiles, e.g. PURCHASED=4,FAVORITED=2 (a type not named weighs 1); 'none': every pair "
    "counts once. Default: VIEWED=1,PURCHASED=4,FAVORITED=2,RATED=1.",
)
@click.option(
    "--taste-epochs",
    type=click.IntRange(0, 10_000),
    default=TASTE_EPOCHS,
    show_default=True,
    help="Fusion model: most epochs of its content taste model (0: none).",
)
@click.option(
    "--max-scores",
    type=click.IntRange(min=1),
    default=MAX_SCORES,
    show_default=True,
    help="Most user x product scores held at once to validate and test; a larger shop is "
    "validated on a sample of its users and tested in blocks.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@_store_options
@_command
def train_cmd(
    model: str,
    epochs: int,
    seed: int,
    cold_items: float,
    light_users: float,
    type_weights: dict[str, float] | Literal["default"] | None,
    taste_epochs: int,
    max_scores: int,
    as_json: bool,
    store: Path | None,
    neo4j_uri: str | None,
) -> None:
    """Train a recommendation model on the stored interactions; write fused_vec and rec_vec
    back.

    A Ctrl-C while the epochs run stops them as early stopping does: the best epoch so far
    is kept, tested, saved and written back (exit code 0; the output says so). The fusion
    model's taste model, trained next, stops at a Ctrl-C the same way. A Ctrl-C before the
    first epoch is validated, or once training stopped, aborts (exit code 1) and leaves the
    served model as it was."""
    extra = {} if type_weights == "default" else {"type_weights": type_weights}
    with _engine(store, neo4j_uri) as engine:
        result = engine.train(
            model, epochs=epochs, seed=seed, cold_items=cold_items, light_users=light_users,
            taste_epochs=taste_epochs, max_scores=max_scores, progress=not as_json, **extra,
        )  # fmt: skip
    if as_json:
        _echo_json(result.to_dict())
    else:
        click.echo(result.summary())
        if result.curve:
            click.echo(f"training curve: {result.curve}")
        if result.interrupted:
            click.echo(f"interrupted: {result.interruption()}; the kept weights were tested, "
                       "saved and written back")  # fmt: skip


@main.command("similar")
@click.argument("product_id")
@click.option(
    "--modality",
    type=click.Choice(["text", "image", "behaviour", "fused"]),
    default="text",
    show_default=True,
)
@click.option("--k", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print rows as a JSON list of objects.")
@_store_options
@_read_only_option
@_command
def similar_cmd(
    product_id: str,
    modality: str,
    k: int,
    as_json: bool,
    store: Path | None,
    neo4j_uri: str | None,
    read_only: bool,
) -> None:
    """The K products most similar to PRODUCT_ID by one modality's vectors."""
    with _engine(store, neo4j_uri, read_only=read_only) as engine:
        frame = engine.similar(product_id, modality, k)
    if as_json:
        _echo_json(frame.to_dict(orient="records"))
    else:
        click.echo(frame.to_string(index=False) if not frame.empty else "(no results)")


@main.command("recommend")
@click.argument("user_id")
@click.option("--k", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option("--category", default=None, help="Only this category (id or name).")
@click.option("--brand", default=None, help="Only this brand (id or name).")
@click.option("--max-price", type=_FiniteRange(min=0), default=None, help="Price cap.")
@click.option("--include-seen", is_flag=True, help="Keep products the user interacted with.")
@click.option(
    "--diversity", type=_FiniteRange(0, 1), default=0.0, show_default=True,
    help="0 = pure relevance; up to 1 re-ranks by maximal marginal relevance.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print rows (with reasons) as JSON.")
@_store_options
@_read_only_option
@_command
def recommend_cmd(
    user_id: str,
    k: int,
    category: str | None,
    brand: str | None,
    max_price: float | None,
    include_seen: bool,
    diversity: float,
    as_json: bool,
    store: Path | None,
    neo4j_uri: str | None,
    read_only: bool,
) -> None:
    """The K best products for USER_ID from the trained model, with their reasons."""
    with _engine(store, neo4j_uri, read_only=read_only) as engine:
        frame = engine.recommend(
            user_id, k, category=category, brand=brand, max_price=max_price,
            exclude_seen=not include_seen, diversity=diversity,
        )  # fmt: skip
    if as_json:
        _echo_json(frame.to_dict(orient="records"))
        return
    click.echo(f"recommendations for {user_id} ({frame.attrs.get('method', 'model')})")
    filtered = category is not None or brand is not None or max_price is not None
    _echo_recommendations(frame, filtered=filtered)


def _echo_recommendations(frame: Any, *, filtered: bool = False) -> None:
    """Print the rows of ``Engine.recommend`` with their reasons; when there are none, why:
    the ``filtered`` call's filters, or else the products the user has seen (left out)."""
    if frame.empty:
        if filtered:
            click.echo("(no products pass the filters)")
        else:
            click.echo("(no products left: the user has seen them all)")
    for rank, row in enumerate(frame.itertuples(index=False), 1):
        click.echo(f"{rank:>3}. {row.product_id}  {row.title}  (score {row.score:.3f})")
        for reason in row.reasons:
            click.echo(f"       - {reason['text']}")


@main.command("explain")
@click.argument("user_id")
@click.argument("product_id")
@click.option("--json", "as_json", is_flag=True, help="Print the evidence as JSON.")
@_store_options
@_read_only_option
@_command
def explain_cmd(
    user_id: str,
    product_id: str,
    as_json: bool,
    store: Path | None,
    neo4j_uri: str | None,
    read_only: bool,
) -> None:
    """The graph evidence linking USER_ID to PRODUCT_ID (paths of node keys)."""
    with _engine(store, neo4j_uri, read_only=read_only) as engine:
        reasons = [r.to_dict() for r in engine.explain(user_id, product_id)]
    if as_json:
        _echo_json(reasons)
        return
    if not reasons:
        click.echo(f"no graph evidence links {user_id} to {product_id}")
        return
    for r in reasons:
        path = " -> ".join(f"({n['label']} {n['key']})" for n in r["path"])
        click.echo(f"- {r['text']}\n    {path}")


@main.command("ask")
@click.argument("question")
@click.option("--product", "product_id", default=None, help="The product page it was asked on.")
@click.option("--k", type=click.IntRange(1, 100), default=5, show_default=True)
@click.option(
    "--method", type=click.Choice(["bm25", "dense", "graph", "fusion"]), default="fusion",
    show_default=True, help="One retrieval signal alone, or their fusion.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the three lists as JSON.")
@_store_options
@_read_only_option
@_command
def ask_cmd(
    question: str,
    product_id: str | None,
    k: int,
    method: str,
    as_json: bool,
    store: Path | None,
    neo4j_uri: str | None,
    read_only: bool,
) -> None:
    """Link QUESTION to products, past answers and review passages, with evidence."""
    with _engine(store, neo4j_uri, read_only=read_only) as engine:
        result = engine.ask(question, product_id, k, method)
    if as_json:
        _echo_json(result.to_dict())
        return
    for name, frame, text in (
        ("products", result.products, "title"),
        ("answers", result.answers, "text"),
        ("review passages", result.passages, "text"),
    ):
        click.echo(f"== {name}")
        if frame.empty:
            click.echo("   (none)")
        for rank, row in enumerate(frame.to_dict(orient="records"), 1):
            key = next(iter(row.values()))
            click.echo(f"{rank:>3}. {key}  {row[text]}  (score {row['score']:.3f})")
            for line in row["evidence"]:
                click.echo(f"       - {line}")


@main.command("defects")
@click.option(
    "--level", type=click.Choice(["supplier", "batch", "product"]), default="supplier",
    show_default=True,
)  # fmt: skip
@click.option("--top", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option(
    "--at-risk",
    "at_risk",
    type=click.IntRange(1, 10_000),
    default=20,
    show_default=True,
    help="Products at risk listed per supplier or batch (the riskiest; --json gives them, "
    "with at_risk_count, how many there are).",
)
@click.option(
    "--plot",
    "plot_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the risk ranking and the top node's evidence subgraph as PNG here.",
)
@click.option(
    "--evidence",
    "evidence_key",
    metavar="KEY",
    default=None,
    help="Instead of the ranking, the evidence paths of one supplier, batch or product "
    "(with --level when the key names several).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the ranking as JSON.")
@_store_options
@_read_only_option
@_command
def defects_cmd(
    level: str,
    top: int,
    at_risk: int,
    plot_dir: Path | None,
    evidence_key: str | None,
    as_json: bool,
    store: Path | None,
    neo4j_uri: str | None,
    read_only: bool,
) -> None:
    """The riskiest suppliers, batches or products, with evidence and products at risk."""
    from click.core import ParameterSource

    ctx = click.get_current_context()
    given = {n for n in ("plot_dir", "level") if ctx.get_parameter_source(n) not in
             (None, ParameterSource.DEFAULT)}  # fmt: skip
    if evidence_key is not None and "plot_dir" in given:  # one node's paths: nothing to draw
        raise click.UsageError("--plot is for the ranking; it cannot go with --evidence")
    with _engine(store, neo4j_uri, read_only=read_only) as engine:
        if evidence_key is not None:  # --level: which node, when the key names several
            paths = engine.defect_evidence(evidence_key, level if "level" in given else None)
            paths = paths[:top]
            if as_json:
                _echo_json(paths)
                return
            if not paths:
                click.echo(f"no evidence against {evidence_key!r}", err=True)
            for item in paths:
                route = " -> ".join(f"{label} {key}" for label, key in item["path"])
                click.echo(f"{item['score']:.2f}  {route}\n      {item['text'][:100]}")
            return
        analysis = engine.defect_analysis()
        frame = analysis.ranking(level, top, at_risk)
        if plot_dir is not None and not frame.empty:
            plots = [analysis.plot(plot_dir / f"defects-{level}.png", level, top)]
            first = str(frame.iloc[0, 0])
            if len(frame["evidence"].iloc[0]):  # the riskiest node's evidence, where it has any
                name = re.sub(r"[^\w.-]", "_", first)  # a key may hold "/"
                out = plot_dir / f"defects-{level}-{name}.png"
                plots.append(analysis.plot_subgraph(first, out, level))  # a key of two levels
            click.echo(f"plots: {' '.join(map(str, plots))}", err=True)
    if as_json:
        _echo_json(frame.to_dict(orient="records"))
        return
    for rank, row in enumerate(frame.to_dict(orient="records"), 1):
        key = next(iter(row.values()))
        extra = f", {row['at_risk_count']} at risk" if "at_risk_count" in row else ""
        click.echo(f"{rank:>3}. {key}  risk {row['risk']:.3f}{extra}")
        for item in row["evidence"][:3]:
            click.echo(f"       - {item['kind']} {item['key']} ({item['score']:.2f}): "
                       f"{item['text'][:80]}")  # fmt: skip


@main.command("recalls")
@click.option("--min-recalls", type=click.IntRange(min=1), default=2, show_default=True,
              help="Firms named by fewer recalls are left out.")  # fmt: skip
@click.option("--top", type=click.IntRange(1, 10_000), default=15, show_default=True)
@click.option(
    "--plot",
    "plot_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the firms x hazard types heat map and the recall graph as PNG here.",
)
@click.option("--json", "as_json", is_flag=True, help="Print firms and clusters as JSON.")
@_store_options
@_read_only_option
@_command
def recalls_cmd(
    min_recalls: int,
    top: int,
    plot_dir: Path | None,
    as_json: bool,
    store: Path | None,
    neo4j_uri: str | None,
    read_only: bool,
) -> None:
    """Firms named by several recalls and the hazard types that cluster on firms (load
    recalls first: graphfusion load cpsc_recalls --source recalls=recalls.csv)."""
    with _engine(store, neo4j_uri, read_only=read_only) as engine:
        report = engine.recalls(min_recalls)
    companies = report.companies.head(top)
    if plot_dir is not None and not companies.empty:
        heat = report.plot(plot_dir / "recalls-firms.png", top)
        graph = report.plot_graph(plot_dir / "recalls-graph.png", min(top, 12))
        click.echo(f"plots: {heat} {graph}", err=True)
    elif plot_dir is not None:
        click.echo(f"no plots: no firm is named by {min_recalls} or more recalls", err=True)
    if as_json:
        _echo_json({
            "recalls": len(report.recalls),
            "firms": int(report.links["supplier_id"].nunique()),
            "companies": companies.to_dict(orient="records"),
            "clusters": report.clusters.to_dict(orient="records"),
        })  # fmt: skip
        return
    click.echo(f"{len(report.recalls)} recalls naming {report.links['supplier_id'].nunique()} "
               f"firms; {len(report.companies)} firms named by {min_recalls}+ recalls")  # fmt: skip
    for firm in companies.to_dict(orient="records"):
        hazards = ", ".join(f"{k} {v}" for k, v in list(firm["hazard_types"].items())[:3])
        roles = ", ".join(firm["roles"])
        click.echo(
            f"  {firm['recalls']:>3}  {firm['name'] or firm['supplier_id']} ({roles}): {hazards}"
        )
    click.echo("hazard type: recalls, firms, repeat firms, repeat share (expected), lift")
    for kind in report.clusters.to_dict(orient="records"):
        click.echo(
            f"  {kind['hazard_type']}: {kind['recalls']}, {kind['firms']}, "
            f"{len(kind['repeat_firms'])}, {kind['repeat_share']:.3f} "
            f"({kind['expected_share']:.3f}), {kind['lift']:.2f}"
        )


@main.command("serve")
@click.option(
    "--host", default="127.0.0.1", show_default=True,
    help="Address to bind; anything but loopback needs --token.",
)  # fmt: skip
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option(
    "--token", envvar="GRAPHFUSION_TOKEN", default=None, metavar="TOKEN",
    help="Bearer token clients must send (default $GRAPHFUSION_TOKEN).",
)  # fmt: skip
@click.option(
    "--allow-cypher", is_flag=True, help="Turn on the read-only POST /cypher endpoint."
)  # fmt: skip
@click.option(
    "--image-root", type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None, metavar="DIR", help="Folder whose files POST /events products may name as "
    "their image; images are refused without it.",
)  # fmt: skip
@click.option(
    "--max-body-bytes", type=click.IntRange(1024, 64 * 1024 * 1024), default=1024 * 1024,
    show_default=True, help="Largest request body; larger ones get 413.",
)  # fmt: skip
@click.option(
    "--cypher-timeout", type=_FiniteRange(0, 3600, min_open=True), default=10.0,
    show_default=True, metavar="SECONDS",
    help="Seconds a POST /cypher query may run before the store stops it (400).",
)  # fmt: skip
@click.option(
    "--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="info", show_default=True, help="uvicorn's log level (warning: no access log).",
)  # fmt: skip
@_store_options
@_read_only_option
@_command
def serve_cmd(
    host: str,
    port: int,
    token: str | None,
    allow_cypher: bool,
    image_root: Path | None,
    max_body_bytes: int,
    cypher_timeout: float,
    log_level: str,
    read_only: bool,
    store: Path | None,
    neo4j_uri: str | None,
) -> None:
    """Serve recommendations, similar products, QA linking, defects and live updates over
    HTTP (REST; OpenAPI documentation at /docs) until interrupted. With --read-only, POST
    /events answers 403 and several servers may share one store folder."""
    from graphfusion.errors import ValidationError
    from graphfusion.service import check_bind, serve

    try:
        check_bind(host, token)
    except ValidationError as exc:
        raise click.UsageError(str(exc)) from None
    with _engine(store, neo4j_uri, read_only=read_only) as engine:
        try:
            serve(
                engine, host=host, port=port, token=token, allow_cypher=allow_cypher,
                max_body_bytes=max_body_bytes, image_root=image_root,
                cypher_timeout_s=cypher_timeout, log_level=log_level,
            )  # fmt: skip
        except SystemExit as exc:  # uvicorn exits 3 when it cannot start (a port in use)
            if exc.code not in (None, 0):
                sys.exit(1)  # it logged why
            raise


@main.command()
@click.option("--size", type=click.Choice(["tiny", "small"]), default="tiny", show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@_store_options
@_command
def demo(size: str, seed: int, store: Path | None, neo4j_uri: str | None) -> None:
    """Generate a shop, load it, and show what is in the graph."""
    import pandas as pd

    from graphfusion.synthetic import generate_shop

    started = time.perf_counter()
    with _engine(store, neo4j_uri, create=True) as engine:
        base = getattr(engine.store, "path", Path("."))
        shop = Path(base) / f"demo-shop-{size}-{seed}"
        click.echo(f"== generate the {size} shop into {shop}")
        generate_shop(shop, size, seed, progress=True)
        click.echo("== load it")
        result = engine.load("synthetic", {"shop": shop}, progress=True)
        click.echo(result.summary())
        counts = engine.stats()
        click.echo("== the graph")
        for label, n in counts.nodes.items():
            if n:
                click.echo(f"  {label:<16}{n:>8}")
        for rtype, n in counts.relationships.items():
            if n:
                click.echo(f"  {rtype:<16}{n:>8}")
        with pd.option_context("display.width", 120, "display.max_colwidth", 50):
            for title, query in DEMO_QUERIES:
                click.echo(f"== {title}\n   {query}")
                click.echo(engine.cypher(query).to_string(index=False))
            click.echo("== embed: text, image and behaviour vectors on the nodes")
            click.echo(engine.embed(progress=True).summary())
            # the shop's own first product and user: the store may hold other data too
            product = pd.read_csv(shop / "products.csv", usecols=["id", "title"], dtype=str)
            pid, title = product["id"][0], product["title"][0]
            for modality in ("text", "image"):
                click.echo(f"== products most similar to {pid} ({title}) by {modality}")
                click.echo(engine.similar(pid, modality, k=5).to_string(index=False))
            click.echo("== train the fusion model; fused_vec goes back to the store")
            trained = engine.train("fusion", epochs=20, batch_size=512, lr=0.01, progress=True)
            click.echo(trained.summary())
            click.echo(f"   training curve: {trained.curve}")
            click.echo(f"== products most similar to {pid} ({title}) by fused vectors")
            click.echo(engine.similar(pid, "fused", k=5).to_string(index=False))
            user = pd.read_csv(shop / "users.csv", usecols=["id"], dtype=str)["id"][0]
            click.echo(f"== top 5 products for user {user}, with their reasons")
            _echo_recommendations(engine.recommend(user, 5))
    click.echo(f"== done in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":  # pragma: no cover
    main()
