"""Rebuilding read models from the event store into shadow tables, beside the live ones.

A rebuild works in a schema of its own, `<schema>_replay`, holding an empty copy of each table the chosen
projections own and of `projection_positions`. Its connection searches that schema first, so the projections'
own SQL — unqualified table names — writes into the copies unchanged, while everything else (the event store,
functions) resolves to the live schema. The live tables keep serving all along.

The bulk of the work reads the log once for all projections, up to where the slowest live projection stood
when it began. Then, in one transaction that holds the live projections' position rows (their projectors wait),
each shadow is brought to exactly its live projection's position; there the shadows are either compared with
the live tables, row by row, or swapped in for them (blue-green): the live table is dropped and the shadow moved
into its place with the live table's index names and grants. The positions do not move, so each projector goes
on from where it was, now over the rebuilt rows.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from adapters.event_store.log_reader import LogBatch, LogReader
from adapters.event_store.mapper import store_mapper
from adapters.postgres import connect
from adapters.projector import settled
from projections.audit_checkpoints import retention_cut
from projections.audit_events import projection as audit_trail
from projections.projection import Projection, Recorded

LOCK_CLASS = 0x72706C79  # "rply": one rebuild at a time per schema
SHADOW_MARK = "aiwp: the shadow tables of a projection rebuild (aiwp replay projection)"
Progress = Callable[[int], None]  # told the position reached after each batch


class ReplayBusy(Exception):
    """Another rebuild of this schema is running."""


@dataclass(frozen=True)
class TableSum:
    """A table's row count and a digest of its rows (the same rows give the same digest in any order)."""

    table: str
    rows: int
    digest: str


@dataclass(frozen=True)
class Difference:
    """One row that is not the same in the live table and the rebuilt one, named by its primary key."""

    table: str
    key: str
    live: str | None  # the row's checksum in the live table; None: not there
    shadow: str | None

    @property
    def kind(self) -> str:
        if self.shadow is None:
            return "only in the live table"
        if self.live is None:
            return "only in the rebuilt table"
        return "differs"


