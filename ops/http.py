"""The HTTP apps: the command API, the query API and the BFF, wired to the platform's adapters."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote
from uuid import UUID

import httpx
import redis.asyncio as redis
from litestar import Litestar, Request, Response, Router, get
from litestar.config.app import AppConfig
from litestar.exceptions import ServiceUnavailableException, TooManyRequestsException, ValidationException
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import Counter

from adapters.http.auth import PUBLIC_PATHS, ApiKeyVerifier, AuthenticationMiddleware, requires
from adapters.http.problems import EXCEPTION_HANDLERS, problem_details
from adapters.http.rate_limit import MemoryRateLimiter, RateLimiter, RedisRateLimiter, retry_after
from adapters.http.reveal import RevealSealed
from adapters.http.tokens import LOCAL_ISSUER, KeySource, LocalIssuer, RemoteJwks, TokenVerifier
from adapters.idempotency import PostgresIdempotencyStore
from commands.api import CommandApi, api_key_api, bff_command_api, budget_api, command_api
from domain.access.roles import Principal
from ops.bootstrap import Platform
from ops.settings import Settings
from projections import workflows
from projections.api import query_api
from projections.bff import bff_routes

Part = Literal["command", "query", "bff"]
ALL_PARTS: tuple[Part, ...] = ("command", "query", "bff")


COMMANDS = Counter("aiwp_commands_total", "Commands received by the APIs", ["method", "status"])
CONFLICTS = Counter(
    "aiwp_command_conflicts_total", "Commands that lost a concurrent write (409) or a stale If-Match (412)"
)
WRITES = frozenset({"POST", "PUT", "DELETE"})


class CommandMetrics:
    """Counts the writes by method and answer, and the conflicts among them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = str(scope.get("method", ""))
        if method not in WRITES or not scope.get("path", "").startswith(("/v1/", "/api/v1/")):
            await self.app(scope, receive, send)
            return

        async def counting(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = int(message["status"])
                COMMANDS.labels(method, str(status)).inc()
                if status in (409, 412):
                    CONFLICTS.inc()
            await send(message)

        await self.app(scope, receive, counting)


class ConfigurationError(ValueError):
    """Settings that cannot work together, named in one line."""


@dataclass
class Edge:
    """What every API shares: who the caller is, and how often they may call."""

    tokens: TokenVerifier
    limiter: RateLimiter
    local_issuer: LocalIssuer | None
    redis: redis.Redis | None
    http: httpx.AsyncClient

    async def close(self) -> None:
        await self.http.aclose()
        if self.redis is not None:
            await self.redis.aclose()


def local_issuer(settings: Settings) -> LocalIssuer:
    return LocalIssuer(Path(settings.data_dir) / "local-issuer-key.json")


async def build_edge(settings: Settings) -> Edge:
    client = httpx.AsyncClient()
    issuer: LocalIssuer | None = None
    keys: KeySource
    if settings.oidc_issuer:
        jwks_url = settings.oidc_jwks_url or await discover_jwks(client, settings.oidc_issuer)
        keys = RemoteJwks(jwks_url, client, min_interval=settings.oidc_jwks_refetch_seconds)
        issuer_name = settings.oidc_issuer
    else:
        issuer = keys = local_issuer(settings)
        issuer_name = LOCAL_ISSUER
    tokens = TokenVerifier(
        keys,
        issuer=issuer_name,
        audience=settings.oidc_audience,
        algorithms=[a.strip() for a in settings.oidc_algorithms.split(",") if a.strip()],
        tenant_claim=settings.oidc_tenant_claim,
    )
    redis_client = (
        redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2) if settings.redis_url else None
    )
    limiter: RateLimiter = RedisRateLimiter(redis_client) if redis_client else MemoryRateLimiter()
    return Edge(tokens=tokens, limiter=limiter, local_issuer=issuer, redis=redis_client, http=client)


async def discover_jwks(client: httpx.AsyncClient, issuer: str) -> str:
    """The JWKS URL from the issuer's OpenID configuration (Keycloak's certs endpoint if that fails)."""
    try:
        response = await client.get(f"{issuer.rstrip('/')}/.well-known/openid-configuration", timeout=5.0)
        response.raise_for_status()
        return str(response.json()["jwks_uri"])
    except (httpx.HTTPError, KeyError, ValueError):
        return f"{issuer.rstrip('/')}/protocol/openid-connect/certs"


def check_binding(settings: Settings, host: str) -> None:
    """Without an OIDC issuer, tokens are signed by a local key: such a server listens on loopback only."""
    if settings.oidc_issuer:
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ConfigurationError(
            f"without AIWP_OIDC_ISSUER the API signs its own tokens and may only listen on 127.0.0.1, not {host}"
        )


