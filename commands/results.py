"""What a command answers: which aggregate, at which version, at which global position."""

from uuid import UUID

import msgspec


class CommandResult(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int
    position: int
    created: bool = False
