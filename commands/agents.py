"""Commands and handlers of the agents context."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID

import msgspec

from commands.ports import EventStore
from commands.results import CommandResult
from commands.unit_of_work import change, create, load, new_aggregate_id
from domain.agents.agent import Agent, Fallback
from domain.agents.agent_run import AgentRun, ChatMessage
from domain.agents.errors import InvalidRunTransition
from domain.aggregate import CommandContext
from domain.events import StepRef


class RegisterAgent(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    provider: str
    model: str
    system_prompt: str = ""
    temperature: float = 0.2
    max_tokens: int = 1024
    base_url: str | None = None
    fallbacks: list[Fallback] = msgspec.field(default_factory=list)
    json_output: bool = False
    idempotency_key: str | None = None


class ReconfigureAgent(msgspec.Struct, frozen=True, kw_only=True):
    agent_id: UUID
    provider: str
    model: str
    system_prompt: str
    temperature: float
    max_tokens: int
    base_url: str | None = None
    fallbacks: list[Fallback] = msgspec.field(default_factory=list)
    json_output: bool = False
    expected_version: int | None = None


class ArchiveAgent(msgspec.Struct, frozen=True, kw_only=True):
    agent_id: UUID
    reason: str


class RequestAgentRun(msgspec.Struct, frozen=True, kw_only=True):
    agent_id: UUID
    prompt: str
    context_id: UUID | None = None
    idempotency_key: str | None = None
    workflow_step: StepRef | None = None


class StartRunAttempt(msgspec.Struct, frozen=True, kw_only=True):
    run_id: UUID
    provider: str
    model: str


class RecordAttemptFailure(msgspec.Struct, frozen=True, kw_only=True):
    run_id: UUID
    error: str
    latency_ms: int
    retryable: bool


class CompleteAgentRun(msgspec.Struct, frozen=True, kw_only=True):
    run_id: UUID
    output: str
    latency_ms: int
    tokens_in: int
    tokens_out: int
    cost: Decimal
    provider_request_id: str = ""
    provider: str = ""  # the one that answered, when a fallback did
    model: str = ""
    fallback_errors: list[str] = msgspec.field(default_factory=list)


class FailAgentRun(msgspec.Struct, frozen=True, kw_only=True):
    run_id: UUID
    reason: str


class CancelAgentRun(msgspec.Struct, frozen=True, kw_only=True):
    run_id: UUID
    reason: str = "cancelled by request"


class RefuseAgentRun(msgspec.Struct, frozen=True, kw_only=True):
    run_id: UUID
    reason: str
    retry_at: datetime | None = None


async def register_agent(store: EventStore, ctx: CommandContext, cmd: RegisterAgent) -> CommandResult:
    """Registers a new agent configuration."""
    agent, event = Agent.register(
        ctx,
        new_aggregate_id(ctx, Agent, cmd.idempotency_key),
        name=cmd.name,
        provider=cmd.provider,
        model=cmd.model,
        system_prompt=cmd.system_prompt,
        temperature=cmd.temperature,
        max_tokens=cmd.max_tokens,
        base_url=cmd.base_url,
        fallbacks=cmd.fallbacks,
        json_output=cmd.json_output,
    )
    return await create(store, agent, event)


async def reconfigure_agent(store: EventStore, ctx: CommandContext, cmd: ReconfigureAgent) -> CommandResult:
    """Changes an agent's configuration, making a new configuration version."""
    return await change(
        store,
        Agent,
        cmd.agent_id,
        ctx,
        lambda agent: agent.reconfigure(
            ctx,
            provider=cmd.provider,
            model=cmd.model,
            system_prompt=cmd.system_prompt,
            temperature=cmd.temperature,
            max_tokens=cmd.max_tokens,
            base_url=cmd.base_url,
            fallbacks=cmd.fallbacks,
            json_output=cmd.json_output,
        ),
        expected_version=cmd.expected_version,
    )


async def archive_agent(store: EventStore, ctx: CommandContext, cmd: ArchiveAgent) -> CommandResult:
    """Archives an agent: it takes no more runs or changes."""
    return await change(store, Agent, cmd.agent_id, ctx, lambda agent: agent.archive(ctx, reason=cmd.reason))