class _Plan:
    """Which lane writes which projection (those that take every event on the last), and each projection's
    share of a batch, sorted out in one pass over the batch."""

    def __init__(self, projections: Sequence[Projection], lanes: int) -> None:
        self.lanes: list[list[Projection]] = [[] for _ in range(lanes)]
        self._handled: list[list[set[type[Any]] | None]] = [[] for _ in range(lanes)]
        for projection in projections:
            every = projection.topics() is None
            lane = lanes - 1 if every else 0
            self.lanes[lane].append(projection)
            self._handled[lane].append(None if every else set(projection.handlers))
        self._routes: dict[type[Any], list[tuple[int, int]]] = {}

    def _route(self, kind: type[Any]) -> list[tuple[int, int]]:
        """(lane, place in lane) of each projection that takes events of this class."""
        found = self._routes.get(kind)
        if found is None:
            found = self._routes[kind] = [
                (lane, place)
                for lane, handled in enumerate(self._handled)
                for place, takes in enumerate(handled)
                if takes is None or kind in takes
            ]
        return found

    def share(self, events: list[Recorded]) -> list[list[list[Recorded]]]:
        shares: list[list[list[Recorded]]] = [[[] for _ in lane] for lane in self.lanes]
        for recorded in events:
            for lane, place in self._route(type(recorded.event)):
                shares[lane][place].append(recorded)
        return shares


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class ShadowRebuild:
    """One rebuild of some projections into `<schema>_replay`; see the module's docstring."""

    def __init__(
        self,
        conn: asyncpg.Connection,
        *,
        side: asyncpg.Connection,
        reading: asyncpg.Connection,
        schema: str,
        projections: Sequence[Projection],
        cipher_key: str | None,
    ) -> None:
        self._conn = conn  # writes the shadows: the shadow schema first on its search path
        self._side = side  # a second writer with the same search path, for the bulk of the rebuild
        self._reading = reading  # reads the log ahead of the writes
        self._reader = LogReader(store_mapper(cipher_key))
        self.schema = schema
        self.shadow = f"{schema}_replay"
        self.projections = list(projections)
        self.tables = [table for projection in self.projections for table in projection.tables]
        self.applied = 0  # events applied to at least one projection
        self._deferred: list[str] = []  # index statements to run once the shadows are filled

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, database_url: str, schema: str, projections: Sequence[Projection], *, cipher_key: str | None = None
    ) -> AsyncIterator[ShadowRebuild]:
        """A rebuild of `projections` in `schema`, reading the store with its cipher key (when it has one)."""
        opened: list[asyncpg.Connection] = []
        try:
            for before in ([f"{schema}_replay"], [f"{schema}_replay"], []):
                opened.append(await connect(database_url, schema, *before))
            conn, side, reading = opened
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1, hashtext($2))", LOCK_CLASS, schema):
                raise ReplayBusy(f"another replay of schema {schema!r} is running")
            yield cls(conn, side=side, reading=reading, schema=schema, projections=projections, cipher_key=cipher_key)
        finally:
            for made in opened:
                await made.close()

    # -- the shadow schema --------------------------------------------------------------------------------

    async def prepare(self) -> None:
        """An empty shadow of each table (a leftover of an interrupted rebuild is dropped first)."""
        live, shadow = _quote(self.schema), _quote(self.shadow)
        async with self._conn.transaction():
            await self._check_shadow()
            await self._conn.execute(f"DROP SCHEMA IF EXISTS {shadow} CASCADE; CREATE SCHEMA {shadow}")
            await self._conn.execute(f"COMMENT ON SCHEMA {shadow} IS '{SHADOW_MARK}'")
            for table in ("projection_positions", *self.tables):
                partitioning = await self._conn.fetchval(
                    "SELECT pg_get_partkeydef(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = $1 AND c.relname = $2",
                    self.schema,
                    table,
                )
                suffix = f" PARTITION BY {partitioning}" if partitioning else ""
                await self._conn.execute(
                    f"CREATE TABLE {shadow}.{_quote(table)}"
                    f" (LIKE {live}.{_quote(table)} INCLUDING ALL EXCLUDING INDEXES){suffix}"
                )
                await self._copy_indexes(table)
            await self._conn.executemany(
                f"INSERT INTO {shadow}.projection_positions (name, position) VALUES ($1, 0)",  # noqa: S608
                [(projection.name,) for projection in self.projections],
            )

    async def _copy_indexes(self, table: str) -> None:
        """The live table's keys and unique indexes on the shadow now (upserts need them); its other indexes
        once the shadow is filled (`index`): a bulk build is much cheaper than keeping them up row by row."""
        constraints = await self._conn.fetch(
            "SELECT con.conname, pg_get_constraintdef(con.oid) AS definition FROM pg_constraint con"
            " JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = $1 AND c.relname = $2 AND con.contype IN ('p', 'u', 'x')",
            self.schema,
            table,
        )
        target = f"{_quote(self.shadow)}.{_quote(table)}"
        for constraint in constraints:
            await self._conn.execute(
                f"ALTER TABLE {target} ADD CONSTRAINT {_quote(constraint['conname'])} {constraint['definition']}"
            )
        indexes = await self._conn.fetch(
            "SELECT pg_get_indexdef(i.indexrelid) AS definition, i.indisunique AS is_unique FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = $1 AND c.relname = $2"
            " AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid)",
            self.schema,
            table,
        )
        for index in indexes:
            # "CREATE [UNIQUE] INDEX name ON [ONLY] schema.table USING ..." -> unnamed, on the shadow, recursing
            head, _, rest = index["definition"].partition(" ON ")
            kind = head.rsplit(" ", 1)[0]
            using = rest.removeprefix("ONLY ").split(" ", 1)[1]
            statement = f"{kind} ON {target} {using}"
            if index["is_unique"]:
                await self._conn.execute(statement)
            else:
                self._deferred.append(statement)

    async def index(self) -> None:
        """Builds the shadows' remaining indexes (after the bulk of the rebuild)."""
        while self._deferred:
            await self._conn.execute(self._deferred.pop(0))

    async def drop(self) -> None:
        await self._check_shadow()
        await self._conn.execute(f"DROP SCHEMA IF EXISTS {_quote(self.shadow)} CASCADE")

    async def _check_shadow(self) -> None:
        """A schema of the shadow's name that a rebuild did not make is never dropped."""
        mark = await self._conn.fetchrow(
            "SELECT obj_description(oid, 'pg_namespace') AS mark FROM pg_namespace WHERE nspname = $1", self.shadow
        )
        if mark is not None and mark["mark"] != SHADOW_MARK:
            raise ReplayBusy(f"schema {self.shadow!r} exists and is not a rebuild's shadow; it is left alone")

    # -- filling the shadows from the log -------------------------------------------------------------------

    async def live_positions(self, *, lock: bool = False) -> dict[str, int]:
        """Where each live projection stands (0 when it never ran); `lock`: hold its row until the transaction ends."""
        rows = await self._conn.fetch(
            f"SELECT name, position FROM {_quote(self.schema)}.projection_positions"  # noqa: S608
            " WHERE name = ANY($1::text[]) ORDER BY name" + (" FOR UPDATE" if lock else ""),
            [projection.name for projection in self.projections],
        )
        found = {row["name"]: int(row["position"]) for row in rows}
        return {projection.name: found.get(projection.name, 0) for projection in self.projections}

    async def settled_positions(self, live: dict[str, int]) -> dict[str, int]:
        """How far each live projection has applied all it handles (past its own position while none of its
        events came: a projection of rare events would otherwise keep the one pass over the log short)."""
        relay = f"{_quote(self.schema)}.relay_positions"
        return {p.name: await settled(self._conn, p, live[p.name], relay) for p in self.projections}

    async def shadow_positions(self) -> dict[str, int]:
        rows = await self._conn.fetch(f"SELECT name, position FROM {_quote(self.shadow)}.projection_positions")  # noqa: S608
        return {row["name"]: int(row["position"]) for row in rows}

    async def fill(
        self,
        upto: int | None = None,
        *,
        until: datetime | None = None,
        progress: Progress | None = None,
        batch_size: int = 2_000,
    ) -> int:
        """Applies the log to every shadow in one pass, up to position `upto` (the head when None) and only the
        longest prefix of events that happened at or before `until`; returns the position reached."""
        position = min((await self.shadow_positions()).values(), default=0)
        return await self._advance(
            self.projections,
            position,
            upto,
            until=until,
            progress=progress,
            batch_size=batch_size,
            lanes=[self._conn, self._side],
        )

    async def _advance(
        self,
        projections: Sequence[Projection],
        position: int,
        upto: int | None,
        *,
        until: datetime | None,
        progress: Progress | None,
        batch_size: int,
        lanes: Sequence[asyncpg.Connection] = (),
    ) -> int:
        """Applies batches of the log to `projections`. With two `lanes` (connections), the projections that
        take every event (the audit trail) write on the second while the others write on the first, so that
        the database works on both at once. A lane that fails leaves the other ahead: the rebuild is dropped."""
        wanted = [projection.topics() for projection in projections]
        topics = None if any(t is None for t in wanted) else sorted({topic for t in wanted if t for topic in t})
        lanes = lanes or [self._conn]
        plan = _Plan(projections, len(lanes))

        async def write(
            conn: asyncpg.Connection, assigned: list[Projection], batches: list[list[Recorded]], at: int
        ) -> None:
            async with conn.transaction():
                for projection, mine in zip(assigned, batches, strict=True):
                    if mine:
                        await projection.apply(conn, mine)
                await conn.execute(
                    f"UPDATE {_quote(self.shadow)}.projection_positions SET position = $2"  # noqa: S608
                    " WHERE name = ANY($1::text[])",
                    [projection.name for projection in assigned],
                    at,
                )

        async def read(after: int) -> LogBatch:
            return await self._reader.read(self._reading, after, batch_size, topics, upto=upto)

        ahead = asyncio.ensure_future(read(position))  # the next batch is read and decoded while this one is written
        try:
            while True:
                batch = await ahead
                events: list[Recorded] = batch.events
                stopped = False
                if until is not None:
                    late = next((i for i, r in enumerate(events) if r.event.timestamp > until), None)
                    if late is not None:
                        events, stopped = events[:late], True
                done = stopped or batch.caught_up(batch_size)
                if stopped:
                    reached = events[-1].position if events else position
                else:
                    reached = batch.head if done else events[-1].position
                if not done:
                    ahead = asyncio.ensure_future(read(reached))
                shares = plan.share(events)
                await asyncio.gather(
                    *(
                        write(conn, assigned, share, reached)
                        for conn, assigned, share in zip(lanes, plan.lanes, shares, strict=True)
                        if assigned
                    )
                )
                self.applied += len(events)
                position = reached
                if progress is not None:
                    progress(position)
                if done:
                    return position
        finally:
            if not ahead.done():
                ahead.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ahead

    # -- comparing and swapping (inside `locked`) -----------------------------------------------------------

    async def catch_up_each(self, targets: dict[str, int], progress: Progress | None = None) -> None:
        """Brings each shadow to its own target position (projections reading only their own events)."""
        shadow = await self.shadow_positions()
        for projection in self.projections:
            target = targets[projection.name]
            if shadow[projection.name] < target:
                await self._advance(
                    [projection], shadow[projection.name], target, until=None, progress=progress, batch_size=2_000
                )

    @contextlib.asynccontextmanager
    async def locked(self, progress: Progress | None = None) -> AsyncIterator[dict[str, int]]:
        """One transaction holding the live projections still; each shadow is brought to its live projection's
        position first. Yields those positions."""
        async with self._conn.transaction():
            live = await self.live_positions(lock=True)
            await self.catch_up_each(await self.settled_positions(live), progress)
            yield live

    async def sums(self, schema: str) -> list[TableSum]:
        found = []
        for table in self.tables:
            row_sum = await self._row_sum(schema, table)
            record = await self._conn.fetchrow(
                "SELECT count(*) AS n,"  # noqa: S608
                " encode(sha256(convert_to(coalesce(string_agg(h, '' ORDER BY h), ''), 'UTF8')), 'hex') AS digest"
                f" FROM (SELECT {row_sum} AS h FROM {_quote(schema)}.{_quote(table)} AS t {await self._kept(table)})"
                " AS hashed"
            )
            assert record is not None
            found.append(TableSum(table, int(record["n"]), record["digest"]))
        return found

    async def differences(self, limit: int = 10_000) -> list[Difference]:
        """Every row (up to `limit` per table) not the same in the live table and its shadow."""
        found: list[Difference] = []
        for table in self.tables:
            row_sum = await self._row_sum(self.schema, table)
            key = await self._key(table)
            kept = await self._kept(table)
            live, shadow = (f"{_quote(schema)}.{_quote(table)} AS t {kept}" for schema in (self.schema, self.shadow))
            rows = await self._conn.fetch(
                f"WITH live AS (SELECT {key} AS k, {row_sum} AS h FROM {live}),"  # noqa: S608
                f" shadow AS (SELECT {key} AS k, {row_sum} AS h FROM {shadow})"
                " SELECT coalesce(live.k, shadow.k) AS k, live.h AS live, shadow.h AS shadow"
                " FROM live FULL JOIN shadow ON live.k = shadow.k AND live.h = shadow.h"
                " WHERE live.h IS NULL OR shadow.h IS NULL ORDER BY 1 LIMIT $1",
                limit,
            )
            merged: dict[str, Difference] = {}
            for row in rows:  # a changed row comes as one row only live and one only shadow: make it one
                seen = merged.get(row["k"])
                if seen is None:
                    merged[row["k"]] = Difference(table, row["k"], row["live"], row["shadow"])
                else:
                    merged[row["k"]] = Difference(
                        table, row["k"], seen.live or row["live"], seen.shadow or row["shadow"]
                    )
            found.extend(merged.values())
        return found

    async def swap(self) -> None:
        """Drops each live table and moves its shadow into its place, with the live table's index names and grants."""
        live = _quote(self.schema)
        for table in self.tables:
            grants = await self._conn.fetch(
                "SELECT a.privilege_type, coalesce(r.rolname, 'PUBLIC') AS grantee"
                " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,"
                " aclexplode(c.relacl) AS a LEFT JOIN pg_roles r ON r.oid = a.grantee"
                " WHERE n.nspname = $1 AND c.relname = $2 AND a.grantee <> c.relowner",
                self.schema,
                table,
            )
            indexes = await self._index_names(self.schema, table)
            owner = await self._conn.fetchval(
                "SELECT pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = $1 AND c.relname = $2",
                self.schema,
                table,
            )
            await self._conn.execute(f"DROP TABLE {live}.{_quote(table)}")
            await self._conn.execute(f"ALTER TABLE {_quote(self.shadow)}.{_quote(table)} SET SCHEMA {live}")
            await self._conn.execute(f"ALTER TABLE {live}.{_quote(table)} OWNER TO {_quote(owner)}")
            for shape, name in (await self._index_names(self.schema, table)).items():
                wanted = indexes.get(shape)
                if wanted is not None and wanted != name:
                    await self._conn.execute(f"ALTER INDEX {live}.{_quote(name)} RENAME TO {_quote(wanted)}")
            for grant in grants:
                grantee = "PUBLIC" if grant["grantee"] == "PUBLIC" else _quote(grant["grantee"])
                await self._conn.execute(f"GRANT {grant['privilege_type']} ON {live}.{_quote(table)} TO {grantee}")

    # -- catalogue look-ups ---------------------------------------------------------------------------------

    async def _kept(self, table: str) -> str:
        """The rows of `table` a comparison covers: all, except the audit trail's rows up to its last retention
        cut (`aiwp audit retention apply` dropped them from the live trail; the store still has their events)."""
        if table not in audit_trail.tables:
            return ""
        cut = await retention_cut(self._conn)  # the log lives in the live schema only: the search path finds it
        return "" if cut is None else f"WHERE t.position > {int(cut.last_position)}"

    async def _columns(self, schema: str, table: str) -> list[str]:
        """The table's columns, leaving out those filled by the clock (`DEFAULT now()`): they say when a row was
        written, not what the events say."""
        rows = await self._conn.fetch(
            "SELECT a.attname FROM pg_attribute a"
            " JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
            " LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
            " WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped"
            " AND coalesce(pg_get_expr(d.adbin, d.adrelid), '') NOT LIKE '%now()%' ORDER BY a.attnum",
            schema,
            table,
        )
        return [row["attname"] for row in rows]

    async def _row_sum(self, schema: str, table: str) -> str:
        columns = await self._columns(self.schema if schema == self.shadow else schema, table)
        return "md5(ROW(" + ", ".join(f"t.{_quote(c)}" for c in columns) + ")::text)"

    async def _key(self, table: str) -> str:
        rows = await self._conn.fetch(
            "SELECT a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
            " WHERE n.nspname = $1 AND c.relname = $2 AND i.indisprimary"
            " ORDER BY array_position(i.indkey::int2[], a.attnum)",
            self.schema,
            table,
        )
        if not rows:  # no primary key: the whole row is its own key
            return await self._row_sum(self.schema, table)
        return "ROW(" + ", ".join(f"t.{_quote(row['attname'])}" for row in rows) + ")::text"

    async def _index_names(self, schema: str, table: str) -> dict[str, str]:
        """The table's indexes by their definition without name and schema."""
        rows = await self._conn.fetch(
            "SELECT ic.relname AS name, pg_get_indexdef(i.indexrelid) AS definition FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
            " JOIN pg_class ic ON ic.oid = i.indexrelid WHERE n.nspname = $1 AND c.relname = $2",
            schema,
            table,
        )
        shapes = {}
        for row in rows:
            definition: str = row["definition"]
            head, _, rest = definition.partition(" ON ")
            kind = head.rsplit(" ", 1)[0]  # "CREATE [UNIQUE] INDEX"
            shapes[f"{kind} ON {rest.split('.', 1)[-1]}"] = row["name"]
        return shapes


def summary(sums: Sequence[TableSum]) -> dict[str, Any]:
    return {s.table: {"rows": s.rows, "digest": s.digest} for s in sums}
