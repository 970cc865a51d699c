"""Wiring the LLM providers: keys from the secrets gateway, resilience around each provider."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import yaml

from commands.llm import LlmProvider
from commands.secrets import SecretNotFound, Secrets
from gateways.llm.resilience import Resilient, Router, breakers
from gateways.llm.scripted import ScriptedProvider
from gateways.secrets.environment import EnvironmentSecrets
from gateways.secrets.vault import VaultSecrets
from ops.settings import Settings, SettingsError

log = logging.getLogger(__name__)
KEY_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")


def build_secrets(settings: Settings, environ: Mapping[str, str]) -> Secrets:
    if settings.vault_addr:
        return VaultSecrets(
            settings.vault_addr,
            token=settings.vault_token,
            role_id=settings.vault_role_id,
            secret_id=settings.vault_secret_id,
            mount=settings.vault_mount,
        )
    return EnvironmentSecrets({name: environ.get(name, "") for name in KEY_VARIABLES})


async def build_llm(settings: Settings, secrets: Secrets) -> LlmProvider:
    """The scripted provider always; OpenAI and Anthropic when their keys can be had."""
    circuits = breakers()
    providers: dict[str, LlmProvider] = {"scripted": ScriptedProvider(scripted_replies(settings.scripted_replies))}
    env = isinstance(secrets, EnvironmentSecrets)
    for name, secret, make in (
        ("openai", "OPENAI_API_KEY" if env else settings.openai_key_secret, _openai),
        ("anthropic", "ANTHROPIC_API_KEY" if env else settings.anthropic_key_secret, _anthropic),
    ):
        try:
            key = await secrets.get(secret)
        except SecretNotFound:
            log.info("no key for %s: its agents' runs will fail with a clear reason", name)
            continue
        providers[name] = Resilient(make(settings, key), circuits)
    return Router(providers)


def scripted_replies(path: str | None) -> dict[str, str]:
    """The scripted provider's replies, from a YAML mapping of phrase → reply."""
    if path is None:
        return {}
    try:
        loaded = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise SettingsError(f"AIWP_SCRIPTED_REPLIES: cannot read {path}: {error}") from None
    if not isinstance(loaded, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in loaded.items()):
        raise SettingsError(f"AIWP_SCRIPTED_REPLIES: {path} must map phrases to replies (text to text)")
    return loaded


# The SDKs are imported only when their key is there: they take a second to import, which every `aiwp`
# command would pay otherwise.
def _openai(settings: Settings, key: str) -> LlmProvider:
    from gateways.llm.openai_chat import OpenAIChat

    return OpenAIChat(api_key=key, base_url=settings.openai_base_url, timeout=settings.llm_timeout_seconds)


def _anthropic(settings: Settings, key: str) -> LlmProvider:
    from gateways.llm.anthropic_messages import AnthropicMessages

    return AnthropicMessages(api_key=key, base_url=settings.anthropic_base_url, timeout=settings.llm_timeout_seconds)