async def request_agent_run(store: EventStore, ctx: CommandContext, cmd: RequestAgentRun) -> CommandResult:
    """Requests a run of an agent; a context id continues an earlier run's conversation."""
    agent = await load(store, Agent, cmd.agent_id, ctx)
    agent.check_active()
    messages = [ChatMessage("system", agent.system_prompt)] if agent.system_prompt else []
    if cmd.context_id is not None:
        earlier = await load(store, AgentRun, cmd.context_id, ctx)
        if earlier.status != "succeeded":
            raise InvalidRunTransition(f"run {cmd.context_id} is {earlier.status}; only a succeeded run can continue")
        messages = list(earlier.messages)
        if earlier.subject:  # its messages are about that subject: so is the run that carries them on
            if ctx.subject and ctx.subject != earlier.subject:
                raise InvalidRunTransition(
                    f"run {cmd.context_id} is about another data subject; a run continuing it is about the same one"
                )
            ctx = msgspec.structs.replace(ctx, subject=earlier.subject)
    messages.append(ChatMessage("user", cmd.prompt))
    run, event = AgentRun.request(
        ctx,
        new_aggregate_id(ctx, AgentRun, cmd.idempotency_key),
        agent_id=agent.id,
        agent_config_version=agent.config_version,
        provider=agent.provider,
        model=agent.model,
        temperature=agent.temperature,
        max_tokens=agent.max_tokens,
        messages=messages,
        context_id=cmd.context_id,
        workflow_step=cmd.workflow_step,
        base_url=agent.base_url,
        fallbacks=agent.fallbacks,
        json_output=agent.json_output,
    )
    return await create(store, run, event)


async def start_run_attempt(store: EventStore, ctx: CommandContext, cmd: StartRunAttempt) -> CommandResult:
    """Records that a worker is calling a provider for the run."""
    return await change(
        store, AgentRun, cmd.run_id, ctx, lambda run: run.start_attempt(ctx, provider=cmd.provider, model=cmd.model)
    )


async def record_attempt_failure(store: EventStore, ctx: CommandContext, cmd: RecordAttemptFailure) -> CommandResult:
    """Records a provider call that failed."""
    return await change(
        store,
        AgentRun,
        cmd.run_id,
        ctx,
        lambda run: run.record_attempt_failure(
            ctx, error=cmd.error, latency_ms=cmd.latency_ms, retryable=cmd.retryable
        ),
    )


async def complete_agent_run(store: EventStore, ctx: CommandContext, cmd: CompleteAgentRun) -> CommandResult:
    """Records the provider's answer, its token usage and cost."""
    return await change(
        store,
        AgentRun,
        cmd.run_id,
        ctx,
        lambda run: run.succeed(
            ctx,
            output=cmd.output,
            latency_ms=cmd.latency_ms,
            tokens_in=cmd.tokens_in,
            tokens_out=cmd.tokens_out,
            cost=cmd.cost,
            provider_request_id=cmd.provider_request_id,
            provider=cmd.provider,
            model=cmd.model,
            fallback_errors=cmd.fallback_errors,
        ),
    )


async def fail_agent_run(store: EventStore, ctx: CommandContext, cmd: FailAgentRun) -> CommandResult:
    """Gives up on a run."""
    return await change(store, AgentRun, cmd.run_id, ctx, lambda run: run.fail(ctx, reason=cmd.reason))


async def cancel_agent_run(store: EventStore, ctx: CommandContext, cmd: CancelAgentRun) -> CommandResult:
    """Cancels a run that has not finished."""
    return await change(store, AgentRun, cmd.run_id, ctx, lambda run: run.cancel(ctx, reason=cmd.reason))


async def refuse_agent_run(store: EventStore, ctx: CommandContext, cmd: RefuseAgentRun) -> CommandResult:
    """Refuses a run that its tenant's budget cannot pay for, saying when the budget resets."""
    return await change(
        store, AgentRun, cmd.run_id, ctx, lambda run: run.refuse(ctx, reason=cmd.reason, retry_at=cmd.retry_at)
    )
