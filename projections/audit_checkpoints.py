"""Signed checkpoints of the audit chain, kept outside the database, and the retention cut the chain starts from.

A checkpoint vouches for the row at `position`: its hash is `head`, and `rows` rows (dropped ones included)
lead up to it. Someone who can write the database but not the checkpoint location, nor sign with the key,
cannot rewrite the chain up to that position — recomputing every later hash — or cut its tail unseen.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from projections.audit_events import GENESIS
from projections.audit_signing import BadSignature, opened
from projections.projection import Connection

SCHEMA = "aiwp.audit.checkpoint/v1"
NAME = re.compile(r"^checkpoint-(\d{20})\.json$")


class CheckpointStorage(Protocol):
    """Where checkpoints are kept: append-only, one object per checkpoint, named by its position."""

    where: str

    def names(self) -> list[str]:
        """The names of the stored objects."""
        ...

    def read(self, name: str) -> bytes:
        """The bytes of one object."""
        ...

    def create(self, name: str, data: bytes) -> None:
        """Stores a new object; raises rather than replace one that exists."""
        ...


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True):
    schema: str
    store: str  # "<database>/<schema>": the chain it vouches for
    position: int
    rows: int  # rows of the chain up to `position`, dropped ones included
    head: str  # hex SHA-256 of the row at `position`
    created_at: str
    key_id: str


def name_of(position: int) -> str:
    return f"checkpoint-{position:020d}.json"


def latest_name(storage: CheckpointStorage) -> str | None:
    """The checkpoint with the highest position, or None."""
    names = [n for n in storage.names() if NAME.match(n)]
    return max(names) if names else None


def open_checkpoint(data: bytes, keys: Sequence[Ed25519PublicKey]) -> Checkpoint:
    """Raises `BadSignature` when the signature does not verify or the document is not a checkpoint."""
    document = opened(data, keys)
    try:
        checkpoint = msgspec.convert(document, Checkpoint)
    except msgspec.ValidationError as error:
        raise BadSignature(f"it is signed but not a checkpoint: {error}") from None
    if checkpoint.schema != SCHEMA:
        raise BadSignature(f"it is a {checkpoint.schema!r} document, not a {SCHEMA!r} one")
    return checkpoint


@dataclass(frozen=True)
class Cut:
    """Where retention cut the chain: the last dropped row, its hash (the chain head at the cut)."""

    last_position: int
    head: bytes
    first_kept: int | None
    rows_dropped: int  # over every cut so far


async def store_id(conn: Connection) -> str:
    return str(await conn.fetchval("SELECT current_database() || '/' || current_schema()"))


async def retention_cut(conn: Connection) -> Cut | None:
    """The latest cut, or None when retention never dropped a row (or its log is not migrated yet)."""
    if await conn.fetchval("SELECT to_regclass('audit_retention_log')") is None:
        return None
    row = await conn.fetchrow(
        "SELECT last_position, last_hash, first_kept_position,"
        " (SELECT coalesce(sum(rows_dropped), 0) FROM audit_retention_log) AS dropped"
        " FROM audit_retention_log WHERE last_hash IS NOT NULL ORDER BY last_position DESC LIMIT 1"
    )
    if row is None:
        return None
    return Cut(row["last_position"], bytes(row["last_hash"]), row["first_kept_position"], int(row["dropped"]))


async def cut_problem(conn: Connection, cut: Cut | None) -> str:
    """What is wrong with the retention log's latest cut, or an empty string. The log is in the database:
    a cut that claims rows were dropped while rows at or before it remain was not made by retention."""
    if cut is None:
        return ""
    if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM audit_events WHERE position <= $1)", cut.last_position):
        return (
            f"the retention log says the rows up to position {cut.last_position} were dropped,"
            " but rows at or before it remain: the log was written by hand"
        )
    return ""


def origin_of(cut: Cut | None) -> bytes:
    """What the first row of the trail links to: genesis, or the head recorded at the retention cut."""
    return cut.head if cut is not None else GENESIS


async def rows_up_to(conn: Connection, position: int, cut: Cut | None) -> int:
    present = await conn.fetchval("SELECT count(*) FROM audit_events WHERE position <= $1", position)
    return int(present) + (cut.rows_dropped if cut is not None else 0)


async def check_checkpoint(conn: Connection, checkpoint: Checkpoint, cut: Cut | None) -> str:
    """What the trail says that the checkpoint does not, or an empty string (call inside the walk's snapshot)."""
    here = await store_id(conn)
    if checkpoint.store != here:
        return f"the checkpoint is for the trail {checkpoint.store!r}, not {here!r}"
    position = checkpoint.position
    row = await conn.fetchrow("SELECT hash FROM audit_events WHERE position = $1", position)
    if row is None:
        last = await conn.fetchval("SELECT max(position) FROM audit_events")
        if last is None or last < position:
            return (
                f"the trail ends at position {last}, before position {position} that the checkpoint signed:"
                " rows were removed from its tail"
            )
        return f"position {position}, signed by the checkpoint, is not in the trail: the row was removed"
    actual = bytes(row["hash"]).hex()
    if actual != checkpoint.head:
        return (
            f"the row at position {position} has hash {actual}, the checkpoint signed {checkpoint.head}:"
            f" the chain was rewritten at or before position {position}"
        )
    rows = await rows_up_to(conn, position, cut)
    if rows != checkpoint.rows:
        return f"the trail has {rows} rows up to position {position}, the checkpoint signed {checkpoint.rows}"
    return ""
