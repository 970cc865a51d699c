"""Budgets and per-agent endpoints through the APIs, as an admin and a client see them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import httpx
import pytest

from commands.errors import AggregateNotFound
from domain.agents.agent_run import AgentRun
from domain.agents.budget_ledger import BudgetLedger, ledger_id_of, month_of
from ops.bootstrap import Platform, running_workers
from tests.api.issuer import TestIssuer
from tests.api.test_resources import auth

pytestmark = pytest.mark.integration


async def test_an_admin_sets_the_budget_and_everyone_reads_it_with_its_use(
    client: httpx.AsyncClient, issuer: TestIssuer, platform: Platform
) -> None:
    async with running_workers(platform, agents=True):
        first = await client.put("/v1/budget", json={"tokens_per_day": 100_000}, headers=auth(issuer))
        assert first.status_code == 200, first.text
        assert first.headers["etag"] == '"1"'
        second = await client.put(
            "/v1/budget",
            json={"tokens_per_day": 50_000, "cost_per_month": "12.50"},
            headers=auth(issuer) | {"If-Match": '"1"'},
        )
        assert second.status_code == 200, second.text
        agent = await client.post(
            "/v1/agents", json={"name": "w", "provider": "scripted", "model": "m"}, headers=auth(issuer)
        )
        run = await client.post(
            "/v1/agent-runs", json={"agent_id": agent.json()["id"], "prompt": "hello"}, headers=auth(issuer)
        )
        assert run.status_code == 202, run.text
        position = await settled(platform, "acme")
        consistent = {"X-Consistency-Position": str(position)}
        read = await client.get("/v1/budget", headers=auth(issuer, "viewer") | consistent)
        finished = (await client.get(f"/v1/agent-runs/{run.json()['id']}", headers=auth(issuer) | consistent)).json()
    assert finished["status"] == "succeeded"
    assert read.status_code == 200, read.text
    budget = read.json()
    assert (budget["tokens_per_day"], budget["tokens_per_month"]) == (50_000, None)
    assert Decimal(budget["cost_per_month"]) == Decimal("12.50")
    assert budget["day"]["runs"] == budget["month"]["runs"] == 1
    assert budget["day"]["spent_tokens"] == finished["tokens_in"] + finished["tokens_out"]
    assert budget["day"]["reserved_tokens"] == 0
    assert read.headers["etag"] == '"2"'


async def settled(platform: Platform, tenant: str, timeout: float = 30) -> int:
    """Waits until the worker has settled every run of the tenant's ledger; the position of its last event."""
    ledger_id = ledger_id_of(tenant, month_of(datetime.now(UTC).date()))
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            ledger = await platform.store.get(BudgetLedger, ledger_id)
            if ledger.spent and not ledger.reservations:
                return await platform.store.position_of(ledger_id, ledger.version)
        except AggregateNotFound:
            pass  # no run reserved yet
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the worker settled no run")
        await asyncio.sleep(0.05)


async def refused(platform: Platform, run_id: UUID, timeout: float = 30) -> int:
    """Waits until the worker has refused the run; the position of its refusal."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (run := await platform.store.get(AgentRun, run_id)).status != "refused":
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the run is {run.status}, not refused")
        await asyncio.sleep(0.05)
    return await platform.store.position_of(run_id, run.version)


async def test_a_refused_run_shows_why_and_until_when(
    client: httpx.AsyncClient, issuer: TestIssuer, platform: Platform
) -> None:
    await client.put("/v1/budget", json={"tokens_per_day": 10}, headers=auth(issuer))
    async with running_workers(platform, agents=True):
        agent = await client.post(
            "/v1/agents", json={"name": "w", "provider": "scripted", "model": "m"}, headers=auth(issuer)
        )
        run = await client.post(
            "/v1/agent-runs", json={"agent_id": agent.json()["id"], "prompt": "hello"}, headers=auth(issuer)
        )
        position = await refused(platform, UUID(run.json()["id"]))
        read = await client.get(
            f"/v1/agent-runs/{run.json()['id']}", headers=auth(issuer) | {"X-Consistency-Position": str(position)}
        )
    view = read.json()
    assert view["status"] == "refused"
    assert "the daily token budget is 10" in view["error"]
    assert view["refused_until"] is None  # the run alone is over the limit: waiting cannot help
    assert view["finished_at"] is not None


@pytest.mark.parametrize(
    "body",
    [{"tokens_per_day": -1}, {"cost_per_day": "1e3"}, {"cost_per_day": "0.123456789"}, {"tenant_id": "globex"}],
)
async def test_a_bad_budget_is_a_400_problem(client: httpx.AsyncClient, issuer: TestIssuer, body: object) -> None:
    response = await client.put("/v1/budget", json=body, headers=auth(issuer))
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_stale_if_match_on_the_budget_answers_412(client: httpx.AsyncClient, issuer: TestIssuer) -> None:
    await client.put("/v1/budget", json={}, headers=auth(issuer))
    await client.put("/v1/budget", json={"tokens_per_day": 5}, headers=auth(issuer))
    stale = await client.put("/v1/budget", json={}, headers=auth(issuer) | {"If-Match": '"1"'})
    assert stale.status_code == 412


async def test_no_budget_reads_as_404_saying_how_to_set_one(client: httpx.AsyncClient, issuer: TestIssuer) -> None:
    response = await client.get("/v1/budget", headers=auth(issuer, "viewer"))
    assert response.status_code == 404
    assert "PUT /v1/budget" in response.json()["detail"]


async def test_an_agent_keeps_its_endpoint_fallbacks_and_json_output(
    client: httpx.AsyncClient, issuer: TestIssuer, platform: Platform
) -> None:
    body = {
        "name": "local",
        "provider": "openai_compatible",
        "model": "llama3",
        "base_url": "http://127.0.0.1:11434/v1",
        "fallbacks": [{"provider": "anthropic", "model": "claude-3-5-haiku-latest"}],
        "json_output": True,
    }
    async with running_workers(platform, projections=["agents"], relay=True):
        created = await client.post("/v1/agents", json=body, headers=auth(issuer))
        assert created.status_code == 201, created.text
        read = await client.get(
            f"/v1/agents/{created.json()['id']}",
            headers=auth(issuer) | {"X-Consistency-Position": str(created.json()["position"])},
        )
    agent = read.json()
    assert agent["base_url"] == "http://127.0.0.1:11434/v1"
    assert agent["fallbacks"] == [{"provider": "anthropic", "model": "claude-3-5-haiku-latest", "base_url": None}]
    assert agent["json_output"] is True


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"base_url": "file:///etc/passwd"}, 400),
        ({"fallbacks": [{"provider": "bard", "model": "x"}]}, 400),
        ({"provider": "openai_compatible"}, 422),  # needs the base_url of its server
        ({"base_url": "https://key:secret@llm.example"}, 422),  # credentials belong in the secrets store
    ],
)
async def test_a_bad_endpoint_is_refused(
    client: httpx.AsyncClient, issuer: TestIssuer, changes: dict[str, object], status: int
) -> None:
    body = {"name": "x", "provider": "openai", "model": "m"} | changes
    response = await client.post("/v1/agents", json=body, headers=auth(issuer))
    assert response.status_code == status, response.text
