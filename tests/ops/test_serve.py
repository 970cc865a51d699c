"""`aiwp serve` as a user runs it: the APIs and workers in one process, a local token, SIGTERM to stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest

from projections.catalog import PROJECTIONS
from tests.ops.test_demo import AIWP, run_aiwp


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.e2e
def test_serve_answers_an_authenticated_request_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {"AIWP_DATA_DIR": str(tmp_path)}
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIWP_")}
    port = free_port()
    process = subprocess.Popen(
        [str(AIWP), "serve", "--port", str(port)],
        env=clean | env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until serve says it is up
        assert f"the relay and {len(PROJECTIONS)} projectors on the in-process bus" in line, process.stderr
        token = run_aiwp("token", "issue", "--role", "admin", "--tenant", "demo", env=env).stdout.strip()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/agents",
            data=json.dumps({"name": "writer", "provider": "scripted", "model": "m"}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201
            assert json.loads(response.read())["version"] == 1
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert not (tmp_path / "pgdata" / "postmaster.pid").exists()


def test_without_an_issuer_the_api_refuses_to_listen_beyond_loopback(tmp_path: Path) -> None:
    result = run_aiwp("api", "query", "--host", "0.0.0.0", env={"AIWP_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert "may only listen on 127.0.0.1" in result.stderr
