"""The README as a new user reads it: what its tour and demo excerpts print on the tiny shop,
the defaults and limits it states, and what a command it shows does.

``test_readme_names.py`` checks that the names the README uses exist; these check what they
do. The read-only commands of the tour run on the session's ``trained_store`` (the tiny shop,
seed 0, embedded; ``ask`` and ``defects`` do not read the trained model, so their output is
the README's whatever the fixture trained). Tests marked ``slow`` train or run ``demo``.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import click
import pytest
from click.testing import CliRunner

from graphfusion.cli import DEMO_QUERIES, main

if TYPE_CHECKING:
    from graphfusion import Engine

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"


@cache
def _text() -> str:
    return README.read_text(encoding="utf-8")


def _block_after(marker: str) -> str:
    """The first fenced block after ``marker`` in the README."""
    assert marker in _text(), f"the README no longer has {marker!r}"
    rest = _text().split(marker, 1)[1]
    match = re.search(r"```\w*\n(.*?)```", rest, flags=re.S)
    assert match, f"no fenced block after {marker!r}"
    return match.group(1)


def _printed_runs() -> dict[str, list[str]]:
    """The tour's "What it printed here" block: each ``$ graphfusion ...`` line and the
    lines the README shows under it (``...`` marks lines left out)."""
    runs: dict[str, list[str]] = {}
    current: list[str] = []
    for line in _block_after("What it printed here").splitlines():
        if line.startswith("$ "):
            current = runs.setdefault(line[2:], [])
        elif line.strip() != "...":
            current.append(line)
    return runs


def _assert_in_order(shown: list[str], output: str, what: str) -> None:
    """Every line the README shows is a line of ``output``, in the README's order (the
    README trims, so lines may be missing between them, never added or reordered)."""
    lines = output.splitlines()
    at = 0
    for line in shown:
        try:
            at = lines.index(line, at) + 1
        except ValueError:
            pytest.fail(f"{what}: the README shows {line!r}, which the command no longer "
                        f"prints (in this order); it printed:\n{output}")  # fmt: skip


def _invoke(args: list[str]) -> str:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return result.stdout


def _tour_args(command: str, store: Path) -> list[str]:
    args = shlex.split(command)
    assert args[0] == "graphfusion"
    return [*args[1:], "--store", str(store), "--read-only"]


# ---------------------------------------------------------------------------- the tour
def test_the_tour_block_shows_the_commands_it_says() -> None:
    runs = _printed_runs()
    assert [c.split()[1] for c in runs] == ["train", "recommend", "ask", "defects", "defects"]
    assert all(runs.values()), "a command of the tour block shows no output"


@pytest.mark.parametrize(
    "command", [c for c in _printed_runs() if c.split()[1] in {"ask", "defects"}]
)
def test_tour_output_of_read_only_commands_is_the_readmes(
    command: str, trained_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ask`` and ``defects`` print what the README says they printed on the tiny shop."""
    monkeypatch.chdir(tmp_path)  # `--plot plots` writes here
    output = _invoke(_tour_args(command, trained_store))
    _assert_in_order(_printed_runs()[command], output, command)
    if "--plot" in command:
        # "writes the risk ranking ... and the evidence subgraph of the top node as PNG"
        plots = sorted(p.name for p in (tmp_path / "plots").iterdir())
        assert len(plots) == 2 and all(p.endswith(".png") for p in plots), plots
        assert any("s04" in p for p in plots), plots


def test_tour_cypher_line_runs_as_written(trained_store: Path) -> None:
    """The tour's ``cypher`` line (its ``\\$u`` is the shell's escape) gives u0001's
    purchases as a JSON list of titles."""
    line = next(
        line for line in _block_after("## A tour").replace("\\\n", " ").splitlines()
        if line.startswith("graphfusion cypher")
    )  # fmt: skip
    args = shlex.split(line.replace("\\$", "$"), comments=True)
    rows = json.loads(_invoke([*args[1:], "--store", str(trained_store), "--read-only"]))
    assert rows and all(set(row) == {"title"} for row in rows)
    assert "Acme Studio Organic cotton T-Shirt - Black" in {row["title"] for row in rows}


