"""Writes through the command API, reads through the query API and the BFF, as a client sees them."""

from __future__ import annotations

import httpx
import pytest

from ops.bootstrap import Platform, running_workers
from tests.api.issuer import TestIssuer

pytestmark = pytest.mark.integration
DEFINITION = {
    "inputs": ["ticket"],
    "steps": [
        {
            "id": "draft",
            "kind": "agent",
            "params": {"agent": "support-writer", "prompt": "Reply to {{ inputs.ticket }}"},
        },
        {
            "id": "send",
            "kind": "notify",
            "needs": ["draft"],
            "params": {"channel": "email", "recipient": "ada@example.com", "template": "{{ outputs.draft }}"},
        },
    ],
}


def auth(issuer: TestIssuer, role: str = "admin", tenant: str = "acme") -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.for_role(role, tenant)}"}


async def test_read_your_writes_with_the_consistency_position(
    client: httpx.AsyncClient, issuer: TestIssuer, platform: Platform
) -> None:
    async with running_workers(platform):
        created = await client.post(
            "/v1/agents", json={"name": "writer", "provider": "scripted", "model": "m"}, headers=auth(issuer)
        )
        assert created.status_code == 201
        body = created.json()
        read = await client.get(
            f"/v1/agents/{body['id']}",
            headers=auth(issuer, "viewer") | {"X-Consistency-Position": str(body["position"])},
        )
    assert read.status_code == 200, read.text
    assert read.json()["name"] == "writer"
    assert read.headers["etag"] == '"1"'


async def test_a_position_not_reached_in_time_answers_503_with_retry_after(
    client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    created = await client.post(
        "/v1/agents", json={"name": "w", "provider": "scripted", "model": "m"}, headers=auth(issuer)
    )
    # No projector runs in this test: the read model never reaches the position.
    read = await client.get(
        "/v1/agents", headers=auth(issuer) | {"X-Consistency-Position": str(created.json()["position"])}
    )
    assert read.status_code == 503
    assert read.headers["retry-after"] == "1"


async def test_an_update_with_a_stale_if_match_answers_412(client: httpx.AsyncClient, issuer: TestIssuer) -> None:
    created = await client.post(
        "/v1/agents", json={"name": "w", "provider": "scripted", "model": "m"}, headers=auth(issuer)
    )
    agent = created.json()["id"]
    change = {"provider": "openai", "model": "gpt"}
    first = await client.put(f"/v1/agents/{agent}", json=change, headers=auth(issuer) | {"If-Match": '"1"'})
    assert first.status_code == 200
    assert first.headers["etag"] == '"2"'
    stale = await client.put(f"/v1/agents/{agent}", json=change, headers=auth(issuer) | {"If-Match": '"1"'})
    assert stale.status_code == 412
    assert "at version 2" in stale.json()["detail"]


async def test_a_refused_command_is_a_422_problem_listing_every_reason(
    client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    write = {"agent": "w", "prompt": "Write."}
    cyclic = {
        "steps": [
            {"id": "a", "kind": "agent", "needs": ["b"], "params": write},
            {"id": "b", "kind": "agent", "needs": ["a"], "params": write},
        ]
    }
    response = await client.post(
        "/v1/workflow-templates", json={"name": "t", "definition": cyclic}, headers=auth(issuer)
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["problems"][0].startswith("steps form a cycle")


async def test_an_api_key_works_until_it_is_revoked(client: httpx.AsyncClient, issuer: TestIssuer) -> None:
    issued = await client.post("/v1/api-keys", json={"name": "ci", "roles": ["operator"]}, headers=auth(issuer))
    assert issued.status_code == 201
    key, key_id = issued.json()["key"], issued.json()["id"]
    made = await client.post(
        "/v1/agents", json={"name": "by-key", "provider": "scripted", "model": "m"}, headers={"X-API-Key": key}
    )
    assert made.status_code == 201
    denied = await client.post("/v1/api-keys", json={"name": "x", "roles": ["admin"]}, headers={"X-API-Key": key})
    assert denied.status_code == 403  # an operator key cannot mint keys
    assert (await client.delete(f"/v1/api-keys/{key_id}", headers=auth(issuer))).status_code == 200
    revoked = await client.get("/v1/agents", headers={"X-API-Key": key})
    assert revoked.status_code == 401
    forged = await client.get("/v1/agents", headers={"X-API-Key": key[:-4] + "AAAA"})
    assert forged.status_code == 401


async def test_the_bff_starts_an_instance_by_name_and_shows_it_complete(
    client: httpx.AsyncClient, issuer: TestIssuer, platform: Platform
) -> None:
    async with running_workers(platform):
        template = await client.post(
            "/v1/workflow-templates", json={"name": "triage", "definition": DEFINITION}, headers=auth(issuer)
        )
        assert await platform.wait_for(template.json()["position"])
        started = await client.post(
            "/api/v1/workflows/execute", json={"template": "triage", "inputs": {"ticket": "t"}}, headers=auth(issuer)
        )
        assert started.status_code == 202, started.text
        instance = started.json()
        assert await platform.wait_for(instance["position"])
        view = await client.get(f"/api/v1/workflows/{instance['id']}/complete", headers=auth(issuer, "viewer"))
        dashboard = await client.get("/api/v1/dashboard", headers=auth(issuer, "viewer"))
        elsewhere = await client.get(
            f"/api/v1/workflows/{instance['id']}/complete", headers=auth(issuer, "admin", "globex")
        )
        unknown = await client.post("/api/v1/workflows/execute", json={"template": "nope"}, headers=auth(issuer))
    assert view.status_code == 200
    assert [s["step_id"] for s in view.json()["steps"]] == ["draft", "send"]
    assert view.json()["instance"]["status"] == "running"
    assert dashboard.json()["instances_by_status"] == {"running": 1}
    assert elsewhere.status_code == 404
    assert unknown.status_code == 404


async def test_health_and_metrics_need_no_token_and_count_commands(
    client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    created = await client.post(
        "/v1/agents", json={"name": "m", "provider": "scripted", "model": "m"}, headers=auth(issuer)
    )
    agent = created.json()["id"]
    await client.put(
        f"/v1/agents/{agent}", json={"provider": "openai", "model": "x"}, headers=auth(issuer) | {"If-Match": '"9"'}
    )
    assert (await client.get("/health/live")).json() == {"status": "ok"}
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok", "projections": "ok"}
    metrics = (await client.get("/metrics")).text
    assert 'aiwp_commands_total{method="POST",status="201"}' in metrics
    assert "aiwp_command_conflicts_total" in metrics
    assert "aiwp_requests_total" in metrics


async def test_lists_page_with_cursors_and_filters(
    client: httpx.AsyncClient, issuer: TestIssuer, platform: Platform
) -> None:
    created = [
        await client.post(
            "/v1/agents", json={"name": f"a{i}", "provider": "scripted", "model": "m"}, headers=auth(issuer)
        )
        for i in range(5)
    ]
    await platform.projectors["agents"].catch_up()
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/agents", params=params, headers=auth(issuer))).json()
        seen += [item["name"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"a{i}" for i in range(5)]
    assert pages == 3
    assert {r.json()["id"] for r in created} == {
        item["agent_id"] for item in (await client.get("/v1/agents", headers=auth(issuer))).json()["items"]
    }
    bad = await client.get("/v1/agents", params={"cursor": "not-ours"}, headers=auth(issuer))
    assert bad.status_code == 400
    runs = await client.get("/v1/agent-runs", params={"status": "succeeded"}, headers=auth(issuer))
    assert runs.json() == {"items": [], "next_cursor": None}
