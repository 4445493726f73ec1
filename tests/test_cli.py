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


def test_a_load_that_cannot_run_makes_no_store(runner: CliRunner, tmp_path: Path) -> None:
    """An unknown mapping, a missing or unknown source and a source file that is not there
    are reported before the store is made (an empty store folder was left behind)."""
    folder = tmp_path / "new" / "store"
    cases = [
        (["nope"], "nope"),
        (["synthetic"], "needs source(s) ['shop']"),
        (["synthetic", "--source", "shop=x", "--source", "extra=y"], "has no source(s)"),
        (["synthetic", "--source", f"shop={tmp_path / 'absent'}"], "does not exist"),
    ]
    for args, message in cases:
        res = runner.invoke(main, ["load", *args, "--store", str(folder)])
        assert res.exit_code == 1 and message in res.output, res.output
        assert not (tmp_path / "new").exists()
    # a report that would overwrite a source file (the store was made first)
    shop = tmp_path / "shop"
    assert runner.invoke(main, ["generate", "--size", "tiny", "--out", str(shop)]).exit_code == 0
    before = (shop / "products.csv").read_bytes()
    args = ["synthetic", "--source", f"shop={shop}", "--report", str(shop / "products.csv")]
    res = runner.invoke(main, ["load", *args, "--store", str(folder)])
    assert res.exit_code == 1 and "is the source file" in res.output, res.output
    assert not (tmp_path / "new").exists()
    assert (shop / "products.csv").read_bytes() == before


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
        main, ["cypher", "RETURN 0.0 / 0.0 AS x", "--json", "--store", str(store)]
    )  # a NaN parameter is refused (test_cli_output); the store makes one here
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
    assert f"config file {config}" in res.output and message in res.output
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
    # c's title changed: its old vector, cached, is dropped with --prune-cache
    items.write_text("id,title\na,Red cotton t-shirt\nb,Crimson tee shirt\nc,Copper kettle\n")
    assert runner.invoke(main, ["load", str(mapping), "--source", f"items={items}",
                                "--store", str(store)]).exit_code == 0  # fmt: skip
    res = runner.invoke(main, ["embed", "--only", "text", "--prune-cache", "--store", str(store)])
    assert res.exit_code == 0, res.output
    assert "1 vectors no node uses dropped from the cache" in res.output


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["recommend", "u0001", "--max-price", "nan"], "--max-price"),
        (["recommend", "u0001", "--max-price", "inf"], "--max-price"),
        (["recommend", "u0001", "--diversity", "nan"], "--diversity"),
        (["train", "--cold-items", "nan"], "--cold-items"),
        (["train", "--light-users", "NaN"], "--light-users"),
        (["train", "--type-weights", "PURCHASED=nan"], "--type-weights"),
        (["train", "--type-weights", "VIEWED=1,PURCHASED=inf"], "--type-weights"),
        (["train", "--type-weights", "PURCHASED=0"], "--type-weights"),
        (["serve", "--cypher-timeout", "nan"], "--cypher-timeout"),
        (["train", "--seed", str(2**31)], "--seed"),  # TrainConfig's largest is 2**31 - 1
    ],
)
def test_non_finite_numbers_are_bad_usage(
    runner: CliRunner, tmp_path: Path, args: list[str], flag: str
) -> None:
    """NaN passes click's ranges (every comparison with it is false), and a seed over
    training's largest failed only once the store was open: refused as bad usage, naming
    the flag, before any store is opened."""
    folder = tmp_path / "never" / "store"
    res = runner.invoke(main, [*args, "--store", str(folder)])
    assert res.exit_code == 2, res.output
    assert flag in res.output and "no graphfusion store" not in res.output
    assert not folder.exists()


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["load", "synthetic", "--source", "shop=a", "--source", "shop=b"], "--source"),
        (["load", "synthetic", "--source", "shop=a", "--source", " shop =b"], "--source"),
        (["cypher", "RETURN $x AS x", "--param", "x=1", "--param", "x=2"], "--param"),
        (["train", "--type-weights", "PURCHASED=4,purchased=2"], "--type-weights"),
    ],
)
def test_a_name_given_twice_is_bad_usage(
    runner: CliRunner, tmp_path: Path, args: list[str], flag: str
) -> None:
    """The later value would silently win."""
    res = runner.invoke(main, [*args, "--store", str(tmp_path / "s" / "store")])
    assert res.exit_code == 2, res.output
    assert flag in res.output and "more than once" in res.output


def test_defects_evidence_refuses_flags_it_would_ignore(runner: CliRunner, tmp_path: Path) -> None:
    folder = tmp_path / "never" / "store"
    extra = ["--plot", str(tmp_path / "plots")]
    res = runner.invoke(main, ["defects", "--evidence", "s04", *extra, "--store", str(folder)])
    assert res.exit_code == 2, res.output
    assert extra[0] in res.output and "--evidence" in res.output
    assert not folder.exists() and not (tmp_path / "plots").exists()


