"""`aiwp serve` runs the workers in one process and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.ops.test_demo import AIWP, run_aiwp


@pytest.mark.e2e
def test_serve_starts_on_embedded_postgres_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {"AIWP_DATA_DIR": str(tmp_path)}
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIWP_")}
    process = subprocess.Popen(
        [str(AIWP), "serve"], env=clean | env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until serve says it is up
        assert "aiwp serving: relay and 12 projectors on the in-process bus" in line
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert not (tmp_path / "pgdata" / "postmaster.pid").exists()
    status = run_aiwp("projections", "status", "--json", env=env)
    assert status.returncode == 0, status.stderr
    assert '"name":"audit_events"' in status.stdout
