"""Bearer tokens: JWTs from an OIDC issuer, checked against its JWKS, or from the embedded local issuer.

Checked: the signature with a key of the issuer's JWKS chosen by `kid` (a `jku`, `jwk`, `x5u` or `x5c`
header is refused, never followed), the algorithm against an allow-list (never `none`, never the
token's own choice), issuer, audience, expiry and not-before with a small leeway. An unknown `kid`
triggers one JWKS refetch (at most every few seconds); when the JWKS cannot be fetched, the cached
keys keep working.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import httpx
from joserfc import errors, jws, jwt
from joserfc.jwk import ECKey, KeySet

from domain.access.roles import Principal

log = logging.getLogger(__name__)
FORBIDDEN_HEADERS = frozenset({"jku", "jwk", "x5u", "x5c"})
LOCAL_ISSUER = "urn:aiwp:local"


class InvalidToken(Exception):
    """A bearer token that does not prove who the caller is; the message says why (no secrets in it)."""


class KeySource(Protocol):
    async def keys(self, *, refresh: bool = False) -> KeySet:
        """The issuer's public keys; `refresh` asks for a fresh copy (rate-limited)."""
        ...


class RemoteJwks:
    """An issuer's JWKS over HTTPS, cached; refetched on an unknown `kid`, at most every `min_interval` s."""

    def __init__(self, url: str, client: httpx.AsyncClient, *, min_interval: float = 10.0) -> None:
        self._url = url
        self._client = client
        self._min_interval = min_interval
        self._cached: KeySet | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def keys(self, *, refresh: bool = False) -> KeySet:
        async with self._lock:
            stale = self._cached is None or refresh
            if stale and (self._cached is None or time.monotonic() - self._fetched_at >= self._min_interval):
                try:
                    response = await self._client.get(self._url, timeout=5.0)
                    response.raise_for_status()
                    self._cached = KeySet.import_key_set(response.json())
                    self._fetched_at = time.monotonic()
                except (httpx.HTTPError, ValueError, errors.JoseError) as error:
                    log.warning("JWKS at %s unreachable (%s); using the cached keys", self._url, error)
                    self._fetched_at = time.monotonic()
            if self._cached is None:
                raise InvalidToken("the issuer's keys are not available")
            return self._cached


class LocalIssuer:
    """The embedded mode's issuer: one EC P-256 key kept in the data folder, signing ES256 tokens."""

    def __init__(self, key_file: Path) -> None:
        if key_file.exists():
            self._key = ECKey.import_key(json.loads(key_file.read_text()))
        else:
            key_file.parent.mkdir(parents=True, exist_ok=True)
            self._key = ECKey.generate_key("P-256", parameters={"kid": f"local-{int(time.time())}", "use": "sig"})
            key_file.write_text(json.dumps(self._key.as_dict(private=True)))
            key_file.chmod(0o600)
        self._public = KeySet([ECKey.import_key(self._key.as_dict(private=False))])

    async def keys(self, *, refresh: bool = False) -> KeySet:  # noqa: ARG002 - one local key, nothing to refetch
        return self._public

    def issue(self, *, subject: str, tenant: str, roles: Sequence[str], audience: str, ttl: int = 3600) -> str:
        now = int(time.time())
        claims = {
            "iss": LOCAL_ISSUER,
            "aud": audience,
            "sub": subject,
            "tenant": tenant,
            "realm_access": {"roles": list(roles)},
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
        }
        return jwt.encode({"alg": "ES256", "kid": self._key.kid, "typ": "JWT"}, claims, self._key)


class TokenVerifier:
    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audience: str,
        algorithms: Sequence[str] = ("RS256", "ES256"),
        tenant_claim: str = "tenant",
        leeway: int = 30,
    ) -> None:
        if "none" in algorithms or not algorithms:
            raise ValueError("the algorithm allow-list must name real algorithms")
        self._keys = keys
        self._algorithms = list(algorithms)
        self._tenant_claim = tenant_claim
        self._claims = jwt.JWTClaimsRegistry(
            leeway=leeway,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": audience},
            exp={"essential": True},
            sub={"essential": True},
        )

    async def verify(self, token: str) -> Principal:
        header = self._header(token)
        try:
            try:
                decoded = jwt.decode(token, await self._keys.keys(), algorithms=self._algorithms)
            except errors.InvalidKeyIdError:
                decoded = jwt.decode(token, await self._keys.keys(refresh=True), algorithms=self._algorithms)
            self._claims.validate(decoded.claims)
        except errors.ExpiredTokenError:
            raise InvalidToken("the token has expired") from None
        except errors.InvalidTokenError:
            raise InvalidToken("the token is not valid yet") from None
        except (errors.InvalidClaimError, errors.MissingClaimError) as error:
            raise InvalidToken(f"the token's claims are not accepted: {error.description}") from None
        except errors.InvalidKeyIdError:
            raise InvalidToken(f"the issuer has no key {header.get('kid')!r}") from None
        except (errors.JoseError, ValueError):
            raise InvalidToken("the token's signature does not verify") from None
        return self._principal(decoded.claims)

    def _header(self, token: str) -> dict[str, Any]:
        try:
            header = dict(jws.extract_compact(token.encode()).protected)
        except (errors.JoseError, ValueError, UnicodeError):
            raise InvalidToken("the bearer token is not a JWT") from None
        if header.get("alg") not in self._algorithms:
            raise InvalidToken(f"algorithm {header.get('alg')!r} is not accepted")
        if FORBIDDEN_HEADERS & header.keys():
            raise InvalidToken("tokens that point at their own keys (jku, jwk, x5u, x5c) are refused")
        if not header.get("kid"):
            raise InvalidToken("the token names no key (kid)")
        return header

    def _principal(self, claims: dict[str, Any]) -> Principal:
        tenant = claims.get(self._tenant_claim)
        if not isinstance(tenant, str) or not tenant:
            raise InvalidToken(f"the token carries no {self._tenant_claim!r} claim")
        realm = claims.get("realm_access")
        roles = realm.get("roles", []) if isinstance(realm, dict) else []
        return Principal(
            subject=str(claims["sub"]),
            tenant_id=tenant,
            roles=frozenset(r for r in roles if isinstance(r, str)),
            via="token",
        )
