"""`aiwp audit checkpoint` and the checkpoint half of `aiwp audit verify`: what a database owner cannot hide
from a signed checkpoint kept outside the database — in a directory, or in S3 (moto's server, over HTTP)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from moto.server import ThreadedMotoServer

from ops.bootstrap import Platform, open_platform
from ops.settings import Settings
from projections.audit_checkpoints import name_of
from tests.ops.audit_chain import aiwp, as_owner, env, load, rewrite_from, rows

pytestmark = pytest.mark.integration
ROWS = 300


def seed_of(key: Ed25519PrivateKey) -> str:
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    return base64.b64encode(raw).decode()


def public_of(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


@pytest.fixture
async def platform(database_url: str, pg_schema: str) -> AsyncIterator[Platform]:
    async with open_platform(Settings(database_url=database_url, database_schema=pg_schema)) as made:
        async with made.pool.acquire() as conn:
            await load(conn, rows(ROWS))
        yield made


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def signer(database_url: str, pg_schema: str, tmp_path: Path, key: Ed25519PrivateKey) -> dict[str, str]:
    """The environment of the one who signs: the private key, the checkpoint directory."""
    return env(
        database_url,
        pg_schema,
        AIWP_AUDIT_CHECKPOINTS=str(tmp_path / "checkpoints"),
        AIWP_AUDIT_SIGNING_KEY=seed_of(key),
    )


@pytest.fixture
def auditor(database_url: str, pg_schema: str, tmp_path: Path, key: Ed25519PrivateKey) -> dict[str, str]:
    """The environment of an auditor: the public key only."""
    return env(
        database_url,
        pg_schema,
        AIWP_AUDIT_CHECKPOINTS=str(tmp_path / "checkpoints"),
        AIWP_AUDIT_VERIFY_KEY=public_of(key),
    )


def checkpoint(environ: dict[str, str]) -> dict[str, Any]:
    code, printed, stderr = aiwp("audit", "checkpoint", "--json", environ=environ)
    assert code == 0, (printed, stderr)
    assert printed["ok"] is True
    return dict(printed)


def verify(environ: dict[str, str]) -> tuple[int, dict[str, Any]]:
    code, printed, stderr = aiwp("audit", "verify", "--json", environ=environ)
    assert code in (0, 1), stderr
    assert isinstance(printed, dict), (printed, stderr)
    return code, printed


async def test_a_signed_checkpoint_holds_for_an_untouched_trail(
    platform: Platform, signer: dict[str, str], auditor: dict[str, str], tmp_path: Path
) -> None:
    code, before = verify(auditor)
    assert (code, before["checkpoint"]["status"]) == (0, "none")
    signed = checkpoint(signer)
    assert (signed["written"], signed["position"], signed["rows"]) == (True, ROWS, ROWS)
    stored = json.loads((tmp_path / "checkpoints" / name_of(ROWS)).read_text())
    assert stored["document"]["head"] == signed["head"]
    assert set(stored) == {"document", "signature"}
    code, after = verify(auditor)
    assert (code, after["ok"], after["checkpoint"]["status"], after["checkpoint"]["position"]) == (0, True, "ok", ROWS)
    # Nothing new: the same head is not signed twice.
    again = checkpoint(signer)
    assert again["written"] is False


async def test_a_rewritten_chain_with_every_later_hash_recomputed_is_caught(
    platform: Platform, signer: dict[str, str], auditor: dict[str, str]
) -> None:
    checkpoint(signer)
    async with platform.pool.acquire() as conn:
        await rewrite_from(conn, 120, "mallory")
    code, verdict = verify(auditor)
    assert code == 1
    assert verdict["first_bad"] is None  # the chain alone cannot tell...
    assert verdict["checkpoint"]["status"] == "failed"  # ...the checkpoint can
    assert f"the row at position {ROWS} has hash" in verdict["checkpoint"]["problem"]
    assert "rewritten" in verdict["checkpoint"]["problem"]
    # And a new checkpoint is refused: it would sign the rewrite.
    code, printed, _ = aiwp("audit", "checkpoint", "--json", environ=signer)
    assert (code, printed["ok"]) == (1, False)
    assert "refusing to sign" in printed["problem"]


async def test_a_truncated_tail_is_caught(platform: Platform, signer: dict[str, str], auditor: dict[str, str]) -> None:
    checkpoint(signer)
    async with platform.pool.acquire() as conn:
        await as_owner(conn, f"DELETE FROM audit_events WHERE position > {ROWS - 25}")
    code, verdict = verify(auditor)
    assert code == 1
    assert verdict["first_bad"] is None
    assert f"the trail ends at position {ROWS - 25}, before position {ROWS}" in verdict["checkpoint"]["problem"]


async def test_a_checkpoint_changed_after_signing_or_signed_by_another_key_fails(
    platform: Platform, signer: dict[str, str], auditor: dict[str, str], tmp_path: Path
) -> None:
    checkpoint(signer)
    stranger = Ed25519PrivateKey.generate()
    code, verdict = verify(auditor | {"AIWP_AUDIT_VERIFY_KEY": public_of(stranger)})
    assert code == 1
    assert "which is not one of the verify keys" in verdict["checkpoint"]["problem"]
    path = tmp_path / "checkpoints" / name_of(ROWS)
    stored = json.loads(path.read_text())
    stored["document"]["rows"] = ROWS - 1
    path.write_text(json.dumps(stored))
    code, verdict = verify(auditor)
    assert code == 1
    assert "signature does not verify" in verdict["checkpoint"]["problem"]


async def test_checkpoints_follow_the_chain_as_it_grows(
    platform: Platform, signer: dict[str, str], auditor: dict[str, str], tmp_path: Path
) -> None:
    first = checkpoint(signer)
    async with platform.pool.acquire() as conn:
        await load(conn, rows(50, first=ROWS + 1, head=bytes.fromhex(first["head"])))
    second = checkpoint(signer)
    assert (second["position"], second["rows"], second["previous"]) == (ROWS + 50, ROWS + 50, name_of(ROWS))
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [name_of(ROWS), name_of(ROWS + 50)]
    code, verdict = verify(auditor)
    assert (code, verdict["checkpoint"]["position"]) == (0, ROWS + 50)


async def test_a_chain_that_does_not_verify_is_not_signed(platform: Platform, signer: dict[str, str]) -> None:
    async with platform.pool.acquire() as conn:
        await as_owner(conn, "UPDATE audit_events SET actor = 'mallory' WHERE position = 40")
    code, printed, _ = aiwp("audit", "checkpoint", "--json", environ=signer)
    assert (code, printed["ok"], printed["first_bad"]) == (1, False, 40)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"AIWP_AUDIT_SIGNING_KEY": ""}, "no checkpoint signing key: AIWP_AUDIT_SIGNING_KEY is not set"),
        ({"AIWP_AUDIT_SIGNING_KEY": "bm90IGEga2V5"}, "AIWP_AUDIT_SIGNING_KEY decodes to 9 bytes"),
        ({"AIWP_AUDIT_CHECKPOINTS": "ftp://somewhere/x"}, "is neither a directory nor s3://bucket/prefix"),
    ],
)
async def test_a_missing_or_bad_key_or_location_is_exit_2_in_one_line(
    platform: Platform, signer: dict[str, str], change: dict[str, str], message: str
) -> None:
    code, printed, stderr = aiwp("audit", "checkpoint", "--json", environ=signer | change)
    assert (code, printed) == (2, None)
    assert message in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert "bm90IGEga2V5" not in stderr


async def test_checkpoints_without_a_key_to_check_them_or_a_bad_range_are_exit_2(
    platform: Platform, signer: dict[str, str], auditor: dict[str, str]
) -> None:
    checkpoint(signer)
    code, _, stderr = aiwp("audit", "verify", "--json", environ=auditor | {"AIWP_AUDIT_VERIFY_KEY": ""})
    assert code == 2
    assert "no key to check them" in stderr
    code, _, stderr = aiwp("audit", "verify", "--from", "9", "--to", "3", environ=auditor)
    assert (code, stderr.strip()) == (2, "aiwp: --to 3 is before --from 9")


@pytest.fixture
def s3() -> Iterator[str]:
    """An S3 server (moto, over HTTP on a free port) with a bucket `audit`; its endpoint URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    ).create_bucket(Bucket="audit")
    yield endpoint
    server.stop()


