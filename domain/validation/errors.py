"""Refusals of the validation context."""

from domain.aggregate import DomainError


class ValidationError(DomainError):
    """A command the validation context refuses."""


class InvalidRuleSet(ValidationError):
    """A rule set with one or more problems, each named with its rule."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid rule set: " + "; ".join(problems))
