"""Turns an SDK's exception into an `LlmError` that says whether trying again can help."""

from __future__ import annotations

from typing import Any

from commands.llm import LlmError


def retry_after_of(headers: Any) -> float | None:
    value = headers.get("retry-after") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def from_status(provider: str, status: int, message: str, headers: Any) -> LlmError:
    retryable = status == 429 or status >= 500 or status == 408
    return LlmError(
        f"{provider} answered {status}: {message}"[:500],
        retryable=retryable,
        retry_after=retry_after_of(headers),
        status=status,
    )
