"""Every public feature, run whole on a Neo4j store, sends only Cypher that Neo4j 5 takes.

No Neo4j server runs here. The applications run on a :class:`~graphfusion.store.Neo4jStore`
whose driver is the recording stand-in, answering from an embedded store through
:class:`neo4j_recorder.EmbeddedResponder` (which rewrites only what the dialects spell
differently, keeps a vector search to the index's ``$k`` best, hands temporal values over as
``neo4j.time`` types, refuses writes in read transactions, and packs parameters as the driver
does). So the statements checked are the ones the code sends today, not a copied list:

- every recorded statement, and the README's Cypher for Neo4j, passes Neo4j's own parser;
- none calls a function or procedure that Neo4j 5 lacks (LadybugDB's ``label``,
  ``list_contains``, ``array_cosine_similarity``, ``CAST``...);
- every Cypher string literal in the applications' source shows up in what was recorded, so
  a new query that the run below does not reach fails here, by file and line.
"""

from __future__ import annotations

import ast
import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner
from neo4j.graph import Graph, Node
from neo4j.time import DateTime

from graphfusion import Engine
from graphfusion.cli import DEMO_QUERIES, main
from graphfusion.cypher_recipes import recommend as recipe
from graphfusion.errors import NotReadyError, QueryError
from graphfusion.graph import to_heterodata
from graphfusion.store import EmbeddedStore, Neo4jStore

try:
    from cypher_lint import cypher_lint_available, lint_cypher, unavailable_reason, unknown_calls
    from neo4j_recorder import EmbeddedResponder, RecordingDriver
    from test_recalls import _write as write_recalls
except ImportError:  # pragma: no cover - when tests/ is a package
    from tests.cypher_lint import (
        cypher_lint_available,
        lint_cypher,
        unavailable_reason,
        unknown_calls,
    )
    from tests.neo4j_recorder import EmbeddedResponder, RecordingDriver
    from tests.test_recalls import _write as write_recalls

PACKAGE = Path(__file__).parents[1] / "graphfusion"
README = Path(__file__).parents[1] / "README.md"
needs_lint = pytest.mark.skipif(
    not cypher_lint_available(), reason=unavailable_reason() or "Cypher lint is not available"
)

#: Cypher in the source that no Neo4j store sends, with why.
NOT_FOR_NEO4J = {
    "cypher_recipes.py": "the LadybugDB branch of recommend_query (its Neo4j branch is run)",
}


@dataclass
class Run:
    """What the applications sent, and what failed."""

    driver: RecordingDriver
    responder: EmbeddedResponder
    errors: dict[str, str] = field(default_factory=dict)

    def step(self, name: str, fn: Any, *, expect: type[Exception] | None = None) -> Any:
        """Run one feature; its error (or a missing expected one) is kept under ``name``."""
        try:
            out = fn()
        except Exception as exc:
            if expect is None or not isinstance(exc, expect):
                self.errors[name] = f"{type(exc).__name__}: {exc}"
            return None
        if expect is not None:
            self.errors[name] = f"no {expect.__name__}"
        elif out is None or (hasattr(out, "__len__") and not len(out)):
            self.errors[name] = "an empty answer"
        return out

    @property
    def statements(self) -> list[str]:
        return list(dict.fromkeys(self.driver.queries))


def _readme_blocks() -> list[str]:
    """The README's Cypher that a Neo4j user runs: every block but the embedded store's."""
    blocks = re.findall(r"```cypher\n(.*?)```", README.read_text(), flags=re.S)
    return [b for b in blocks if "array_cosine_similarity" not in b]