# ---------------------------------------------------------------------------- the demo
def _demo_excerpt(heading: str) -> list[str]:
    """The lines under ``== heading`` in the README's demo excerpt, up to the next ``==``."""
    block = _block_after("What `make demo` shows").splitlines()
    start = next(i for i, line in enumerate(block) if line.startswith(f"== {heading}"))
    out = []
    for line in block[start + 1 :]:
        if line.startswith("==") or line == "...":
            break
        out.append(line)
    assert out, f"the demo excerpt shows nothing under {heading!r}"
    return out


def test_demo_excerpt_supplier_table_is_the_demo_query(trained_store: Path) -> None:
    from graphfusion import Engine

    title, query = next(q for q in DEMO_QUERIES if q[0].startswith("Suppliers"))
    with Engine(trained_store, read_only=True) as engine:
        table = engine.cypher(query).to_string(index=False)
    assert _demo_excerpt(title) == table.splitlines()


def test_demo_excerpt_image_neighbours_are_the_stores(trained_store: Path) -> None:
    from graphfusion import Engine

    with Engine(trained_store, read_only=True) as engine:
        table = engine.similar("p0001", "image", k=5).to_string(index=False)
    shown = _demo_excerpt("products most similar to p0001 (Northpeak Everyday Metal Lamp - Red) "
                          "by image")  # fmt: skip
    _assert_in_order(shown, table, "similar p0001 by image")


def test_the_batch_query_gives_the_row_the_readme_quotes(trained_store: Path) -> None:
    """The README quotes the batch query's row on the tiny shop: ``bt007  3  [p0013]``."""
    from graphfusion import Engine

    assert "On the tiny shop (`--param low=2 --param min=2`): `bt007  3  [p0013]`" in _text()
    query = _text().split("Batches with several low-rated reviews", 1)[1]
    query = re.search(r"```cypher\n(.*?)```", query, flags=re.S).group(1)  # type: ignore[union-attr]
    with Engine(trained_store, read_only=True) as engine:
        rows = engine.cypher(query, {"low": 2, "min": 2}).to_dict("records")
    assert rows == [{"batch": "bt007", "complaints": 3, "unreviewed_siblings": ["p0013"]}]


# ---------------------------------------------------------------------------- defaults
def _option(command: str, name: str) -> click.Option:
    assert isinstance(main, click.Group)
    params = {p.name: p for p in main.commands[command].params}
    option = params[name]
    assert isinstance(option, click.Option)
    return option


@pytest.mark.parametrize(
    ("command", "name", "default", "readme"),
    [
        ("defects", "top", 20, "[--top 20]"),
        ("defects", "level", "supplier", "[--level supplier|batch|product]"),
        ("ask", "k", 5, "[--k 5]"),
        ("ask", "method", "fusion", "[--method fusion]"),
        ("recalls", "min_recalls", 2, "[--min-recalls 2]"),
        ("recalls", "top", 15, "[--top 15]"),
        ("serve", "host", "127.0.0.1", "http://127.0.0.1:8000"),
        ("serve", "port", 8000, "http://127.0.0.1:8000"),
        ("serve", "max_body_bytes", 1024 * 1024, "bodies up to 1 MiB (`--max-body-bytes`"),
        ("serve", "cypher_timeout", 10.0, "after 10 seconds (`--cypher-timeout`"),
        ("train", "taste_epochs", 80, "`TrainConfig(taste_epochs=80)`, `--taste-epochs`"),
        ("train", "max_scores", 10**8, "`TrainConfig(max_scores=10**8)` (`--max-scores`)"),
        ("train", "light_users", 0.0, "leave it at 0 (the\n  default"),
        ("demo", "size", "tiny", "generates the tiny synthetic shop"),
    ],
)
def test_cli_defaults_are_the_readmes(
    command: str, name: str, default: object, readme: str
) -> None:
    assert readme in _text(), f"the README no longer says {readme!r}"
    assert _option(command, name).default == default