def build_app(platform: Platform, edge: Edge, parts: Sequence[Part] = ALL_PARTS) -> Litestar:
    settings = platform.settings
    routes: list[Any] = []
    bff: list[Any] = []
    if "command" in parts:
        api = CommandApi(
            store=platform.store, idempotency=PostgresIdempotencyStore(platform.pool), clock=lambda: datetime.now(UTC)
        )
        routes += command_api(api, guards=[requires("commands:write")])
        routes += api_key_api(api, guards=[requires("api-keys:manage")])
        routes += budget_api(api, guards=[requires("budgets:manage")])
    if "bff" in parts:

        async def find_template(tenant_id: str, name: str, position: int | None) -> UUID | None:
            if position is not None and not await platform.wait_for(position, timeout=5.0, names=["workflows"]):
                raise ServiceUnavailableException(
                    detail=f"the read models have not reached position {position} yet", headers={"Retry-After": "1"}
                )
            async with platform.pool.acquire() as conn:
                return await workflows.find_template_by_name(conn, tenant_id, name)

        bff_api = CommandApi(
            store=platform.store, idempotency=PostgresIdempotencyStore(platform.pool), clock=lambda: datetime.now(UTC)
        )
        bff += bff_command_api(bff_api, find_template, guards=[requires("commands:write")])
        bff += bff_routes(platform.pool, guards=[requires("reads")])
    if "query" in parts:

        async def wait_for(position: int, names: Sequence[str]) -> bool:
            return await platform.wait_for(position, timeout=5.0, names=names)

        routes += query_api(
            platform.pool,
            wait_for,
            guards=[requires("reads")],
            audit_guards=[requires("reads"), requires("audit:read")],
        )

    limits = settings.rate_limit_per_subject, settings.rate_limit_per_tenant, settings.rate_limit_window_seconds

    async def rate_limit(request: Request[Any, Any, Any]) -> None:
        # PostgreSQL text cannot hold NUL: refuse it at the edge rather than fail deep inside.
        if "\x00" in request.url.path or "\x00" in unquote(request.url.query or ""):
            raise ValidationException("the path and query may not contain NUL characters")
        principal = request.scope.get("user")
        if not isinstance(principal, Principal):
            return
        per_subject, per_tenant, window = limits
        wait = await edge.limiter.hit(
            [
                (f"aiwp:rl:{principal.tenant_id}:{principal.subject}", per_subject, window),
                (f"aiwp:rl:{principal.tenant_id}", per_tenant, window),
            ]
        )
        if wait > 0:
            raise TooManyRequestsException(
                detail="too many requests; slow down", headers={"Retry-After": retry_after(wait)}
            )

    @get("/health/live", summary="The process is up", include_in_schema=False)
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @get("/health/ready", summary="Database, broker, Redis and projections are usable", include_in_schema=False)
    async def ready() -> Response[dict[str, Any]]:
        checks = await readiness(platform, edge)
        ok = all(value == "ok" for value in checks.values())
        return Response({"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)

    prometheus = PrometheusConfig(app_name="aiwp", prefix="aiwp", group_path=True, exclude=["/metrics"])
    auth = DefineMiddleware(
        AuthenticationMiddleware,
        tokens=edge.tokens,
        api_keys=ApiKeyVerifier(platform.store),
        exclude=[f"^{path}" for path in PUBLIC_PATHS],
    )
    return Litestar(
        route_handlers=[
            Router(path="/v1", route_handlers=routes),
            Router(path="/api/v1", route_handlers=bff),
            live,
            ready,
            PrometheusController,
        ],
        middleware=[prometheus.middleware, CommandMetrics, *_revealing(platform), auth],
        before_request=rate_limit,
        plugins=[problem_details()],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        openapi_config=OpenAPIConfig(
            title="aiwp",
            version="0.1.0",
            path="/schema",
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT"),
                    "api_key": SecurityScheme(type="apiKey", name="X-API-Key", security_scheme_in="header"),
                }
            ),
            security=[{"bearer": []}, {"api_key": []}],
        ),
        debug=False,
        on_app_init=[_quiet],
    )


def _revealing(platform: Platform) -> list[DefineMiddleware]:
    """Answers open the sealed personal data they hold (ADR 0008); outside `auth`, so it sees the caller."""
    return [DefineMiddleware(RevealSealed, keyring=platform.keyring)] if platform.keyring is not None else []


def _quiet(config: AppConfig) -> AppConfig:
    config.logging_config = None
    return config


async def readiness(platform: Platform, edge: Edge) -> dict[str, str]:
    checks: dict[str, str] = {}
    try:
        async with platform.pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
        checks["database"] = "ok"
    except Exception as error:  # readiness reports, it does not raise
        checks["database"] = f"unavailable: {type(error).__name__}"
    if edge.redis is not None:
        try:
            await edge.redis.ping()
            checks["redis"] = "ok"
        except Exception as error:  # readiness reports, it does not raise
            checks["redis"] = f"unavailable: {type(error).__name__}"
    checks["broker"] = "ok" if await platform.bus.healthy() else "unavailable"
    stalled = [p.name for p in platform.projectors.values() if (await p.status()).status == "stalled"]
    checks["projections"] = "ok" if not stalled else f"stalled: {', '.join(stalled)}"
    return checks
