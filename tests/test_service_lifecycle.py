"""The REST service's life: a real ``graphfusion serve`` stopped by SIGTERM (what
``docker stop``, systemd and Kubernetes send) while a request is in flight."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import httpx

from graphfusion import Engine

try:
    from served import serve as _serve
except ImportError:  # pragma: no cover - when tests/ is a package
    from tests.served import serve as _serve

# interruptible and far longer than the time limit the server is started with
SLOW = (
    "UNWIND range(1, 100000) AS x UNWIND range(1, 100000) AS y "
    "WITH x * y AS z WHERE z % 7 = 3 RETURN count(*) AS n"
)


def test_sigterm_during_a_request_exits_cleanly_and_closes_the_store(
    trained_store: Path, tmp_path: Path
) -> None:
    """uvicorn answers SIGTERM with a graceful shutdown, then raises the signal again: the
    process died of it (exit status -15, 143 in a shell) before the engine was closed, with
    the store's write-ahead log left behind. Now SIGTERM stops the server like Ctrl-C."""
    folder = tmp_path / "served"
    shutil.copytree(trained_store, folder)
    proc, url, seen = _serve(folder, "--allow-cypher", "--cypher-timeout", "3")
    answers: list[int] = []
    try:
        with httpx.Client(base_url=url, timeout=60) as http:
            event = {"user_id": "u0001", "product_id": "p0030", "type": "FAVORITED"}
            written = http.post("/events", json={"interactions": [event]})
            assert written.status_code == 200, written.text

            def slow() -> None:
                answers.append(http.post("/cypher", json={"query": SLOW}).status_code)

            request = threading.Thread(target=slow)
            request.start()
            time.sleep(1.0)  # the query runs
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(60)
            request.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert code == 0, "".join(seen)
    assert answers == [400], answers  # the request in flight got its answer (its time limit)
    # the engine was closed: the store checkpointed its write-ahead log into the database
    assert not (folder / "graph.lbug.wal").exists(), sorted(os.listdir(folder))
    with Engine(folder) as engine:  # and it opens for writing, with the event kept
        kept = engine.cypher(
            "MATCH (:User {id: 'u0001'})-[r:FAVORITED]->(:Product {id: 'p0030'}) "
            "RETURN count(r) AS n"
        )
    assert int(kept["n"].iloc[0]) == 1
