"""The HTTP APIs under load from 32 concurrent clients, beside a bare Litestar route under the same client.

    RESULT command_api_post_agents      requests/s (POST /v1/agents), with p50 and p99 latency
    RESULT query_api_get_agent          requests/s (GET /v1/agents/{id}), with p99 latency
    RESULT reference_bare_litestar      requests/s of a route returning a constant, with p99
    RATIO  command_api_post_agents      command rate / reference rate
    RATIO  query_api_get_agent          query rate / reference rate

Each server runs in its own process (uvicorn, one worker); the load client is this process.
Run: `make bench` (or `python -m tests.bench.api`). Uses the machine's PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory

import httpx

from tests.bench.common import DATABASE_URL, percentile, scratch_schema

CLIENTS = 32
SECONDS = float(os.environ.get("AIWP_BENCH_SECONDS", "5"))
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def load(client: httpx.AsyncClient, request: Callable[[httpx.AsyncClient], object]) -> tuple[float, list[float]]:
    """Requests per second and latencies (ms) of CLIENTS loops for SECONDS, after a one-second warm-up."""
    latencies: list[float] = []

    async def loop(until: float, record: bool) -> None:
        while time.perf_counter() < until:
            started = time.perf_counter()
            response = await request(client)  # type: ignore[misc]
            response.raise_for_status()
            if record:
                latencies.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(loop(time.perf_counter() + 1, False) for _ in range(CLIENTS)))
    started = time.perf_counter()
    await asyncio.gather(*(loop(started + SECONDS, True) for _ in range(CLIENTS)))
    return len(latencies) / (time.perf_counter() - started), latencies


def start(args: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{args[0]} did not listen on {port}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)


async def platform_figures(schema: str, data_dir: str) -> dict[str, tuple[float, list[float]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIWP_")} | {
        "AIWP_DATABASE_URL": DATABASE_URL,
        "AIWP_DATABASE_SCHEMA": schema,
        "AIWP_DATA_DIR": data_dir,
        "AIWP_RATE_LIMIT_PER_SUBJECT": "100000000",
        "AIWP_RATE_LIMIT_PER_TENANT": "100000000",
    }
    token = subprocess.run(
        [str(BIN / "aiwp"), "token", "issue", "--role", "admin", "--tenant", "bench"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    body = {"name": "bench", "provider": "scripted", "model": "m"}
    # Each API alone in its process, as `aiwp api command` and `aiwp api query` run in production.
    port = free_port()
    server = start([str(BIN / "aiwp"), "api", "command", "--port", str(port)], env, port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers, limits=limits) as client:
            command = await load(client, lambda c: c.post("/v1/agents", json=body))
            created = (await client.post("/v1/agents", json=body)).json()
    finally:
        stop(server)
    projector = subprocess.Popen(
        [str(BIN / "aiwp"), "worker", "projector", "agents"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    port = free_port()
    server = start([str(BIN / "aiwp"), "api", "query", "--port", str(port)], env, port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers, limits=limits) as client:
            position = {"X-Consistency-Position": str(created["position"])}
            for _ in range(12):  # the projector first catches up with the rows of the command load
                ready = await client.get(f"/v1/agents/{created['id']}", headers=position)
                if ready.status_code == 200:
                    break
            ready.raise_for_status()
            query = await load(client, lambda c: c.get(f"/v1/agents/{created['id']}"))
    finally:
        stop(server)
        stop(projector)
    return {"command": command, "query": query}


async def reference_figures() -> tuple[float, list[float]]:
    port = free_port()
    server = start(
        [str(BIN / "uvicorn"), "tests.bench.bare_app:app", "--port", str(port), "--log-level", "warning"],
        dict(os.environ),
        port,
    )
    try:
        limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as client:
            return await load(client, lambda c: c.get("/constant"))
    finally:
        stop(server)


async def main() -> None:
    with scratch_schema() as schema, TemporaryDirectory() as data_dir:
        figures = await platform_figures(schema, data_dir)
    reference, reference_latencies = await reference_figures()
    command, command_latencies = figures["command"]
    query, query_latencies = figures["query"]
    print(f"RESULT command_api_post_agents {command:.0f} requests/s")
    print(f"RESULT command_api_post_agents_p50 {percentile(command_latencies, 0.5):.1f} ms")
    print(f"RESULT command_api_post_agents_p99 {percentile(command_latencies, 0.99):.1f} ms")
    print(f"RESULT query_api_get_agent {query:.0f} requests/s")
    print(f"RESULT query_api_get_agent_p99 {percentile(query_latencies, 0.99):.1f} ms")
    print(f"RESULT reference_bare_litestar {reference:.0f} requests/s")
    print(f"RESULT reference_bare_litestar_p99 {percentile(reference_latencies, 0.99):.1f} ms")
    print(f"RATIO command_api_post_agents {command / reference:.2f}")
    print(f"RATIO query_api_get_agent {query / reference:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
