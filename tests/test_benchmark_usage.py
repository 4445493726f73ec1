"""The benchmark scripts' command lines: --help, bad option values and missing data.

Nothing here runs a benchmark: every call stops at its arguments, before any work, so the
tests are quick and never write under ``benchmarks/results``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import pytest

from benchmarks import common

#: Every benchmark that saves a results JSON, by module name.
SAVING = (
    "align",
    "cypher_recipe",
    "defects",
    "export",
    "features",
    "ingest",
    "light_users",
    "qa",
    "recommend",
    "recommend_ceiling",
    "service",
    "serving",
)


def _main(module: str) -> Callable[[list[str]], int]:
    main: Callable[[list[str]], int] = importlib.import_module(f"benchmarks.{module}").main
    return main


def _usage_error(capsys: pytest.CaptureFixture[str], module: str, argv: list[str]) -> str:
    """Run ``module``'s main with ``argv``; it must exit 2 (a usage error); its message."""
    with pytest.raises(SystemExit) as exit_info:
        _main(module)(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("module", SAVING)
def test_every_benchmark_can_write_its_results_elsewhere(
    module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """defects, light_users, qa, serving and service had no --out: any run, a trial one with
    the smallest options included, overwrote the committed benchmarks/results/<name>.json."""
    with pytest.raises(SystemExit) as exit_info:
        _main(module)(["--help"])
    assert exit_info.value.code == 0
    assert "--out" in capsys.readouterr().out


@pytest.mark.parametrize(
    "bad, said",
    [
        ("a", "a seed must be an integer, got 'a'"),
        ("", "seeds must be comma-separated integers"),
        ("0,,1", "seeds must be comma-separated integers"),
        ("-1", "a seed must be in 0..2147483647, got -1"),
        ("0,1,0", "seed 0 is given twice"),
    ],
)
def test_bad_seeds_are_a_usage_error_not_a_traceback(
    bad: str, said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--seeds a raised a bare ValueError from int(); --seeds 0,0 ran seed 0 twice and
    counted it twice in the mean and deviation."""
    work = tmp_path / "work"
    for module in ("recommend", "cypher_recipe", "defects", "recommend_ceiling"):
        argv = ["--seeds", bad, "--work", str(work), "--out", str(tmp_path / "out.json")]
        assert said in _usage_error(capsys, module, argv), module
    assert not work.exists() and not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("module", ["recommend", "cypher_recipe", "light_users", "qa"])
def test_unknown_or_no_data_sets_are_refused(
    module: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """cypher_recipe took any name (a KeyError after training had started), and
    ``--datasets ""`` ran nothing and saved an empty table."""
    work = str(tmp_path / "work")
    err = _usage_error(capsys, module, ["--datasets", "synthetic,nope", "--work", work])
    assert "unknown data sets: 'nope'; choose from" in err and "synthetic" in err
    err = _usage_error(capsys, module, ["--datasets", "", "--work", work])
    assert "give at least one of" in err
    assert not (tmp_path / "work").exists()


@pytest.mark.parametrize(
    "module, argv, needs",
    [
        ("recommend", ["--datasets", "synthetic,movielens"], "movielens needs"),
        ("recommend", ["--datasets", "gift_cards"], "gift_cards needs"),
        ("cypher_recipe", ["--datasets", "myntra"], "myntra needs"),
        ("light_users", ["--datasets", "movielens"], "movielens needs"),
        ("qa", ["--datasets", "appliances"], "appliances needs"),
        ("defects", ["--seeds", "0"], "the real-text check needs"),
        ("align", ["--myntra", "{missing}"], "the Myntra catalogue needs"),
    ],
)
def test_missing_data_stops_the_run_before_any_work(
    module: str,
    argv: list[str],
    needs: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A missing data file was a MappingError traceback once the data sets before it had been
    prepared (an hour for the bench shop), or, for defects, after every seed had run (the
    real-text check comes last), with nothing saved."""
    missing, work = tmp_path / "no-data", tmp_path / "work"
    argv = [a.format(missing=missing) for a in argv]
    if module != "align":  # align reads --myntra and works in a temporary folder
        argv += ["--data", str(missing), "--work", str(work)]
    err = _usage_error(capsys, module, [*argv, "--out", str(tmp_path / "out.json")])
    assert f"missing data: {needs} {missing}" in err
    assert ("--myntra" if module == "align" else "--data") in err
    assert not work.exists()


def test_a_prepared_data_set_needs_no_data(tmp_path: Path) -> None:
    """A store already prepared under --work is reused; its source files are not needed."""
    from benchmarks.recommend import DATASETS, data_needs

    data, work = tmp_path / "data", tmp_path / "work"
    needs = data_needs(DATASETS, work, data)
    assert needs["synthetic"] == []
    assert needs["movielens"] and all(p.is_relative_to(data) for p in needs["movielens"])
    (work / "movielens").mkdir(parents=True)
    (work / "movielens" / "prepared.json").write_text("{}")
    assert "movielens" not in data_needs(DATASETS, work, data)


def test_the_data_files_checked_are_those_the_data_sets_read(tmp_path: Path) -> None:
    from benchmarks import recommend

    for name in ("movielens", "gift_cards"):
        _, sources = recommend.PREPARE[name](tmp_path / "work", tmp_path / "data")
        assert set(recommend.data_needs([name], tmp_path / "work", tmp_path / "data")[name]) \
            == set(sources.values()), name  # fmt: skip


@pytest.mark.parametrize(
    "module, argv, said",
    [
        ("recommend", ["--epochs", "0"], "--epochs: the value must be in 1.."),
        ("recommend", ["--models", "fusion,gcn"], "unknown models: 'gcn'"),
        ("recommend", ["--settings", "hot"], "unknown settings: 'hot'"),
        ("recommend", ["--settings", "cold", "--datasets", "movielens"], "the cold setting"),
        ("cypher_recipe", ["--users", "-5"], "--users: the value must be in 1.."),
        ("defects", ["--sample", "0"], "--sample: the value must be in 1.."),
        ("light_users", ["--users", "1"], "--users: the value must be in 2.."),
        ("qa", ["--limit", "0"], "--limit: the value must be in 1.."),
        ("serving", ["--new-products", "0"], "--new-products: the value must be in 1.."),
        ("service", ["--seconds", "nan"], "seconds must be finite and above 0"),
        ("service", ["--clients", "0"], "--clients: the value must be in 1.."),
    ],
)
def test_bad_option_values_are_usage_errors(
    module: str,
    argv: list[str],
    said: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--epochs 0 failed in TrainConfig after the data had been prepared; --seconds nan was
    taken (NaN <= 0 is false); --new-products 0 timed nothing and crashed on its empty
    percentiles at the end."""
    err = _usage_error(capsys, module, [*argv, "--work", str(tmp_path / "work")])
    assert said in err
    assert f"python -m benchmarks.{module}" in err  # the usage line names the command
    assert not (tmp_path / "work").exists()


def test_seed_and_name_lists_parse_what_they_should() -> None:
    assert common.seed_list("0,1,2") == [0, 1, 2]
    assert common.seed_list(" 3 , 10_000 ") == [3, 10_000]
    parse = common.name_list(("a", "b", "c"), "letters")
    assert parse("c,a,c") == ["c", "a"]
    assert parse("b,") == ["b"]
    assert common.count(0)("0") == 0
    assert common.seconds("0.5") == 0.5
