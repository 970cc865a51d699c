"""A realistic mix of commands across the three contexts, for end-to-end tests and benchmarks.

One scenario registers an agent, runs it (sometimes failing an attempt, sometimes failing for good),
validates its output, and runs a three-step workflow that completes, or fails and compensates.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import uuid4

from commands import agents, validation, workflows
from commands.ports import EventStore
from commands.results import CommandResult
from domain.aggregate import CommandContext
from domain.validation.ruleset import Rule
from domain.workflows.definition import Compensation, StepDefinition, WorkflowDefinition
from tests.strategies import BASE_TIME

TELL = {"channel": "email", "recipient": "ops@example.com", "template": "{{ instance_id }}"}
UNDO = Compensation(kind="notify", params=TELL)
DEFINITION = WorkflowDefinition(
    inputs=["ticket"],
    steps=[
        StepDefinition(
            id="draft", kind="agent", params={"agent": "w", "prompt": "{{ inputs.ticket }}"}, compensate=UNDO
        ),
        StepDefinition(
            id="check", kind="validate", needs=["draft"], params={"ruleset": "r", "target": "draft"}, compensate=UNDO
        ),
        StepDefinition(id="send", kind="notify", needs=["check"], params=TELL),
    ],
)


@dataclass
class Workload:
    store: EventStore
    seed: int = 0
    tenants: tuple[str, ...] = ("acme", "globex")
    last_position: int = 0
    commands: int = 0
    rng: random.Random = field(init=False)
    ticks: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def ctx(self, tenant: str) -> CommandContext:
        self.ticks += 1
        correlation = uuid4()
        return CommandContext(
            at=BASE_TIME.replace(day=1 + self.ticks % 27, month=1 + self.ticks // 100 % 12),
            tenant_id=tenant,
            actor=self.rng.choice(["ada", "grace", "linus"]),
            correlation_id=correlation,
            causation_id=correlation,
        )

    async def run(
        self, handler: Callable[[EventStore, CommandContext, Any], Awaitable[CommandResult]], tenant: str, command: Any
    ) -> CommandResult:
        result = await handler(self.store, self.ctx(tenant), command)
        self.commands += 1
        self.last_position = max(self.last_position, result.position)
        return result

    async def scenario(self) -> None:
        rng, tenant = self.rng, self.rng.choice(self.tenants)
        agent = await self.run(
            agents.register_agent,
            tenant,
            agents.RegisterAgent(name=f"agent-{rng.randrange(10**6)}", provider="scripted", model=rng.choice("ab")),
        )
        run = await self.run(agents.request_agent_run, tenant, agents.RequestAgentRun(agent_id=agent.id, prompt="hi"))
        await self.run(agents.start_run_attempt, tenant, agents.StartRunAttempt(run_id=run.id, provider="s", model="a"))
        if rng.random() < 0.3:
            await self.run(
                agents.record_attempt_failure,
                tenant,
                agents.RecordAttemptFailure(run_id=run.id, error="429", latency_ms=5, retryable=True),
            )
            await self.run(
                agents.start_run_attempt, tenant, agents.StartRunAttempt(run_id=run.id, provider="s", model="b")
            )
        if rng.random() < 0.1:
            await self.run(agents.fail_agent_run, tenant, agents.FailAgentRun(run_id=run.id, reason="timeout"))
        else:
            await self.run(
                agents.complete_agent_run,
                tenant,
                agents.CompleteAgentRun(
                    run_id=run.id,
                    output=rng.choice(["Dear Ada, refunded.", "as an AI I cannot", "mail me: a@b.co"]),
                    latency_ms=rng.randrange(1000),
                    tokens_in=rng.randrange(1, 500),
                    tokens_out=rng.randrange(1, 500),
                    cost=Decimal(rng.randrange(1, 10**6)) / 10**8,
                ),
            )
        ruleset = await self.run(
            validation.define_ruleset,
            tenant,
            validation.DefineRuleSet(
                name="quality",
                threshold=0.5,
                rules=[Rule(id="pii", kind="pii", weight=2), Rule(id="len", kind="length", params={"min": 5})],
            ),
        )
        opened = await self.run(
            validation.request_validation,
            tenant,
            validation.RequestValidation(
                ruleset_id=ruleset.id, subject_type="agent_run", subject_id=str(run.id), output="x"
            ),
        )
        results = validation.evaluate_local_rules(
            [Rule(id="pii", kind="pii", weight=2), Rule(id="len", kind="length", params={"min": 5})],
            rng.choice(["short", "a longer reply", "call +44 20 7946 0958"]),
        )
        await self.run(
            validation.complete_validation,
            tenant,
            validation.CompleteValidation(validation_id=opened.id, results=results),
        )
        template = await self.run(
            workflows.register_workflow_template,
            tenant,
            workflows.RegisterWorkflowTemplate(name="triage", definition=DEFINITION),
        )
        instance = await self.run(
            workflows.start_workflow_instance,
            tenant,
            workflows.StartWorkflowInstance(template_id=template.id, inputs={"ticket": "t"}),
        )
        failing = rng.choice([None, "check", "send"])
        for step in ("draft", "check", "send"):
            await self.run(workflows.start_step, tenant, workflows.StartStep(instance_id=instance.id, step_id=step))
            if step == failing:
                await self.run(
                    workflows.fail_step, tenant, workflows.FailStep(instance_id=instance.id, step_id=step, error="down")
                )
                for undo in {"check": ["draft"], "send": ["check", "draft"]}[step]:  # reverse completion order
                    await self.run(
                        workflows.record_compensation,
                        tenant,
                        workflows.RecordCompensation(instance_id=instance.id, step_id=undo),
                    )
                return
            await self.run(
                workflows.complete_step,
                tenant,
                workflows.CompleteStep(instance_id=instance.id, step_id=step, output={"step": step}),
            )
