"""Commands and handlers of the workflows context."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec

from commands.ports import EventStore
from commands.results import CommandResult
from commands.templates import template_problems
from commands.unit_of_work import change, create, load, new_aggregate_id
from domain.aggregate import CommandContext
from domain.workflows.definition import WorkflowDefinition, definition_problems
from domain.workflows.errors import InvalidWorkflowDefinition
from domain.workflows.instance import WorkflowInstance
from domain.workflows.template import WorkflowTemplate


class RegisterWorkflowTemplate(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    definition: WorkflowDefinition
    idempotency_key: str | None = None


class ReviseWorkflowTemplate(msgspec.Struct, frozen=True, kw_only=True):
    template_id: UUID
    definition: WorkflowDefinition
    expected_version: int | None = None


class RetireWorkflowTemplate(msgspec.Struct, frozen=True, kw_only=True):
    template_id: UUID
    reason: str


class StartWorkflowInstance(msgspec.Struct, frozen=True, kw_only=True):
    template_id: UUID
    inputs: dict[str, Any] = msgspec.field(default_factory=dict)
    idempotency_key: str | None = None


class StartStep(msgspec.Struct, frozen=True, kw_only=True):
    instance_id: UUID
    step_id: str


class CompleteStep(msgspec.Struct, frozen=True, kw_only=True):
    instance_id: UUID
    step_id: str
    output: Any = None


class FailStep(msgspec.Struct, frozen=True, kw_only=True):
    instance_id: UUID
    step_id: str
    error: str


class SkipStep(msgspec.Struct, frozen=True, kw_only=True):
    instance_id: UUID
    step_id: str
    reason: str


class RecordCompensation(msgspec.Struct, frozen=True, kw_only=True):
    instance_id: UUID
    step_id: str


class SignalWorkflowInstance(msgspec.Struct, frozen=True, kw_only=True):
    instance_id: UUID
    name: str
    payload: dict[str, Any] = msgspec.field(default_factory=dict)
    roles: list[str] = msgspec.field(default_factory=list)  # of the sender


class CancelWorkflowInstance(msgspec.Struct, frozen=True, kw_only=True):
    instance_id: UUID
    reason: str = "cancelled by request"


def check_workflow(definition: WorkflowDefinition) -> None:
    """The model's checks plus the templates' syntax, every problem listed in one refusal."""
    problems = definition_problems(definition) + template_problems(definition)
    if problems:
        raise InvalidWorkflowDefinition(problems)


async def register_workflow_template(
    store: EventStore, ctx: CommandContext, cmd: RegisterWorkflowTemplate
) -> CommandResult:
    """Registers a workflow template at version 1."""
    check_workflow(cmd.definition)
    template, event = WorkflowTemplate.register(
        ctx, new_aggregate_id(ctx, WorkflowTemplate, cmd.idempotency_key), name=cmd.name, definition=cmd.definition
    )
    return await create(store, template, event)


async def revise_workflow_template(
    store: EventStore, ctx: CommandContext, cmd: ReviseWorkflowTemplate
) -> CommandResult:
    """Publishes a new version of a template's definition; running instances keep theirs."""
    check_workflow(cmd.definition)
    return await change(
        store,
        WorkflowTemplate,
        cmd.template_id,
        ctx,
        lambda template: template.revise(ctx, definition=cmd.definition),
        expected_version=cmd.expected_version,
    )


async def retire_workflow_template(
    store: EventStore, ctx: CommandContext, cmd: RetireWorkflowTemplate
) -> CommandResult:
    """Retires a template: no new instances start from it."""
    return await change(
        store, WorkflowTemplate, cmd.template_id, ctx, lambda template: template.retire(ctx, reason=cmd.reason)
    )


async def start_workflow_instance(store: EventStore, ctx: CommandContext, cmd: StartWorkflowInstance) -> CommandResult:
    """Starts an instance pinned to the template's current version."""
    template = await load(store, WorkflowTemplate, cmd.template_id, ctx)
    instance, event = WorkflowInstance.start(
        ctx, new_aggregate_id(ctx, WorkflowInstance, cmd.idempotency_key), template=template, inputs=cmd.inputs
    )
    return await create(store, instance, event)


async def start_step(store: EventStore, ctx: CommandContext, cmd: StartStep) -> CommandResult:
    """Starts a step whose dependencies are done."""
    return await change(
        store, WorkflowInstance, cmd.instance_id, ctx, lambda instance: instance.start_step(ctx, cmd.step_id)
    )


async def complete_step(store: EventStore, ctx: CommandContext, cmd: CompleteStep) -> CommandResult:
    """Records a step's output; the instance completes with its last step."""
    return await change(
        store,
        WorkflowInstance,
        cmd.instance_id,
        ctx,
        lambda instance: instance.complete_step(ctx, cmd.step_id, output=cmd.output),
    )


async def fail_step(store: EventStore, ctx: CommandContext, cmd: FailStep) -> CommandResult:
    """Records a failed attempt; after the last one the saga unwinds."""
    return await change(
        store,
        WorkflowInstance,
        cmd.instance_id,
        ctx,
        lambda instance: instance.fail_step(ctx, cmd.step_id, error=cmd.error),
    )


async def skip_step(store: EventStore, ctx: CommandContext, cmd: SkipStep) -> CommandResult:
    """Skips a pending step (a branch not taken)."""
    return await change(
        store,
        WorkflowInstance,
        cmd.instance_id,
        ctx,
        lambda instance: instance.skip_step(ctx, cmd.step_id, reason=cmd.reason),
    )


async def record_compensation(store: EventStore, ctx: CommandContext, cmd: RecordCompensation) -> CommandResult:
    """Records that the next step in the compensation plan was undone."""
    return await change(
        store,
        WorkflowInstance,
        cmd.instance_id,
        ctx,
        lambda instance: instance.record_compensation(ctx, cmd.step_id),
    )


async def signal_workflow_instance(
    store: EventStore, ctx: CommandContext, cmd: SignalWorkflowInstance
) -> CommandResult:
    """Delivers a named signal (an approval, a decision) to a running instance."""
    return await change(
        store,
        WorkflowInstance,
        cmd.instance_id,
        ctx,
        lambda instance: instance.receive_signal(ctx, name=cmd.name, payload=cmd.payload, roles=cmd.roles),
    )


async def cancel_workflow_instance(
    store: EventStore, ctx: CommandContext, cmd: CancelWorkflowInstance
) -> CommandResult:
    """Cancels a running instance."""
    return await change(
        store, WorkflowInstance, cmd.instance_id, ctx, lambda instance: instance.cancel(ctx, reason=cmd.reason)
    )
