"""An API app on the machine's PostgreSQL (a schema of the test's own), behind a local OIDC issuer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from litestar import Litestar

from ops.bootstrap import Platform, open_platform
from ops.http import build_app, build_edge
from ops.settings import Settings
from tests.api.issuer import AUDIENCE, TestIssuer


@pytest.fixture
def issuer() -> Iterator[TestIssuer]:
    made = TestIssuer()
    yield made
    made.stop()


def api_settings(database_url: str, schema: str, issuer: TestIssuer, tmp_path: Path, **extra: object) -> Settings:
    return Settings(
        database_url=database_url,
        database_schema=schema,
        data_dir=str(tmp_path),
        oidc_issuer=issuer.url,
        oidc_audience=AUDIENCE,
        oidc_jwks_refetch_seconds=0.0,
        db_pool_size=6,
        read_pool_size=6,
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
async def platform(database_url: str, pg_schema: str, issuer: TestIssuer, tmp_path: Path) -> AsyncIterator[Platform]:
    async with open_platform(api_settings(database_url, pg_schema, issuer, tmp_path)) as made:
        yield made


@pytest.fixture
async def app(platform: Platform) -> AsyncIterator[Litestar]:
    edge = await build_edge(platform.settings)
    yield build_app(platform, edge)
    await edge.close()


def asgi_client(app: Litestar) -> httpx.AsyncClient:
    """An HTTP client speaking ASGI to the app in this event loop (where the platform's pools live)."""
    transport = httpx.ASGITransport(app=cast(Any, app))
    return httpx.AsyncClient(transport=transport, base_url="http://aiwp.test")


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as made:
        yield made
