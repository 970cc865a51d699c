"""One finished `examples/support-triage.yaml` instance in a schema of its own, for the forensic commands' tests.

The demo's scripted replies make the first draft fail its check, so the instance has a retried step, two
validations, three runs and an approval.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from rich.console import Console

from ops.bootstrap import open_platform, running_workers
from ops.demo import REPLIES_FILE, TENANT, run_demo
from ops.settings import Settings

AIWP = Path(sys.executable).with_name("aiwp")


@dataclass(frozen=True)
class DemoInstance:
    instance_id: UUID
    database_url: str
    schema: str

    def env(self, **extra: str) -> dict[str, str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("AIWP_") and not k.endswith("_API_KEY")}
        return (
            clean
            | {
                "AIWP_DATABASE_URL": self.database_url,
                "AIWP_DATABASE_SCHEMA": self.schema,
                "AIWP_SCRIPTED_REPLIES": str(REPLIES_FILE),
                "COLUMNS": "240",
            }
            | extra
        )

    async def connect(self) -> asyncpg.Connection:
        conn = await asyncpg.connect(self.database_url)
        await conn.execute(f'SET search_path TO "{self.schema}"')
        return conn


@pytest.fixture
async def demo_instance(database_url: str, pg_schema: str) -> DemoInstance:
    settings = Settings(database_url=database_url, database_schema=pg_schema, scripted_replies=str(REPLIES_FILE))
    async with (
        open_platform(settings, {}) as platform,
        running_workers(platform, agents=True, validation=True, orchestrator=True),
    ):
        instance_id, position = await run_demo(platform, Console(file=io.StringIO()), {})
        assert await platform.wait_for(position, timeout=30)
    return DemoInstance(instance_id, database_url, pg_schema)


def aiwp(*args: str, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(AIWP), *args], env=environ, capture_output=True, text=True, timeout=120, check=False)


def document(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


__all__ = ["TENANT", "DemoInstance", "aiwp", "demo_instance", "document"]
