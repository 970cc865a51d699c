"""`aiwp events` as an auditor runs it: one stream, the tail of the log, one position — and bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from adapters.event_store.store import EventSourcedStore
from commands import agents
from tests.conftest import postgres_store
from tests.strategies import Clock

pytestmark = pytest.mark.integration
AIWP = Path(sys.executable).with_name("aiwp")


@pytest.fixture
async def written(database_url: str, pg_schema: str) -> AsyncIterator[tuple[EventSourcedStore, UUID]]:
    store = postgres_store(database_url, pg_schema)
    clock = Clock()
    made = await agents.register_agent(
        store, clock.ctx(), agents.RegisterAgent(name="w", provider="scripted", model="m")
    )
    await agents.archive_agent(store, clock.ctx("bob"), agents.ArchiveAgent(agent_id=made.id, reason="old"))
    yield store, made.id
    await store.close()


def env(database_url: str, schema: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIWP_")}
    return clean | {"AIWP_DATABASE_URL": database_url, "AIWP_DATABASE_SCHEMA": schema, "COLUMNS": "200"}


def aiwp(*args: str, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(AIWP), *args], env=environ, capture_output=True, text=True, timeout=60, check=False)


def lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


async def test_a_stream_shows_its_history_decoded(
    written: tuple[EventSourcedStore, UUID], database_url: str, pg_schema: str
) -> None:
    _, agent_id = written
    result = aiwp("events", "stream", str(agent_id), "--json", environ=env(database_url, pg_schema))
    assert result.returncode == 0, result.stderr
    history = lines(result)
    assert [(e["version"], e["type"], e["actor"]) for e in history] == [
        (1, "AgentRegistered", "alice"),
        (2, "AgentArchived", "bob"),
    ]
    assert history[1]["data"] == {"reason": "old"}
    assert history[0]["position"] < history[1]["position"]
    table = aiwp("events", "stream", str(agent_id), environ=env(database_url, pg_schema))
    assert "AgentArchived" in table.stdout


async def test_the_tail_filters_by_type_and_show_reads_one_position(
    written: tuple[EventSourcedStore, UUID], database_url: str, pg_schema: str
) -> None:
    environ = env(database_url, pg_schema)
    archived = lines(aiwp("events", "tail", "--from", "0", "--type", "*Archived", "--json", environ=environ))
    assert [e["type"] for e in archived] == ["AgentArchived"]
    everything = lines(aiwp("events", "tail", "--count", "1", "--json", environ=environ))
    assert everything == archived
    one = lines(aiwp("events", "show", str(archived[0]["position"]), "--json", environ=environ))
    assert one == archived


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["events", "stream", "not-a-uuid"], "is not a stream id"),
        (["events", "stream", str(uuid4())], "no stream"),
        (["events", "show", "999999"], "no event at position 999999"),
    ],
)
async def test_bad_input_exits_2_with_one_line(
    written: tuple[EventSourcedStore, UUID], database_url: str, pg_schema: str, args: list[str], says: str
) -> None:
    result = aiwp(*args, environ=env(database_url, pg_schema))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert says in result.stderr
    assert "Traceback" not in result.stderr


def test_without_an_event_store_the_commands_exit_2(tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIWP_")}
    result = aiwp("events", "tail", environ=clean | {"AIWP_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert "no embedded event store" in result.stderr


async def test_follow_prints_new_events_until_interrupted(
    written: tuple[EventSourcedStore, UUID], database_url: str, pg_schema: str
) -> None:
    store, _ = written
    follower = subprocess.Popen(
        [str(AIWP), "events", "tail", "--follow", "--json", "--type", "AgentRegistered"],
        env=env(database_url, pg_schema),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        assert json.loads(follower.stdout.readline())["type"] == "AgentRegistered"  # the one already there
        later = await agents.register_agent(
            store, Clock().ctx(), agents.RegisterAgent(name="later", provider="scripted", model="m")
        )
        assert json.loads(follower.stdout.readline())["stream_id"] == str(later.id)
    finally:
        follower.send_signal(signal.SIGINT)
        assert follower.wait(timeout=30) == 0


async def test_replay_aggregate_shows_the_state_as_of_a_position_or_a_time(
    written: tuple[EventSourcedStore, UUID], database_url: str, pg_schema: str
) -> None:
    _, agent_id = written
    environ = env(database_url, pg_schema)
    registered, archived = lines(aiwp("events", "stream", str(agent_id), "--json", environ=environ))

    def state_at(moment: str) -> dict[str, Any]:
        result = aiwp("replay", "aggregate", str(agent_id), "--at", moment, "--json", environ=environ)
        assert result.returncode == 0, result.stderr
        document: dict[str, Any] = json.loads(result.stdout)
        assert document["aggregate"] == "Agent"
        state: dict[str, Any] = document["state"]
        return state

    assert state_at(str(registered["position"]))["archived"] is False
    assert state_at(str(archived["position"]))["archived"] is True
    assert state_at(registered["time"])["version"] == 1  # a time: what had happened by then
    before = aiwp("replay", "aggregate", str(agent_id), "--at", str(registered["position"] - 1), environ=environ)
    assert before.returncode == 2
    assert "did not exist yet" in before.stderr
    bad = aiwp("replay", "aggregate", str(agent_id), "--at", "last tuesday", environ=environ)
    assert bad.returncode == 2
    assert "neither a position nor an ISO 8601 time" in bad.stderr
