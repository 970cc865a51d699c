"""A rule-based state machine drives `AgentRun` with random commands; it never reaches an invalid state."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from domain.agents.agent_run import TERMINAL, AgentRun, ChatMessage
from domain.agents.errors import InvalidRunTransition
from domain.events import DomainEvent
from tests.strategies import Clock, costs, texts


class AgentRunMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.run, first = AgentRun.request(
            self.clock.ctx(),
            UUID(int=1),
            agent_id=UUID(int=2),
            agent_config_version=1,
            provider="scripted",
            model="m",
            temperature=0.0,
            max_tokens=10,
            messages=[ChatMessage("user", "hi")],
        )
        self.events: list[DomainEvent] = [first]
        self.finished_as: str | None = None

    def decide(self, decision: object) -> None:
        status_before, version_before = self.run.status, self.run.version
        try:
            assert callable(decision)
            self.events.extend(decision())
        except InvalidRunTransition:
            assert (self.run.status, self.run.version) == (status_before, version_before)

    @rule()
    def start_attempt(self) -> None:
        self.decide(lambda: self.run.start_attempt(self.clock.ctx(), provider="scripted", model="m"))

    @rule(error=texts, retryable=st.booleans())
    def attempt_fails(self, error: str, retryable: bool) -> None:
        self.decide(
            lambda: self.run.record_attempt_failure(self.clock.ctx(), error=error, latency_ms=5, retryable=retryable)
        )

    @rule(output=texts, tokens=st.integers(0, 5000), cost=costs)
    def succeed(self, output: str, tokens: int, cost: Decimal) -> None:
        self.decide(
            lambda: self.run.succeed(
                self.clock.ctx(),
                output=output,
                latency_ms=10,
                tokens_in=tokens,
                tokens_out=tokens,
                cost=cost,
                provider_request_id="r",
            )
        )

    @rule()
    def fail(self) -> None:
        self.decide(lambda: self.run.fail(self.clock.ctx(), reason="gave up"))

    @rule()
    def cancel(self) -> None:
        self.decide(lambda: self.run.cancel(self.clock.ctx(), reason="user"))

    @rule(waits=st.booleans())
    def budget_refuses(self, waits: bool) -> None:
        until = self.clock.ctx().at if waits else None
        self.decide(lambda: self.run.refuse(self.clock.ctx(), reason="over budget", retry_at=until))

    @invariant()
    def status_is_one_of_the_lifecycle(self) -> None:
        assert self.run.status in {"requested", "running", *TERMINAL}
        if self.run.status == "requested":
            assert not self.run.attempts

    @invariant()
    def a_finished_run_never_changes_its_outcome(self) -> None:
        if self.finished_as is not None:
            assert self.run.status == self.finished_as
        elif self.run.status in TERMINAL:
            self.finished_as = self.run.status

    @invariant()
    def only_the_last_attempt_can_be_open_and_at_most_one_succeeded(self) -> None:
        statuses = [attempt.status for attempt in self.run.attempts]
        assert "open" not in statuses[:-1]
        assert statuses.count("succeeded") <= 1
        assert [attempt.number for attempt in self.run.attempts] == list(range(1, len(statuses) + 1))
        if self.run.status in TERMINAL:
            assert "open" not in statuses

    @invariant()
    def totals_equal_the_succeeded_attempt(self) -> None:
        succeeded = [a for a in self.run.attempts if a.status == "succeeded"]
        assert self.run.tokens_in == sum(a.tokens_in for a in succeeded)
        assert self.run.cost == sum((a.cost for a in succeeded), Decimal(0))
        assert (self.run.status == "succeeded") == bool(succeeded)

    @invariant()
    def replay_equals_live(self) -> None:
        assert AgentRun.project(self.events) == self.run


AgentRunMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=25, deadline=None)
TestAgentRunMachine = AgentRunMachine.TestCase
