"""The REST service, second probe: what a real ``graphfusion serve`` writes to its access log
(never the token, never a URL of any length), and how it fails to start (one clear line)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from graphfusion import Engine
from graphfusion.errors import ValidationError
from graphfusion.service import create_app, serve

try:
    from served import serve as _serve
    from served import server_env as _env
    from served import stop as _stop
except ImportError:  # pragma: no cover - when tests/ is a package
    from tests.served import serve as _serve
    from tests.served import server_env as _env
    from tests.served import stop as _stop

TOKEN = "round2-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def empty_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """An engine on an empty store: enough for the checks made before any store work."""
    with Engine(tmp_path_factory.mktemp("round2-empty") / "store") as engine:
        yield engine


# ------------------------------------------------------------------------- the access log
def test_the_access_log_never_shows_the_token_nor_a_whole_huge_url(
    trained_store: Path, tmp_path: Path
) -> None:
    """A client that puts the token in the URL (``?token=``, ``?access_token=``, a path) is
    refused, but uvicorn's access log printed the URL as sent, token and all, into whatever
    keeps the server's logs; and a 60,000-character query string went into the log whole,
    once per request."""
    folder = tmp_path / "served"
    shutil.copytree(trained_store, folder)
    proc, url, seen = _serve(folder, "--token", TOKEN)
    huge = "x" * 60_000
    try:
        with httpx.Client(base_url=url, timeout=60) as http:
            answers = [
                http.get(f"/recommend/u0001?k=1&token={TOKEN}"),
                http.get(f"/similar/p0001?access_token={TOKEN}"),
                http.get("/defects", params={"api_key": TOKEN, "top": "1"}),
                http.get(f"/recommend/{TOKEN}?k=1", headers=AUTH),  # the token as a user id
                http.get(f"/defects?top=1&x={huge}", headers=AUTH),
                http.get("/recommend/u0001?k=1", headers=AUTH),
            ]
            assert [r.status_code for r in answers] == [401, 401, 401, 404, 422, 200]
            http.get("/healthz")  # the access log of the last request is written by now
    finally:
        code = _stop(proc)
    log = "".join(seen)
    assert code == 0, log
    assert "GET /recommend/u0001?k=1 HTTP/1.1" in log  # the access log is on
    assert TOKEN not in log
    assert "token=***" in log and "access_token=***" in log and "api_key=***" in log
    assert "/recommend/***?k=1" in log
    assert huge not in log
    assert max(len(line) for line in seen) < 2_000
    assert "(60017 characters)" in log  # says how long the target was


def test_a_token_sent_in_the_url_is_refused_with_where_it_goes(empty_engine: Engine) -> None:
    client = TestClient(create_app(empty_engine, token=TOKEN))
    response = client.get(f"/defects?top=1&token={TOKEN}")
    assert response.status_code == 401
    detail = response.json()["detail"]
    assert detail.startswith("missing or wrong bearer token")
    assert "Authorization: Bearer" in detail and "not in the URL" in detail
    plain = client.get("/defects?top=1")  # no token anywhere: the message as before
    assert plain.json() == {"detail": "missing or wrong bearer token"}


# ------------------------------------------------------------------------- starting up
def test_a_port_in_use_is_one_clear_line(trained_store: Path, tmp_path: Path) -> None:
    """uvicorn logged five lines, "Application startup complete." among them, before
    "[Errno 98] error while attempting to bind on address ...: address already in use"."""
    folder = tmp_path / "served"
    shutil.copytree(trained_store, folder)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cmd = [sys.executable, "-m", "graphfusion.cli", "serve", "--store", str(folder)]
        done = subprocess.run(
            [*cmd, "--port", str(port)],
            env=_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
    out = (done.stdout + done.stderr).strip()
    assert done.returncode == 1, out
    assert len(out.splitlines()) == 1, out
    assert out.startswith("error: cannot listen on 127.0.0.1:") and f":{port}" in out
    assert "in use" in out.lower()


def test_a_host_that_names_nothing_here_is_refused_before_serving(empty_engine: Engine) -> None:
    """uvicorn said only "[Errno -2] Name or service not known", naming no host, after
    announcing that the application had started."""
    with pytest.raises(ValidationError, match=r"cannot listen on nosuchhost\.invalid:8123"):
        serve(empty_engine, host="nosuchhost.invalid", port=8123, token=TOKEN)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ValidationError, match=rf"127\.0\.0\.1:{port}.*in use"):
            serve(empty_engine, port=port)
