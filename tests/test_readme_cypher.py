"""The queries of the README's "Cypher you can run on the stored graph" run on a real store."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from cypher_lint import cypher_lint_available, lint_cypher, unavailable_reason

from graphfusion import Engine
from graphfusion.qa import write_passages

README = Path(__file__).parents[1] / "README.md"
PARAMS = {"user": "u0001", "low": 2, "min": 2, "product": "p0019", "word": "mug"}
COLUMNS = [
    ["product", "title", "brand", "category"],
    ["batch", "complaints", "unreviewed_siblings"],
    ["review", "rating", "passage"],
]


def _blocks() -> list[str]:
    text = README.read_text()
    section = text.split("### Cypher you can run on the stored graph", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```cypher\n(.*?)```", section, flags=re.S)


@pytest.fixture(scope="module")
def engine(tiny_shop: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with Engine(tmp_path_factory.mktemp("readme") / "store") as engine:
        engine.load("synthetic", shop=tiny_shop)
        write_passages(engine.store)
        yield engine


def test_the_section_has_its_queries() -> None:
    assert len(_blocks()) == 3


@pytest.mark.parametrize("index", range(3))
def test_readme_query_runs_on_the_embedded_store(engine: Engine, index: int) -> None:
    query = _blocks()[index]
    names = set(re.findall(r"\$(\w+)", query))
    frame = engine.cypher(query, {k: v for k, v in PARAMS.items() if k in names})
    assert not frame.empty
    assert list(frame.columns) == COLUMNS[index]


@pytest.mark.skipif(not cypher_lint_available(), reason=unavailable_reason() or "")
def test_readme_queries_pass_the_neo4j_parser() -> None:
    failed = [r.describe() for r in lint_cypher(_blocks()) if not r.ok]
    assert not failed, "\n".join(failed)
