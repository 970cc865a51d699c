"""Under CI=true an unreachable PostgreSQL fails the run; it never turns into a silent skip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NEEDS_POSTGRES = "tests/adapters/test_concurrent_writers.py"


def run_pytest(ci: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"CI": ci, "AIWP_TEST_DATABASE_URL": "postgresql://postgres@127.0.0.1:9/none"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-rs", NEEDS_POSTGRES],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_under_ci_a_missing_postgres_fails() -> None:
    result = run_pytest("true")
    assert result.returncode == 1, result.stdout
    assert "is unreachable" in result.stdout


def test_outside_ci_a_missing_postgres_skips() -> None:
    result = run_pytest("")
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout, result.stdout
