"""The README's first command, as a user runs it: `aiwp demo` on an embedded PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

AIWP = Path(sys.executable).with_name("aiwp")


def run_aiwp(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIWP_")}
    return subprocess.run([str(AIWP), *args], env=clean | env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.e2e
def test_the_demo_runs_a_workflow_on_embedded_postgres_and_stops_it(tmp_path: Path) -> None:
    result = run_aiwp("demo", env={"AIWP_DATA_DIR": str(tmp_path), "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "PostgreSQL embedded in" in out
    assert "in-process bus; agents on scripted/scripted-1" in out
    # examples/support-triage.yaml, live: the first draft fails its check and goes back with the feedback.
    for line in (
        "classify completed: {'category': 'billing', 'urgency': 'high'}",
        "check sends draft back: score 0.60 against threshold 0.80: failed",
        "draft started (attempt 2)",
        "check completed: {'passed': True, 'score': 1.0",
        "demo-approver  signal approval",
        "send email to ada@example.com: Re: your billing request",
        "instance completed at version 18",
    ):
        assert line in out, line
    assert "read models (query side)" in out
    assert "support-triage v1: completed" in out
    assert "hash-chained" in out
    assert not (tmp_path / "pgdata" / "postmaster.pid").exists(), "the embedded server was left running"


def test_a_bad_setting_exits_2_with_one_line() -> None:
    result = run_aiwp("demo", env={"AIWP_SNAPSHOT_INTERVAL": "often"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [lines[0]]
    assert lines[0].startswith("aiwp: invalid AIWP_* setting: AIWP_SNAPSHOT_INTERVAL")
    assert "Traceback" not in result.stderr