async def test_checkpoints_in_s3(platform: Platform, signer: dict[str, str], auditor: dict[str, str], s3: str) -> None:
    where = {
        "AIWP_AUDIT_CHECKPOINTS": "s3://audit/prod/trail",
        "AIWP_S3_ENDPOINT_URL": s3,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
    }
    signed = checkpoint(signer | where)
    assert (signed["where"], signed["name"]) == ("s3://audit/prod/trail/", name_of(ROWS))
    client = boto3.client(
        "s3", endpoint_url=s3, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="audit")["Contents"]]
    assert keys == [f"prod/trail/{name_of(ROWS)}"]
    assert checkpoint(signer | where)["written"] is False  # S3 refuses to replace it, too
    code, verdict = verify(auditor | where)
    assert (code, verdict["checkpoint"]["status"]) == (0, "ok")
    async with platform.pool.acquire() as conn:
        await rewrite_from(conn, 7, "mallory")
    code, verdict = verify(auditor | where)
    assert (code, verdict["checkpoint"]["status"]) == (1, "failed")
    code, _, stderr = aiwp(
        "audit", "verify", "--json", environ=auditor | where | {"AIWP_AUDIT_CHECKPOINTS": "s3://nobucket/x"}
    )
    assert code == 2
    assert "S3 s3://nobucket/x/: NoSuchBucket" in stderr


async def test_an_old_checkpoint_copied_under_a_higher_name_fails(
    platform: Platform, signer: dict[str, str], auditor: dict[str, str], tmp_path: Path
) -> None:
    checkpoint(signer)
    folder = tmp_path / "checkpoints"
    (folder / name_of(10**12)).write_bytes((folder / name_of(ROWS)).read_bytes())
    code, verdict = verify(auditor)
    assert code == 1
    assert f"holds one signed for position {ROWS}" in verdict["checkpoint"]["problem"]


async def test_a_retention_cut_written_by_hand_does_not_excuse_a_rewrite(
    platform: Platform, signer: dict[str, str], auditor: dict[str, str]
) -> None:
    checkpoint(signer)
    async with platform.pool.acquire() as conn:
        await rewrite_from(conn, 1, "mallory")
        first = await conn.fetchval("SELECT prev_hash FROM audit_events ORDER BY position LIMIT 1")
        await conn.execute(
            "INSERT INTO audit_retention_log (partition_name, range_start, range_end, rows_dropped, first_position,"
            " last_position, last_hash, first_kept_position, policy)"
            " VALUES ('forged', now(), now(), 0, 1, $1, $2, 1, '{}')",
            10**12,
            first,
        )
    code, verdict = verify(auditor)
    assert code == 1
    assert verdict["checkpoint"]["status"] == "failed"
    assert "the log was written by hand" in verdict["checkpoint"]["problem"]
    code, printed, _ = aiwp("audit", "checkpoint", "--json", environ=signer)
    assert (code, printed["ok"]) == (1, False)
