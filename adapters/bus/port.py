"""The bus interface the relay publishes to and the projectors consume from."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Literal, NamedTuple, Protocol

from domain.catalog import exchange_of
from domain.envelope import Envelope

SYSTEM_EXCHANGE = "system.events"
DEAD_LETTER_EXCHANGE = "dlx"

BatchHandler = Callable[[list[Envelope]], Awaitable[None]]
# A work item's outcome: done, retry after about that many seconds, or dead (to the dead-letter queue).
WorkOutcome = Literal["done", "dead"] | float
WorkHandler = Callable[[Envelope], Awaitable[WorkOutcome]]
PoisonHandler = Callable[[Envelope, BaseException], Awaitable[None]]


class Binding(NamedTuple):
    """A consumer queue and the exchange it is bound to (a context exchange with `#`, or the fanout)."""

    queue: str
    exchange: str
    keys: tuple[str, ...] = ("#",)

    @classmethod
    def for_projection(cls, name: str, context: str | None, keys: tuple[str, ...] = ("#",)) -> Binding:
        return cls(f"projection.{name}", exchange_of(context) if context else SYSTEM_EXCHANGE, keys)


Source = tuple[str, str]  # an exchange and a topic pattern (`*` one word, `#` any number of words)


class WorkQueue(NamedTuple):
    """A queue of work with competing consumers, fed by some kinds of event, with delayed retries."""

    queue: str
    sources: tuple[Source, ...]
    retry_delays: tuple[int, ...] = (2, 10, 60)  # seconds; a retry waits in the first tier at least as long

    def failure_delay(self, failures: int) -> float:
        """How long an item waits after its n-th unexpected failure (an exception, not an outcome): each tier in
        turn, then the last one for as long as it fails. It is never dropped: the failure may be the database
        or the broker, and the work must survive their outage (the log says how often it failed)."""
        return float(self.retry_delays[min(max(failures, 1), len(self.retry_delays)) - 1])

    def delay_queue(self, seconds: float) -> tuple[str, int]:
        tier = next((d for d in self.retry_delays if d >= seconds), self.retry_delays[-1])
        return f"{self.queue}.delay.{tier}s", tier

    def takes(self, exchange: str, key: str) -> bool:
        return any(exchange == source and topic_matches(pattern, key) for source, pattern in self.sources)


def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching: words separated by dots, `*` stands for one word, `#` for zero or more."""
    return _matches(pattern.split("."), key.split("."))


def _matches(words: list[str], keys: list[str]) -> bool:
    if not words:
        return not keys
    head, rest = words[0], words[1:]
    if head == "#":
        return any(_matches(rest, keys[i:]) for i in range(len(keys) + 1))
    return bool(keys) and head in ("*", keys[0]) and _matches(rest, keys[1:])


AGENT_WORK = WorkQueue("agent.commands", (("agent.events", "agent.AgentRun.AgentRunRequested"),))
VALIDATION_WORK = WorkQueue(
    "validation.commands", (("validation.events", "validation.Validation.ValidationRequested"),)
)
# What the orchestrator reacts to: what others do to its instances (it needs no news of its own writes),
# and the ends of the runs and validations it asked for.
ORCHESTRATOR_WORK = WorkQueue(
    "orchestrator",
    (
        *(
            ("workflow.events", f"workflow.WorkflowInstance.{event}")
            for event in ("WorkflowInstanceStarted", "SignalReceived", "WorkflowCancelled")
        ),
        *(
            ("agent.events", f"agent.AgentRun.{end}")
            for end in ("AgentRunSucceeded", "AgentRunFailed", "AgentRunCancelled", "AgentRunRefused")
        ),
        ("validation.events", "validation.Validation.ValidationCompleted"),
    ),
)


class Consumer(Protocol):
    async def stop(self) -> None:
        """Stops taking messages; unacknowledged ones go back to the queue."""
        ...

    async def stopped(self) -> None:
        """Waits until the consumer stops (asked to, or after a poison message)."""
        ...


class EventBus(Protocol):
    async def start(self, bindings: Sequence[Binding]) -> None:
        """Connects and declares the topology (idempotently), including the given consumer queues."""
        ...

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Publishes in order; returns when every message is confirmed, raises if any is not."""
        ...

    async def consume(
        self, binding: Binding, handler: BatchHandler, *, prefetch: int, max_failures: int, on_poison: PoisonHandler
    ) -> Consumer:
        """Delivers batches in order; a message that fails `max_failures` times is dead-lettered and stops it."""
        ...

    async def declare_work(self, queues: Sequence[WorkQueue]) -> None:
        """Declares work queues with their delay tiers and dead-letter queue (idempotently)."""
        ...

    async def consume_work(self, queue: WorkQueue, handler: WorkHandler, *, concurrency: int) -> Consumer:
        """Hands each item to `handler`, `concurrency` at a time; retries and dead-letters as it answers."""
        ...

    async def healthy(self) -> bool:
        """Whether the bus can take messages now."""
        ...

    async def close(self) -> None: ...
