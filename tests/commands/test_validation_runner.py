"""Evaluating validations: local rules and judges, calls recorded before the verdict, one verdict per validation.

The platform runs on the machine's PostgreSQL, so the judge's name is resolved through the real agents read
model (caught up from the store when a name is missing, as the worker waits for it); only the LLM providers
are stand-ins.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from decimal import Decimal
from uuid import UUID

import pytest

from commands import agents, validation
from commands.llm import LlmError, LlmProvider, LlmReply, LlmRequest
from commands.validation_runner import ValidationRunner
from domain.validation.ruleset import Rule
from domain.validation.validation import Validation
from gateways.llm.scripted import ScriptedProvider
from ops.bootstrap import Platform, open_platform
from ops.settings import Settings

pytestmark = pytest.mark.integration

POLITE = Rule(id="polite", kind="llm_judge", params={"agent": "critic", "rubric": 'Says "thank you".'})
NO_PII = Rule(id="no-pii", kind="pii")


class CountingProvider:
    """Raises the queued errors first (on requests whose prompt has `only_for`), else answers like the scripted one."""

    name = "counting"

    def __init__(self, *errors: LlmError, script: dict[str, str] | None = None, only_for: str = "") -> None:
        self.errors = list(errors)
        self.only_for = only_for
        self.requests: list[LlmRequest] = []
        self.scripted = ScriptedProvider(script)

    async def close(self) -> None:
        return None

    async def complete(self, request: LlmRequest) -> LlmReply:
        self.requests.append(request)
        if self.errors and self.only_for in request.messages[-1].content:
            raise self.errors.pop(0)
        return await self.scripted.complete(request)


@pytest.fixture
async def platform(database_url: str, pg_schema: str) -> AsyncIterator[Platform]:
    settings = Settings(
        database_url=database_url,
        database_schema=pg_schema,
        db_pool_size=6,
        read_pool_size=6,
        judge_max_attempts=2,
        judge_lookup_wait_seconds=0.0,
    )
    async with open_platform(settings) as made:
        yield made


def runner(platform: Platform, llm: LlmProvider) -> ValidationRunner:
    async def agents_caught_up(position: int) -> bool:
        await platform.projectors["agents"].catch_up()
        return True

    return dataclasses.replace(platform.validation_runner(), llm=llm, agents_seen=agents_caught_up)


async def requested(platform: Platform, output: str, rules: list[Rule], *, judge: bool = True) -> UUID:
    ctx = platform.context(tenant_id="acme", actor="alice")
    if judge:
        await agents.register_agent(
            platform.store,
            ctx,
            agents.RegisterAgent(name="critic", provider="scripted", model="judge-1", system_prompt="Be fair."),
        )
    ruleset = await validation.define_ruleset(
        platform.store, ctx, validation.DefineRuleSet(name="reply", rules=rules, threshold=0.75)
    )
    opened = await validation.request_validation(
        platform.store,
        ctx,
        validation.RequestValidation(ruleset_id=ruleset.id, subject_type="text", subject_id="1", output=output),
    )
    return opened.id


def event_names(platform: Platform, validation_id: UUID) -> list[str]:
    return [type(e).__name__ for e in platform.store.events_of(validation_id)]


async def test_a_validation_is_scored_by_its_local_rules_and_its_judge(platform: Platform) -> None:
    validation_id = await requested(platform, "Thank you for writing!", [POLITE, NO_PII])
    llm = CountingProvider()
    result = await runner(platform, llm).execute(validation_id)
    done = await platform.store.get(Validation, validation_id)
    assert result.outcome == "completed"
    assert (done.status, done.score, done.passed) == ("completed", 1.0, True)
    assert event_names(platform, validation_id) == ["ValidationRequested", "JudgeConsulted", "ValidationCompleted"]
    [request] = llm.requests
    assert (request.provider, request.model, request.json_output) == ("scripted", "judge-1", True)
    assert request.messages[0].content.startswith("Be fair.\n\nYou are a judge.")
    assert "<output>\nThank you for writing!\n</output>" in request.messages[1].content
    consulted = platform.store.events_of(validation_id)[1]
    assert consulted.cost > Decimal(0)  # priced from the table: scripted/* has a nominal price
    assert consulted.metadata.correlation_id == platform.store.events_of(validation_id)[0].metadata.correlation_id
    assert (await runner(platform, llm).execute(validation_id)).outcome == "skipped"
    assert len(llm.requests) == 1


async def test_a_judge_below_its_pass_score_fails_the_rule_and_the_feedback_says_why(platform: Platform) -> None:
    validation_id = await requested(platform, "Go away.", [POLITE, NO_PII])
    await runner(platform, CountingProvider()).execute(validation_id)
    done = await platform.store.get(Validation, validation_id)
    assert (done.score, done.passed) == (0.5, False)
    assert "- rule 'polite' failed: judge 'critic' scored 0.00, which is below 0.50: Scripted judge: missing" in (
        done.feedback
    )


async def test_an_unparseable_reply_is_recorded_and_fails_the_rule(platform: Platform) -> None:
    validation_id = await requested(platform, "Thank you!", [POLITE, NO_PII])
    llm = CountingProvider(script={"Thank you": "Looks polite to me: 9/10"})
    await runner(platform, llm).execute(validation_id)
    done = await platform.store.get(Validation, validation_id)
    consulted = platform.store.events_of(validation_id)[1]
    assert consulted.reply == "Looks polite to me: 9/10"
    [polite, _] = done.results
    assert (polite.score, polite.passed) == (0.0, False)
    assert polite.message.startswith("judge 'critic': the reply is not {\"score\": <number 0..1>")


async def test_a_judge_that_is_not_registered_fails_the_rule_without_a_call(platform: Platform) -> None:
    validation_id = await requested(platform, "Thank you!", [POLITE, NO_PII], judge=False)
    llm = CountingProvider()
    assert (await runner(platform, llm).execute(validation_id)).outcome == "completed"
    done = await platform.store.get(Validation, validation_id)
    assert done.results[0].message == "judge agent 'critic' is not registered in this tenant (or is archived)"
    assert llm.requests == []
    assert event_names(platform, validation_id) == ["ValidationRequested", "ValidationCompleted"]


async def test_a_retryable_failure_asks_for_a_retry_and_the_last_attempt_fails_the_rule(platform: Platform) -> None:
    validation_id = await requested(platform, "Thank you!", [POLITE, NO_PII])
    busy = LlmError("openai: 429", retryable=True, retry_after=3)
    work = runner(platform, CountingProvider(busy, busy))
    first, second = [await work.execute(validation_id) for _ in range(2)]
    assert (first.outcome, first.retry_after) == ("retry", 3)
    assert second.outcome == "completed"  # judge_max_attempts=2: the rule fails, the validation completes
    done = await platform.store.get(Validation, validation_id)
    assert done.results[0].message == "judge 'critic' could not be consulted after 2 attempt(s): openai: 429"
    assert event_names(platform, validation_id) == [
        "ValidationRequested",
        "JudgeCallFailed",
        "JudgeCallFailed",
        "ValidationCompleted",
    ]


async def test_a_bad_request_fails_the_rule_at_once(platform: Platform) -> None:
    validation_id = await requested(platform, "Thank you!", [POLITE, NO_PII])
    refused = LlmError("provider 'scripted' is not configured here", retryable=False)
    assert (await runner(platform, CountingProvider(refused)).execute(validation_id)).outcome == "completed"
    done = await platform.store.get(Validation, validation_id)
    assert done.results[0].message.endswith("after 1 attempt(s): provider 'scripted' is not configured here")


async def test_a_reply_already_recorded_is_reused_on_the_next_delivery(platform: Platform) -> None:
    second_judge = Rule(id="brief", kind="llm_judge", params={"agent": "critic", "rubric": "Is it brief?"})
    validation_id = await requested(platform, "Thank you!", [POLITE, second_judge])
    llm = CountingProvider(LlmError("timeout", retryable=True), only_for="Is it brief?")
    work = runner(platform, llm)
    assert (await work.execute(validation_id)).outcome == "retry"
    assert (await work.execute(validation_id)).outcome == "completed"
    rubrics = ["thank you" in r.messages[1].content for r in llm.requests]
    assert rubrics == [True, False, False]  # the first judge was asked once, the second twice
    done = await platform.store.get(Validation, validation_id)
    assert (done.score, done.passed) == (1.0, True)


async def test_a_rule_that_cannot_be_evaluated_fails_and_the_validation_still_completes(platform: Platform) -> None:
    broken = Rule(id="shape", kind="json_schema", params={"schema": {"$ref": "https://example.invalid/s.json"}})
    validation_id = await requested(platform, "{}", [broken, NO_PII], judge=False)
    assert (await runner(platform, CountingProvider()).execute(validation_id)).outcome == "completed"
    done = await platform.store.get(Validation, validation_id)
    assert done.results[0].message.startswith("rule could not be evaluated: ")
    assert (done.score, done.passed) == (0.5, False)


async def test_a_judge_missing_from_a_lagging_read_model_is_looked_up_again_later(platform: Platform) -> None:
    validation_id = await requested(platform, "Thank you!", [POLITE, NO_PII])
    worker = dataclasses.replace(platform.validation_runner(), llm=CountingProvider())  # no projector runs here
    lagging = await worker.execute(validation_id)
    assert (lagging.outcome, lagging.detail) == ("retry", "the agents read model is behind the request")
    assert event_names(platform, validation_id) == ["ValidationRequested"]
    await platform.projectors["agents"].catch_up()
    assert (await worker.execute(validation_id)).outcome == "completed"
    assert (await platform.store.get(Validation, validation_id)).passed
