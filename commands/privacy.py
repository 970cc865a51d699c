"""Commands and handlers of the privacy context: erasing a data subject (ADR 0008)."""

from __future__ import annotations

import msgspec

from commands.ports import EventStore
from commands.results import CommandResult
from commands.unit_of_work import create
from domain.aggregate import CommandContext
from domain.privacy.data_subject import DataSubject


class EraseDataSubject(msgspec.Struct, frozen=True, kw_only=True):
    subject: str
    reason: str = ""


async def erase_data_subject(store: EventStore, ctx: CommandContext, cmd: EraseDataSubject) -> CommandResult:
    """Records the erasure of a subject; a second erasure answers with the first (`created` false)."""
    subject, event = DataSubject.erase(ctx, subject=cmd.subject, reason=cmd.reason)
    return await create(store, subject, event)
