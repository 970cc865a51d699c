"""Refusals of the write side that are not business rules: missing aggregates and write conflicts."""


class CommandError(Exception):
    """A command that cannot be carried out, for a reason outside the domain model."""


class AggregateNotFound(CommandError):
    """No aggregate of that kind with that id exists for the caller's tenant."""


class ConcurrencyError(CommandError):
    """The aggregate changed since it was read: another command wrote that version first."""


class SubjectErased(CommandError):
    """The data subject the command is about was erased (`aiwp gdpr erase`): nothing more is recorded about it."""
