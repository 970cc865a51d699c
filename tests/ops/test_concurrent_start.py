"""Processes started together on a new schema: one at a time creates the store, none of them fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
AIWP = Path(sys.executable).with_name("aiwp")


def test_four_processes_starting_together_on_a_new_schema_all_start(database_url: str, pg_schema: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIWP_")} | {
        "AIWP_DATABASE_URL": database_url,
        "AIWP_DATABASE_SCHEMA": pg_schema,
    }
    processes = [
        subprocess.Popen(
            [str(AIWP), "projections", "status"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        for _ in range(4)
    ]
    failures = [p.communicate(timeout=120)[1].decode()[-500:] for p in processes if p.wait(timeout=120) != 0]
    assert failures == []