def _features(run: Run, engine: Engine, shop: Path) -> None:
    """Every public feature of the engine, once."""
    run.step("load", lambda: engine.load("synthetic", shop=shop).nodes)
    run.step("load recalls", lambda: engine.load("cpsc_recalls", recalls=write_recalls(
        Path("recalls"))).nodes)  # fmt: skip
    run.step("ask before embed", lambda: engine.ask("Is it safe?"), expect=NotReadyError)
    run.step("train lightgcn", lambda: engine.train("lightgcn", epochs=1, patience=1).config)
    run.step("recommend lightgcn", lambda: engine.recommend("u0001", k=5))
    run.step("embed", lambda: engine.embed().encoded)
    run.step("train", lambda: engine.train("fusion", epochs=2, batch_size=256, patience=2).config)
    _reads(run, engine, "")
    run.step("stats", lambda: engine.stats().nodes)
    run.step("export", lambda: to_heterodata(engine.store).ids)
    viewed = pd.DataFrame({"user_id": ["u0001"], "product_id": ["p0002"], "type": ["VIEWED"]})
    run.step("add interactions", lambda: engine.add_interactions(viewed).relationships)
    category = engine.cypher(
        "MATCH (p:Product {id: 'p0003'})-[:IN_CATEGORY]->(c:Category) RETURN c.id AS c"
    )["c"][0]
    other = engine.cypher("MATCH (c:Category) WHERE c.id <> $c RETURN c.id AS c", {"c": category})
    products = pd.DataFrame({
        "id": ["p0003", "pnew"], "title": ["Relabelled lamp", "Zorblax espresso grinder"],
        "category_id": [other["c"][0], category], "image": [str(shop / "images" / "p0014.png"),
                                                             None],
    })  # fmt: skip
    run.step("add products", lambda: engine.add_products(products).nodes)
    run.step("recommend after", lambda: engine.recommend("u0001", k=5))
    run.step("no photo", lambda: engine.similar("pnew", "image"), expect=NotReadyError)
    for i, (_, query) in enumerate(DEMO_QUERIES):
        run.step(f"demo query {i}", lambda q=query: engine.cypher(q))
    params = {"user": "u0001", "low": 2, "min": 2, "product": "p0019", "word": "mug"}
    for i, block in enumerate(b for b in _readme_blocks() if "db.index.vector" not in b):
        names = set(re.findall(r"\$(\w+)", block))
        run.step(f"readme query {i}", lambda q=block, n=names: engine.cypher(
            q, {k: v for k, v in params.items() if k in n}))  # fmt: skip
    # a review rewritten and a product's text removed: passages and a vector go stale
    engine.cypher("MATCH (r:Review {id: 'r00001'}) SET r.text = NULL")
    engine.cypher("MATCH (p:Product {id: 'p0004'}) SET p.title = NULL, p.description = NULL")
    run.step("embed again", lambda: engine.embed(only="text").encoded)


def _reads(run: Run, engine: Engine, tag: str) -> None:
    """The features that only read (a read-only store serves them too)."""
    run.step(f"recommend{tag}", lambda: engine.recommend("u0001", k=5))
    run.step(f"explain{tag}", lambda: engine.explain("u0001", "p0014"))
    run.step(f"ask{tag}", lambda: engine.ask("Is the mug dishwasher safe?").products)
    for level in ("supplier", "batch", "product"):
        run.step(f"defects {level}{tag}", lambda lv=level: engine.defects(lv))
    run.step(f"evidence{tag}", lambda: engine.defect_evidence("s01"))
    run.step(f"recalls{tag}", lambda: engine.recalls(min_recalls=1).recalls)
    for modality in ("text", "image", "behaviour", "fused"):
        run.step(f"similar {modality}{tag}", lambda m=modality: engine.similar("p0001", m, k=5))
    run.step(f"recipe{tag}", lambda: recipe(engine.store, "u0001", k=5))


