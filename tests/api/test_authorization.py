"""Every route × {admin, operator, viewer, auditor} × {own tenant, other tenant}: no unexpected 2xx."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from ops.bootstrap import Platform
from tests.api.issuer import TestIssuer

pytestmark = pytest.mark.integration

ROLES = ("admin", "operator", "viewer", "auditor")
PERMITS = {
    "write": {"admin", "operator"},
    "read": {"admin", "operator", "viewer", "auditor"},
    "audit": {"admin", "auditor"},
    "keys": {"admin"},
    "budget": {"admin"},
}
DEFINITION = {
    "steps": [
        {"id": "draft", "kind": "agent", "params": {"agent": "w", "prompt": "Write."}},
        {
            "id": "send",
            "kind": "notify",
            "needs": ["draft"],
            "params": {"channel": "email", "recipient": "a", "template": "b"},
        },
    ]
}


async def seed(client: httpx.AsyncClient, issuer: TestIssuer) -> dict[str, str]:
    """Resources of tenant acme, made by its admin."""
    headers = {"Authorization": f"Bearer {issuer.for_role('admin')}"}

    async def post(path: str, body: dict[str, Any]) -> str:
        response = await client.post(path, json=body, headers=headers)
        assert response.status_code in (201, 202), response.text
        return str(response.json()["id"])

    ids: dict[str, str] = {}
    ids["agent"] = await post("/v1/agents", {"name": "w", "provider": "scripted", "model": "m"})
    ids["run"] = await post("/v1/agent-runs", {"agent_id": ids["agent"], "prompt": "hi"})
    ids["ruleset"] = await post(
        "/v1/rulesets", {"name": "r", "threshold": 0.5, "rules": [{"id": "pii", "kind": "pii"}]}
    )
    ids["validation"] = await post(
        "/v1/validations", {"ruleset_id": ids["ruleset"], "subject_type": "t", "subject_id": "1", "output": "x"}
    )
    ids["template"] = await post("/v1/workflow-templates", {"name": "t", "definition": DEFINITION})
    ids["instance"] = await post("/v1/workflow-instances", {"template_id": ids["template"]})
    ids["key"] = (await client.post("/v1/api-keys", json={"name": "k", "roles": ["viewer"]}, headers=headers)).json()[
        "id"
    ]
    budget = await client.put("/v1/budget", json={"tokens_per_day": 1_000_000}, headers=headers)
    assert budget.status_code == 200, budget.text
    return ids


def routes(ids: dict[str, str]) -> list[tuple[str, str, str, dict[str, Any] | None, bool]]:
    """(method, path, permission, body, names one of acme's resources)."""
    agent = {"provider": "scripted", "model": "m2"}
    rules = {"name": "r", "threshold": 0.5, "rules": [{"id": "pii", "kind": "pii"}]}
    return [
        ("POST", "/v1/agents", "write", {"name": "x", "provider": "scripted", "model": "m"}, False),
        ("PUT", f"/v1/agents/{ids['agent']}", "write", agent, True),
        ("POST", "/v1/agent-runs", "write", {"agent_id": ids["agent"], "prompt": "p"}, True),
        ("POST", f"/v1/agent-runs/{ids['run']}/cancel", "write", {}, True),
        ("POST", "/v1/rulesets", "write", rules, False),
        ("PUT", f"/v1/rulesets/{ids['ruleset']}", "write", rules, True),
        (
            "POST",
            "/v1/validations",
            "write",
            {"ruleset_id": ids["ruleset"], "subject_type": "t", "subject_id": "2", "output": "y"},
            True,
        ),
        ("POST", "/v1/workflow-templates", "write", {"name": "t2", "definition": DEFINITION}, False),
        ("PUT", f"/v1/workflow-templates/{ids['template']}", "write", {"definition": DEFINITION}, True),
        ("POST", "/v1/workflow-instances", "write", {"template_id": ids["template"]}, True),
        ("POST", f"/v1/workflow-instances/{ids['instance']}/signals/approve", "write", {"payload": {}}, True),
        ("POST", f"/v1/workflow-instances/{ids['instance']}/cancel", "write", {}, True),
        ("POST", "/v1/api-keys", "keys", {"name": "k2", "roles": ["viewer"]}, False),
        ("DELETE", f"/v1/api-keys/{ids['key']}", "keys", None, True),
        ("PUT", "/v1/budget", "budget", {"cost_per_month": "250.00"}, False),
        ("GET", "/v1/budget", "read", None, False),
        ("GET", "/v1/agents", "read", None, False),
        ("GET", f"/v1/agents/{ids['agent']}", "read", None, True),
        ("GET", "/v1/agent-runs", "read", None, False),
        ("GET", f"/v1/agent-runs/{ids['run']}", "read", None, True),
        ("GET", "/v1/token-usage", "read", None, False),
        ("GET", "/v1/workflow-templates", "read", None, False),
        ("GET", f"/v1/workflow-templates/{ids['template']}", "read", None, True),
        ("GET", "/v1/workflow-instances", "read", None, False),
        ("GET", f"/v1/workflow-instances/{ids['instance']}", "read", None, True),
        ("GET", "/v1/rulesets", "read", None, False),
        ("GET", f"/v1/rulesets/{ids['ruleset']}", "read", None, True),
        ("GET", "/v1/validations", "read", None, False),
        ("GET", f"/v1/validations/{ids['validation']}", "read", None, True),
        ("GET", "/v1/audit/events", "audit", None, False),
        ("GET", "/api/v1/dashboard", "read", None, False),
        ("GET", f"/api/v1/workflows/{ids['instance']}/complete", "read", None, True),
        ("POST", "/api/v1/workflows/execute", "write", {"template": "t"}, True),
    ]


async def test_the_authorization_matrix(client: httpx.AsyncClient, issuer: TestIssuer, platform: Platform) -> None:
    ids = await seed(client, issuer)
    # Let the read models catch up, so that a 404 means "not yours", not "not projected yet".
    async with platform.pool.acquire() as conn:
        head = await platform.reader.head(conn)
    for projector in platform.projectors.values():
        await projector.catch_up()
    acme_ids = set(ids.values())
    failures: list[str] = []
    for method, path, permission, body, names_acme in routes(ids):
        for role in ROLES:
            for tenant in ("acme", "globex"):
                headers = {
                    "Authorization": f"Bearer {issuer.for_role(role, tenant)}",
                    "X-Consistency-Position": str(head),
                }
                response = await client.request(method, path, json=body, headers=headers)
                status = response.status_code
                where = f"{role}@{tenant} {method} {path} -> {status}"
                if status >= 500:
                    failures.append(f"{where}: server error {response.text}")
                elif role not in PERMITS[permission]:
                    if status != 403:
                        failures.append(f"{where}: expected 403")
                elif tenant == "globex" and names_acme:
                    if status != 404:
                        failures.append(f"{where}: another tenant's object must be 404")
                elif tenant == "globex" and method == "GET":
                    payload = response.json()
                    items = payload if isinstance(payload, list) else payload.get("items", [])
                    leaked = acme_ids & set(re.findall(r"[0-9a-f-]{36}", json.dumps(items)))
                    if leaked:
                        failures.append(f"{where}: shows acme's {leaked}")
                elif status in (401, 403):
                    failures.append(f"{where}: refused a permitted caller")
    assert not failures, "\n".join(failures)


async def test_a_body_cannot_choose_its_tenant(client: httpx.AsyncClient, issuer: TestIssuer) -> None:
    headers = {"Authorization": f"Bearer {issuer.for_role('admin')}"}
    body = {"name": "x", "provider": "scripted", "model": "m", "tenant_id": "globex"}
    response = await client.post("/v1/agents", json=body, headers=headers)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
