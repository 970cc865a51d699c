"""A validation requested through the command API is evaluated by the validation worker (in-process bus)
and its verdict read back through the query API."""

from __future__ import annotations

import asyncio
from uuid import UUID

import httpx
import pytest

from domain.validation.validation import Validation
from ops.bootstrap import Platform, running_workers
from tests.api.issuer import TestIssuer

pytestmark = pytest.mark.integration


def auth(issuer: TestIssuer, role: str = "admin") -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.for_role(role, 'acme')}"}


async def verdict_position(platform: Platform, validation_id: UUID, timeout: float = 30) -> int:
    """The position of the validation's `ValidationCompleted`, once the worker has written it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (validation := await platform.store.get(Validation, validation_id)).status != "completed":
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"validation {validation_id} is still {validation.status}")
        await asyncio.sleep(0.05)
    return await platform.store.position_of(validation_id, validation.version)


async def test_a_validation_requested_through_the_api_is_completed_by_the_worker(
    client: httpx.AsyncClient, issuer: TestIssuer, platform: Platform
) -> None:
    rules = [
        {"id": "polite", "kind": "llm_judge", "params": {"agent": "critic", "rubric": 'Says "thank you".'}},
        {"id": "no-pii", "kind": "pii"},
    ]
    async with running_workers(platform, validation=True):
        judge = await client.post(
            "/v1/agents", json={"name": "critic", "provider": "scripted", "model": "judge-1"}, headers=auth(issuer)
        )
        assert judge.status_code == 201, judge.text
        ruleset = await client.post(
            "/v1/rulesets", json={"name": "reply", "rules": rules, "threshold": 0.75}, headers=auth(issuer)
        )
        assert ruleset.status_code == 201, ruleset.text
        accepted = await client.post(
            "/v1/validations",
            json={
                "ruleset_id": ruleset.json()["id"],
                "subject_type": "text",
                "subject_id": "1",
                "output": "Thank you! Mail me at ada@example.org",
            },
            headers=auth(issuer, "operator"),
        )
        assert accepted.status_code == 202, accepted.text
        position = await verdict_position(platform, UUID(accepted.json()["id"]))
        read = await client.get(
            f"/v1/validations/{accepted.json()['id']}",
            headers=auth(issuer, "viewer") | {"X-Consistency-Position": str(position)},
        )
    assert read.status_code == 200, read.text
    body = read.json()
    assert (body["status"], body["score"], body["passed"], body["judge_calls"]) == ("completed", 0.5, False, 1)
    assert "- rule 'no-pii' failed: text contains personal data: email" in body["feedback"]
    assert [r["rule_id"] for r in body["results"] if r["passed"]] == ["polite"]


async def test_a_judge_rule_with_bad_parameters_is_refused_with_each_problem(
    client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    rules = [{"id": "j", "kind": "llm_judge", "params": {"agent": "", "rubric": "r", "pass_score": 5}}]
    refused = await client.post(
        "/v1/rulesets", json={"name": "bad", "rules": rules, "threshold": 0.5}, headers=auth(issuer)
    )
    assert refused.status_code == 422
    assert refused.json()["problems"] == [
        "rule 'j': parameter 'agent' must be a non-empty text (the judge agent's name)",
        "rule 'j': parameter 'pass_score' must be a number within 0..1, not 5",
    ]
