"""What the benchmarks share: a schema and a RabbitMQ virtual host of their own, and a platform on them."""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import psutil
import psycopg
from psycopg import sql

from ops.bootstrap import Platform, open_platform
from ops.settings import Settings

DATABASE_URL = os.environ.get("AIWP_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
AMQP_URL = os.environ.get("AIWP_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@contextmanager
def scratch_schema() -> Iterator[str]:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield schema
    finally:
        with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@contextmanager
def scratch_vhost() -> Iterator[str]:
    vhost = f"aiwp-bench-{uuid.uuid4().hex[:8]}"
    for args in (["add_vhost", vhost], ["set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"]):
        subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True)
    try:
        yield AMQP_URL.rstrip("/") + "/" + vhost
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=False, capture_output=True)


@asynccontextmanager
async def bench_platform(schema: str, amqp_url: str | None) -> AsyncIterator[Platform]:
    settings = Settings(
        database_url=DATABASE_URL, database_schema=schema, amqp_url=amqp_url, db_pool_size=8, read_pool_size=8
    )
    async with open_platform(settings) as platform:
        yield platform


class CpuLedger:
    """CPU seconds that the platform, the LLM server, PostgreSQL and RabbitMQ spend over a stretch of time.

    A benchmark on a machine that all of them share is bound by the sum: the ledger says where a figure's
    CPU went, and so how many per second the machine's cores could give at best.
    """

    def __init__(self, parts: dict[str, list[int]]) -> None:
        self._parts = {part: [psutil.Process(pid) for pid in pids] for part, pids in parts.items()}

    @staticmethod
    def _spent(process: psutil.Process, *, reaped: bool) -> float:
        times = process.cpu_times()
        spent: float = times.user + times.system
        if reaped:  # a server's exited children (closed connections) are counted once reaped
            spent += times.children_user + times.children_system
        return spent

    def _server(self, name: str) -> float:
        """A server's whole tree: its main process, the children it has, and those it reaped."""
        spent = 0.0
        for process in psutil.process_iter(["name"]):
            try:
                parent = process.parent()
                if process.info["name"] == name and (parent is None or parent.name() != name):
                    spent += self._spent(process, reaped=True)
                    for child in process.children(recursive=True):
                        with contextlib.suppress(psutil.NoSuchProcess):  # it ended: counted once reaped
                            spent += self._spent(child, reaped=False)
            except psutil.NoSuchProcess:
                continue
        return spent

    def read(self) -> dict[str, float]:
        own = {part: sum(self._spent(p, reaped=False) for p in processes) for part, processes in self._parts.items()}
        return own | {"postgresql": self._server("postgres"), "rabbitmq": self._server("beam.smp")}

    @staticmethod
    def between(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        return {part: after[part] - before[part] for part in before}


def print_cpu(figure: str, spent: dict[str, float], units: int, unit: str) -> None:
    """CPU ms per unit of work by process, and the rate the machine's cores allow if all of them are kept busy."""
    cores = os.cpu_count() or 1
    for part, seconds in spent.items():
        print(f"RESULT cpu_per_{unit}_{figure}_{part} {1000 * seconds / units:.1f} ms")
    print(f"RESULT cpu_bound_{figure} {cores * units / sum(spent.values()):.0f} {unit}s/s ({cores} cores)")
