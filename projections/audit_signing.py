"""Signed documents about the audit trail: checkpoints of the chain head and export manifests (Ed25519).

A signed file is JSON `{"document": {...}, "signature": "<base64>"}`. The signature is over the document's
canonical bytes — compact JSON with sorted keys, UTF-8, which is what
`json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)` gives — so anyone holding
the public key can check a file with any Ed25519 tool. The document names its key by `key_id`: the first 32
hex digits of SHA-256 over the raw 32-byte public key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SEED_BYTES = 32


class BadKey(ValueError):
    """A key that is not an Ed25519 key in a form we read; the message never includes the key."""


class BadSignature(ValueError):
    """A signed document that does not verify, or cannot be read; the message says why."""


def canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def private_key_of(text: str, *, name: str) -> Ed25519PrivateKey:
    """Base64 of the 32-byte seed, or a PEM (PKCS #8) private key, e.g. from `openssl genpkey -algorithm ed25519`."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text.encode(), password=None)
        except (ValueError, TypeError):
            raise BadKey(f"{name} is not a readable unencrypted PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise BadKey(f"{name} is a PEM key, but not an Ed25519 one")
        return key
    try:
        seed = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadKey(f"{name} is neither PEM nor base64") from None
    if len(seed) != SEED_BYTES:
        raise BadKey(f"{name} decodes to {len(seed)} bytes; an Ed25519 seed has 32")
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_keys_of(text: str, *, name: str) -> list[Ed25519PublicKey]:
    """One or more public keys, comma-separated: base64 of the raw 32 bytes, or PEM (SubjectPublicKeyInfo)."""
    keys: list[Ed25519PublicKey] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part.startswith("-----BEGIN"):
            try:
                key = serialization.load_pem_public_key(part.encode())
            except (ValueError, TypeError):
                raise BadKey(f"{name} holds an unreadable PEM public key") from None
            if not isinstance(key, Ed25519PublicKey):
                raise BadKey(f"{name} holds a PEM key that is not an Ed25519 one")
            keys.append(key)
            continue
        try:
            raw = base64.b64decode(part, validate=True)
        except (binascii.Error, ValueError):
            raise BadKey(f"{name} holds a key that is neither PEM nor base64") from None
        if len(raw) != SEED_BYTES:
            raise BadKey(f"{name} holds a key of {len(raw)} bytes; an Ed25519 public key has 32")
        keys.append(Ed25519PublicKey.from_public_bytes(raw))
    if not keys:
        raise BadKey(f"{name} holds no key")
    return keys


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(raw_public(key)).hexdigest()[:32]


def signed(document: dict[str, Any], key: Ed25519PrivateKey | None) -> bytes:
    """The file's bytes: the document with its `key_id`, and the signature (null when there is no key)."""
    if key is None:
        return json.dumps({"document": document, "signature": None}, indent=2, sort_keys=True).encode() + b"\n"
    document = document | {"key_id": key_id(key.public_key())}
    signature = base64.b64encode(key.sign(canonical(document))).decode()
    return json.dumps({"document": document, "signature": signature}, indent=2, sort_keys=True).encode() + b"\n"


def opened(data: bytes, keys: Sequence[Ed25519PublicKey]) -> dict[str, Any]:
    """The document of a signed file, once its signature verifies under one of `keys`; raises `BadSignature`."""
    try:
        envelope = json.loads(data)
        document, signature = envelope["document"], envelope["signature"]
        wanted = document["key_id"]
    except (ValueError, TypeError, KeyError):
        raise BadSignature("it is not a signed document (JSON with document, signature and key_id)") from None
    if not isinstance(document, dict) or not isinstance(signature, str):
        raise BadSignature("it is not signed")
    by_id = {key_id(k): k for k in keys}
    if wanted not in by_id:
        raise BadSignature(f"it was signed with key {wanted}, which is not one of the verify keys ({', '.join(by_id)})")
    try:
        by_id[wanted].verify(base64.b64decode(signature, validate=True), canonical(document))
    except (InvalidSignature, binascii.Error, ValueError):
        raise BadSignature("its signature does not verify: the document was changed after it was signed") from None
    return document