def _cli(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands with ``--neo4j``: the real driver is asked for, the recorder answers."""
    import neo4j

    def driver(uri: str, auth: Any = None) -> RecordingDriver:
        return run.driver

    monkeypatch.setattr(neo4j.GraphDatabase, "driver", driver)
    monkeypatch.setattr(run.driver, "close", lambda: None, raising=False)
    commands = [
        ["cypher", "MATCH (u:User {id: $u})-[:PURCHASED]->(p:Product) RETURN p.title AS title",
         "--param", "u=u0001", "--json"],
        ["recommend", "u0001", "--k", "3"],
        ["similar", "p0001", "--modality", "image", "--k", "3"],
        ["defects", "--level", "batch"],
        ["stats"],
        ["demo"],
    ]  # fmt: skip
    for args in commands:
        result = CliRunner().invoke(main, [*args, "--neo4j", "bolt://shop:7687"])
        if result.exit_code:
            run.errors[f"cli {args[0]}"] = result.output.strip()[-500:]


@pytest.fixture(scope="module")
def run(tiny_shop: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    folder = tmp_path_factory.mktemp("neo4j-apps")
    with pytest.MonkeyPatch.context() as monkeypatch, EmbeddedStore(folder / "answers") as db:
        monkeypatch.chdir(folder)  # models and reports of a Neo4j store go to the work folder
        responder = EmbeddedResponder(db)
        out = Run(RecordingDriver(responder), responder)
        with Engine(Neo4jStore(driver=out.driver)) as engine:
            _features(out, engine, tiny_shop)
        out.driver.closed = False
        reader = Neo4jStore(driver=out.driver, read_only=True)
        with Engine(reader) as engine:
            _reads(out, engine, " (read-only)")
        _cli(out, monkeypatch)
        yield out


def test_every_feature_runs_on_a_neo4j_store(run: Run) -> None:
    assert not run.errors, "\n".join(f"{k}: {v}" for k, v in run.errors.items())
    failed = [f"{q}\n  -> {e}" for q, e in run.responder.failures]
    assert not failed, "\n".join(failed)
    assert len(run.statements) > 150


@needs_lint
def test_every_statement_passes_neo4j_parser(run: Run) -> None:
    statements = run.statements + _readme_blocks()
    failed = [r.describe() for r in lint_cypher(statements) if not r.ok]
    assert not failed, "\n\n".join(failed)


@needs_lint
def test_no_ladybug_only_function_reaches_neo4j(run: Run) -> None:
    unknown = {q: unknown_calls(q) for q in run.statements + _readme_blocks()}
    assert not {q: u for q, u in unknown.items() if u}


def _cypher_literals() -> Iterator[tuple[str, int, list[str]]]:
    """``(file, line, text pieces)`` of each string literal of the applications' source that
    holds Cypher (the store's own statements are checked in test_store_neo4j.py)."""
    clause = re.compile(r"^\s*(MATCH|UNWIND|CALL|OPTIONAL MATCH|WITH|RETURN)\b|\bRETURN\b")
    for path in sorted(PACKAGE.rglob("*.py")):
        if "store" in path.relative_to(PACKAGE).parts:
            continue
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                pieces = [node.value]
            elif isinstance(node, ast.JoinedStr):
                pieces = [v.value for v in node.values if isinstance(v, ast.Constant)]
            else:
                continue
            text = "{}".join(str(p) for p in pieces)
            if id(node) in docstrings or not clause.search(text) or "`" in text:
                continue
            yield str(path.relative_to(PACKAGE)), node.lineno, [str(p) for p in pieces]


def test_every_application_query_is_sent(run: Run) -> None:
    sent = "\n".join(run.statements)
    literals = list(_cypher_literals())
    assert len(literals) > 40
    missing = [
        f"{file}:{line}: {piece.strip()!r}"
        for file, line, pieces in literals
        if file not in NOT_FOR_NEO4J
        for piece in pieces
        if len(piece.strip()) >= 6 and piece.strip() not in sent
    ]
    assert not missing, "not reached by this test's run:\n" + "\n".join(missing)


def _bought() -> tuple[Node, Any]:
    """A user node and a relationship of the driver's own types, as Neo4j hands them over."""
    graph = Graph()
    user = Node(graph, "4:u", 1, ["User"], {"id": "u1", "age": None})
    product = Node(graph, "4:p", 2, ["Product"], {"id": "p1"})
    bought = graph.relationship_type("PURCHASED")(
        graph, "5:r", 3, {"weight": 2.0, "ts": DateTime(2024, 1, 2, 3, 4, 5)}
    )
    bought._start_node, bought._end_node = user, product
    return user, bought


def test_nodes_and_relationships_come_back_as_their_properties() -> None:
    """As on the embedded store (and as query_arrow's docstring says), a node or relationship
    is the map of its properties; the driver's ``record.data()`` made a relationship the tuple
    ``(start node, type, end node)``, its own properties lost, and query_arrow then failed."""
    user, bought = _bought()
    driver = RecordingDriver(lambda q, p: [{"u": user, "r": bought, "both": [user, bought]}])
    store = Neo4jStore(driver=driver, create_schema=False)
    query = "MATCH (u:User)-[r:PURCHASED]->() RETURN u, r, [u, r] AS both"
    r = {"weight": 2.0, "ts": dt.datetime(2024, 1, 2, 3, 4, 5)}
    want = {"u": {"id": "u1"}, "r": r, "both": [{"id": "u1"}, r]}
    assert store.query(query) == [want]
    assert store.query_read(query).rows == [want]
    assert store.query_df(query).to_dict("records") == [want]
    table = store.query_arrow(query)
    assert table.column("r").to_pylist() == [r]
    assert table.column("u").to_pylist() == [{"id": "u1"}]


def test_the_embedded_store_gives_the_same_shape(store: EmbeddedStore) -> None:
    store.upsert_nodes("User", pd.DataFrame({"id": ["u1"]}))
    store.upsert_nodes("Product", pd.DataFrame({"id": ["p1"]}))
    frame = pd.DataFrame({"src": ["u1"], "dst": ["p1"], "weight": [2.0],
                          "ts": [dt.datetime(2024, 1, 2, 3, 4, 5)]})  # fmt: skip
    store.upsert_relationships("PURCHASED", frame, start="User", end="Product")
    rows = store.query("MATCH (u:User)-[r:PURCHASED]->() RETURN u, r")
    assert rows == [
        {"u": {"id": "u1"}, "r": {"weight": 2.0, "ts": dt.datetime(2024, 1, 2, 3, 4, 5)}}
    ]


@pytest.mark.parametrize(
    ("values", "kinds"),
    [(["9.99", 1.5], "float, str"), ([[0.5], 0.5], "float, list"), ([1, 2**70], "int")],
)
def test_a_column_of_mixed_types_is_a_clear_error(values: list[Any], kinds: str) -> None:
    """Neo4j is schemaless: a graph written by other tools can hold a property as text on one
    node and a number on another. A table of such a column was pyarrow's bare "Expected
    bytes, got a 'float' object"; now it is a QueryError naming the column."""
    rows = [{"id": f"p{i}", "price": v} for i, v in enumerate(values)]
    store = Neo4jStore(driver=RecordingDriver(lambda q, p: rows), create_schema=False)
    with pytest.raises(QueryError, match=rf"column 'price' .*\({kinds}: several types"):
        store.query_arrow("MATCH (p:Product) RETURN p.id AS id, p.price AS price")
