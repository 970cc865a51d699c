"""Refusals of the workflows context."""

from domain.aggregate import DomainError


class WorkflowError(DomainError):
    """A command the workflows context refuses."""


class InvalidWorkflowDefinition(WorkflowError):
    """A definition with one or more problems, each named with its step."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid workflow definition: " + "; ".join(problems))


class InvalidStepTransition(WorkflowError):
    """The step or the instance is not in a state that allows this change."""


class MissingInputs(WorkflowError):
    """An instance was started without every input its template declares."""
