"""Workflow files: a template as YAML (or JSON, which is YAML too), read into the definition model."""

from __future__ import annotations

import msgspec

from commands.workflows import check_workflow
from domain.workflows.definition import StepDefinition, WorkflowDefinition
from domain.workflows.errors import InvalidWorkflowDefinition


class WorkflowFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    description: str = ""
    inputs: list[str] = msgspec.field(default_factory=list)
    steps: list[StepDefinition]

    @property
    def definition(self) -> WorkflowDefinition:
        return WorkflowDefinition(steps=self.steps, inputs=self.inputs)


def read_workflow(text: str | bytes) -> WorkflowFile:
    """The file's template, checked; raises `InvalidWorkflowDefinition` listing every problem."""
    try:
        loaded = msgspec.yaml.decode(text, type=WorkflowFile)
    except msgspec.ValidationError as error:
        raise InvalidWorkflowDefinition([str(error)]) from None
    except msgspec.DecodeError as error:
        raise InvalidWorkflowDefinition([f"not YAML: {error}"]) from None
    check_workflow(loaded.definition)
    return loaded
