"""The HTTPS gateway: schools send their events over HTTP with a token and get an answer per line.

    gateway = Gateway(settings)                  # the store and Kafka from the settings
    web.run_app(gateway.app(), host=..., port=...)

`POST /v1/events` judges each line as the stream would (`gateway.judge`), sends the accepted ones to the
school's own intake topic and the rejected ones to the dead letters, and answers once the broker has
acknowledged every one of them (acks=all): "accepted" means durable. `GET /v1/school` is the school's
own view (`sinks.school_view`). docs/gateway.md is the manual; `GET /v1/openapi.json` the contract.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from aiohttp import ClientPayloadError, web

from foundation.errors import ConfigError, DualtrackError, StoreError
from foundation.kafka_auth import gateway_client_options, school_topic, secured
from foundation.settings import Settings
from gateway.judge import BodyError, judge, split_body
from gateway.limits import Buckets, Recent
from schemas.national_id import mask_text
from schemas.validation import MAX_LINE_BYTES, Rejected
from sinks.base import Store, open_store
from sinks.eventlog import EventLog
from sinks.tokens import SchoolTokens, token_hash
from streams.records import dead_letter_record

log = logging.getLogger(__name__)
T = TypeVar("T")

#: how long a token stays trusted between two reads of the store (so a rotation or revocation holds
#: within this), and how soon an unknown token may make the gateway read them again
TOKEN_REFRESH_SECONDS, TOKEN_MISS_SECONDS = 5.0, 1.0
#: the longest the gateway waits for the broker to acknowledge a body's events
SEND_SECONDS = 30.0
#: what a 503 asks the school to wait
RETRY_AFTER_SECONDS = 5
#: the days `GET /v1/school` counts
VIEW_DAYS = 30


class HttpError(DualtrackError):
    """An answer other than 200: its status, one line of reason and any headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.headers = status, headers or {}


def tls_context(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """The HTTPS listener's context with both files, None with neither; one line when only one is given
    or they cannot be read."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ConfigError("HTTPS needs both a certificate and its key (--tls-cert and --tls-key)")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as err:
        raise ConfigError(
            f"cannot load the TLS certificate {cert} and its key ({type(err).__name__})"
        ) from None
    return context


def kept_bytes(r: Rejected) -> Rejected:
    """The dead letter with at most MAX_LINE_BYTES of its line (a longer one is `too_large`, and its
    first megabyte says what it was), so that every dead letter fits one Kafka record."""
    return r if len(r.raw) <= MAX_LINE_BYTES else dataclasses.replace(r, raw=r.raw[:MAX_LINE_BYTES])


def gateway_origin(school_id: str) -> str:
    """Where a dead letter the gateway refused came from (the school, over HTTPS)."""
    return f"gateway/{school_id}"


class Sender(Protocol):
    async def send_all(self, records: list[tuple[str, str, bytes]]) -> None:
        """Send (topic, key, value) records and wait until the broker has acknowledged every one."""

    async def close(self) -> None: ...


class BrokerDown(DualtrackError):
    pass


class KafkaSender:
    """aiokafka's idempotent producer, logged in as `gateway`; started at the first send, and again
    after a failure, so a gateway started while the broker is down serves once it is back."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: Any = None
        self._lock = asyncio.Lock()

    async def _started(self) -> Any:
        from aiokafka import AIOKafkaProducer

        from streams.topics import MAX_MESSAGE_BYTES

        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    **gateway_client_options(self.settings), acks="all", enable_idempotence=True,
                    linger_ms=5, max_request_size=MAX_MESSAGE_BYTES, client_id="dualtrack-gateway",
                    request_timeout_ms=int(SEND_SECONDS * 1000),
                )  # fmt: skip
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def send_all(self, records: list[tuple[str, str, bytes]]) -> None:
        from aiokafka.errors import KafkaError

        producer = None
        try:
            producer = await self._started()
            futures = [await producer.send(t, value=v, key=k.encode()) for t, k, v in records]
            await asyncio.wait_for(asyncio.gather(*futures), SEND_SECONDS)
        except (KafkaError, OSError, TimeoutError) as err:
            await self._reset(producer)
            raise BrokerDown(type(err).__name__) from None

    async def _reset(self, failed: Any) -> None:
        """Stop the producer that failed, unless another request has already replaced it."""
        async with self._lock:
            if failed is None or self._producer is not failed:
                return
            self._producer = None
        with contextlib.suppress(Exception):
            await failed.stop()

    async def close(self) -> None:
        await self._reset(self._producer)


