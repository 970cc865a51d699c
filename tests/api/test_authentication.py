"""Bearer tokens from an OIDC issuer: the good one works, every kind of bad one answers 401 with a challenge."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable

import httpx
import pytest
from joserfc.jwk import RSAKey

from tests.api.issuer import TestIssuer

pytestmark = pytest.mark.integration


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: dict[str, object]) -> str:
    return b64(json.dumps(value).encode())


def alg_none(issuer: TestIssuer) -> str:
    return f"{segment({'alg': 'none', 'typ': 'JWT', 'kid': 'key-1'})}.{segment(issuer.claims())}."


def stripped_signature(issuer: TestIssuer) -> str:
    head, body, _ = issuer.token().split(".")
    return f"{head}.{body}."


def hs256_with_public_key(issuer: TestIssuer) -> str:
    # What a confused verifier accepts: an HMAC keyed with the issuer's public key (libraries refuse to make it).
    public_pem = issuer.keys[-1].as_pem(private=False)
    signing_input = f"{segment({'alg': 'HS256', 'kid': 'key-1', 'typ': 'JWT'})}.{segment(issuer.claims())}"
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def unknown_kid(issuer: TestIssuer) -> str:
    stranger = RSAKey.generate_key(2048, parameters={"kid": "stranger"})
    return issuer.token(key=stranger)


def jku_elsewhere(issuer: TestIssuer) -> str:
    stranger = RSAKey.generate_key(2048, parameters={"kid": "key-1"})
    return issuer.token(key=stranger, header={"jku": "http://127.0.0.1:1/evil-jwks"})


def embedded_jwk(issuer: TestIssuer) -> str:
    stranger = RSAKey.generate_key(2048, parameters={"kid": "key-1"})
    return issuer.token(key=stranger, header={"jwk": stranger.as_dict(private=False)})


def flipped_payload_bit(issuer: TestIssuer) -> str:
    head, body, signature = issuer.token().split(".")
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}.{b64(bytes(raw))}.{signature}"


BAD_TOKENS: dict[str, Callable[[TestIssuer], str]] = {
    "alg none": alg_none,
    "stripped signature": stripped_signature,
    "HS256 signed with the RSA public key": hs256_with_public_key,
    "unknown kid": unknown_kid,
    "jku pointing elsewhere": jku_elsewhere,
    "embedded jwk": embedded_jwk,
    "expired": lambda i: i.token(exp=1_000_000, iat=999_000, nbf=999_000),
    "nbf in the future": lambda i: i.token(nbf=4_000_000_000),
    "wrong issuer": lambda i: i.token(iss="https://evil.example/realms/aiwp"),
    "wrong audience": lambda i: i.token(aud="someone-else"),
    "missing audience": lambda i: i.token(aud=None),
    "flipped payload bit": flipped_payload_bit,
    "garbage": lambda i: "not-a-token",
}


async def test_a_valid_token_is_accepted(client: httpx.AsyncClient, issuer: TestIssuer) -> None:
    response = await client.get("/v1/agents", headers={"Authorization": f"Bearer {issuer.token()}"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("case", list(BAD_TOKENS))
async def test_a_bad_token_answers_401_with_a_challenge(
    client: httpx.AsyncClient, issuer: TestIssuer, case: str
) -> None:
    response = await client.get("/v1/agents", headers={"Authorization": f"Bearer {BAD_TOKENS[case](issuer)}"})
    assert response.status_code == 401, (case, response.text)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "Traceback" not in response.text


async def test_no_credentials_answer_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/agents")
    assert response.status_code == 401
    assert "bearer token" in response.json()["detail"]


async def test_a_rotated_issuer_key_works_after_one_refetch(client: httpx.AsyncClient, issuer: TestIssuer) -> None:
    assert (await client.get("/v1/agents", headers={"Authorization": f"Bearer {issuer.token()}"})).status_code == 200
    before = issuer.fetches
    issuer.rotate()
    response = await client.get("/v1/agents", headers={"Authorization": f"Bearer {issuer.token()}"})
    assert response.status_code == 200, response.text
    assert issuer.fetches == before + 1


async def test_cached_keys_keep_working_when_the_jwks_is_unreachable(
    client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    token = issuer.token()
    assert (await client.get("/v1/agents", headers={"Authorization": f"Bearer {token}"})).status_code == 200
    issuer.stop()
    assert (await client.get("/v1/agents", headers={"Authorization": f"Bearer {token}"})).status_code == 200
    stranger = RSAKey.generate_key(2048, parameters={"kid": "new"})
    response = await client.get("/v1/agents", headers={"Authorization": f"Bearer {issuer.token(key=stranger)}"})
    assert response.status_code == 401
