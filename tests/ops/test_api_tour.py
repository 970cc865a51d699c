"""docs/api.md's curl tour, run against `aiwp serve` as a reader would run it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ops.test_demo import AIWP
from tests.ops.test_serve import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
def test_the_curl_tour_of_docs_api_runs(tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIWP_")}
    port = free_port()
    env = clean | {
        "AIWP_DATA_DIR": str(tmp_path),
        "API_URL": f"http://127.0.0.1:{port}",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    server = subprocess.Popen(
        [str(AIWP), "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        assert "serving" in server.stdout.readline()
        tour = subprocess.run(
            ["bash", str(ROOT / "docs/examples/api_tour.sh")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert tour.returncode == 0, tour.stdout + tour.stderr
    out = tour.stdout
    assert '"name":"support-writer"' in out
    assert '"model":"scripted-1"' in out  # read at the position of the write
    assert '"version":2' in out  # the If-Match update
    assert '"steps":[{"step_id":"draft"' in out  # the complete view
    # the orchestrator of `aiwp serve` runs the instance meanwhile: it is running or already done
    assert re.search(r'"instances_by_status":\{"(running|completed)":1\}', out), out
    assert '"status":400' in out
    assert '"status":401' in out
    assert '"tokens_per_day":100000' in out  # the budget, read back at the position of its write
