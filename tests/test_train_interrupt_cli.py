"""``graphfusion train`` and a real Ctrl-C (SIGINT sent to the process) once the progress bar
shows the first validated epoch: it finishes with the best epoch so far (exit code 0), or, at
a second Ctrl-C, aborts (exit code 1) with the served model as it was.

The tiny shop trains an epoch in milliseconds and stops early after a few: the command runs
with each training step slowed down (a sleep in ``MF.loss``), so that the signal lands in the
epochs. Everything else is the real command in its own process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from graphfusion import Engine
from graphfusion.features.embed import read_vectors
from graphfusion.ingest import load

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

#: The command, with each MF training step slowed down to half a second.
SLOW_TRAIN = """
import sys, time
from graphfusion.models import MF
loss = MF.loss
def slow(self, *args, **kwargs):
    time.sleep(0.5)
    return loss(self, *args, **kwargs)
MF.loss = slow
from graphfusion.cli import main
sys.argv[0] = "graphfusion"
main()
"""
#: What the progress bar shows once an epoch is validated.
VALIDATED = "recall@20="


class Command:
    """``graphfusion train`` on a store in its own process, its stderr read as it comes."""

    def __init__(self, store: Path) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SLOW_TRAIN, "train", "--model", "mf", "--epochs", "100",
             "--store", str(store)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
        )  # fmt: skip
        self.err: list[str] = []
        self.reader = threading.Thread(target=self._read_stderr)
        self.reader.start()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        while char := self.proc.stderr.read(1):
            self.err.append(char)

    def wait_for(self, text: str, timeout: float = 40.0) -> None:
        """Wait until stderr shows ``text``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in "".join(self.err):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.01)
        self.proc.kill()
        pytest.fail(f"no {text!r} on stderr: {''.join(self.err)[-2000:]}")

    def ctrl_c(self) -> None:
        self.proc.send_signal(signal.SIGINT)

    def finish(self) -> tuple[int, str, str]:
        """Exit code, stdout and stderr, once the command ends (killed after 60 s)."""
        watchdog = threading.Timer(60, self.proc.kill)
        watchdog.start()
        try:
            assert self.proc.stdout is not None
            out = self.proc.stdout.read()  # stderr is the reader's alone
            code = self.proc.wait()
        finally:
            watchdog.cancel()
        self.reader.join(timeout=5)
        return code, out, "".join(self.err)


@pytest.fixture
def store(tiny_shop: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "store with spaces"
    with Engine(folder) as engine:
        load(engine.store, "synthetic", {"shop": tiny_shop})
        engine.train("mf", epochs=1, batch_size=4096)  # a served model to keep or replace
    return folder


def test_ctrl_c_after_the_first_epoch_keeps_it_and_serves_it(store: Path) -> None:
    command = Command(store)
    command.wait_for(VALIDATED)
    command.ctrl_c()
    code, out, err = command.finish()
    assert code == 0, err
    history = json.loads((store / "models" / "mf-history.json").read_text())
    at, kept = history["interrupted"]["epoch"], history["best_epoch"]
    assert at >= 2 and len(history["history"]) in (at - 1, at)
    said = f"interrupted: training interrupted by Ctrl-C at epoch {at}, epoch {kept} kept"
    assert said in out and "written back" in out
    assert f"training interrupted by Ctrl-C at epoch {at}: epoch {kept} kept" in err
    assert f"(training interrupted by Ctrl-C at epoch {at}, epoch {kept} kept)" in out
    valid = [h["valid_recall@20"] for h in history["history"]]
    assert kept == 1 + int(np.argmax(valid))
    # the store holds the kept epoch's vectors, and serves them
    state = torch.load(store / "models" / "mf.pt", weights_only=True)
    with Engine(store, read_only=True) as engine:
        users = read_vectors(engine.store, "User", "fused_vec", state["users"])
        np.testing.assert_allclose(users, state["state_dict"]["user.weight"].numpy(), atol=1e-6)
        assert len(engine.recommend(state["users"][0], k=3)) == 3
    assert not list((store / "models").glob("*.part*"))


def test_a_second_ctrl_c_aborts_and_leaves_the_served_model(store: Path) -> None:
    models = store / "models"
    before = {p.name: p.read_bytes() for p in models.iterdir()}
    command = Command(store)
    command.wait_for(VALIDATED)
    command.ctrl_c()
    time.sleep(0.1)
    command.ctrl_c()  # Ctrl-C twice: while the step that the first one let finish still sleeps
    code, out, err = command.finish()
    assert code == 1 and "Aborted!" in err
    assert "interrupted" not in out
    assert {p.name: p.read_bytes() for p in models.iterdir()} == before
