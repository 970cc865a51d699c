"""The eventsourcing `Application` configured the way the platform stores its events."""

from __future__ import annotations

from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import Mapper
from eventsourcing.utils import Environment, EnvType
from psycopg.conninfo import conninfo_to_dict

from adapters.event_store.mapper import MsgspecMapper
from domain.events import Snapshot

STORE_NAME = "aiwp"


class StoreApplication(Application[Any]):
    """Owns the recorder (events and snapshots tables), the mapper and the connection pool."""

    name = STORE_NAME
    snapshot_class = Snapshot

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        # Configuration comes only from the settings the composition root passes in, never from os.environ.
        return Environment(name, dict(env or {}))

    def construct_mapper(self) -> Mapper[Any]:
        return MsgspecMapper(
            transcoder=self.factory.transcoder(),
            cipher=self.factory.cipher(),
            compressor=self.factory.compressor(),
        )


def postgres_env(
    database_url: str,
    *,
    schema: str = "",
    pool_size: int = 16,
    cipher_key: str | None = None,
) -> dict[str, str]:
    """The library's settings for one PostgreSQL database, from a libpq URL."""
    params = conninfo_to_dict(database_url)
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(params.get("dbname") or "postgres"),
        "POSTGRES_HOST": str(params.get("host") or "127.0.0.1"),
        "POSTGRES_PORT": str(params.get("port") or "5432"),
        "POSTGRES_USER": str(params.get("user") or "postgres"),
        "POSTGRES_PASSWORD": str(params.get("password") or ""),
        "POSTGRES_SCHEMA": schema,
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": str(pool_size),
        "POSTGRES_ENABLE_DB_FUNCTIONS": "y",
        "APPLICATION_RECORDER_TOPIC": "adapters.event_store.recorder:LockingPostgresApplicationRecorder",
        "POSTGRES_CONNECT_TIMEOUT": "10",
        "CREATE_TABLE": "y",
        "IS_SNAPSHOTTING_ENABLED": "y",
    }
    return env | cipher_env(cipher_key)


def memory_env(*, cipher_key: str | None = None) -> dict[str, str]:
    """The library's in-memory recorder: the same store, for tests that need no database."""
    return {"PERSISTENCE_MODULE": "eventsourcing.popo", "IS_SNAPSHOTTING_ENABLED": "y"} | cipher_env(cipher_key)


def cipher_env(cipher_key: str | None) -> dict[str, str]:
    if not cipher_key:
        return {}
    return {"CIPHER_TOPIC": "eventsourcing.cryptography:AESCipher", "CIPHER_KEY": cipher_key}
