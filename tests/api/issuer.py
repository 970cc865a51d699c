"""A local OIDC issuer made in the test: a discovery document and a JWKS over real HTTP, and token minting."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

AUDIENCE = "aiwp-api"


class TestIssuer:
    __test__ = False  # not a test class

    def __init__(self) -> None:
        self.keys = [RSAKey.generate_key(2048, parameters={"kid": "key-1", "use": "sig", "alg": "RS256"})]
        self.fetches = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body: Any
                if self.path.endswith("/.well-known/openid-configuration"):
                    body = {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/certs"}
                elif self.path.endswith("/certs"):
                    issuer.fetches += 1
                    body = KeySet(list[Any](issuer.keys)).as_dict(private=False)
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/realms/aiwp"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        base = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": "alice",
            "tenant": "acme",
            "realm_access": {"roles": ["admin"]},
            "iat": now,
            "nbf": now,
            "exp": now + 300,
        }
        base.update(overrides)
        return {k: v for k, v in base.items() if v is not None}

    def token(self, *, header: dict[str, Any] | None = None, key: RSAKey | None = None, **claims: Any) -> str:
        signing = key or self.keys[-1]
        protected = {"alg": "RS256", "kid": signing.kid, "typ": "JWT"} | (header or {})
        return jwt.encode(protected, self.claims(**claims), signing, algorithms=[protected["alg"]])

    def for_role(self, role: str, tenant: str = "acme", subject: str | None = None) -> str:
        return self.token(realm_access={"roles": [role]}, tenant=tenant, sub=subject or f"{role}@{tenant}")

    def rotate(self) -> RSAKey:
        new = RSAKey.generate_key(2048, parameters={"kid": f"key-{len(self.keys) + 1}", "use": "sig", "alg": "RS256"})
        self.keys = [new]
        return new

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