def test_the_train_config_defaults_are_the_cli_defaults() -> None:
    from graphfusion.train import TrainConfig

    config = TrainConfig()
    for name in ("epochs", "seed", "cold_items", "light_users", "taste_epochs", "max_scores"):
        assert _option("train", name).default == getattr(config, name), name


def test_the_type_weights_are_the_readmes() -> None:
    from graphfusion.train import TYPE_WEIGHTS

    assert "view 1,\n    purchase 4, favourite 2, rating 1" in _text()
    assert TYPE_WEIGHTS == {"VIEWED": 1.0, "PURCHASED": 4.0, "FAVORITED": 2.0, "RATED": 1.0}
    assert "VIEWED=1,PURCHASED=4,FAVORITED=2,RATED=1" in (
        _option("train", "type_weights").help or ""
    )


@pytest.mark.parametrize(
    ("command", "name", "low", "high"),
    [("recommend", "k", 1, 1000), ("ask", "k", 1, 100), ("similar", "k", 1, 1000)],
)
def test_k_ranges_are_the_readmes(command: str, name: str, low: int, high: int) -> None:
    kind = _option(command, name).type
    assert isinstance(kind, click.IntRange)
    assert (kind.min, kind.max) == (low, high)


def test_service_limits_are_the_readmes() -> None:
    from graphfusion import service

    for phrase in ("`k` and `top` up to 100", "questions up to 2,000 characters",
                   "up to 1,000 events per request", "reads at most 1,000 rows"):  # fmt: skip
        assert phrase in _text().replace("\n", " ").replace("  ", " "), phrase
    assert (service.MAX_K, service.MAX_TOP) == (100, 100)
    assert service.MAX_QUESTION_CHARS == 2_000
    assert service.MAX_EVENTS == 1_000
    assert service.MAX_CYPHER_ROWS == 1_000
    assert service.DEFAULT_MAX_BODY_BYTES == 1024 * 1024


def test_analysis_constants_are_the_readmes() -> None:
    from graphfusion import defects, light, qa

    assert defects.PRIOR_WEIGHT == 10  # "empirical Bayes ... with 10 pseudo-observations"
    assert defects.RECALL_WEIGHT == 50  # "worth 50 defect reports"
    assert defects.IMAGE_WEIGHT == 3  # "an odd photo counts as three defect reviews"
    assert defects.EVIDENCE_MIN == 0.5
    assert defects.IMAGE_MIN == 10
    assert defects.MAX_PLOT_BARS == 50  # "(its top 50 bars at most)"
    assert qa.SIMILAR_QUESTION == 0.5
    assert qa.MAX_QUESTION_CHARS == 10_000  # "one over 10,000 characters"
    assert light.MIN_PRODUCTS == 10  # "25% of the users with at least 10 products"


def test_schema_ranges_are_the_readmes() -> None:
    """ "a price at least 0, an age 0 to 150, a rating 1 to 5, ... an interaction's `weight`
    0 to 1e9"."""
    from graphfusion.schema import Property, load_schema

    schema = load_schema()

    def bounds(properties: tuple[Property, ...], name: str) -> tuple[float | None, float | None]:
        prop = next(p for p in properties if p.name == name)
        return prop.minimum, prop.maximum

    assert bounds(schema.nodes["Product"].properties, "price") == (0, None)
    assert bounds(schema.nodes["User"].properties, "age") == (0, 150)
    assert bounds(schema.nodes["Review"].properties, "rating") == (1, 5)
    for rtype in ("VIEWED", "PURCHASED", "FAVORITED", "RATED"):
        assert bounds(schema.relationships[rtype].properties, "weight") == (0, 1e9), rtype


# ---------------------------------------------------------------------------- the stores
def test_read_commands_make_no_store(tmp_path: Path) -> None:
    """ "Commands that only read ... refuse a `--store` folder that holds no store rather
    than make an empty one"; so do embed and train, which need a loaded store."""
    for args in (["stats"], ["recommend", "u1"], ["embed"], ["train"], ["ask", "hi"]):
        folder = tmp_path / args[0]
        result = CliRunner().invoke(main, [*args, "--store", str(folder)])
        assert result.exit_code == 1, result.output
        assert "no graphfusion store at" in result.output
        assert not folder.exists()


