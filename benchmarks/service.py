"""REST service under load: requests/s and latency per endpoint of ``graphfusion serve``.

A synthetic shop (``small`` by default: 1k users, 500 products, 20k interactions; ``bench``:
10k users, 5k products, 200k interactions) is generated, loaded, embedded and a fusion model
trained, once, in ``benchmarks/.work/service/<size>``. Then:

1. ``graphfusion serve`` starts in a subprocess on 127.0.0.1 (a free port, a bearer token,
   uvicorn's log at ``warning``: no access log), with ``OMP_NUM_THREADS=1``;
2. a warm-up call of each endpoint builds the lazy parts (recommender, QA index) and is timed
   apart; then one client alone sends :data:`ALONE` requests to each endpoint in turn: their
   median latency and the server's CPU time per request (its process's user + system time);
3. this process drives a bounded load: ``--clients`` concurrent clients (asyncio tasks, each
   with its own keep-alive connection; ``--client httpx`` shares one ``httpx.AsyncClient``)
   for ``--seconds``, each sending its next request as soon as the last one is answered,
   drawn from a mix of ``GET /recommend/{user}?k=10`` (random users, with reasons),
   ``GET /similar/{product}?k=10`` (random products and modalities), ``POST /ask`` (stored
   customer questions, k=5) and ``GET /healthz``;
4. a table of requests, requests/s, p50 and p99 latency and errors per endpoint; every error
   (a status other than 200, or a failed connection) is counted, and the run fails when there
   is one.

The load driver shares the machine with the server: on a small machine it takes CPU from it.

Run::

    python -m benchmarks.service [--size small|bench] [--clients 100] [--seconds 20]
        [--client raw|httpx]
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

from benchmarks.common import (
    MAX_SEED,
    add_folder_arguments,
    add_out_argument,
    benchmark_parser,
    command_line,
    count,
    prepared_store,
    print_table,
    save_results,
    seconds,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")

NAME = "service"
MODULE = "benchmarks.service"
#: Share of the requests per endpoint.
MIX = {"recommend": 0.5, "similar": 0.2, "ask": 0.15, "healthz": 0.15}
MODALITIES = ("text", "image", "fused")
#: Requests per endpoint from one client alone, before the load.
ALONE = 40


def prepare(size: str, work: Path, epochs: int) -> Path:
    """Generate, load, embed and train the ``size`` shop once; the store's folder."""
    from graphfusion import Engine
    from graphfusion.synthetic import generate_shop

    folder = work / size

    def build(store: Path) -> dict[str, Any]:
        started = time.perf_counter()
        generate_shop(folder / "shop", size, seed=0, progress=True)
        with Engine(store) as engine:
            report = engine.load("synthetic", {"shop": folder / "shop"}, progress=True)
            loaded = time.perf_counter()
            engine.embed(progress=True)
            embedded = time.perf_counter()
            trained = engine.train("fusion", epochs=epochs, batch_size=2048, lr=0.01, patience=5,
                                   progress=True)  # fmt: skip
            counts = engine.stats().to_dict()
        return {
            "load_s": round(loaded - started, 1),
            "embed_s": round(embedded - loaded, 1),
            "train_s": round(time.perf_counter() - embedded, 1),
            "rejected": len(report.rejected),
            "train": trained.summary(),
            "counts": counts,
        }

    return prepared_store(folder, build)


def _sample_keys(store: Path, seed: int) -> dict[str, list[str]]:
    """Users with interactions, products and stored questions to draw requests from."""
    from graphfusion import Engine

    rng = random.Random(seed)
    with Engine(store, read_only=True) as engine:
        users = list(engine.cypher(
            "MATCH (u:User)-[:VIEWED|PURCHASED|FAVORITED]->(:Product) RETURN DISTINCT u.id AS id"
        )["id"])  # fmt: skip
        products = list(engine.cypher("MATCH (p:Product) RETURN p.id AS id")["id"])
        questions = list(engine.cypher("MATCH (q:Question) RETURN q.text AS t")["t"])
    return {
        "users": rng.sample(users, min(500, len(users))),
        "products": rng.sample(products, min(500, len(products))),
        "questions": rng.sample(questions, min(200, len(questions))),
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(store: Path, port: int, token: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "GRAPHFUSION_TOKEN": token, "OMP_NUM_THREADS": "1",
           "HF_HUB_OFFLINE": "1"}  # fmt: skip
    cmd = [sys.executable, "-m", "graphfusion.cli", "serve", "--store", str(store),
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]  # fmt: skip
    return subprocess.Popen(cmd, env=env)


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 180.0) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"the server did not answer within {timeout:.0f} s")


