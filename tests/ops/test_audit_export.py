"""`aiwp audit export`: a compliance export of a position range, optionally one tenant's, with its manifest."""

from __future__ import annotations

import base64
import csv
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ops.bootstrap import Platform, open_platform
from ops.settings import Settings
from projections.audit_signing import opened
from tests.ops.audit_chain import aiwp, env, load, platform_role, rows

pytestmark = pytest.mark.integration


@pytest.fixture
async def platform(database_url: str, pg_schema: str) -> AsyncIterator[Platform]:
    async with open_platform(Settings(database_url=database_url, database_schema=pg_schema)) as made:
        async with made.pool.acquire() as conn:
            await load(conn, rows(120, tenant=lambda p: "acme" if p % 3 else "globex"))
        yield made


async def test_a_jsonl_export_and_its_manifest(
    platform: Platform, database_url: str, pg_schema: str, tmp_path: Path
) -> None:
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    out = tmp_path / "q3.jsonl"
    environ = env(database_url, pg_schema, AIWP_AUDIT_SIGNING_KEY=base64.b64encode(seed).decode())
    code, printed, stderr = aiwp(
        "audit", "export", "--from", "10", "--to", "59", "--out", str(out), "--json", environ=environ
    )
    assert code == 0, stderr
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["position"] for r in exported] == list(range(10, 60))
    assert exported[0]["data"] == {"note": 10, "who": "ada"}
    assert exported[0]["tenant_id"] == "acme"
    assert exported[0]["occurred_at"].startswith("2026-11-02T")
    document = opened(Path(f"{out}.manifest.json").read_bytes(), [key.public_key()])  # signed
    assert document["rows"] == 50
    assert (document["first_position"], document["last_position"]) == (10, 59)
    assert document["chain_head"] == exported[-1]["hash"]
    assert document["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert document["filters"] == {"from": 10, "to": 59, "tenant": None}
    assert (printed["signed"], printed["recorded"]) == (True, True)
    async with platform.pool.acquire() as conn:
        report = await conn.fetchrow("SELECT * FROM compliance_reports")
    assert report is not None
    assert (report["row_count"], report["from_position"], report["to_position"]) == (50, 10, 59)
    assert bytes(report["chain_head"]).hex() == document["chain_head"]


async def test_a_csv_export_of_one_tenant(
    platform: Platform, database_url: str, pg_schema: str, tmp_path: Path
) -> None:
    out = tmp_path / "globex.csv"
    environ = env(database_url, pg_schema)
    code, printed, stderr = aiwp(
        "audit", "export", "--from", "1", "--to", "120", "--tenant", "globex", "--format", "csv", "--out", str(out),
        "--json", environ=environ,
    )  # fmt: skip
    assert code == 0, stderr
    with out.open(newline="") as file:
        table = list(csv.DictReader(file))
    assert [int(r["position"]) for r in table] == list(range(3, 121, 3))
    assert {r["tenant_id"] for r in table} == {"globex"}
    assert json.loads(table[0]["data"]) == {"note": 3, "who": "ada"}
    manifest = json.loads(Path(f"{out}.manifest.json").read_text())
    assert manifest["signature"] is None  # no key here: the manifest is written unsigned
    assert manifest["document"]["rows"] == 40 == printed["rows"]
    assert manifest["document"]["format"] == "csv"
    assert manifest["document"]["filters"]["tenant"] == "globex"
    assert manifest["document"]["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "9", "--to", "3"], "--to 3 is before --from 9"),
        (["--from", "1", "--to", "3", "--format", "xml"], "--format 'xml' is not one of jsonl, csv"),
        (["--from", "1", "--to", "3", "--out", "/nonexistent/dir/x.jsonl"], "/nonexistent/dir is not a directory"),
        (["--from", "1", "--to", "3", "--out", "EXISTING"], "exists; exports never overwrite"),
    ],
)
async def test_bad_input_is_exit_2_in_one_line(
    platform: Platform, database_url: str, pg_schema: str, tmp_path: Path, args: list[str], message: str
) -> None:
    existing = tmp_path / "existing.jsonl"
    existing.write_text("")
    chosen = [str(existing) if a == "EXISTING" else a for a in args]
    if "--out" not in chosen:
        chosen += ["--out", str(tmp_path / "x.jsonl")]
    code, printed, stderr = aiwp("audit", "export", *chosen, environ=env(database_url, pg_schema))
    assert (code, printed) == (2, None)
    assert message in stderr
    assert len(stderr.strip().splitlines()) == 1


async def test_the_platform_role_exports_to_the_file_only(
    platform: Platform, database_url: str, pg_schema: str, tmp_path: Path
) -> None:
    out = tmp_path / "all.jsonl"
    with platform_role(database_url) as url:
        code, printed, stderr = aiwp(
            "audit", "export", "--from", "1", "--to", "120", "--out", str(out), "--json", environ=env(url, pg_schema)
        )
    assert code == 0, stderr
    assert (printed["rows"], printed["recorded"]) == (120, False)  # it may not INSERT into compliance_reports
    async with platform.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM compliance_reports") == 0
