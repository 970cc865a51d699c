"""schemathesis against the running platform's OpenAPI: no server error, no response outside the schema."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast
from uuid import uuid4

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from psycopg import sql
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.ops.test_demo import AIWP, run_aiwp
from tests.ops.test_serve import free_port

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@pytest.fixture(scope="module")
def served(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`aiwp serve` in a schema of its own, and an admin token of its local issuer."""
    schema = f"t_{uuid4().hex[:16]}"
    data_dir = tmp_path_factory.mktemp("served")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    env = {
        "AIWP_DATABASE_URL": database_url,
        "AIWP_DATABASE_SCHEMA": schema,
        "AIWP_DATA_DIR": str(data_dir),
        "AIWP_RATE_LIMIT_PER_SUBJECT": "1000000",
        "AIWP_RATE_LIMIT_PER_TENANT": "1000000",
    }
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIWP_")}
    port = free_port()
    log = Path(data_dir) / "serve.log"
    process = subprocess.Popen(
        [str(AIWP), "serve", "--port", str(port)],
        env=clean | env,
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
    )
    try:
        assert process.stdout is not None
        assert "serving" in process.stdout.readline(), log.read_text()
        token = run_aiwp("token", "issue", "--role", "admin", "--tenant", "fuzz", env=env).stdout.strip()
        yield {"url": f"http://127.0.0.1:{port}", "token": token, "log": str(log)}
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def test_the_api_answers_within_its_schema_and_never_with_a_server_error(served: dict[str, str]) -> None:
    loaded = schemathesis.openapi.from_url(f"{served['url']}/schema/openapi.json")
    headers = {"Authorization": f"Bearer {served['token']}"}
    failures: list[str] = []
    operations = 0
    for result in loaded.get_all_operations():
        operation = cast(Any, result).ok()  # an Err (a broken operation) raises here, failing the test
        operations += 1

        @settings(
            max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None
        )
        @given(case=operation.as_strategy())
        def exercise(case: Any) -> None:
            case.call_and_validate(
                base_url=served["url"], headers=headers, checks=[not_a_server_error, response_schema_conformance]
            )

        try:
            exercise()
        except Exception as failure:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {failure}"[:2000])
    assert operations >= 25
    assert not failures, "\n\n".join(failures) + "\n\nserver log:\n" + Path(served["log"]).read_text()[-3000:]
