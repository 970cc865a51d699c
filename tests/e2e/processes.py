"""Workers started as a user starts them (`aiwp worker ...`), and killed the hard way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

AIWP = Path(sys.executable).with_name("aiwp")


def worker_env(database_url: str, schema: str, amqp_url: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIWP_")}
    return clean | {
        "AIWP_DATABASE_URL": database_url,
        "AIWP_DATABASE_SCHEMA": schema,
        "AIWP_AMQP_URL": amqp_url,
        "AIWP_DB_POOL_SIZE": "4",
        "AIWP_READ_POOL_SIZE": "4",
    }


def start_worker(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    return subprocess.Popen([str(AIWP), *args], env=env, stdout=handle, stderr=subprocess.STDOUT)


def kill_hard(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        kill_hard(process)
        return -9
