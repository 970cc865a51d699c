"""The validation worker over RabbitMQ: judges asked through the OpenAI SDK, retried after a 429, and
`aiwp worker validation` processes competing for the queue."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from uuid import UUID

import pytest

from commands import agents, validation
from domain.validation.ruleset import Rule
from domain.validation.validation import Validation
from ops.bootstrap import Platform, running_workers
from tests.e2e.processes import start_worker, stop, worker_env
from tests.gateways.fake_llm import FakeLlmServer

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

RULES = [
    Rule(id="polite", kind="llm_judge", weight=3, params={"agent": "critic", "rubric": "Polite?", "pass_score": 0.8}),
    Rule(id="thanks", kind="contains", params={"text": "thank"}),
]
VERDICT = json.dumps({"score": 0.9, "reason": "Polite and warm."})


@pytest.fixture
def platform(llm_platform: Platform) -> Platform:
    return llm_platform


async def request_validations(platform: Platform, outputs: list[str]) -> list[UUID]:
    ctx = platform.context(tenant_id="acme", actor="alice")
    await agents.register_agent(
        platform.store, ctx, agents.RegisterAgent(name="critic", provider="openai", model="gpt-judge")
    )
    ruleset = await validation.define_ruleset(
        platform.store, ctx, validation.DefineRuleSet(name="reply", rules=RULES, threshold=0.7)
    )
    made = []
    for index, output in enumerate(outputs):
        opened = await validation.request_validation(
            platform.store,
            platform.context(tenant_id="acme", actor="alice"),
            validation.RequestValidation(
                ruleset_id=ruleset.id, subject_type="text", subject_id=str(index), output=output
            ),
        )
        made.append(opened.id)
    return made


async def completed(platform: Platform, ids: list[UUID], timeout: float = 60) -> list[Validation]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        loaded = [await platform.store.get(Validation, validation_id) for validation_id in ids]
        if all(v.status == "completed" for v in loaded):
            return loaded
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"validations not completed: {[v.status for v in loaded]}")
        await asyncio.sleep(0.05)


def event_names(platform: Platform, validation_id: UUID) -> list[str]:
    return [type(e).__name__ for e in platform.store.events_of(validation_id)]


async def test_requested_validations_are_judged_once_each_through_the_openai_sdk(
    platform: Platform, llm_server: FakeLlmServer
) -> None:
    llm_server.reply_next(VERDICT, times=12)
    async with running_workers(platform, projections=["agents", "validation_results"], validation=True):
        ids = await request_validations(platform, [f"Thank you, customer {n}!" for n in range(12)])
        done = await completed(platform, ids)
        assert await platform.wait_for(await platform.store.position_of(ids[-1], 3), names=["validation_results"])
    assert {(v.score, v.passed) for v in done} == {(0.925, True)}
    assert all(
        event_names(platform, v.id) == ["ValidationRequested", "JudgeConsulted", "ValidationCompleted"] for v in done
    )
    assert len(llm_server.requests) == 12
    assert all(body["response_format"] == {"type": "json_object"} for _, body in llm_server.requests)
    assert all(body["model"] == "gpt-judge" for _, body in llm_server.requests)
    async with platform.pool.acquire() as conn:
        rows = await conn.fetch("SELECT status, judge_calls, judge_cost FROM validation_results")
    assert {(r["status"], r["judge_calls"]) for r in rows} == {("completed", 1)}


async def test_a_429_from_the_judge_is_retried_through_the_delay_queue(
    platform: Platform, llm_server: FakeLlmServer
) -> None:
    llm_server.fail_next(429, times=3, retry_after=1)  # the gateway's own three tries all fail
    llm_server.reply_next(VERDICT)
    async with running_workers(platform, projections=["agents"], validation=True):
        [validation_id] = await request_validations(platform, ["Thank you!"])
        [done] = await completed(platform, [validation_id])
    assert done.passed
    assert event_names(platform, validation_id) == [
        "ValidationRequested",
        "JudgeCallFailed",
        "JudgeConsulted",
        "ValidationCompleted",
    ]


async def test_worker_processes_compete_and_each_validation_is_completed_once(
    platform: Platform, llm_server: FakeLlmServer, database_url: str, pg_schema: str, amqp_url: str, tmp_path: Path
) -> None:
    env = worker_env(database_url, pg_schema, amqp_url) | {
        "AIWP_OPENAI_BASE_URL": f"{llm_server.url}/v1",
        "OPENAI_API_KEY": "test-key",
    }
    llm_server.reply_next(VERDICT, times=20)
    workers = [start_worker(["worker", "validation"], env, tmp_path / f"worker{n}.log") for n in range(2)]
    try:
        async with running_workers(platform, projections=["agents"]):
            ids = await request_validations(platform, [f"thanks {n}" for n in range(20)])
            done = await completed(platform, ids)
    finally:
        codes = [stop(worker) for worker in workers]
    assert codes == [0, 0]
    assert all(v.passed for v in done)
    assert all(event_names(platform, v.id).count("ValidationCompleted") == 1 for v in done)
    assert len(llm_server.requests) == 20