class StorePool:
    """Stores used from threads, one caller each at a time (a client connection is not shared)."""

    def __init__(self, factory: Callable[[], Store], size: int) -> None:
        self.factory, self.size = factory, size
        self._free: asyncio.Queue[Store] | None = None
        self._made = 0

    async def run(self, work: Callable[[Store], T]) -> T:
        if self._free is None:
            self._free = asyncio.Queue()
        if self._free.empty() and self._made < self.size:
            self._made += 1
            try:
                store = await asyncio.to_thread(self.factory)
            except BaseException:
                self._made -= 1
                raise
        else:
            store = await self._free.get()
        try:
            return await asyncio.to_thread(work, store)
        finally:
            self._free.put_nowait(store)

    def close(self) -> None:
        while self._free is not None and not self._free.empty():
            self._free.get_nowait().close()


class TokenBook:
    """The schools' live tokens, read from the store at most every TOKEN_REFRESH_SECONDS."""

    def __init__(self, pool: StorePool, clock: Callable[[], float] = time.monotonic) -> None:
        self.pool, self.clock = pool, clock
        self._schools: dict[str, str] = {}
        self._read_at = self._failed_at = -math.inf
        self._lock = asyncio.Lock()

    async def _refresh(self, older_than: float) -> None:
        async with self._lock:
            if self.clock() - self._failed_at < TOKEN_MISS_SECONDS:  # the store was away a moment ago
                raise StoreError("the store did not answer for the tokens a moment ago")
            if self.clock() - self._read_at >= older_than:
                try:
                    self._schools = await self.pool.run(lambda st: SchoolTokens(st).current())
                except DualtrackError:
                    self._failed_at = self.clock()
                    raise
                self._read_at = self.clock()

    async def school_of(self, token: str) -> str | None:
        digest = token_hash(token)
        await self._refresh(TOKEN_REFRESH_SECONDS)
        if digest not in self._schools:
            await self._refresh(TOKEN_MISS_SECONDS)
        return self._schools.get(digest)


def _json(status: int, body: object, headers: dict[str, str] | None = None) -> web.Response:
    import json

    text = json.dumps(_finite(body), ensure_ascii=False, default=_default, allow_nan=False)
    return web.Response(status=status, text=text, content_type="application/json", headers=headers)


