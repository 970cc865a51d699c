"""`WorkflowTemplate`: a named, versioned workflow definition."""

from __future__ import annotations

from typing import Any, Self
from uuid import UUID

from domain.aggregate import Aggregate, CommandContext
from domain.events import DomainEvent
from domain.workflows.definition import WorkflowDefinition, check_definition
from domain.workflows.errors import InvalidWorkflowDefinition, WorkflowError


class WorkflowTemplateRegistered(DomainEvent, frozen=True, kw_only=True):
    name: str
    definition: WorkflowDefinition


class WorkflowTemplateRevised(DomainEvent, frozen=True, kw_only=True):
    template_version: int
    definition: WorkflowDefinition


class WorkflowTemplateRetired(DomainEvent, frozen=True, kw_only=True):
    reason: str


class WorkflowTemplate(Aggregate, kw_only=True):
    creation_event = WorkflowTemplateRegistered

    name: str
    template_version: int
    definition: WorkflowDefinition
    retired: bool = False

    @classmethod
    def register(
        cls, ctx: CommandContext, template_id: UUID, *, name: str, definition: WorkflowDefinition
    ) -> tuple[Self, WorkflowTemplateRegistered]:
        if not name.strip():
            raise InvalidWorkflowDefinition(["the template needs a name"])
        check_definition(definition)
        return cls._create(ctx, template_id, WorkflowTemplateRegistered, name=name, definition=definition)

    def revise(self, ctx: CommandContext, *, definition: WorkflowDefinition) -> list[DomainEvent]:
        self.check_active()
        check_definition(definition)
        return [
            self._trigger(
                ctx, WorkflowTemplateRevised, template_version=self.template_version + 1, definition=definition
            )
        ]

    def retire(self, ctx: CommandContext, *, reason: str) -> list[DomainEvent]:
        self.check_active()
        return [self._trigger(ctx, WorkflowTemplateRetired, reason=reason)]

    def check_active(self) -> None:
        if self.retired:
            raise WorkflowError(f"template {self.name!r} is retired")

    @classmethod
    def created_by(cls, event: Any) -> Self:
        assert isinstance(event, WorkflowTemplateRegistered)
        return cls(**cls._identity(event), name=event.name, template_version=1, definition=event.definition)

    def apply(self, event: Any) -> None:
        match event:
            case WorkflowTemplateRevised():
                self.template_version = event.template_version
                self.definition = event.definition
            case WorkflowTemplateRetired():
                self.retired = True
            case _:
                super().apply(event)
