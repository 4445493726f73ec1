"""The REST service: recommendations, similar products, QA linking, defect analysis and live
updates over HTTP (FastAPI; interactive OpenAPI documentation at ``/docs``).

Endpoints (JSON in and out; every request and response is a Pydantic model of this module):

- ``GET /healthz``: liveness (no token needed) -> :class:`Health`.
- ``GET /recommend/{user_id}?k=&category=&brand=&max_price=&exclude_seen=&diversity=&explain=``:
  the top ``k`` products for a user with their reasons (:meth:`graphfusion.Engine.recommend`)
  -> :class:`RecommendResponse`.
- ``GET /similar/{product_id}?modality=&k=``: the products most similar by one modality
  (:meth:`graphfusion.Engine.similar`) -> :class:`SimilarResponse`.
- ``POST /ask`` with :class:`AskRequest` (``question``, optional ``product_id``, ``k``,
  ``method``): products, past answers and review passages with their evidence
  (:meth:`graphfusion.Engine.ask`) -> :class:`AskResponse`.
- ``GET /defects?level=&top=``: the riskiest suppliers, batches or products with evidence
  (:meth:`graphfusion.Engine.defects`) -> :class:`DefectsResponse`.
- ``POST /events`` with :class:`EventsRequest` (``products`` and ``interactions``): live
  updates through :meth:`graphfusion.Engine.add_products` (first) and
  :meth:`graphfusion.Engine.add_interactions`; bad rows are reported, not fatal
  -> :class:`EventsResponse`. On a store opened read-only (``Engine(folder, read_only=True)``,
  ``graphfusion serve --read-only``) it answers 403 and writes nothing; the other endpoints
  read as usual, and several such servers may share one store folder.
- ``POST /cypher`` with :class:`CypherRequest` (``query``, ``params``): a read-only Cypher
  query -> :class:`CypherResponse`; off (403) unless the app is made with
  ``allow_cypher=True`` (``graphfusion serve --allow-cypher``).

Every ``GET`` route answers ``HEAD`` too (the same status and headers, no body); ``OPTIONS``
on a route answers 204 with ``Allow`` (no token needed: the OpenAPI schema lists the same),
and a 405 lists in ``Allow`` every method the path takes.

Security and limits:

- With a token, every endpoint but ``/healthz`` and the documentation needs
  ``Authorization: Bearer <token>`` (compared in constant time); 401 otherwise. :func:`serve`
  refuses to bind anything but a loopback address without a token.
- Bodies over ``max_body_bytes`` (default 1 MiB) get 413; ``k`` and ``top`` are capped at
  :data:`MAX_K` and :data:`MAX_TOP`, questions at :data:`MAX_QUESTION_CHARS` characters and
  a request at :data:`MAX_EVENTS` events.
- ``/cypher`` strips string literals, quoted names and comments, then refuses every clause that
  writes or reaches outside the graph (:data:`WRITE_KEYWORDS`), several statements, and
  procedure calls other than :data:`READ_ONLY_PROCEDURES` (:func:`check_read_only`).
  Parameters travel separately and are never pasted in; each ``$name`` needs one. The store
  stops the query after ``cypher_timeout_s`` (:data:`DEFAULT_CYPHER_TIMEOUT_S`) and reads at
  most :data:`MAX_CYPHER_ROWS` rows of it. The query also runs where the database itself
  refuses a write (:meth:`~graphfusion.store.base.BaseStore.query_read`): inside ``BEGIN
  TRANSACTION READ ONLY`` on the embedded store, in a read transaction on Neo4j. On Neo4j a
  user with read-only rights is still the safer setting for the service.
- Bad input is a 4xx with a JSON ``detail``: 422 for a request that does not fit its model,
  404 for an unknown user or product (:class:`~graphfusion.errors.NotFoundError`), 409 when
  the store is not ready for the request (:class:`~graphfusion.errors.NotReadyError`: no
  trained model, no vector yet), 400 for other refused arguments; 503 when the store fails.
  A query parameter the endpoint does not take, or one given twice, is a 422 too (a typo
  such as ``?max_prize=20`` would otherwise go unnoticed). Every error but a 422 has the body
  :class:`ErrorResponse`. A body sent with another content type than JSON (``curl -d``
  sends a form) is a 422 that says so. A percent escape in the URL that is not UTF-8
  (``/similar/p%FF``) is a 400 naming it, not a lookup of the U+FFFD it would decode to.
- Every answer carries ``Cache-Control: no-store``: answers change with each live update.
  No CORS headers are sent.
- The token is taken only from the ``Authorization`` header: one sent in the URL is refused
  (401, saying where it goes), and :func:`serve`'s access log writes ``***`` for the values
  of query parameters named like credentials (``token``, ``access_token``, ``api_key``...)
  and for the server's token wherever it stands, and cuts request targets longer than
  :data:`MAX_LOGGED_TARGET_CHARS` characters.
- :func:`serve` checks that it can listen on the host and port before it starts: a port in
  use or a host that is not this machine's is one :class:`~graphfusion.errors.ValidationError`
  naming them (``graphfusion serve``: one line, exit code 1).
- :func:`serve` stops on Ctrl-C or SIGTERM once the requests in flight are answered, and
  returns (so the caller closes the engine and the store).

Concurrency: the engine is shared by the worker threads. Reads (recommend, similar, ask,
defects, cypher) run concurrently under a shared lock (the text encoder, whose tokenizer is not
documented as thread-safe, encodes one question at a time; the embedded store runs one
statement, or one ``/cypher`` read transaction, at a time on its connection); live updates and
the builds of the recommender, QA index and defect analysis take the lock exclusively. A
later ``/recommend`` or ``/similar`` sees the products and interactions of an earlier
``/events``; after new products the next ``/ask`` and ``/defects`` rebuild the QA
index (with the fusion weights learned before) and the defect analysis with them.

Example:
    >>> from graphfusion import Engine
    >>> from graphfusion.service import create_app
    >>> app = create_app(Engine("shop-store"), token="s3cret-token-0123")  # doctest: +SKIP
"""

