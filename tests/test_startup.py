"""Start-up: what needs no model starts without torch, and ``graphfusion.Engine`` still works.

torch and PyTorch Geometric take 5-12 s to import; the store, the loaders and the commands
that only move data (``generate``, ``load``, ``stats``, ``cypher``, every ``--help``) must not
pay for them. Each check runs in a fresh interpreter: this one has torch already.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import graphfusion
from graphfusion.cli import main
from graphfusion.train import TrainConfig

#: Modules whose import is seconds long and that the data commands never need.
HEAVY = ("torch", "torch_geometric", "torchvision", "sentence_transformers")


def _python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (args as its ``sys.argv[1:]``); fail with its
    output when it fails."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


_NO_HEAVY = f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\nassert not heavy, heavy\n"


@pytest.mark.parametrize(
    "module",
    ["graphfusion", "graphfusion.cli", "graphfusion.ingest", "graphfusion.store",
     "graphfusion.settings", "graphfusion.synthetic"],
)  # fmt: skip
def test_import_does_not_load_torch(module: str) -> None:
    _python(f"import sys\nimport {module}\n{_NO_HEAVY}")


def test_data_commands_do_not_load_torch(tmp_path: Path) -> None:
    shop, store = tmp_path / "my shop", tmp_path / "my store"
    code = (
        "import sys\nfrom graphfusion.cli import main\n"
        "shop, store = sys.argv[1:]\n"
        "for args in (['--help'], ['train', '--help'], ['recommend', '--help'],\n"
        "             ['generate', '--size', 'tiny', '--out', shop, '--json'],\n"
        "             ['load', 'synthetic', '--source', 'shop=' + shop, '--store', store,\n"
        "              '--json'],\n"
        "             ['stats', '--store', store],\n"
        "             ['cypher', 'MATCH (p:Product) RETURN count(p) AS n', '--store', store]):\n"
        "    try:\n"
        "        main(args, standalone_mode=False)\n"
        "    except SystemExit as exc:\n"
        "        assert not exc.code, (args, exc.code)\n"
        f"{_NO_HEAVY}"
    )
    done = _python(code, str(shop), str(store))
    assert "40" in done.stdout.splitlines()[-1]  # cypher's count of the tiny shop's products


def test_engine_is_still_public() -> None:
    from graphfusion import Engine
    from graphfusion.engine import Engine as Defined

    assert Engine is Defined
    assert graphfusion.Engine is Defined
    assert "Engine" in graphfusion.__all__
    assert "Engine" in dir(graphfusion)
    assert set(graphfusion.__all__) <= set(dir(graphfusion))
    with pytest.raises(AttributeError, match="no attribute 'Engin'"):
        graphfusion.Engin  # noqa: B018
    with pytest.raises(ImportError):
        from graphfusion import Engin  # type: ignore[attr-defined]  # noqa: F401


def test_engine_import_is_quiet_even_when_late() -> None:
    """The warnings filter of ``graphfusion`` still covers PyG's import when ``Engine`` comes
    later: with FutureWarning an error, importing it must not fail."""
    code = (
        "import sys, graphfusion\n"
        "assert 'torch_geometric' not in sys.modules\n"
        "from graphfusion import Engine\n"
        "assert 'torch_geometric' in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error::FutureWarning", "-c", code],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("late", ["from graphfusion import Engine", "import graphfusion.train"])
def test_engine_import_is_quiet_after_a_warnings_block(late: str) -> None:
    """``graphfusion`` imported inside ``warnings.catch_warnings()`` (pytest collects in
    one), whose exit drops the filters added inside it, and PyG imported after the block."""
    code = f"import warnings\nwith warnings.catch_warnings():\n    import graphfusion\n{late}\n"
    done = subprocess.run(
        [sys.executable, "-W", "error::FutureWarning", "-c", code],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_every_command_has_help() -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["--help"])
    assert res.exit_code == 0, res.output
    for name in main.commands:
        res = runner.invoke(main, [name, "--help"])
        assert res.exit_code == 0, (name, res.output)
        assert f"Usage: main {name}" in res.output, res.output


def test_train_defaults_are_the_library_defaults() -> None:
    """``train --epochs``, ``--taste-epochs`` and ``--max-scores`` default to
    ``TrainConfig``'s values (and ``Engine.train``'s), and ``--help`` shows them."""
    import inspect

    from graphfusion import Engine

    config = TrainConfig()
    params = {p.name: p for p in main.commands["train"].params}
    assert params["epochs"].default == config.epochs
    assert inspect.signature(Engine.train).parameters["epochs"].default == config.epochs
    assert params["taste_epochs"].default == config.taste_epochs
    assert params["max_scores"].default == config.max_scores
    res = CliRunner().invoke(main, ["train", "--help"], terminal_width=200)
    assert f"[default: {config.taste_epochs}; " in res.output, res.output
    assert f"[default: {config.max_scores}; " in res.output, res.output
