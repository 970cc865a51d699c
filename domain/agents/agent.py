"""`Agent`: a named LLM configuration; every change makes a new configuration version."""

from __future__ import annotations

from typing import Any, Self
from uuid import UUID

from domain.agents.errors import AgentIsArchived, InvalidAgentConfiguration
from domain.aggregate import Aggregate, CommandContext
from domain.events import DomainEvent

PROVIDERS = frozenset({"openai", "anthropic", "openai_compatible", "scripted"})


class AgentRegistered(DomainEvent, frozen=True, kw_only=True):
    name: str
    provider: str
    model: str
    system_prompt: str
    temperature: float
    max_tokens: int


class AgentReconfigured(DomainEvent, frozen=True, kw_only=True):
    config_version: int
    provider: str
    model: str
    system_prompt: str
    temperature: float
    max_tokens: int


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


class Agent(Aggregate, kw_only=True):
    creation_event = AgentRegistered

    name: str
    provider: str
    model: str
    system_prompt: str
    temperature: float
    max_tokens: int
    config_version: int
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
    ) -> tuple[Self, AgentRegistered]:
        if not name.strip():
            raise InvalidAgentConfiguration("name must not be empty")
        check_configuration(provider, model, temperature, max_tokens)
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
    ) -> list[DomainEvent]:
        self.check_active()
        check_configuration(provider, model, temperature, max_tokens)
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
            case AgentArchived():
                self.archived = True
            case _:
                super().apply(event)