from __future__ import annotations

import errno
import hmac
import ipaddress
import logging
import math
import re
import signal
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, quote_plus, unquote_plus, unquote_to_bytes

import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graphfusion import __version__
from graphfusion.engine import Engine
from graphfusion.errors import (
    GraphFusionError,
    NotFoundError,
    NotReadyError,
    QueryError,
    StoreError,
    ValidationError,
)
from graphfusion.ingest import LoadReport
from graphfusion.locks import ReadWriteLock
from graphfusion.store.base import ReadResult
from graphfusion.store.cypher import (
    READ_ONLY_PROCEDURES,
    WRITE_KEYWORDS,
    ReadOnlyViolation,
    check_read_only,
)
from graphfusion.values import json_safe, real_arg

__all__ = [
    "create_app",
    "serve",
    "check_bind",
    "check_read_only",
    "ReadOnlyViolation",
    "DEFAULT_MAX_BODY_BYTES",
    "MAX_K",
    "MAX_TOP",
    "MAX_QUESTION_CHARS",
    "MAX_EVENTS",
    "MAX_CYPHER_CHARS",
    "MAX_CYPHER_ROWS",
    "DEFAULT_CYPHER_TIMEOUT_S",
    "MAX_LOGGED_TARGET_CHARS",
    "WRITE_KEYWORDS",
    "READ_ONLY_PROCEDURES",
    "ErrorResponse",
    "Health",
    "PathNode",
    "ReasonModel",
    "Recommendation",
    "RecommendResponse",
    "SimilarProduct",
    "SimilarResponse",
    "AskRequest",
    "ProductHit",
    "AnswerHit",
    "PassageHit",
    "AskResponse",
    "DefectEvidence",
    "DefectItem",
    "DefectsResponse",
    "InteractionEvent",
    "ProductEvent",
    "EventsRequest",
    "RejectedRow",
    "LoadSummary",
    "EventsResponse",
    "CypherRequest",
    "CypherResponse",
]

log = logging.getLogger("graphfusion.service")

#: Largest request body, in bytes, unless ``create_app(max_body_bytes=...)`` says otherwise.
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
#: Largest ``k`` of ``/recommend``, ``/similar`` and ``/ask``.
MAX_K = 100
#: Largest ``top`` of ``/defects``.
MAX_TOP = 100
#: Longest question of ``/ask``, in characters.
MAX_QUESTION_CHARS = 2_000
#: Most events (products and interactions together) in one ``/events`` request.
MAX_EVENTS = 1_000
#: Longest key (user, product, category ...) accepted, in characters.
MAX_ID_CHARS = 200
#: Longest ``/cypher`` query, in characters.
MAX_CYPHER_CHARS = 20_000
#: Most parameters of one ``/cypher`` query.
MAX_CYPHER_PARAMS = 100
#: Most rows ``/cypher`` returns (``truncated`` says when there were more; the rest are not
#: read from the store).
MAX_CYPHER_ROWS = 1_000
#: Seconds a ``/cypher`` query may run before the store stops it (400), unless
#: ``create_app(cypher_timeout_s=...)`` says otherwise.
DEFAULT_CYPHER_TIMEOUT_S = 10.0
#: Longest request target (path and query) :func:`serve`'s access log writes; the rest of a
#: longer one is left out, with its length.
MAX_LOGGED_TARGET_CHARS = 1_000


# module level: FastAPI resolves the (postponed) annotations of the endpoints from here
_BEARER = HTTPBearer(auto_error=False, description="The token the server was started with.")
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_MIN_PUBLIC_TOKEN_CHARS = 16
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# query parameters whose values are credentials (``token``, ``access_token``, ``api_key``...):
# never accepted (the token goes in the Authorization header), never written to the log
_SECRET_QUERY_NAME = re.compile(r"token|key|secret|passw|auth|credential|signature", re.I)


# ============================================================================ models
class _Request(BaseModel):
    # strict: a JSON string or boolean is not taken for a number, nor a number for a string
    model_config = ConfigDict(extra="forbid", strict=True)


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ErrorResponse(_Response):
    """The body of a refused or failed request (422s list their errors in ``detail``)."""

    detail: str = Field(description="What went wrong, for people.")


class Health(_Response):
    """``GET /healthz``."""

    status: Literal["ok"] = "ok"
    version: str = Field(description="graphfusion's version.")
    store: Literal["embedded", "neo4j"] = Field(description="The kind of graph store served.")
    read_only: bool = Field(
        description="Whether the store is open read-only (``POST /events`` answers 403)."
    )


class PathNode(_Response):
    """One node of an evidence path."""

    label: str
    key: str


class ReasonModel(_Response):
    """One piece of graph evidence for a recommendation (:class:`graphfusion.recommend.Reason`)."""

    kind: str = Field(description="yours, brand, category, looks_like, also_interacted or popular.")
    text: str = Field(description="For people.")
    path: list[PathNode] = Field(description="The evidence's nodes, from the user to the product.")
    strength: float = Field(description="How strong the evidence is, for ordering.")


class Recommendation(_Response):
    """One recommended product."""

    product_id: str
    title: str
    score: float
    category: str | None = None
    brand: str | None = None
    price: float | None = None
    reasons: list[ReasonModel]


class RecommendResponse(_Response):
    """``GET /recommend/{user_id}``: best first."""

    user_id: str
    method: str = Field(description="How the scores were made: model or cold-start blend.")
    items: list[Recommendation]


class SimilarProduct(_Response):
    """One similar product."""

    id: str
    title: str | None = None
    score: float = Field(description="Cosine similarity.")


class SimilarResponse(_Response):
    """``GET /similar/{product_id}``: most similar first; the product itself is left out."""

    product_id: str
    modality: str
    items: list[SimilarProduct]


