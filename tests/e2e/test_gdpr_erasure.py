"""GDPR erasure by crypto-shredding, end to end (ADR 0008).

Subject A gets five planted strings — two workflow inputs, a recipient, a model output and the prompt of
an agent run — and subject B strings of its own. Before the erasure, PostgreSQL holds none of them in
clear (only sealed strings), while the query API reveals them. After `aiwp gdpr erase A`: `pg_dump`, the
audit export, the events CLI, the query API and a projection rebuilt from the store show none of A's
strings (A reads `[erased]`), B still reads in clear, and the audit chain verifies.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from litestar import Litestar
from psycopg.conninfo import conninfo_to_dict

from ops.bootstrap import Platform, open_platform, running_workers
from ops.http import build_app, build_edge
from tests.api.conftest import api_settings, asgi_client
from tests.api.issuer import TestIssuer

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
AIWP = Path(sys.executable).with_name("aiwp")
TENANT = "acme"


def planted(tag: str) -> dict[str, str]:
    """Five unique strings about one subject."""
    mark = uuid4().hex[:12]
    return {
        "name": f"Name{tag}{mark}",
        "email": f"mail{tag}{mark}@example.org",
        "note": f"Note{tag}{mark}",
        "output": f"Answer{tag}{mark}",
        "prompt": f"Prompt{tag}{mark}",
    }


A, B = planted("A"), planted("B")
DEFINITION = {
    "inputs": ["name", "email", "note"],
    "steps": [
        {"id": "draft", "kind": "agent", "params": {"agent": "writer", "prompt": "Summarise {{ inputs.note }}"}},
        {
            "id": "tell",
            "kind": "notify",
            "needs": ["draft"],
            "params": {
                "channel": "email",
                "recipient": "{{ inputs.email }}",
                "subject": "For {{ inputs.name }}",
                "template": "{{ outputs.draft }}",
            },
        },
    ],
}


@pytest.fixture
def issuer() -> Iterator[TestIssuer]:
    made = TestIssuer()
    yield made
    made.stop()


@pytest.fixture
async def platform(database_url: str, pg_schema: str, issuer: TestIssuer, tmp_path: Path) -> AsyncIterator[Platform]:
    script = tmp_path / "replies.yaml"
    script.write_text(json.dumps({A["note"]: f"Reply with {A['output']}", B["note"]: f"Reply with {B['output']}"}))
    settings = api_settings(
        database_url,
        pg_schema,
        issuer,
        tmp_path,
        scripted_replies=str(script),  # JSON is YAML
        subject_key_ttl_seconds=0.0,  # this process sees the erase at once (the default is 30 s)
    )
    async with open_platform(settings, {}) as made:
        yield made


@pytest.fixture
async def app(platform: Platform) -> AsyncIterator[Litestar]:
    edge = await build_edge(platform.settings)
    yield build_app(platform, edge)
    await edge.close()


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as made:
        yield made


def env(database_url: str, schema: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIWP_")}
    return clean | {"AIWP_DATABASE_URL": database_url, "AIWP_DATABASE_SCHEMA": schema, "COLUMNS": "200"}


def aiwp(*args: str, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(AIWP), *args], env=environ, capture_output=True, text=True, timeout=120, check=False)


def pg_dump(database_url: str, schema: str) -> str:
    params = conninfo_to_dict(database_url)
    command = ["pg_dump", "-h", str(params.get("host", "127.0.0.1")), "-p", str(params.get("port", "5432"))]
    command += ["-U", str(params.get("user", "postgres")), "-n", schema, str(params.get("dbname", "test"))]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


def found(text: str, strings: dict[str, str]) -> list[str]:
    return [value for value in strings.values() if value in text]


def headers(issuer: TestIssuer, role: str = "admin") -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.for_role(role, TENANT)}"}


async def start(client: httpx.AsyncClient, issuer: TestIssuer, template: str, subject: str, s: dict[str, str]) -> str:
    inputs = {"name": s["name"], "email": s["email"], "note": s["note"]}
    body = {"template_id": template, "inputs": inputs, "subject": subject}
    answer = await client.post("/v1/workflow-instances", json=body, headers=headers(issuer))
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


async def settled(platform: Platform, client: httpx.AsyncClient, issuer: TestIssuer, ids: list[str]) -> None:
    """Waits until every instance completed and the read models applied everything there is."""
    for _ in range(300):
        views = [(await client.get(f"/v1/workflow-instances/{i}", headers=headers(issuer))).json() for i in ids]
        if all(view.get("status") == "completed" for view in views):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"instances did not complete: {views}")
    async with platform.pool.acquire() as conn:
        head = await platform.reader.head(conn)
    assert await platform.wait_for(head, timeout=30.0)


async def test_an_erased_subject_reads_erased_everywhere_and_the_chain_still_verifies(
    platform: Platform,
    client: httpx.AsyncClient,
    issuer: TestIssuer,
    database_url: str,
    pg_schema: str,
    tmp_path: Path,
) -> None:
    environ = env(database_url, pg_schema)
    async with running_workers(platform, agents=True, orchestrator=True):
        agent = await client.post(
            "/v1/agents", json={"name": "writer", "provider": "scripted", "model": "s-1"}, headers=headers(issuer)
        )
        assert agent.status_code == 201, agent.text
        template = await client.post(
            "/v1/workflow-templates", json={"name": "greet", "definition": DEFINITION}, headers=headers(issuer)
        )
        assert template.status_code == 201, template.text
        assert await platform.wait_for(template.json()["position"], names=["agents", "workflows"])
        a_id = await start(client, issuer, template.json()["id"], "subject-a", A)
        b_id = await start(client, issuer, template.json()["id"], "subject-b", B)
        not_pseudonymous = await client.post(
            "/v1/workflow-instances",
            json={"template_id": template.json()["id"], "inputs": {}, "subject": "ada@example.org"},
            headers=headers(issuer),
        )
        assert not_pseudonymous.status_code == 400
        runs = {}
        for subject, strings in (("subject-a", A), ("subject-b", B)):
            body = {"agent_id": agent.json()["id"], "prompt": strings["prompt"], "subject": subject}
            run = await client.post("/v1/agent-runs", json=body, headers=headers(issuer))
            assert run.status_code == 202, run.text
            runs[subject] = run.json()["id"]
        await settled(platform, client, issuer, [a_id, b_id])

        # Before: the database holds sealed strings only, the API reveals them to the tenant.
        dump = pg_dump(database_url, pg_schema)
        assert found(dump, A) == []
        assert found(dump, B) == []
        assert "aiwp:sealed:v1:subject-a:" in dump
        view = (await client.get(f"/v1/workflow-instances/{a_id}", headers=headers(issuer))).json()
        assert view["inputs"]["note"] == A["note"], view
        run_a = (await client.get(f"/v1/agent-runs/{runs['subject-a']}", headers=headers(issuer))).text
        assert A["prompt"] in run_a

        erased = aiwp("gdpr", "erase", "subject-a", "--tenant", TENANT, "--json", environ=environ)
        assert erased.returncode == 0, erased.stderr
        record = json.loads(erased.stdout)
        assert record["subject"] == "subject-a"
        assert record["already_erased"] is False
        again = aiwp("gdpr", "erase", "subject-a", "--tenant", TENANT, "--json", environ=environ)
        assert again.returncode == 0
        assert json.loads(again.stdout)["already_erased"] is True
        malformed = aiwp("gdpr", "erase", "ada@example.org", "--tenant", TENANT, environ=environ)
        assert malformed.returncode == 2
        assert len(malformed.stderr.strip().splitlines()) == 1
        unknown = aiwp("gdpr", "erase", "nobody", "--tenant", TENANT, environ=environ)
        assert unknown.returncode == 2
        assert unknown.stderr.strip() == f"aiwp: no data subject 'nobody' in tenant {TENANT!r}"
        # a new write about the erased subject is refused, not sealed under a new key
        refused = await client.post(
            "/v1/agent-runs",
            json={"agent_id": agent.json()["id"], "prompt": "more", "subject": "subject-a"},
            headers=headers(issuer),
        )
        assert refused.status_code == 409, refused.text
        async with platform.pool.acquire() as conn:
            head = await platform.reader.head(conn)
        assert await platform.wait_for(head, timeout=30.0)

    # After: nothing of A anywhere, B still in clear through the API and the events CLI.
    dump = pg_dump(database_url, pg_schema)
    assert found(dump, A) == []
    subjects = aiwp("gdpr", "subjects", "--tenant", TENANT, "--json", environ=environ)
    statuses = {row["subject"]: row["status"] for row in map(json.loads, subjects.stdout.splitlines())}
    assert statuses == {"subject-a": "erased", "subject-b": "active"}

    answers: dict[str, Any] = {}
    for name, path in {
        "a": f"/v1/workflow-instances/{a_id}",
        "b": f"/v1/workflow-instances/{b_id}",
        "run_a": f"/v1/agent-runs/{runs['subject-a']}",
        "run_b": f"/v1/agent-runs/{runs['subject-b']}",
        "audit": "/v1/audit/events?limit=500",
    }.items():
        response = await client.get(path, headers=headers(issuer, "auditor" if name == "audit" else "admin"))
        assert response.status_code == 200, (path, response.text)
        answers[name] = response.text
    assert found(" ".join(answers.values()), A) == []
    assert answers["a"]
    assert json.loads(answers["a"])["inputs"] == {
        "name": "[erased]",
        "email": "[erased]",
        "note": "[erased]",
    }
    assert json.loads(answers["b"])["inputs"]["note"] == B["note"]
    assert f"Scripted reply to: {B['prompt']}" in answers["run_b"]  # its prompt, and the model's reply quoting it
    assert B["output"] in answers["b"]  # the draft step's output: the model's reply
    assert B["email"] in answers["b"]  # an input (also the notify step's recipient)
    assert "[erased]" in answers["run_a"]

    stream_a = aiwp("events", "stream", a_id, "--json", environ=environ)
    stream_b = aiwp("events", "stream", b_id, "--json", environ=environ)
    assert stream_a.returncode == 0
    assert stream_b.returncode == 0
    assert found(stream_a.stdout, A) == []
    assert "[erased]" in stream_a.stdout
    assert B["email"] in stream_b.stdout
    assert B["output"] in stream_b.stdout
    as_of = {
        name: aiwp("replay", "aggregate", stream, "--at", "99999999", "--json", environ=environ)
        for name, stream in (("a", a_id), ("b", b_id))
    }
    assert as_of["a"].returncode == as_of["b"].returncode == 0, as_of["a"].stderr + as_of["b"].stderr
    assert found(as_of["a"].stdout, A) == []
    assert "[erased]" in as_of["a"].stdout
    assert B["email"] in as_of["b"].stdout  # time travel reveals what may still be read
    tail = aiwp("events", "tail", "--from", "0", "--count", "1000", "--json", environ=environ)
    assert found(tail.stdout, A) == []
    assert "DataSubjectErased" in tail.stdout

    verified = aiwp("audit", "verify", "--json", environ=environ)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    export = tmp_path / "trail.jsonl"
    exported = aiwp("audit", "export", "--from", "0", "--to", "1000000", "--out", str(export), environ=environ)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert found(export.read_text(), A) == []
    assert B["email"] in export.read_text()  # the export reveals what may still be read
    assert "[erased]" in export.read_text()
    traced = aiwp("trace", a_id, "--json", environ=environ)
    assert traced.returncode == 0, traced.stderr
    assert found(traced.stdout, A) == []

    # Every projection rebuilt from the store and swapped in holds no plaintext of A either; B reads as before.
    rebuilt_all = aiwp("replay", "projection", "--all", "--json", environ=environ)
    assert rebuilt_all.returncode == 0, rebuilt_all.stderr
    checked = aiwp("replay", "projection", "--all", "--verify", "--json", environ=environ)
    assert json.loads(checked.stdout)["ok"], checked.stdout
    dump = pg_dump(database_url, pg_schema)
    assert found(dump, A) == []
    rebuilt = (await client.get(f"/v1/workflow-instances/{a_id}", headers=headers(issuer))).json()
    assert rebuilt["inputs"]["name"] == "[erased]"
    rebuilt_b = (await client.get(f"/v1/workflow-instances/{b_id}", headers=headers(issuer))).json()
    assert rebuilt_b["inputs"]["name"] == B["name"]