def _hold(folder: Path) -> subprocess.Popen[str]:
    """Another process that opens the store ``folder`` (read-write) and holds it."""
    code = (
        "import sys\nfrom graphfusion import Engine\n"
        f"engine = Engine({str(folder)!r})\nprint('open', flush=True)\nsys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "open"
    return proc


def test_read_only_reads_a_store_another_process_holds(
    runner: CliRunner, trained_store: Path, tmp_path: Path
) -> None:
    """The lock error says to open the store read-only: the reading commands can."""
    import shutil

    folder = tmp_path / "held" / "store"
    shutil.copytree(trained_store, folder)
    holder = _hold(folder)
    try:
        res = runner.invoke(main, ["stats", "--store", str(folder)])
        assert res.exit_code == 1 and "in use by process" in res.output
        assert "--read-only" in res.output and len(res.output.strip().splitlines()) == 1
        res = runner.invoke(main, ["stats", "--read-only", "--json", "--store", str(folder)])
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["nodes"]["Product"] == 40
        for args in (
            ["recommend", "u0001", "--k", "3"],
            ["similar", "p0001", "--k", "3"],
            ["explain", "u0001", "p0002"],
            ["ask", "Is the mug dishwasher safe?", "--k", "1"],
            ["defects", "--top", "2"],
            ["cypher", "MATCH (p:Product) RETURN count(p) AS n"],
        ):
            res = runner.invoke(main, [*args, "--read-only", "--json", "--store", str(folder)])
            assert res.exit_code == 0, (args, res.output)
            assert json.loads(res.stdout), args
        res = runner.invoke(
            main,
            ["cypher", "MATCH (p:Product {id: 'p0001'}) SET p.title = 'x'", "--read-only",
             "--store", str(folder)],
        )  # fmt: skip
        assert res.exit_code == 1 and "read-only" in res.output
    finally:
        holder.communicate("", timeout=60)
    with_flag = runner.invoke(main, ["recommend", "u0001", "--k", "2", "--read-only", "--json",
                                     "--store", str(folder)])  # fmt: skip
    plain = runner.invoke(
        main, ["recommend", "u0001", "--k", "2", "--json", "--store", str(folder)]
    )
    assert with_flag.exit_code == plain.exit_code == 0
    assert json.loads(with_flag.stdout) == json.loads(plain.stdout)
    missing = runner.invoke(
        main, ["stats", "--read-only", "--store", str(tmp_path / "no" / "store")]
    )
    assert missing.exit_code == 1 and "no graphfusion store" in missing.output


def test_serve_on_a_taken_port_exits_1(
    runner: CliRunner, trained_store: Path, tmp_path: Path
) -> None:
    """uvicorn exits 3 when it cannot start; the command line's failures exit 1."""
    import shutil
    import socket

    folder = tmp_path / "served" / "store"
    shutil.copytree(trained_store, folder)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = runner.invoke(
            main, ["serve", "--store", str(folder), "--port", str(port), "--log-level", "error"]
        )
    assert res.exit_code == 1, res.output


def test_a_bad_setting_from_the_environment_is_not_called_a_config_error(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every settings error said "Invalid value for --config", also one of the environment
    with no --config given; the message names its own source."""
    monkeypatch.setenv("GRAPHFUSION_STORE", "  ")
    res = runner.invoke(main, ["stats", "--store", str(tmp_path / "s")])
    assert res.exit_code == 2 and "GRAPHFUSION_STORE is blank" in res.output, res.output
    assert "--config" not in res.output.splitlines()[-1]
    monkeypatch.delenv("GRAPHFUSION_STORE")
    (tmp_path / "bad.toml").write_text("store = 3\n")
    res = runner.invoke(main, ["--config", str(tmp_path / "bad.toml"), "stats"])
    assert res.exit_code == 2 and "config file" in res.output and "bad.toml" in res.output


def test_explain_says_when_no_evidence_links_the_two(
    runner: CliRunner, trained_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no reasons (a product no one else has interacted with), `explain` printed nothing."""
    from graphfusion.engine import Engine

    monkeypatch.setattr(Engine, "explain", lambda self, user, product: [])
    args = ["explain", "u0001", "p0002", "--store", str(trained_store), "--read-only"]
    res = runner.invoke(main, args)
    assert res.exit_code == 0 and "no graph evidence links u0001 to p0002" in res.output
    res = runner.invoke(main, [*args, "--json"])
    assert res.exit_code == 0 and json.loads(res.output) == []


def test_a_load_that_fails_on_a_column_leaves_no_store_it_made(
    runner: CliRunner, tmp_path: Path
) -> None:
    """A column the mapping names but the file lacks is found once the table is read, after
    the store was made: the load failed and left an empty store folder behind, where the
    README promises none; a store that was there before stays."""
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "name: m\nsources: {items: {}}\ntables: {items: {source: items, format: csv}}\n"
        "nodes: [{label: Product, table: items, key: id, properties: {title: nme}}]\n"
    )
    items = tmp_path / "items.csv"
    items.write_text("id,title\na,Red cotton t-shirt\n")
    folder = tmp_path / "new" / "store"
    args = ["load", str(mapping), "--source", f"items={items}", "--store", str(folder)]
    res = runner.invoke(main, args)
    assert res.exit_code == 1 and "nme" in res.output, res.output
    assert not folder.exists()
    good = tmp_path / "good.yaml"
    good.write_text(mapping.read_text().replace("title: nme", "title: title"))
    ok = ["load", str(good), "--source", f"items={items}", "--store", str(folder)]
    assert runner.invoke(main, ok).exit_code == 0
    assert runner.invoke(main, args).exit_code == 1
    res = runner.invoke(main, ["stats", "--json", "--store", str(folder)])
    assert res.exit_code == 0 and json.loads(res.stdout)["nodes"]["Product"] == 1