def _request(
    rng: random.Random, keys: dict[str, list[str]], kind: str | None = None
) -> tuple[str, str, str, Any]:
    """(endpoint, method, path, json body) of one request to ``kind``, or to an endpoint drawn
    from the mix."""
    kind = kind or rng.choices(list(MIX), weights=list(MIX.values()))[0]
    if kind == "recommend":
        return kind, "GET", f"/recommend/{rng.choice(keys['users'])}?k=10", None
    if kind == "similar":
        product, modality = rng.choice(keys["products"]), rng.choice(MODALITIES)
        return kind, "GET", f"/similar/{product}?k=10&modality={modality}", None
    if kind == "ask":
        return kind, "POST", "/ask", {"question": rng.choice(keys["questions"]), "k": 5}
    return kind, "GET", "/healthz", None


class _Connection:
    """One HTTP/1.1 keep-alive connection, just enough for the load (JSON in and out).

    The default load driver: at 100 concurrent connections ``httpx.AsyncClient`` spent more CPU
    per request (about 14 ms here) than the server did, so on a small machine it measured
    itself; this costs a fraction of a millisecond. ``--client httpx`` uses httpx instead.
    """

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port = host, port
        self.head = f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def request(self, method: str, path: str, body: Any) -> tuple[int, bytes]:
        """Send one request; the status and the body of the answer."""
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.reader, self.writer
        data = json.dumps(body).encode() if body is not None else b""
        extra = (
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            if body is not None
            else ""
        )
        writer.write(f"{method} {path} HTTP/1.1\r\n{self.head}{extra}\r\n".encode() + data)
        await writer.drain()
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split()[1])
        length, chunked, close = None, False, False
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value
            elif name == "connection":
                close = value == "close"
        if chunked:
            parts = []
            while size := int((await reader.readline()).split(b";")[0], 16):
                parts.append(await reader.readexactly(size))
                await reader.readline()
            await reader.readline()
            payload = b"".join(parts)
        elif length is not None:
            payload = await reader.readexactly(length)
        else:
            payload, close = await reader.read(), True
        if close:
            await self.close()
        return status, payload


async def _drive(
    url: str,
    token: str,
    keys: dict[str, list[str]],
    clients: int,
    seconds: float,
    seed: int,
    driver: str = "raw",
) -> tuple[dict[str, list[float]], dict[str, int], list[str], float]:
    """``clients`` closed-loop clients for ``seconds``: latencies (ms) and errors by endpoint."""
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    samples: list[str] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {token}"}
    parsed = httpx.URL(url)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits,
                                 timeout=60) as http:  # fmt: skip
        start = time.perf_counter()
        stop = start + seconds

        async def client(i: int) -> None:
            rng = random.Random(seed * 10_007 + i)
            conn = _Connection(parsed.host, parsed.port or 80, token)
            while time.perf_counter() < stop:
                kind, method, path, body = _request(rng, keys)
                t0 = time.perf_counter()
                try:
                    if driver == "httpx":
                        response = await http.request(method, path, json=body)
                        status, text = response.status_code, response.text
                    else:
                        status, raw = await asyncio.wait_for(
                            conn.request(method, path, body), timeout=60
                        )
                        text = raw.decode("utf-8", errors="replace")
                    ok, what = status == 200, f"{status} {text[:200]}"
                except (TimeoutError, httpx.HTTPError, OSError, ValueError) as exc:
                    ok, what = False, f"{type(exc).__name__}: {exc}"
                    await conn.close()
                latencies[kind].append((time.perf_counter() - t0) * 1000)
                if not ok:
                    errors[kind] += 1
                    if len(samples) < 5:
                        samples.append(f"{method} {path}: {what}")
            await conn.close()

        await asyncio.gather(*(client(i) for i in range(clients)))
        elapsed = time.perf_counter() - start
    return latencies, errors, samples, elapsed


def _warm_up(url: str, token: str, keys: dict[str, list[str]]) -> dict[str, float]:
    """One call of each endpoint (the first builds the recommender and the QA index)."""
    out = {}
    headers = {"Authorization": f"Bearer {token}"}
    calls = {
        "recommend": ("GET", f"/recommend/{keys['users'][0]}?k=10", None),
        "similar": ("GET", f"/similar/{keys['products'][0]}?k=10", None),
        "ask": ("POST", "/ask", {"question": keys["questions"][0], "k": 5}),
    }
    with httpx.Client(base_url=url, headers=headers, timeout=600) as http:
        for name, (method, path, body) in calls.items():
            t0 = time.perf_counter()
            response = http.request(method, path, json=body)
            response.raise_for_status()
            out[name] = time.perf_counter() - t0
    return out


