"""A real ``graphfusion serve`` for the service tests that need a process of its own."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path


def server_env() -> dict[str, str]:
    """The environment of a server (or CLI) process: offline, one thread, no token."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("GRAPHFUSION_TOKEN", None)
    return env


def serve(folder: Path, *flags: str) -> tuple[subprocess.Popen[str], str, list[str]]:
    """Start ``graphfusion serve`` on a free port: the process, its URL and its output so
    far (the list grows while it runs)."""
    cmd = [sys.executable, "-m", "graphfusion.cli", "serve", "--store", str(folder)]
    proc = subprocess.Popen(
        [*cmd, "--port", "0", *flags],
        env=server_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in iter(proc.stdout.readline, ""):
            lines.put(line)
            seen.append(line)

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            found = re.search(r"Uvicorn running on (http://\S+:\d+)", lines.get(timeout=1))
        except queue.Empty:
            continue
        if found:
            return proc, found.group(1), seen
    proc.kill()
    proc.wait(10)
    raise AssertionError("the server did not start:\n" + "".join(seen))


def stop(proc: subprocess.Popen[str]) -> int:
    """Stop a server as ``docker stop`` does (SIGTERM, then a kill after a minute); its exit
    code."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(10)
