"""Sealed strings: a personal string leaf encrypted with its data subject's key (crypto-shredding, ADR 0008).

`aiwp:sealed:v1:<subject>:<base64url(nonce ‖ AES-256-GCM ciphertext)>`, with the tenant and the subject as
associated data, so a sealed string opens only under the key (and tenant) it was written for. A sealed
string is still a string: events keep their msgspec types, and the read side, the bus and the audit trail
carry it as it is. `reveal` turns sealed strings back into plaintext — or `[erased]` once the key is gone.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable, Iterable
from typing import Any

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.personal import SUBJECT_PATTERN, Plan, transform

PREFIX = "aiwp:sealed:v1:"
MARK = b"aiwp:sealed:"  # the fast path: bytes without it hold nothing sealed
ERASED = "[erased]"
NONCE = 12
_SUBJECT = SUBJECT_PATTERN.strip("^$")
TOKEN = re.compile(rf"aiwp:sealed:v1:({_SUBJECT}):([A-Za-z0-9_\-]+)")
TOKEN_BYTES = re.compile(TOKEN.pattern.encode())

# (tenant, subject) → the subject's key; None once it was erased. Raises KeyError for a key it does not hold.
KeyLookup = Callable[[str, str], bytes | None]


class NoKeyLoaded(LookupError):
    """A sealed string whose subject's key was not loaded before reading (a bug of the caller, not of the data)."""


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def _aad(tenant_id: str, subject: str) -> bytes:
    return f"{tenant_id}\x1f{subject}".encode()


def seal(key: bytes, tenant_id: str, subject: str, text: str) -> str:
    """One personal string, sealed under the subject's key (a fresh nonce each time)."""
    nonce = os.urandom(NONCE)
    sealed = AESGCM(key).encrypt(nonce, text.encode(), _aad(tenant_id, subject))
    return PREFIX + subject + ":" + base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()


def open_sealed(key: bytes, tenant_id: str, subject: str, payload: str) -> str:
    """The plaintext of a sealed string's payload; raises `InvalidTag` under another key, tenant or subject."""
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    return AESGCM(key).decrypt(raw[:NONCE], raw[NONCE:], _aad(tenant_id, subject)).decode()


def seal_state(state: dict[str, Any], plan: Plan, key: bytes, tenant_id: str, subject: str) -> dict[str, Any]:
    """An event's JSON-like state with every personal string leaf sealed."""
    result: dict[str, Any] = transform(state, plan, lambda text: seal(key, tenant_id, subject, text))
    return result


def subjects_in(data: bytes | str) -> set[str]:
    """The subjects named by the sealed strings in some JSON (the keys to load before revealing it)."""
    if isinstance(data, bytes):
        if MARK not in data:
            return set()
        return {match.group(1).decode() for match in TOKEN_BYTES.finditer(data)}
    if PREFIX not in data:
        return set()
    return {match.group(1) for match in TOKEN.finditer(data)}


def _opened(match_subject: str, payload: str, tenant_id: str, keys: KeyLookup) -> str | None:
    try:
        key = keys(tenant_id, match_subject)
    except KeyError:
        raise NoKeyLoaded(f"the key of subject {match_subject!r} was not loaded before reading") from None
    if key is None:
        return ERASED
    try:
        return open_sealed(key, tenant_id, match_subject, payload)
    except (InvalidTag, ValueError):
        return None  # not sealed by us for this tenant: shown as it is


def reveal_text(text: str, tenant_id: str, keys: KeyLookup) -> str:
    """A string with its sealed parts opened (or `[erased]`)."""
    if PREFIX not in text:
        return text

    def opened(match: re.Match[str]) -> str:
        plain = _opened(match.group(1), match.group(2), tenant_id, keys)
        return match.group(0) if plain is None else plain

    return TOKEN.sub(opened, text)


def reveal_json(data: bytes, tenant_id: str, keys: KeyLookup, *, only: str | None = None) -> bytes:
    """JSON bytes with every sealed string (of subject `only`, when given) opened in place (JSON-escaped)."""
    if MARK not in data:
        return data

    def opened(match: re.Match[bytes]) -> bytes:
        subject = match.group(1).decode()
        if only is not None and subject != only:
            return match.group(0)
        plain = _opened(subject, match.group(2).decode(), tenant_id, keys)
        return match.group(0) if plain is None else msgspec.json.encode(plain)[1:-1]

    return TOKEN_BYTES.sub(opened, data)


def reveal_value(value: Any, tenant_id: str, keys: KeyLookup) -> Any:
    """Any JSON-like value (dicts, lists, strings, numbers) with its sealed strings opened."""
    if isinstance(value, str):
        return reveal_text(value, tenant_id, keys)
    if isinstance(value, list | tuple):
        return [reveal_value(item, tenant_id, keys) for item in value]
    if isinstance(value, dict):
        return {key: reveal_value(item, tenant_id, keys) for key, item in value.items()}
    return value


def strings_of(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings_of(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_of(item)
