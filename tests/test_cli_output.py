"""The command line: what `cypher` prints, and settings that contradict each other."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from graphfusion.cli import main
from graphfusion.store import EmbeddedStore


@pytest.fixture
def empty_store(tmp_path: Path) -> Path:
    folder = tmp_path / "my store"  # a space in the path, as users have
    EmbeddedStore(folder).close()
    return folder


def test_cypher_text_abbreviates_long_lists_and_json_keeps_them(empty_store: Path) -> None:
    """A vector column printed one line of over a thousand characters per row (pandas shows
    up to 100 items of a list); --json keeps every value."""
    query = (
        "UNWIND [1, 2] AS i RETURN i, list_transform(range(1, 384), x -> x * 0.001 + i) AS vec, "
        "[1, 2, 3] AS short, 'a title' AS title"
    )
    runner = CliRunner()
    text = runner.invoke(main, ["cypher", query, "--store", str(empty_store)])
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert len(lines) == 3 and max(map(len, lines)) < 120, lines
    assert "384 items" in lines[1] and "1.001" in lines[1] and "2.001" in lines[2]
    assert "[1, 2, 3]" in lines[1] and "a title" in lines[1]
    as_json = runner.invoke(main, ["cypher", query, "--store", str(empty_store), "--json"])
    assert as_json.exit_code == 0, as_json.output
    rows = json.loads(as_json.stdout)
    assert len(rows[0]["vec"]) == 384 and rows[1]["short"] == [1, 2, 3]


def test_cypher_text_abbreviates_lists_inside_maps_and_lists(empty_store: Path) -> None:
    query = "RETURN {v: range(1, 300)} AS m, [range(1, 300)] AS nested"
    res = CliRunner().invoke(main, ["cypher", query, "--store", str(empty_store)])
    assert res.exit_code == 0, res.output
    assert max(map(len, res.output.splitlines())) < 120, res.output
    assert res.output.count("300 items") == 2


def test_both_store_settings_in_the_environment_fail_with_both_named(
    empty_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user who set NEO4J_URI beside GRAPHFUSION_STORE got the embedded store in silence."""
    monkeypatch.setenv("GRAPHFUSION_STORE", str(empty_store))
    monkeypatch.setenv("NEO4J_URI", "neo4j://localhost:1")
    runner = CliRunner()
    res = runner.invoke(main, ["stats"])
    assert res.exit_code == 1
    assert "GRAPHFUSION_STORE" in res.stderr and "NEO4J_URI" in res.stderr
    assert len(res.stderr.splitlines()) == 1
    picked = runner.invoke(main, ["stats", "--store", str(empty_store), "--json"])
    assert picked.exit_code == 0, picked.output


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999", "[1.5, NaN]"])
def test_a_non_finite_cypher_parameter_is_bad_usage(empty_store: Path, value: str) -> None:
    """``--param max=NaN`` reached the store as NaN, which it finds greater than every
    number: ``p.price < $max`` passed every row. The service refuses it too."""
    query = "UNWIND [1.0, 2.0] AS price WITH price WHERE price < $max RETURN count(*) AS n"
    res = CliRunner().invoke(
        main, ["cypher", query, "--param", f"max={value}", "--store", str(empty_store)]
    )
    assert res.exit_code == 2, res.output
    assert "--param" in res.stderr and "finite" in res.stderr


def test_cypher_parameters_as_json_or_text(empty_store: Path) -> None:
    runner = CliRunner()
    for raw, expected in [("1.5", 1.5), ("1e3", 1000.0), ('"NaN"', "NaN"), ("NaNa", "NaNa"),
                          ("[1, 2]", [1, 2]), ("x=y", "x=y"), ("", "")]:  # fmt: skip
        res = runner.invoke(
            main,
            ["cypher", "RETURN $v AS v", "--param", f"v={raw}", "--store", str(empty_store),
             "--json"],
        )  # fmt: skip
        assert res.exit_code == 0, (raw, res.output)
        assert json.loads(res.stdout) == [{"v": expected}], raw