class AskRequest(_Request):
    """``POST /ask``."""

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    product_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_ID_CHARS,
        description="The product page the question was asked on.",
    )
    k: int = Field(default=5, ge=1, le=MAX_K, description="How many of each list.")
    method: Literal["bm25", "dense", "graph", "fusion"] = "fusion"

    @model_validator(mode="after")
    def _not_blank(self) -> AskRequest:
        if not self.question.strip():
            raise ValueError("the question is blank")
        if self.product_id is not None and not self.product_id.strip():
            raise ValueError("product_id is blank (leave it out to ask on no product)")
        return self


class ProductHit(_Response):
    """A product linked to a question."""

    product_id: str
    title: str | None = None
    score: float
    evidence: list[str]


class AnswerHit(_Response):
    """A past answer linked to a question."""

    answer_id: str
    text: str | None = None
    question: str | None = Field(default=None, description="The question it answered.")
    product_id: str | None = None
    score: float
    evidence: list[str]


class PassageHit(_Response):
    """A review passage linked to a question."""

    passage_id: str
    text: str | None = None
    review_id: str | None = None
    product_id: str | None = None
    score: float
    evidence: list[str]


class AskResponse(_Response):
    """``POST /ask``: three ranked lists."""

    products: list[ProductHit]
    answers: list[AnswerHit]
    passages: list[PassageHit]


class DefectEvidence(_Response):
    """A defect review, an odd product photo or a recall."""

    kind: str = Field(description="review, image or recall.")
    key: str
    product_id: str | None = None
    score: float
    text: str


class DefectItem(_Response):
    """A supplier, batch or product and its risk. Which optional fields are set depends on
    the level (suppliers: ``name``, ``products``; batches: ``supplier_id``, ``products``;
    products: ``title``, ``reviews``, ``defect_reviews``, ``recalls``, ``rate``, ``image``,
    ``image_id``, ``batch_id``, ``supplier_id``; every level: ``reports`` and
    ``observations``, the weighted counts the risk is made of)."""

    key: str = Field(description="The supplier, batch or product key.")
    risk: float
    name: str | None = None
    title: str | None = None
    products: int | None = Field(default=None, description="Products of the supplier or batch.")
    supplier_id: str | None = None
    batch_id: str | None = None
    reviews: int | None = None
    defect_reviews: int | None = None
    rate: float | None = Field(default=None, description="Share of defect reviews (smoothed).")
    image: float | None = Field(
        default=None, description="How odd its photo is among its category's, 0 to 1."
    )
    image_id: str | None = Field(default=None, description="The product's photo, if any.")
    recalls: int | None = Field(default=None, description="Recalls naming the product.")
    reports: float | None = Field(
        default=None, description="Weighted defect reports behind the risk (K)."
    )
    observations: float | None = Field(
        default=None, description="Weighted observations behind the risk (N)."
    )
    evidence: list[DefectEvidence]
    at_risk_products: list[str] = Field(
        default_factory=list,
        description="Products sharing the batch or supplier, no defect yet (the riskiest).",
    )
    at_risk_count: int | None = Field(
        default=None, description="How many products are at risk in all (suppliers, batches)."
    )


class DefectsResponse(_Response):
    """``GET /defects``: riskiest first."""

    level: str
    items: list[DefectItem]


_Key = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]
_OptionalKey = Annotated[str | None, Field(default=None, min_length=1, max_length=MAX_ID_CHARS)]


class InteractionEvent(_Request):
    """A user's interaction with a product (both must exist)."""

    user_id: _Key
    product_id: _Key
    type: str | None = Field(
        default=None, max_length=32, description="VIEWED, PURCHASED (default) or FAVORITED."
    )
    ts: str | None = Field(default=None, max_length=64, description="ISO 8601 date-time.")
    weight: float | None = Field(default=None, allow_inf_nan=False)


class ProductEvent(_Request):
    """A new or changed product; its category, brand, supplier and batch must exist."""

    id: _Key
    title: str | None = Field(default=None, max_length=1_000)
    description: str | None = Field(default=None, max_length=10_000)
    price: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    currency: str | None = Field(default=None, max_length=8)
    created_at: str | None = Field(default=None, max_length=64)
    category_id: _OptionalKey = None
    brand_id: _OptionalKey = None
    supplier_id: _OptionalKey = None
    batch_id: _OptionalKey = None
    image: str | None = Field(
        default=None,
        min_length=1,
        max_length=1_000,
        description="A file under the server's image root (graphfusion serve --image-root).",
    )


class EventsRequest(_Request):
    """``POST /events``: products are written first, so interactions may name them."""

    products: list[ProductEvent] = Field(default_factory=list, max_length=MAX_EVENTS)
    interactions: list[InteractionEvent] = Field(default_factory=list, max_length=MAX_EVENTS)

    @model_validator(mode="after")
    def _bounded(self) -> EventsRequest:
        n = len(self.products) + len(self.interactions)
        if n == 0:
            raise ValueError("no events: give products or interactions")
        if n > MAX_EVENTS:
            raise ValueError(f"{n} events; at most {MAX_EVENTS} per request")
        return self


class RejectedRow(_Response):
    """A row that was not loaded, and why (``line`` 1 is the first item of its list)."""

    source: str
    line: int
    target: str
    field: str
    reason: str


class LoadSummary(_Response):
    """What one live update wrote (:class:`graphfusion.ingest.LoadReport`)."""

    mapping: str
    nodes: dict[str, int]
    relationships: dict[str, int]
    skipped: dict[str, int]
    rejected: list[RejectedRow]
    seconds: float = Field(
        description="Seconds the store took to write the rows; updating the served model "
        "afterwards (the first products of a server load its text encoder) is not counted."
    )


class EventsResponse(_Response):
    """``POST /events``: one report per list given."""

    products: LoadSummary | None = None
    interactions: LoadSummary | None = None


