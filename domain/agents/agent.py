"""`Agent`: a named LLM configuration; every change makes a new configuration version."""

from __future__ import annotations

from typing import Any, Self
from urllib.parse import urlsplit
from uuid import UUID

import msgspec

from domain.agents.errors import AgentIsArchived, InvalidAgentConfiguration
from domain.aggregate import Aggregate, CommandContext
from domain.events import DomainEvent

PROVIDERS = frozenset({"openai", "anthropic", "openai_compatible", "scripted"})
MAX_FALLBACKS = 5


class Fallback(msgspec.Struct, frozen=True, kw_only=True):
    """A provider to try when the ones before it in an agent's chain fail."""

    provider: str
    model: str
    base_url: str | None = None


class AgentRegistered(DomainEvent, frozen=True, kw_only=True):
    name: str
    provider: str
    model: str
    system_prompt: str
    temperature: float
    max_tokens: int
    base_url: str | None = None  # overrides the provider's endpoint
    fallbacks: list[Fallback] = msgspec.field(default_factory=list)
    json_output: bool = False


class AgentReconfigured(DomainEvent, frozen=True, kw_only=True):
    config_version: int
    provider: str
    model: str
    system_prompt: str
    temperature: float
    max_tokens: int
    base_url: str | None = None  # overrides the provider's endpoint
    fallbacks: list[Fallback] = msgspec.field(default_factory=list)
    json_output: bool = False


class AgentArchived(DomainEvent, frozen=True, kw_only=True):
    reason: str


def check_configuration(provider: str, model: str, temperature: float, max_tokens: int) -> None:
    if provider not in PROVIDERS:
        raise InvalidAgentConfiguration(f"provider {provider!r} is not one of {sorted(PROVIDERS)}")
    if not model.strip():
        raise InvalidAgentConfiguration("model must not be empty")
    if not 0.0 <= temperature <= 2.0:
        raise InvalidAgentConfiguration(f"temperature {temperature} is outside 0..2")
    if not 1 <= max_tokens <= 1_000_000:
        raise InvalidAgentConfiguration(f"max_tokens {max_tokens} is outside 1..1000000")


def check_base_url(url: str | None, where: str) -> None:
    if url is None:
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidAgentConfiguration(f"{where} {url!r} is not an http(s) URL with a host")
    if parts.username is not None or parts.password is not None:
        # Events are kept forever and shown to readers: keys belong in the secrets store.
        raise InvalidAgentConfiguration(f"{where} must not carry credentials; keep keys in the secrets store")


def check_endpoints(provider: str, base_url: str | None, fallbacks: list[Fallback]) -> None:
    check_base_url(base_url, "base_url")
    if provider == "openai_compatible" and base_url is None:
        raise InvalidAgentConfiguration("an openai_compatible agent needs the base_url of its server")
    if len(fallbacks) > MAX_FALLBACKS:
        raise InvalidAgentConfiguration(f"at most {MAX_FALLBACKS} fallbacks, not {len(fallbacks)}")
    for index, fallback in enumerate(fallbacks):
        where = f"fallbacks[{index}]"
        if fallback.provider not in PROVIDERS:
            known = sorted(PROVIDERS)
            raise InvalidAgentConfiguration(f"{where}: provider {fallback.provider!r} is not one of {known}")
        if not fallback.model.strip():
            raise InvalidAgentConfiguration(f"{where}: model must not be empty")
        check_base_url(fallback.base_url, f"{where}.base_url")
        if fallback.provider == "openai_compatible" and fallback.base_url is None:
            raise InvalidAgentConfiguration(f"{where}: an openai_compatible fallback needs a base_url")


class Agent(Aggregate, kw_only=True):
    creation_event = AgentRegistered

    name: str
    provider: str
    model: str
    system_prompt: str
    temperature: float
    max_tokens: int
    config_version: int
    base_url: str | None = None  # overrides the provider's endpoint
    fallbacks: list[Fallback] = msgspec.field(default_factory=list)
    json_output: bool = False
    archived: bool = False

    @classmethod
    def register(
        cls,
        ctx: CommandContext,
        agent_id: UUID,
        *,
        name: str,
        provider: str,
        model: str,
        system_prompt: str,
        temperature: float,
        max_tokens: int,
        base_url: str | None = None,
        fallbacks: list[Fallback] | None = None,
        json_output: bool = False,
    ) -> tuple[Self, AgentRegistered]:
        if not name.strip():
            raise InvalidAgentConfiguration("name must not be empty")
        check_configuration(provider, model, temperature, max_tokens)
        check_endpoints(provider, base_url, fallbacks or [])
        return cls._create(
            ctx,
            agent_id,
            AgentRegistered,
            name=name,
            provider=provider,
            model=model,
            system_prompt=system_prompt,
            temperature=temperature,
            max_tokens=max_tokens,
            base_url=base_url,
            fallbacks=list(fallbacks or []),
            json_output=json_output,
        )

    def reconfigure(
        self,
        ctx: CommandContext,
        *,
        provider: str,
        model: str,
        system_prompt: str,
        temperature: float,
        max_tokens: int,
        base_url: str | None = None,
        fallbacks: list[Fallback] | None = None,
        json_output: bool = False,
    ) -> list[DomainEvent]:
        self.check_active()
        check_configuration(provider, model, temperature, max_tokens)
        check_endpoints(provider, base_url, fallbacks or [])
        return [
            self._trigger(
                ctx,
                AgentReconfigured,
                config_version=self.config_version + 1,
                provider=provider,
                model=model,
                system_prompt=system_prompt,
                temperature=temperature,
                max_tokens=max_tokens,
                base_url=base_url,
                fallbacks=list(fallbacks or []),
                json_output=json_output,
            )
        ]

    def archive(self, ctx: CommandContext, *, reason: str) -> list[DomainEvent]:
        self.check_active()
        return [self._trigger(ctx, AgentArchived, reason=reason)]

    def check_active(self) -> None:
        if self.archived:
            raise AgentIsArchived(f"agent {self.id} is archived")

    @classmethod
    def created_by(cls, event: Any) -> Self:
        assert isinstance(event, AgentRegistered)
        return cls(
            **cls._identity(event),
            name=event.name,
            provider=event.provider,
            model=event.model,
            system_prompt=event.system_prompt,
            temperature=event.temperature,
            max_tokens=event.max_tokens,
            config_version=1,
            base_url=event.base_url,
            fallbacks=list(event.fallbacks),
            json_output=event.json_output,
        )

    def apply(self, event: Any) -> None:
        match event:
            case AgentReconfigured():
                self.config_version = event.config_version
                self.provider = event.provider
                self.model = event.model
                self.system_prompt = event.system_prompt
                self.temperature = event.temperature
                self.max_tokens = event.max_tokens
                self.base_url = event.base_url
                self.fallbacks = list(event.fallbacks)
                self.json_output = event.json_output
            case AgentArchived():
                self.archived = True
            case _:
                super().apply(event)
