"""Wiring `aiwp audit`: the checkpoint signing key from the secrets gateway, the verify keys, where checkpoints
are kept. Keys are never printed: errors name the variable or the Vault path, not the value."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import hvac.exceptions
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from commands.secrets import SecretNotFound, Secrets
from gateways.checkpoints.directory import DirectoryCheckpoints
from gateways.secrets.environment import EnvironmentSecrets
from ops.llm import build_secrets
from ops.settings import Settings
from projections.audit_checkpoints import CheckpointStorage
from projections.audit_signing import BadKey, private_key_of, public_keys_of

SIGNING_KEY_VARIABLE = "AIWP_AUDIT_SIGNING_KEY"
VERIFY_KEY_VARIABLE = "AIWP_AUDIT_VERIFY_KEY"


class AuditSetupError(Exception):
    """A key or location that cannot be used: exit 2 with this line."""


def audit_secrets(settings: Settings, environ: Mapping[str, str]) -> Secrets:
    if settings.vault_addr:
        return build_secrets(settings, environ)
    return EnvironmentSecrets({SIGNING_KEY_VARIABLE: environ.get(SIGNING_KEY_VARIABLE, "")})


def signing_key_name(settings: Settings) -> str:
    return f"Vault {settings.audit_signing_key_secret}" if settings.vault_addr else SIGNING_KEY_VARIABLE


async def signing_key(settings: Settings, environ: Mapping[str, str]) -> Ed25519PrivateKey | None:
    """The checkpoint signing key, or None when the secrets gateway has none."""
    secrets = audit_secrets(settings, environ)
    name = settings.audit_signing_key_secret if settings.vault_addr else SIGNING_KEY_VARIABLE
    try:
        text = await secrets.get(name)
    except SecretNotFound:
        return None
    except (hvac.exceptions.VaultError, requests.RequestException) as error:
        raise AuditSetupError(f"Vault at {settings.vault_addr} could not be read: {type(error).__name__}") from None
    try:
        return private_key_of(text, name=signing_key_name(settings))
    except BadKey as error:
        raise AuditSetupError(str(error)) from None


async def verify_keys(settings: Settings, environ: Mapping[str, str]) -> list[Ed25519PublicKey]:
    """AIWP_AUDIT_VERIFY_KEY when set (an auditor needs only that), else the signing key's public half, else none."""
    if settings.audit_verify_key:
        try:
            return public_keys_of(settings.audit_verify_key, name=VERIFY_KEY_VARIABLE)
        except BadKey as error:
            raise AuditSetupError(str(error)) from None
    key = await signing_key(settings, environ)
    return [key.public_key()] if key is not None else []


def checkpoint_storage(settings: Settings) -> CheckpointStorage:
    where = settings.audit_checkpoints or str(Path(settings.data_dir) / "audit-checkpoints")
    if where.startswith("s3://"):
        from gateways.checkpoints.s3 import S3Checkpoints  # boto3 is slow to import; only S3 users pay for it

        try:
            return S3Checkpoints(where, endpoint_url=settings.s3_endpoint_url, region=settings.s3_region)
        except ValueError as error:
            raise AuditSetupError(f"AIWP_AUDIT_CHECKPOINTS: {error}") from None
    if "://" in where:
        raise AuditSetupError(f"AIWP_AUDIT_CHECKPOINTS: {where!r} is neither a directory nor s3://bucket/prefix")
    return DirectoryCheckpoints(Path(where))