def test_a_copy_of_the_trained_store_serves_the_recipe(trained_store: Path, tmp_path: Path) -> None:
    """ "From Python ... the query for the store's dialect comes from
    `graphfusion.cypher_recipes`": the query and ``recommend`` agree."""
    from graphfusion import Engine
    from graphfusion.cypher_recipes import recommend, recommend_query

    folder = tmp_path / "store"
    shutil.copytree(trained_store, folder)
    with Engine(folder, read_only=True) as engine:
        frame = engine.cypher(recommend_query(engine.store), {"user_id": "u0001", "k": 10})
        rows = recommend(engine.store, "u0001", k=10)
    assert len(rows) == 10
    assert list(frame["id"]) == [row["id"] for row in rows]


# ---------------------------------------------------------------------------- gaps found
@pytest.mark.slow
def test_demo_on_a_store_holding_other_products_shows_the_shop(tmp_path: Path) -> None:
    """`make demo` loads the shop "into `./.graphfusion/`": a folder that may hold data
    already. The demo's similar-products and top-5 sections are about the shop it made."""
    (tmp_path / "own.csv").write_text("id,title\na0001,A product with no photo\n")
    (tmp_path / "own.yaml").write_text(
        "name: own\nsources: {own: {}}\ntables: {own: {source: own, format: csv}}\n"
        "nodes: [{label: Product, table: own, key: id, properties: {title: title}}]\n"
    )
    store = tmp_path / "store"
    _invoke(["load", str(tmp_path / "own.yaml"), "--source", f"own={tmp_path / 'own.csv'}",
             "--store", str(store)])  # fmt: skip
    result = CliRunner().invoke(main, ["demo", "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert "== products most similar to p0001 (Northpeak Everyday Metal Lamp - Red) by image" in (
        result.stdout
    )
    assert "== top 5 products for user u0001, with their reasons" in result.stdout


@pytest.mark.slow
def test_light_users_that_make_no_user_light_say_so(
    trained_store: Path, private_copy: Callable[[Path], Engine], caplog: pytest.LogCaptureFixture
) -> None:
    """The README: "`TrainConfig(light_users=0.25)` (`--light-users`) makes 25% of the users
    with at least 10 products light". The tiny shop has too few of them for any to be made
    light (fewer than 3 * `graphfusion.light.MIN_USERS`); asking must not pass in silence."""
    engine = private_copy(trained_store)
    with caplog.at_level("WARNING", logger="graphfusion"):
        result = engine.train("fusion", epochs=1, taste_epochs=0, light_users=0.25)
    assert not result.light  # nobody was made light on the tiny shop ...
    assert any("light_users" in r.getMessage() for r in caplog.records)  # ... and it says so


def test_the_serve_line_names_an_image_root_the_tour_made() -> None:
    """The tour writes the shop to ``shop`` (photos in ``shop/images``) and nothing to
    ``./images``: the serve line as written exits 2 ("Directory './images' does not exist")."""
    assert "graphfusion generate --size tiny --out shop" in _text()
    roots = re.findall(r"--image-root (\S+)", _block_after("## Serve it over HTTP"))
    assert roots
    assert all(Path(root).parts[0] == "shop" for root in roots), roots


def test_the_helpful_votes_range_is_the_schemas() -> None:
    """The README said "helpful votes and an interaction's `weight` 0 to 1e9", but the
    schema gives helpful votes no maximum (5,000,000,000 loads): it must say what is."""
    from graphfusion.schema import load_schema

    claims_max = "helpful votes\nand an interaction's `weight` 0 to 1e9" in _text()
    helpful = next(p for p in load_schema().nodes["Review"].properties if p.name == "helpful")
    assert helpful.minimum == 0
    assert not claims_max or helpful.maximum == 1e9
