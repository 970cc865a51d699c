"""The checkpoint signing key comes from the secrets gateway — the environment, or Vault (an OpenBao dev server) —
and is never named by its value in an error."""

from __future__ import annotations

import base64

import hvac
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ops.audit_keys import AuditSetupError, signing_key, verify_keys
from ops.settings import Settings
from projections.audit_signing import key_id
from tests.gateways import test_secrets
from tests.gateways.test_secrets import ROOT_TOKEN

vault_server = test_secrets.vault  # the OpenBao dev server fixture, shared


def pem_of(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


async def test_the_key_from_the_environment_as_pem_or_base64() -> None:
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    for text in (pem_of(key), base64.b64encode(raw).decode()):
        read = await signing_key(Settings(), {"AIWP_AUDIT_SIGNING_KEY": text})
        assert read is not None
        assert key_id(read.public_key()) == key_id(key.public_key())
    assert await signing_key(Settings(), {}) is None
    assert await verify_keys(Settings(), {}) == []


async def test_a_bad_key_is_named_without_its_value() -> None:
    with pytest.raises(AuditSetupError) as bad:
        await signing_key(Settings(), {"AIWP_AUDIT_SIGNING_KEY": "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n"})
    assert "AIWP_AUDIT_SIGNING_KEY" in str(bad.value)
    assert "c2VjcmV0" not in str(bad.value)
    with pytest.raises(AuditSetupError, match="AIWP_AUDIT_VERIFY_KEY holds a key of 6 bytes"):
        await verify_keys(Settings(audit_verify_key="c2VjcmV0"), {})


@pytest.mark.integration
async def test_the_key_from_vault(vault_server: str) -> None:
    vault = vault_server
    key = Ed25519PrivateKey.generate()
    hvac.Client(url=vault, token=ROOT_TOKEN).secrets.kv.v2.create_or_update_secret(
        path="audit/checkpoints", secret={"signing_key": pem_of(key)}
    )
    settings = Settings(vault_addr=vault, vault_token=ROOT_TOKEN)
    read = await signing_key(settings, {"AIWP_AUDIT_SIGNING_KEY": "ignored when Vault is configured"})
    assert read is not None
    assert key_id(read.public_key()) == key_id(key.public_key())
    [public] = await verify_keys(settings, {})
    assert key_id(public) == key_id(key.public_key())
    elsewhere = Settings(vault_addr=vault, vault_token=ROOT_TOKEN, audit_signing_key_secret="audit/other#key")
    assert await signing_key(elsewhere, {}) is None
