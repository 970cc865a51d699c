"""The library's PostgreSQL recorder, with the table lock kept in its one-call insert function.

eventsourcing 9.5's plain insert path takes `LOCK TABLE ... IN EXCLUSIVE MODE` so that commit
order equals notification-id order. Its faster path (`POSTGRES_ENABLE_DB_FUNCTIONS`) inserts
through a plpgsql function that does not take that lock: two concurrent inserts then interleave
their ids, and a reader tailing the log by id can pass an id whose transaction commits later —
an event silently skipped. The library's own `NonInterleavingNotificationIDsBaseCase` fails on
that path. This recorder keeps the one round trip and takes the lock inside the function.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Identifier


class LockingPostgresApplicationRecorder(PostgresApplicationRecorder):
    """Inserts in one call (function `aiwp_insert_events_<id type>`) under the table's exclusive lock."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pg_function_name_insert_events = f"aiwp_insert_events_{self.datastore.originator_id_type}"
        names = {
            "schema": Identifier(self.datastore.schema),
            "insert_events": Identifier(self.pg_function_name_insert_events),
            "table": Identifier(self.events_table_name),
            "event": Identifier(self.stored_event_type_name),
            "channel": Identifier(self.channel_name),
        }
        self.sql_invoke_pg_function_insert_events = SQL("SELECT * FROM {schema}.{insert_events}((%s))").format(**names)
        self.sql_create_pg_function_insert_events = SQL(
            "CREATE OR REPLACE FUNCTION {schema}.{insert_events}(events {schema}.{event}[]) "
            "RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ "
            "BEGIN "
            "SET LOCAL lock_timeout = '{lock_timeout}s'; "
            "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
            "NOTIFY {channel}; "
            "RETURN QUERY INSERT INTO {schema}.{table} AS t (originator_id, originator_version, topic, state) "
            "SELECT originator_id, originator_version, topic, state FROM unnest(events) "
            "RETURNING notification_id; "
            "END; $BODY$"
        ).format(lock_timeout=self.datastore.lock_timeout, **names)
        self.sql_create_statements[self.create_insert_function_statement_index] = (
            self.sql_create_pg_function_insert_events
        )
