"""The platform's settings: one Struct, read once from `AIWP_*` environment variables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

import msgspec

PREFIX = "AIWP_"
# AIWP_* variables that hold secrets: the secrets gateway reads them (ops/audit_keys.py), Settings never holds them.
SECRET_VARIABLES = frozenset({"AIWP_AUDIT_SIGNING_KEY"})


class SettingsError(ValueError):
    """An `AIWP_*` variable that cannot be used, named with what is wrong."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Every knob of the platform; loopback and embedded defaults, so no configuration is needed."""

    # PostgreSQL for the event store and the read models; unset means an embedded server in `data_dir`.
    database_url: str | None = None
    # Schema that holds the event store, the read models and the audit trail.
    database_schema: str = "public"
    data_dir: str = ".aiwp"
    # RabbitMQ; unset means the in-process bus (one process runs the relay and every projector).
    amqp_url: str | None = None
    # Base64 AES key (16, 24 or 32 bytes) that encrypts stored event payloads; unset stores them in clear.
    cipher_key: str | None = None
    snapshot_interval: Annotated[int, msgspec.Meta(ge=0)] = 100
    group_commit_max_batch: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 64
    group_commit_max_wait_ms: Annotated[float, msgspec.Meta(ge=0, le=1_000)] = 0.0
    db_pool_size: Annotated[int, msgspec.Meta(ge=2, le=200)] = 16
    read_pool_size: Annotated[int, msgspec.Meta(ge=1, le=200)] = 10
    # OIDC issuer (e.g. https://keycloak.example/realms/aiwp); unset means the embedded local issuer.
    oidc_issuer: str | None = None
    oidc_audience: str = "aiwp"
    oidc_jwks_url: str | None = None
    oidc_tenant_claim: str = "tenant"
    oidc_algorithms: str = "RS256,ES256"
    # Least seconds between two JWKS fetches (an unknown kid triggers one).
    oidc_jwks_refetch_seconds: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 10.0
    # LLM providers: keys come from the secrets gateway (OPENAI_API_KEY / ANTHROPIC_API_KEY, or Vault).
    openai_base_url: str | None = None
    # A YAML mapping of phrase → reply for the scripted provider (the first phrase the prompt contains wins).
    scripted_replies: str | None = None
    anthropic_base_url: str | None = None
    llm_timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=600)] = 60.0
    agent_concurrency: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 16
    orchestrator_concurrency: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 64  # instances reconciled at once
    agent_max_attempts: Annotated[int, msgspec.Meta(ge=1, le=20)] = 3
    validation_concurrency: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 8
    # Calls to an `llm_judge` rule's judge before the rule fails (retryable failures only).
    judge_max_attempts: Annotated[int, msgspec.Meta(ge=1, le=20)] = 3
    # Seconds the validation worker waits for the agents read model before it believes a judge is missing.
    judge_lookup_wait_seconds: Annotated[float, msgspec.Meta(ge=0, le=600)] = 10.0
    # Vault (KV v2) for secrets; unset means environment variables.
    vault_addr: str | None = None
    vault_token: str | None = None
    vault_role_id: str | None = None
    vault_secret_id: str | None = None
    vault_mount: str = "secret"
    openai_key_secret: str = "llm/openai#api_key"  # noqa: S105 - where the key is, not the key
    anthropic_key_secret: str = "llm/anthropic#api_key"  # noqa: S105 - where the key is, not the key
    # Where the audit checkpoints' Ed25519 signing key is in Vault (path#key); without Vault it is the
    # AIWP_AUDIT_SIGNING_KEY variable (a secret: read by the secrets gateway, never held here).
    audit_signing_key_secret: str = "audit/checkpoints#signing_key"  # noqa: S105 - where the key is, not the key
    # Signed audit checkpoints: a directory, or s3://bucket/prefix; unset means <data_dir>/audit-checkpoints.
    audit_checkpoints: str | None = None
    # Public key(s) that audit checkpoints and export manifests are checked with (base64 of the raw 32 bytes, or
    # PEM; comma-separated); unset means the signing key's own, when it can be read.
    audit_verify_key: str | None = None
    # An S3-compatible endpoint (MinIO, a local test server); unset means AWS. Credentials: boto3's usual chain.
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    # Prices per million tokens, as JSON {"currency": "USD", "prices": {"openai/gpt-4o-mini": {...}}}.
    prices: str | None = None
    # Redis for rate limits; unset means in-memory limits (one process).
    redis_url: str | None = None
    rate_limit_per_subject: Annotated[int, msgspec.Meta(ge=1)] = 1200
    rate_limit_per_tenant: Annotated[int, msgspec.Meta(ge=1)] = 12000
    rate_limit_window_seconds: Annotated[int, msgspec.Meta(ge=1, le=86_400)] = 60
    relay_batch: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 500
    relay_window: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 200
    projector_batch: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 500
    projector_prefetch: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 500
    projector_max_failures: Annotated[int, msgspec.Meta(ge=1, le=100)] = 3
    # Seconds a process keeps a data subject's key in memory: an erase takes effect everywhere within it.
    subject_key_ttl_seconds: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 30.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Reads `AIWP_<FIELD>` for each field; an unknown `AIWP_*` name is an error, not a silent typo."""
        values = {
            name[len(PREFIX) :].lower(): value
            for name, value in environ.items()
            if name.startswith(PREFIX)
            and value != ""
            and not name.startswith("AIWP_TEST_")
            and name not in SECRET_VARIABLES
        }
        try:
            return msgspec.convert(values, cls, strict=False)
        except msgspec.ValidationError as error:
            raise SettingsError(f"invalid AIWP_* setting: {describe(error)}") from None


def describe(error: msgspec.ValidationError) -> str:
    # msgspec says "Object contains unknown field `x`" or "... - at `$.x`"; name the variable instead.
    text = str(error)
    if "unknown field" in text:
        field = text.split("`")[1]
        return f"AIWP_{field.upper()} is not a known setting"
    if "at `$." in text:
        message, _, path = text.rpartition(" - at `$.")
        return f"AIWP_{path.rstrip('`').upper()}: {message}"
    return text