def _alone(
    url: str, token: str, keys: dict[str, list[str]], pid: int, seed: int
) -> list[dict[str, Any]]:
    """Per endpoint, :data:`ALONE` requests from one client with nothing else running: median
    latency and the server process's CPU milliseconds per request."""
    server = psutil.Process(pid)
    rng = random.Random(seed)
    rows = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                      timeout=600) as http:  # fmt: skip
        for kind in MIX:
            ms = []
            before = sum(server.cpu_times()[:2])
            for _ in range(ALONE):
                _, method, path, body = _request(rng, keys, kind)
                t0 = time.perf_counter()
                http.request(method, path, json=body).raise_for_status()
                ms.append(1000 * (time.perf_counter() - t0))
            cpu = 1000 * (sum(server.cpu_times()[:2]) - before) / ALONE
            rows.append({"endpoint": kind, "requests": ALONE, "p50_ms": float(np.median(ms)),
                         "server_cpu_ms": cpu})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run, print the table and save ``benchmarks/results/service.json``."""
    parser = benchmark_parser(MODULE, __doc__)
    parser.add_argument("--size", choices=["small", "bench"], default="small", help="shop size")
    parser.add_argument("--clients", type=count(), default=100, help="concurrent clients")
    parser.add_argument("--seconds", type=seconds, default=20.0, help="length of the load")
    parser.add_argument("--epochs", type=count(), default=10, help="most training epochs")
    parser.add_argument("--seed", type=count(0, MAX_SEED), default=0)
    parser.add_argument(
        "--client", choices=["raw", "httpx"], default="raw",
        help="Load driver: a minimal HTTP/1.1 client (default) or httpx.AsyncClient.",
    )  # fmt: skip
    add_folder_arguments(
        parser,
        "benchmarks/.work/service",
        "folder of the prepared store",
        data_help=None,
    )
    add_out_argument(parser, NAME)
    args = parser.parse_args(argv)
    store = prepare(args.size, args.work, args.epochs)
    keys = _sample_keys(store, args.seed)
    token = secrets.token_hex(32)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _start_server(store, port, token)
    try:
        startup_s = _wait_ready(url, proc)
        warm = _warm_up(url, token, keys)
        print(f"server up in {startup_s:.1f} s; warm-up (lazy builds): "
              + ", ".join(f"{k} {v:.2f} s" for k, v in warm.items()), flush=True)  # fmt: skip
        alone = _alone(url, token, keys, proc.pid, args.seed)
        latencies, errors, samples, elapsed = asyncio.run(
            _drive(url, token, keys, args.clients, args.seconds, args.seed, args.client)
        )
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    rows = []
    for kind in [*MIX, "all"]:
        ms = [x for v in latencies.values() for x in v] if kind == "all" else latencies[kind]
        errs = sum(errors.values()) if kind == "all" else errors.get(kind, 0)
        p50, p99 = np.percentile(ms, [50, 99]) if ms else (float("nan"), float("nan"))
        rows.append({
            "endpoint": kind, "requests": len(ms), "per_s": len(ms) / elapsed,
            "p50_ms": float(p50), "p99_ms": float(p99), "errors": errs,
        })  # fmt: skip
    table = [
        [r["endpoint"], r["requests"], f"{r['per_s']:,.1f}", f"{r['p50_ms']:.1f}",
         f"{r['p99_ms']:.1f}", r["errors"]]
        for r in rows
    ]  # fmt: skip
    title = (f"REST service, {args.size} shop, {args.clients} clients for {elapsed:.1f} s, "
             f"{os.cpu_count()} CPUs (server and load driver together)")  # fmt: skip
    headers = ["endpoint", "requests", "requests/s", "p50 ms", "p99 ms", "errors"]
    text = print_table(headers, table, title=title)
    alone_table = [
        [r["endpoint"], r["requests"], f"{r['p50_ms']:.1f}", f"{r['server_cpu_ms']:.1f}"]
        for r in alone
    ]
    alone_text = print_table(
        ["endpoint", "requests", "p50 ms", "server CPU ms per request"],
        alone_table,
        title="One client alone, before the load",
    )
    for line in samples:
        print(f"error: {line}")
    results = {
        "size": args.size,
        "clients": args.clients,
        "driver": args.client,
        "seconds": elapsed,
        "mix": MIX,
        "startup_s": startup_s,
        "warm_up_s": warm,
        "prepared": json.loads((store.parent / "prepared.json").read_text()),
        "rows": rows,
        "alone": alone,
        "error_samples": samples,
    }
    path = save_results(
        NAME,
        results,
        out=args.out,
        command=command_line(MODULE, argv),
        tables=[text, alone_text],
    )
    print(f"saved {path}")
    return 1 if rows[-1]["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
