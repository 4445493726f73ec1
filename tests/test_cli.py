"""The graphfusion command line: the contract later work relies on, and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from graphfusion.cli import main


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_generate_load_stats_cypher(runner: CliRunner, tmp_path: Path) -> None:
    shop, store = tmp_path / "shop", tmp_path / "store"
    res = runner.invoke(main, ["generate", "--size", "tiny", "--out", str(shop), "--seed", "3"])
    assert res.exit_code == 0, res.output
    assert (shop / "products.csv").exists()
    res = runner.invoke(
        main, ["load", "synthetic", "--source", f"shop={shop}", "--store", str(store), "--json"]
    )
    assert res.exit_code == 0, res.output
    loaded = json.loads(res.stdout)
    assert loaded["rejected"] == 0
    assert loaded["nodes"]["Product"] == 40
    res = runner.invoke(main, ["stats", "--store", str(store), "--json"])
    assert res.exit_code == 0, res.output
    counts = json.loads(res.stdout)
    assert set(counts) == {"nodes", "relationships"}
    assert counts["nodes"]["Product"] == 40
    assert counts["relationships"]["VIEWED"] > 0
    res = runner.invoke(
        main,
        ["cypher", "MATCH (p:Product) WHERE p.price < $max RETURN p.id AS id ORDER BY id LIMIT 3",
         "--param", "max=1000", "--store", str(store), "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert rows == [{"id": "p0001"}, {"id": "p0002"}, {"id": "p0003"}]
    res = runner.invoke(main, ["stats", "--store", str(store)])
    assert "Product" in res.output


def test_load_with_rejected_rows_exits_zero(runner: CliRunner, tmp_path: Path) -> None:
    src = tmp_path / "qa.jsonl"
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "name: m\nsources: {qa: {}}\ntables: {qa: {source: qa, format: jsonl}}\n"
        "nodes: [{label: Question, table: qa, key: qid, properties: {text: q}}]\n"
    )
    src.write_text('{"qid": "q1", "q": "ok?"}\nnot json\n')
    report = tmp_path / "bad.jsonl"
    res = runner.invoke(
        main, ["load", str(mapping), "--source", f"qa={src}", "--store", str(tmp_path / "s"),
               "--report", str(report)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "1 rows rejected" in res.output
    assert json.loads(report.read_text().splitlines()[0])["line"] == 2


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["load"], 2, "Missing argument"),
        (["generate", "--size", "huge", "--out", "x"], 2, "Invalid value"),
        (["generate", "--defect-signal", "loud", "--out", "x"], 2, "Invalid value"),
        (
            ["generate", "--catalog", "myntra", "--defect-signal", "realistic", "--out", "x"],
            2,
            "--defect-signal is for the synthetic shop",
        ),
        (["load", "synthetic", "--source", "noequals"], 2, "expected NAME=PATH"),
        (["load", "synthetic", "--source", "shop=/does/not/exist"], 1, "does not exist"),
        (["load", "nope"], 1, "no mapping 'nope'"),
        (["cypher", "MATCH (n:Nope) RETURN n"], 1, "error:"),
        (["nonsense"], 2, "No such command"),
    ],
)
def test_exit_codes(
    runner: CliRunner, tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    store_args = ["--store", str(tmp_path / "s")] if args[0] in ("load", "cypher") else []
    res = runner.invoke(main, [*args, *store_args] if len(args) > 1 else args)
    assert res.exit_code == code, res.output
    assert message in res.output
    if code == 1:
        assert "Traceback" not in res.output
        assert len(res.output.strip().splitlines()) == 1


def test_generate_with_a_realistic_defect_signal(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "shop"
    args = ["generate", "--out", str(out), "--defect-signal", "realistic", "--json"]
    res = runner.invoke(main, args)
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["defect_signal"] == "realistic"
    assert json.loads((out / "manifest.json").read_text())["defect_signal"] == "realistic"


def test_debug_shows_the_traceback(runner: CliRunner, tmp_path: Path) -> None:
    res = runner.invoke(main, ["--debug", "load", "nope", "--store", str(tmp_path / "s")])
    assert res.exit_code != 0
    assert res.exception is not None


def _store_named(res: object) -> str:
    """The folder a command that only reads found no store in (it makes none)."""
    output = getattr(res, "output", "")
    assert getattr(res, "exit_code", None) == 1, output
    assert "no graphfusion store at" in output and "Traceback" not in output
    return str(output)


def test_store_from_environment(runner: CliRunner, tmp_path: Path) -> None:
    env_store = tmp_path / "from-env"
    res = runner.invoke(main, ["stats", "--json"], env={"GRAPHFUSION_STORE": str(env_store)})
    assert str(env_store) in _store_named(res)
    assert not env_store.exists()  # a command that only reads makes no store


def test_settings_from_flags_then_environment_then_config_file(
    runner: CliRunner, tmp_path: Path
) -> None:
    config = tmp_path / "gf.toml"
    config.write_text(f'[graphfusion]\nstore = "{tmp_path / "from-file"}"\n')
    res = runner.invoke(main, ["--config", str(config), "stats", "--json"])
    assert str(tmp_path / "from-file") in _store_named(res)
    env = {"GRAPHFUSION_STORE": str(tmp_path / "from-env"), "GRAPHFUSION_CONFIG": str(config)}
    assert str(tmp_path / "from-env") in _store_named(runner.invoke(main, ["stats"], env=env))
    flag = ["stats", "--store", str(tmp_path / "from-flag")]
    assert str(tmp_path / "from-flag") in _store_named(runner.invoke(main, flag, env=env))


def test_json_output_is_strict_and_a_closed_pipe_is_no_error(
    runner: CliRunner, tmp_path: Path
) -> None:
    store = tmp_path / "s" / "store"
    shop = tmp_path / "shop"
    assert runner.invoke(main, ["generate", "--size", "tiny", "--out", str(shop)]).exit_code == 0
    load = ["load", "synthetic", "--source", f"shop={shop}", "--store", str(store)]
    assert runner.invoke(main, load).exit_code == 0
    res = runner.invoke(
        main, ["cypher", "RETURN $x AS x", "--param", "x=NaN", "--json", "--store", str(store)]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == [{"x": None}]  # strict JSON: NaN is null
    # a reader that leaves early (`| head -1`): exit 0, nothing on stderr
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "graphfusion.cli", "cypher",
               "UNWIND range(1, 200000) AS n RETURN n", "--store", str(store)]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stdout.readline()
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert b"BrokenPipe" not in err and b"error" not in err


@pytest.mark.parametrize(
    ("text", "message"), [("store = [", "not valid TOML"), ('stor = "x"', "unknown setting")]
)
def test_a_bad_config_file_is_bad_usage(
    runner: CliRunner, tmp_path: Path, text: str, message: str
) -> None:
    config = tmp_path / "gf.toml"
    config.write_text(text)
    res = runner.invoke(main, ["--config", str(config), "stats"])
    assert res.exit_code == 2
    assert "--config" in res.output and message in res.output
    # a command that opens no store does not read it
    out = tmp_path / "shop"
    res = runner.invoke(
        main, ["--config", str(config), "generate", "--size", "tiny", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    env = {**os.environ, "GRAPHFUSION_STORE": str(tmp_path / "store")}
    proc = subprocess.run(
        [sys.executable, "-m", "graphfusion.cli", "demo"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Suppliers by share of 1-2 star reviews" in proc.stdout
    assert "0 rows rejected" in proc.stdout
    assert "fusion: best epoch" in proc.stdout and "by fused vectors" in proc.stdout
    assert "top 5 products for user u0001, with their reasons" in proc.stdout
    assert "  5. p" in proc.stdout and "       - " in proc.stdout
    assert (tmp_path / "store" / "models" / "fusion-curve.png").exists()


def test_embed_and_similar_commands(runner: CliRunner, tmp_path: Path) -> None:
    store = tmp_path / "s"
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "name: m\nsources: {items: {}}\ntables: {items: {source: items, format: csv}}\n"
        "nodes: [{label: Product, table: items, key: id, properties: {title: title}}]\n"
    )
    items = tmp_path / "items.csv"
    items.write_text("id,title\na,Red cotton t-shirt\nb,Crimson tee shirt\nc,Steel kettle\nd,\n")
    assert runner.invoke(main, ["load", str(mapping), "--source", f"items={items}",
                                "--store", str(store)]).exit_code == 0  # fmt: skip
    res = runner.invoke(main, ["embed", "--only", "text", "--store", str(store), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["encoded"]["Product.text_vec"] == 3
    assert out["errors"] == 1  # product d has no text
    res = runner.invoke(main, ["similar", "a", "--k", "2", "--store", str(store), "--json"])
    assert res.exit_code == 0, res.output
    assert [r["id"] for r in json.loads(res.stdout)] == ["b", "c"]
    res = runner.invoke(main, ["similar", "zzz", "--store", str(store)])
    assert res.exit_code == 1
    assert "no product 'zzz'" in res.output
    res = runner.invoke(main, ["similar", "a", "--modality", "smell", "--store", str(store)])
    assert res.exit_code == 2