class CypherRequest(_Request):
    """``POST /cypher``: values go in ``params`` (``$name`` in the query), never in the text."""

    query: str = Field(min_length=1, max_length=MAX_CYPHER_CHARS)
    params: dict[str, JsonValue] = Field(default_factory=dict, max_length=MAX_CYPHER_PARAMS)

    @model_validator(mode="after")
    def _names(self) -> CypherRequest:
        bad = [name for name in self.params if not _PARAM_NAME.fullmatch(name)]
        if bad:
            raise ValueError(f"parameter names must be identifiers, got {bad[:3]}")
        # NaN and Infinity are no JSON (Python's json writes them); the store compares NaN
        # as greater than every number, so `p.price < $max` would pass every row
        odd = [name for name, value in self.params.items() if not _finite_json(value)]
        if odd:
            raise ValueError(
                f"parameter(s) {odd[:3]} hold NaN or an infinity; values must be finite numbers"
            )
        return self


def _finite_json(value: Any) -> bool:
    """Whether a JSON value holds no NaN or infinity, at any depth (``allow_inf_nan=False``
    in the model's config let a NaN inside the ``JsonValue`` of a request body through)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_finite_json(v) for v in value)
    if isinstance(value, dict):
        return all(_finite_json(v) for v in value.values())
    return True


class CypherResponse(_Response):
    """``POST /cypher``: rows as objects keyed by column."""

    columns: list[str]
    rows: list[dict[str, Any]]
    truncated: bool = Field(description=f"More than {MAX_CYPHER_ROWS} rows; the rest left out.")


# ============================================================================ plumbing
class _BodyLimit:
    """ASGI middleware: 413 for a request body over ``limit`` bytes (announced or streamed).

    The body is read here, up to the limit, before the app sees it.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    announced = int(value)
                except ValueError:
                    announced = -1
                if announced > self.limit:
                    await self._too_large(scope, send)
                    return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.limit:
                await self._too_large(scope, send)
                return
            chunks.append(body)
            more = bool(message.get("more_body", False))
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body over the limit of {self.limit} bytes"}, status_code=413
        )
        await response(scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


class _NoStore:
    """ASGI middleware: ``Cache-Control: no-store`` on every answer. Recommendations, similar
    products, answers and risks change with each live update and belong to a user; no cache
    between client and server may keep them (nor a 404 for a product that arrives later)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"cache-control", b"no-store")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_no_store)


class _Methods:
    """ASGI middleware: the methods every HTTP resource takes besides its own (RFC 9110).

    - ``HEAD`` on a ``GET`` route answers as ``GET`` does (status and headers, the
      ``content-length`` of the body too), without the body; on other routes it is a 405.
    - ``OPTIONS`` on a route answers 204 with ``Allow``, the methods the path takes (no
      token needed: the OpenAPI schema lists them for anyone); on an unknown path, 404.
    - A 405 lists in ``Allow`` every method the path takes, ``HEAD`` and ``OPTIONS`` with
      them.
    """

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes  # the application's, as it has them when the first request comes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and (allowed := _allowed_methods(self.routes, scope)):
            response = Response(status_code=204, headers={"allow": allowed})
            await response(scope, receive, send)
            return
        head = scope["method"] == "HEAD"
        if head:
            scope = {**scope, "method": "GET"}

        async def send_amended(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                allowed = _allowed_methods(self.routes, scope).encode()
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                message = {**message, "headers": [*headers, (b"allow", allowed)]}
            elif message["type"] == "http.response.body" and head:
                message = {**message, "body": b""}
            await send(message)

        await self.app(scope, receive, send_amended)


def _allowed_methods(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """The methods the request's path takes (``HEAD`` where ``GET`` is, and ``OPTIONS``),
    sorted and comma-separated as ``Allow`` lists them; empty for a path no route takes."""
    methods: set[str] = set()
    for route in routes:
        match, _ = route.matches({**scope, "method": "GET"})
        own = getattr(route, "methods", None)
        if match != Match.NONE and own:
            methods |= set(own)
    if not methods:
        return ""
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods | {"OPTIONS"}))


_PERCENT_RUN = re.compile(rb"(?:%[0-9A-Fa-f]{2})+")


def _bad_escape(raw: bytes) -> str | None:
    """The first run of percent escapes in ``raw`` (a URL's path or query, as sent) whose
    bytes are not UTF-8: the bad escapes, and the run they are in when it is longer
    (``%C3 (in %C3%28)``); None when every run decodes."""
    for found in _PERCENT_RUN.finditer(raw):
        run = found.group().decode("ascii")
        try:
            unquote_to_bytes(run).decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = "".join(f"%{b:02X}" for b in exc.object[exc.start : exc.end])
            return bad if len(bad) == len(run) else f"{bad} (in {run.upper()})"
    return None


def _utf8_url(request: Request) -> None:
    """Refuse a URL whose percent escapes are not UTF-8 (``/similar/p%FF``): Starlette
    decodes them to U+FFFD, and the id looked up would be one the client never sent.

    Raises:
        HTTPException: 400, naming the escape and whether it is in the path or the query.
    """
    scope = request.scope
    for part, raw in (("path", scope.get("raw_path")), ("query", scope.get("query_string"))):
        bad = _bad_escape(raw) if isinstance(raw, bytes) else None
        if bad is not None:
            raise HTTPException(
                status_code=400,
                detail=f"the URL's {part} holds the percent escape {bad}, which is not UTF-8: "
                "percent-encode ids and values as UTF-8 bytes (é is %C3%A9)",
            )


class _Runtime:
    """The engine and what guards it."""

    def __init__(self, engine: Engine, image_root: Path | None) -> None:
        self.engine = engine
        self.image_root = image_root.resolve() if image_root is not None else None
        self.lock = ReadWriteLock()
        self.built: set[str] = set()

    @contextmanager
    def use(self, part: str, build: Callable[[], object]) -> Iterator[None]:
        """Hold the lock to use a lazy part of the engine (``recommender``, ``qa``,
        ``defects``): shared while it is built; else alone, building it first (``build``).
        Whether it is built is asked under the lock: a live update that drops it (the
        engine rebuilds it on its next use) may run between the asking and the lock."""
        with self.lock.read():
            if part in self.built:
                yield
                return
        with self.lock.write():
            if part not in self.built:
                build()
                self.built.add(part)
            yield


def _known_query(request: Request) -> None:
    """Refuse a query parameter the endpoint does not take, or one given twice (the last
    would win): a typo such as ``?max_prize=20`` would otherwise go unnoticed, and the answer
    be unfiltered.

    Raises:
        RequestValidationError: One error per such parameter (422).
    """
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):  # pragma: no cover - every guarded route is one
        return
    known = sorted(p.alias for p in route.dependant.query_params)
    takes = f"this endpoint takes {', '.join(known)}" if known else "it takes no query parameters"
    errors = []
    for name, times in Counter(k for k, _ in request.query_params.multi_items()).items():
        if name not in known:
            msg = f"unknown query parameter {name!r}; {takes}"
            errors.append({"type": "extra_forbidden", "loc": ("query", name), "msg": msg})
        elif times > 1:
            msg = f"query parameter {name!r} given {times} times; give it once"
            errors.append({"type": "value_error", "loc": ("query", name), "msg": msg})
    if errors:
        raise RequestValidationError(errors)


def _secret_query_names(request: Request) -> list[str]:
    """The names of the request's query parameters that look like credentials."""
    return [name for name in request.query_params if _SECRET_QUERY_NAME.search(name)]


class _RedactAccessLog(logging.Filter):
    """A filter for uvicorn's access log (the ``uvicorn.access`` logger), which writes each
    request target as it was sent: the values of query parameters named like credentials
    (``token=``, ``access_token=``, ``api_key=``...) and the server's token wherever it
    stands (a client that pasted it into a path) become ``***``, and a target longer than
    ``limit`` characters is cut, with its length (one line per request, not 60 kB)."""

    def __init__(self, token: str | None, limit: int = MAX_LOGGED_TARGET_CHARS) -> None:
        super().__init__()
        self.limit = limit
        forms = {token, quote(token, safe=""), quote(token), quote_plus(token)} if token else set()
        self.secrets = sorted(forms, key=len, reverse=True)  # longest first: no part remains

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the target of an access record (``client, method, target, version,
        status``); keep every record."""
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], self.target(args[2]), args[3], args[4])
        return True

    def target(self, target: str) -> str:
        """``target`` (path and query, as uvicorn logs it) without secrets, cut to the limit."""
        path, sep, query = target.partition("?")
        if sep:
            query = "&".join(_redact_pair(pair) for pair in query.split("&"))
        text = path + sep + query
        for secret in self.secrets:
            text = text.replace(secret, "***")
        if len(text) > self.limit:
            text = f"{text[: self.limit]}...({len(text)} characters)"
        return text


def _redact_pair(pair: str) -> str:
    """One ``name=value`` of a query string, its value hidden if the name is a credential's."""
    name, eq, value = pair.partition("=")
    if eq and value and _SECRET_QUERY_NAME.search(unquote_plus(name)):
        return f"{name}=***"
    return pair


@contextmanager
def _access_log_redacted(token: str | None) -> Iterator[None]:
    """Within: uvicorn's access log goes through :class:`_RedactAccessLog`."""
    access = logging.getLogger("uvicorn.access")
    redact = _RedactAccessLog(token)
    access.addFilter(redact)
    try:
        yield
    finally:
        access.removeFilter(redact)


_LISTEN_HINTS = {
    errno.EADDRINUSE: "; another server holds it: stop it or choose another port",
    errno.EADDRNOTAVAIL: "; it is not an address of this machine",
    errno.EACCES: "; ports below 1024 need more rights: choose another port",
}


def _check_listen(host: str, port: int) -> None:
    """Make sure the server can listen on ``host``:``port`` before it starts (uvicorn would
    announce the application as started, then fail in a line that may not name the host):
    every address the host resolves to is bound once, as uvicorn binds it, and let go.

    Raises:
        ValidationError: The host resolves to nothing, or an address cannot be bound (in
            use, not an address of this machine, a port below 1024 without the right).
    """
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise ValidationError(f"cannot listen on {where}: {reason} (not a known host)") from None
    for family, kind, proto, _, address in dict.fromkeys(found):
        try:
            sock = socket.socket(family, kind, proto)
        except OSError:  # a family this machine lacks (IPv6): asyncio skips it too
            continue
        with sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio does
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                reason = (exc.strerror or str(exc)).lower()
                reason += _LISTEN_HINTS.get(exc.errno or 0, "")
                raise ValidationError(f"cannot listen on {where}: {reason}") from None


def _not_json(content_type: str | None) -> str | None:
    """The media type of a request body that FastAPI does not parse as JSON, or None when it
    does (no type given, ``application/json``, ``application/*+json``)."""
    if not content_type:
        return None
    media = content_type.split(";")[0].strip().lower()
    main, _, sub = media.partition("/")
    if main == "application" and (sub == "json" or sub.endswith("+json")):
        return None
    return media


def _status(exc: GraphFusionError) -> int:
    """The HTTP status of a library error."""
    if isinstance(exc, StoreError | QueryError):
        return 503 if isinstance(exc, StoreError) else 500
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, NotReadyError):
        return 409
    return 400


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A result frame's rows as dicts of plain JSON values (:func:`json_safe`: NaN as None)."""
    records: list[dict[str, Any]] = json_safe(frame.to_dict(orient="records"))
    return records


def _json(model: BaseModel) -> Response:
    """A response already validated by its model: FastAPI would validate it again."""
    return Response(model.model_dump_json(), media_type="application/json")


def _summary(report: LoadReport) -> LoadSummary:
    return LoadSummary(
        mapping=report.mapping,
        nodes=dict(report.nodes),
        relationships=dict(report.relationships),
        skipped=dict(report.skipped),
        rejected=[RejectedRow(**r.to_dict()) for r in report.rejected],
        seconds=round(report.seconds, 4),
    )


def _frame(items: Sequence[BaseModel], always: tuple[str, ...]) -> pd.DataFrame:
    """Events as a frame: the ``always`` columns and every other field with a value."""
    rows = [item.model_dump() for item in items]
    columns = [c for c in rows[0] if c in always or any(r[c] is not None for r in rows)]
    return pd.DataFrame({c: [r[c] for r in rows] for c in columns})


def _int(value: Any) -> int | None:
    value = json_safe(value)
    return None if value is None else int(value)


def _defect_item(row: Mapping[Any, Any]) -> DefectItem:
    key_column = next(iter(row))
    row = json_safe(row)
    return DefectItem(
        key=str(row[key_column]),
        risk=row.get("risk") or 0.0,
        name=row.get("name"),
        title=row.get("title"),
        products=_int(row.get("products")),
        supplier_id=row.get("supplier_id"),
        batch_id=row.get("batch_id"),
        reviews=_int(row.get("reviews")),
        defect_reviews=_int(row.get("defect_reviews")),
        rate=row.get("rate"),
        image=row.get("image"),
        image_id=row.get("image_id"),
        recalls=_int(row.get("recalls")),
        reports=row.get("reports"),
        observations=row.get("observations"),
        evidence=[DefectEvidence(**e) for e in row.get("evidence") or []],
        at_risk_products=list(row.get("at_risk_products") or []),
        at_risk_count=_int(row.get("at_risk_count")),
    )


def _check_token(token: str | None) -> None:
    if token is None:
        return
    if not isinstance(token, str) or not _B64TOKEN.fullmatch(token):
        raise ValidationError(
            "the token must be a non-empty run of letters, digits and -._~+/ (e.g. the "
            "output of `openssl rand -hex 32`)"
        )


def _is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve ``host`` without a sound token unless it is a loopback address.

    Args:
        host: The address to bind (``127.0.0.1``, ``::1``, ``localhost``, ``0.0.0.0`` ...).
        token: The bearer token clients must send, or None.

    Raises:
        ValidationError: A bad token, or a non-loopback host without a token of at least 16
            characters.
    """
    _check_token(token)
    if _is_loopback(host):
        return
    if token is None:
        raise ValidationError(
            f"serving on {host!r} (not a loopback address) needs a bearer token: pass --token "
            "(or set GRAPHFUSION_TOKEN), e.g. from `openssl rand -hex 32`"
        )
    if len(token) < _MIN_PUBLIC_TOKEN_CHARS:
        raise ValidationError(
            f"serving on {host!r} needs a token of at least {_MIN_PUBLIC_TOKEN_CHARS} characters"
        )


# ============================================================================ the app
def create_app(
    engine: Engine,
    *,
    token: str | None = None,
    allow_cypher: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    image_root: str | Path | None = None,
    cypher_timeout_s: float = DEFAULT_CYPHER_TIMEOUT_S,
) -> FastAPI:
    """The REST application over ``engine`` (see the module docstring for the endpoints).

    Args:
        engine: An open engine; the app uses it from several threads and never closes it.
            On one opened read-only, ``POST /events`` answers 403.
        token: When given, clients must send ``Authorization: Bearer <token>``.
        allow_cypher: Turn on the read-only ``POST /cypher``.
        max_body_bytes: Largest request body; larger ones get 413.
        image_root: Folder whose files ``POST /events`` products may name as ``image``
            (relative paths); without it an ``image`` is refused.
        cypher_timeout_s: Seconds a ``/cypher`` query may run before the store stops it.

    Returns:
        The FastAPI application (serve it with uvicorn, or :func:`serve`).

    Raises:
        ValidationError: A bad token, body limit, image root or Cypher timeout.
    """
    _check_token(token)
    if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int):
        raise ValidationError("max_body_bytes must be an integer")
    if max_body_bytes < 1:
        raise ValidationError(f"max_body_bytes must be positive, got {max_body_bytes}")
    cypher_timeout_s = real_arg("cypher_timeout_s", cypher_timeout_s, high=3600)
    root = Path(image_root) if image_root is not None else None
    if root is not None and not root.is_dir():
        raise ValidationError(f"image root {root} is not a folder")
    rt = _Runtime(engine, root)
    store_kind: Literal["embedded", "neo4j"] = (
        "neo4j" if engine.store.dialect.name == "neo4j" else "embedded"
    )
    expected = token.encode() if token is not None else None
    read_only = bool(engine.store.read_only)

    def authorize(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    ) -> None:
        if expected is None:
            return
        given = credentials.credentials.encode() if credentials is not None else b""
        if credentials is None or not hmac.compare_digest(given, expected):
            detail = "missing or wrong bearer token"
            if credentials is None and _secret_query_names(request):
                detail += (
                    "; send it in the header 'Authorization: Bearer <token>', not in the URL "
                    "(URLs end up in logs and browser histories)"
                )
            raise HTTPException(
                status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"}
            )

    app = FastAPI(
        title="graphfusion",
        version=__version__,
        description=(__doc__ or "").split("\n\n")[0],
    )
    app.add_middleware(_Methods, routes=app.router.routes)
    app.add_middleware(_BodyLimit, limit=max_body_bytes)
    app.add_middleware(_NoStore)  # outermost: a 413 carries it too
    guarded = [Depends(authorize), Depends(_utf8_url), Depends(_known_query)]

    def answer(description: str) -> dict[str, Any]:
        return {"model": ErrorResponse, "description": description}

    errors: dict[int | str, dict[str, Any]] = {
        400: answer("Refused argument"),
        401: answer("Missing or wrong bearer token"),
        413: answer("Request body too large"),
        500: answer("A store query or the server failed (logged by the server)"),
        503: answer("The store failed"),
    }
    not_ready: dict[int | str, dict[str, Any]] = {
        409: answer("The store is not ready: no trained model, no vectors yet")
    }

    @app.exception_handler(GraphFusionError)
    async def _library_error(request: Request, exc: GraphFusionError) -> JSONResponse:
        status = _status(exc)
        if status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc)
        detail = "the store failed a query" if isinstance(exc, QueryError) else str(exc)
        return JSONResponse({"detail": detail}, status_code=status)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": "internal error"}, status_code=500)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # like FastAPI's own, without echoing inputs (a body can be large)
        detail = [
            {k: v for k, v in err.items() if k in ("type", "loc", "msg")} for err in exc.errors()
        ]
        sent_as = _not_json(request.headers.get("content-type"))
        for err in detail:
            whole_body = tuple(err["loc"]) == ("body",)
            if sent_as and whole_body and err["type"] == "model_attributes_type":
                # FastAPI read the bytes, not JSON: "should be a valid dictionary" misleads
                err["msg"] = (
                    f"the body must be JSON sent with content-type: application/json, not "
                    f"{sent_as} (curl -d sends a form: add -H 'content-type: application/json')"
                )
        return JSONResponse({"detail": json_safe(detail)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # FastAPI answers 400 for a body its JSON parser gave up on; JSON nested too deeply
        # for Python's parser is bad JSON like any other (422, in the same shape)
        if isinstance(exc.__cause__, RecursionError):
            msg = "JSON nested too deeply"
            error = {"type": "json_invalid", "loc": ("body",), "msg": msg}
            return await _bad_request(request, RequestValidationError([error]))
        return await http_exception_handler(request, exc)

    @app.get("/healthz", response_model=Health, tags=["service"])
    async def healthz() -> Health:  # async: never waits for a worker thread
        """Liveness: answers while the server runs (no token needed)."""
        return Health(version=__version__, store=store_kind, read_only=read_only)

    @app.get(
        "/recommend/{user_id:path}",  # :path: a key may hold '/' (sent as %2F)
        response_model=RecommendResponse,
        dependencies=guarded,
        responses={**errors, 404: answer("Unknown user"), **not_ready},
        tags=["recommend"],
    )
    def recommend(
        user_id: Annotated[str, PathParam(min_length=1, max_length=MAX_ID_CHARS)],
        k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
        category: Annotated[str | None, Query(min_length=1, max_length=MAX_ID_CHARS)] = None,
        brand: Annotated[str | None, Query(min_length=1, max_length=MAX_ID_CHARS)] = None,
        max_price: Annotated[float | None, Query(ge=0, allow_inf_nan=False)] = None,
        exclude_seen: bool = True,
        diversity: Annotated[float, Query(ge=0, le=1, allow_inf_nan=False)] = 0.0,
        explain: bool = True,
    ) -> Response:
        """The top ``k`` products for a user, with the graph evidence for each (none with
        ``explain=false``, which is faster)."""
        with rt.use("recommender", engine.recommender):
            frame = engine.recommend(
                user_id, k, category=category, brand=brand, max_price=max_price,
                exclude_seen=exclude_seen, diversity=diversity, explain=explain,
            )  # fmt: skip
        response = RecommendResponse(
            user_id=user_id,
            method=str(frame.attrs.get("method", "model")),
            items=[Recommendation(**row) for row in _records(frame)],
        )
        return _json(response)

    @app.get(
        "/similar/{product_id:path}",
        response_model=SimilarResponse,
        dependencies=guarded,
        responses={**errors, 404: answer("Unknown product"), **not_ready},
        tags=["recommend"],
    )
    def similar(
        product_id: Annotated[str, PathParam(min_length=1, max_length=MAX_ID_CHARS)],
        modality: Literal["text", "image", "behaviour", "fused"] = "text",
        k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
    ) -> Response:
        """The ``k`` products most similar to a product by one modality's vectors."""
        with rt.lock.read():
            frame = engine.similar(product_id, modality, k)
        response = SimilarResponse(
            product_id=product_id,
            modality=modality,
            items=[SimilarProduct(**row) for row in _records(frame)],
        )
        return _json(response)

    @app.post(
        "/ask",
        response_model=AskResponse,
        dependencies=guarded,
        responses={**errors, 404: answer("Unknown product"), **not_ready},
        tags=["qa"],
    )
    def ask(body: AskRequest) -> Response:
        """Link a customer question to products, past answers and review passages."""
        args = (body.question, body.product_id, body.k, body.method)
        with rt.use("qa", engine.qa_index):
            result = engine.ask(*args)
        response = AskResponse(
            products=[ProductHit(**r) for r in _records(result.products)],
            answers=[AnswerHit(**r) for r in _records(result.answers)],
            passages=[PassageHit(**r) for r in _records(result.passages)],
        )
        return _json(response)

    @app.get(
        "/defects",
        response_model=DefectsResponse,
        dependencies=guarded,
        responses={**errors, **not_ready},
        tags=["defects"],
    )
    def defects(
        level: Literal["supplier", "batch", "product"] = "supplier",
        top: Annotated[int, Query(ge=1, le=MAX_TOP)] = 20,
    ) -> Response:
        """The riskiest suppliers, batches or products, with evidence and products at risk."""
        with rt.use("defects", engine.defect_analysis):
            frame = engine.defects(level, top)
        response = DefectsResponse(
            level=level, items=[_defect_item(row) for row in frame.to_dict(orient="records")]
        )
        return _json(response)

    @app.post(
        "/events",
        response_model=EventsResponse,
        dependencies=guarded,
        responses={
            **errors,
            403: answer("The store is open read-only"),
            409: answer("No trained model, or one that cannot take products"),
        },
        tags=["events"],
    )
    def events(body: EventsRequest) -> Response:
        """Live updates: store products and interactions and update the served model (no
        retraining). Bad rows are reported with their line (1 = first item of the list)."""
        if read_only:
            raise HTTPException(
                status_code=403,
                detail="this service serves a store opened read-only: live updates need a "
                "server with write access (graphfusion serve without --read-only)",
            )
        products = _with_image_paths(rt, body.products)
        out = EventsResponse()
        with rt.lock.write():
            try:
                if products:
                    frame = _frame(products, ("id",))
                    rt.built -= {"qa", "defects"}  # the engine rebuilds them: the next call
                    out.products = _summary(engine.add_products(frame))
                if body.interactions:
                    frame = _frame(body.interactions, ("user_id", "product_id", "type"))
                    out.interactions = _summary(engine.add_interactions(frame))
            except Exception:
                rt.built.clear()  # the engine may rebuild any of them now: the next call
                raise
        return _json(out)

    @app.post(
        "/cypher",
        response_model=CypherResponse,
        dependencies=guarded,
        responses={
            **errors,
            400: answer(
                "The store refused the query or stopped it at the time limit, or a $parameter "
                "has no value"
            ),
            403: answer("The endpoint is off, or the query could write"),
        },
        tags=["cypher"],
    )
    def cypher(body: CypherRequest) -> Response:
        """Run a read-only Cypher query (off unless the server was started with
        ``--allow-cypher``); values go in ``params``."""
        if not allow_cypher:
            raise HTTPException(
                status_code=403,
                detail="the Cypher endpoint is off; start the server with --allow-cypher",
            )
        try:
            query = check_read_only(body.query)
        except ReadOnlyViolation as exc:
            raise HTTPException(status_code=403, detail=f"refused: {exc}") from None
        try:
            read = _read_only_query(rt, query, dict(body.params), cypher_timeout_s)
        except (QueryError, ValidationError) as exc:  # refused, failed, stopped, a missing $param
            raise HTTPException(status_code=400, detail=str(exc)) from None
        except (ValueError, TypeError, OverflowError) as exc:  # a parameter the store cannot take
            raise HTTPException(status_code=400, detail=f"bad parameter: {exc}") from None
        response = CypherResponse(
            columns=read.columns, rows=[json_safe(r) for r in read.rows], truncated=read.truncated
        )
        return _json(response)

    return app


def _with_image_paths(rt: _Runtime, products: list[ProductEvent]) -> list[ProductEvent]:
    """The products with each ``image`` as a checked absolute path, which must name a file
    under the image root.

    Raises:
        RequestValidationError: Images outside the root or not files (422, one error each,
            located like the model's own errors).
    """
    out, errors, root = [], [], rt.image_root
    for n, product in enumerate(products):
        image, problem = product.image, None
        if image is not None and root is None:
            problem = "this server takes no product images (start it with --image-root DIR)"
        elif image is not None and root is not None:
            try:
                path = (root / image).resolve()
                inside = path.is_relative_to(root) and path.is_file()
            except (ValueError, OSError):  # a NUL character, a name too long for the system
                inside = False
            if inside:
                image = str(path)
            else:
                problem = f"image {image!r} is not a file under the image root"
        if problem is not None:
            loc = ("body", "products", n, "image")
            errors.append({"type": "value_error", "loc": loc, "msg": problem})
        out.append(product.model_copy(update={"image": image}))
    if errors:
        raise RequestValidationError(errors)
    return out


def _read_only_query(
    rt: _Runtime, query: str, params: dict[str, Any], timeout_s: float = DEFAULT_CYPHER_TIMEOUT_S
) -> ReadResult:
    """Run a checked query in a transaction the database keeps from writing, at most
    ``timeout_s`` seconds and :data:`MAX_CYPHER_ROWS` rows, beside the other reads: the
    embedded store keeps its transaction whole itself (no other statement runs on its one
    connection until it ends), so only the reads that query the store wait for it."""
    with rt.lock.read():
        return rt.engine.store.query_read(
            query, params, max_rows=MAX_CYPHER_ROWS, timeout_s=timeout_s
        )


def serve(
    engine: Engine,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    allow_cypher: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    image_root: str | Path | None = None,
    cypher_timeout_s: float = DEFAULT_CYPHER_TIMEOUT_S,
    log_level: str = "info",
) -> None:
    """Serve ``engine`` over HTTP with uvicorn (one process) until interrupted (Ctrl-C) or
    sent SIGTERM; either way the server first answers the requests in flight, then returns.

    Args:
        engine: An open engine (closed by the caller afterwards).
        host: Address to bind; anything but loopback needs a ``token``.
        port: TCP port (0: any free port; uvicorn logs the one it got).
        token: Bearer token clients must send.
        allow_cypher: Turn on the read-only ``POST /cypher``.
        max_body_bytes: Largest request body.
        image_root: Folder that product images of ``POST /events`` may name.
        cypher_timeout_s: Seconds a ``/cypher`` query may run.
        log_level: uvicorn's log level.

    The access log (``log_level="info"``) leaves out credentials sent in the URL and cuts
    long request targets (:data:`MAX_LOGGED_TARGET_CHARS`).

    Raises:
        ValidationError: A non-loopback host without a sound token, a bad setting, or a host
            and port the server cannot listen on (in use, not an address of this machine).
    """
    import uvicorn

    check_bind(host, token)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValidationError(f"port must be in 0..65535, got {port!r}")
    app = create_app(
        engine,
        token=token,
        allow_cypher=allow_cypher,
        max_body_bytes=max_body_bytes,
        image_root=image_root,
        cypher_timeout_s=cypher_timeout_s,
    )
    _check_listen(host, port)
    with _stop_on_sigterm(), _access_log_redacted(token):
        uvicorn.run(app, host=host, port=port, log_level=log_level, server_header=False)


class _Terminated(BaseException):
    """SIGTERM arrived (a BaseException, like KeyboardInterrupt: no ``except Exception``
    stops it on its way out)."""


@contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """Within: SIGTERM ends the block, which returns normally. uvicorn shuts down gracefully
    on SIGTERM, then raises the signal again, whose default action would kill the process
    before the caller closes the engine (the store left unclosed, exit status -15); the
    handler installed here ends the block instead. Outside the main thread, where Python
    installs no signal handlers, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    except _Terminated:
        log.info("stopped by SIGTERM")
    finally:
        signal.signal(signal.SIGTERM, previous)