def _finite(value: object) -> object:
    """The answer with every NaN or infinity as null (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _default(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(type(value).__name__)


def error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """Every answer but a 200: `{"error": "<one line>"}`, national ID numbers masked (a message may
    quote the request: its path, a number from its body)."""
    return _json(status, {"error": mask_text(message), "status": status}, headers)


def store_away(headers: dict[str, str] | None = None) -> web.Response:
    """The answer while the store cannot be reached (the tokens and the duplicate check wait on it)."""
    return error(503, "the department's store cannot be reached; try again later",
                 {"Retry-After": str(RETRY_AFTER_SECONDS), **(headers or {})})  # fmt: skip


def language(accept: str) -> str:
    """zh-CN or en, whichever the Accept-Language header prefers first; zh-CN when it names neither."""
    ranked = []
    for i, part in enumerate(accept.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            with contextlib.suppress(ValueError):
                q = float(params.strip()[2:])
        ranked.append((-q, i, tag.strip().lower()))
    for _, _, tag in sorted(ranked):
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return "zh-CN"


class Gateway:
    """The gateway's state: tokens, rates, what it sent lately, the store and the broker."""

    def __init__(
        self,
        settings: Settings,
        sender: Sender | None = None,
        store_factory: Callable[[], Store] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not secured(settings):
            raise ConfigError(
                "the gateway writes each school's own intake topic, which a PLAINTEXT broker does not have "
                "(no logins): set DUALTRACK_KAFKA_SECURITY_PROTOCOL to SASL_PLAINTEXT or SASL_SSL"
            )
        self.settings, self.now = settings, now
        self.sender: Sender = sender or KafkaSender(settings)
        embedded = settings.clickhouse_url is None
        # a store that is away answers 503 within seconds (the worker's writes retry far longer)
        quick = settings.model_copy(update={"sink_retry_seconds": min(settings.sink_retry_seconds, 5.0)})
        self.pool = StorePool(store_factory or (lambda: open_store(quick)), 1 if embedded else 4)
        self.tokens = TokenBook(self.pool)
        self.buckets = Buckets(settings.gateway_rate_lines, max(settings.gateway_burst_lines,
                                                                settings.gateway_max_lines))  # fmt: skip
        self.recent = Recent()
        self.dead_topic = settings.topic("dead-letters")
        self._school_locks: dict[str, asyncio.Lock] = {}
        self.counters = {"requests": 0, "refused_logins": 0, "accepted": 0, "duplicates": 0, "rejected": 0,
                         "unavailable": 0}  # fmt: skip

    # --- the application ---------------------------------------------------------------------------

    def app(self) -> web.Application:
        from gateway.openapi import openapi

        spec = openapi()
        app = web.Application(
            middlewares=[self._errors], client_max_size=self.settings.gateway_max_body_bytes
        )
        app.router.add_post("/v1/events", self.post_events, expect_handler=self._expect)
        app.router.add_get("/v1/school", self.get_school)

        async def contract(_: web.Request) -> web.Response:
            return _json(200, spec)

        async def health(_: web.Request) -> web.Response:
            return _json(200, {"status": "ok", **self.counters})

        app.router.add_get("/v1/openapi.json", contract)
        app.router.add_get("/healthz", health)
        app.cleanup_ctx.append(self._lifetime)
        return app

    async def _lifetime(self, _: web.Application) -> AsyncIterator[None]:
        yield
        await self.sender.close()
        self.pool.close()

    @web.middleware
    async def _errors(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self.counters["requests"] += 1
        try:
            return await handler(request)
        except HttpError as err:
            return error(err.status, str(err), err.headers)
        except BodyError as err:
            return error(err.status, str(err))
        except web.HTTPException as err:
            if err.status < 400:
                raise
            if err.status == 404:
                return error(404, f"no such path {request.path[:200]!r}: see /v1/openapi.json")
            if err.status == 405:
                return error(405, f"{request.method} is not allowed on {request.path[:200]}",
                             {"Allow": err.headers.get("Allow", "")})  # fmt: skip
            return error(err.status, err.reason)
        except DualtrackError as err:  # the store: its message names what is wrong, never a secret
            log.warning("gateway: %s", err)
            self.counters["unavailable"] += 1
            return store_away()
        except Exception as err:  # a defect: the school gets one line, the log the type
            log.error("gateway: %s on %s %s", type(err).__name__, request.method, request.path[:200])
            return error(500, "the gateway failed on this request (a defect, logged); nothing was sent")

    async def _school(self, request: web.Request) -> str:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        school = None
        if scheme.lower() == "bearer" and token.strip():
            school = await self.tokens.school_of(token.strip())
        if school is None:
            self.counters["refused_logins"] += 1
            log.warning("gateway: refused a request without a valid token from %s", request.remote)
            raise HttpError(
                401, "a valid token is needed: Authorization: Bearer <the school's token from `schools add`>",
                {"WWW-Authenticate": 'Bearer realm="dualtrack"'},
            )  # fmt: skip
        return school

    def _too_large(self) -> HttpError:
        limit = self.settings.gateway_max_body_bytes
        return HttpError(413, f"the body is larger than {limit} bytes; send fewer events per request",
                         {"Connection": "close"})  # fmt: skip

    async def _expect(self, request: web.Request) -> web.StreamResponse | None:
        """`Expect: 100-continue` (curl's way with a large body): a body over the limit, without a
        live token or over the school's rate is refused before the client sends it; any other is
        asked for. (aiohttp calls this before the middleware: its refusals are made here.)"""
        try:
            if request.headers.get("Expect", "").lower() != "100-continue":
                raise HttpError(417, "the only expectation taken is 100-continue")
            length = request.content_length
            if length is not None and length > self.settings.gateway_max_body_bytes:
                raise self._too_large()
            school = await self._school(request)
            if (wait := self.buckets.wait(school)) > 0:
                raise self._over_rate(school, wait, {"Connection": "close"})
        except HttpError as err:
            return error(err.status, str(err), {**err.headers, "Connection": "close"})
        except DualtrackError:
            return store_away({"Connection": "close"})
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0
        return None

    async def _body(self, request: web.Request) -> bytes:
        limit = self.settings.gateway_max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise self._too_large()
        chunks: list[bytes] = []
        size = 0

        async def read() -> None:
            nonlocal size
            while chunk := await request.content.read(1 << 16):
                size += len(chunk)
                if size > limit:
                    raise self._too_large()
                chunks.append(chunk)

        try:
            await asyncio.wait_for(read(), self.settings.gateway_body_seconds)
        except (web.RequestPayloadError, ConnectionResetError, ClientPayloadError) as err:  # a broken body
            raise HttpError(400, f"the body could not be read ({type(err).__name__}): send it again, "
                                 "without Content-Encoding", {"Connection": "close"}) from None  # fmt: skip
        except TimeoutError:
            raise HttpError(408, f"the body did not arrive within {self.settings.gateway_body_seconds:g} s",
                            {"Connection": "close"}) from None  # fmt: skip
        return b"".join(chunks)

    # --- POST /v1/events ------------------------------------------------------------------------------

    async def post_events(self, request: web.Request) -> web.Response:
        school = await self._school(request)
        if (wait := self.buckets.wait(school)) > 0:  # refused before the body is read: a flood costs little
            raise self._over_rate(school, wait, {"Connection": "close"})
        body = await self._body(request)
        try:  # in a thread: a 5 MB body takes a while to split, and other schools are waiting
            lines = await asyncio.to_thread(
                split_body, body, request.headers.get("Content-Type", ""), self.settings.gateway_max_lines
            )
        except BodyError:  # a body refused as a whole costs a full body's worth of the school's rate
            self.buckets.take(school, self.settings.gateway_max_lines)
            raise
        if (wait := self.buckets.take(school, max(1, len(lines)))) > 0:
            raise self._over_rate(school, wait)
        lock = self._school_locks.setdefault(school, asyncio.Lock())
        async with lock:  # a school's bodies one at a time: each answer knows the bodies before it
            verdict = await self.pool.run(
                lambda st: judge(lines, school, lambda ids: {**self.recent.hashes(school, ids),
                                                             **EventLog(st).hashes_of(ids)})
            )  # fmt: skip
            topic, now = school_topic(self.settings, school), self.now()
            records = [(topic, school, e.raw) for e in verdict.accepted]
            origin = gateway_origin(school)
            records += [(self.dead_topic, school, dead_letter_record(kept_bytes(r), origin, now))
                        for r in verdict.rejected]  # fmt: skip
            try:
                if records:
                    await self.sender.send_all(records)
            except BrokerDown as err:
                self.counters["unavailable"] += 1
                log.warning("gateway: Kafka did not acknowledge school %s's body (%s)", school, err)
                raise HttpError(
                    503, "Kafka did not acknowledge this body's events, so none of it is answered as "
                    "accepted; send the whole body again: events that did reach Kafka are kept once "
                    "(the duplicate rule), so a retry never doubles one",
                    {"Retry-After": str(RETRY_AFTER_SECONDS)},
                ) from None  # fmt: skip
            self.recent.remember(school, [(e.event_id, e.content_hash) for e in verdict.accepted])
        for status, key in (("accepted", "accepted"), ("duplicate", "duplicates"), ("rejected", "rejected")):
            self.counters[key] += verdict.count(status)  # type: ignore[arg-type]
        return _json(200, verdict.summary())

    def _over_rate(self, school: str, wait: float, headers: dict[str, str] | None = None) -> HttpError:
        return HttpError(
            429, f"school {school} is over its rate of {self.settings.gateway_rate_lines:g} events per "
            "second; wait Retry-After seconds and send the body again",
            {"Retry-After": str(max(1, math.ceil(wait))), **(headers or {})},
        )  # fmt: skip

    # --- GET /v1/school -------------------------------------------------------------------------------

    async def get_school(self, request: web.Request) -> web.Response:
        from gateway.view import school_view

        school = await self._school(request)
        lang = language(request.headers.get("Accept-Language", ""))
        origins = [school_topic(self.settings, school), gateway_origin(school)]
        body = await self.pool.run(lambda st: school_view(st, school, origins, self.now(), lang, VIEW_DAYS))
        return _json(200, body, {"Content-Language": lang, "Vary": "Accept-Language"})
