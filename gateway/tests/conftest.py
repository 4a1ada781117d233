"""Gateway test rig: a certificate server on localhost that plays Google's x509 endpoint,
a signer for Firebase-shaped ID tokens, and the gateway + users service as real processes."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

PROJECT = "eindr-test"


def _self_signed(key: rsa.RSAPrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "securetoken.system.gserviceaccount.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2)).sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


class TokenSigner:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-kid-1"
        self.certs = {self.kid: _self_signed(self.key)}

    def claims(self, uid: str, **overrides) -> dict:
        now = int(time.time())
        claims = {
            "iss": f"https://securetoken.google.com/{PROJECT}",
            "aud": PROJECT,
            "auth_time": now - 10,
            "user_id": uid,
            "sub": uid,
            "iat": now - 10,
            "exp": now + 3600,
            "email": f"{uid}@example.com",
            "firebase": {"sign_in_provider": "password"},
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, uid: str, *, kid: str | None = None, key=None, **overrides) -> str:
        return jwt.encode(self.claims(uid, **overrides), key or self.key, algorithm="RS256", headers={"kid": kid or self.kid})


@pytest.fixture(scope="session")
def signer() -> TokenSigner:
    return TokenSigner()


@pytest.fixture(scope="session")
def certs_url(signer: TokenSigner):
    body = json.dumps(signer.certs).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.server.hits += 1
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("cache-control", "public, max-age=19000, must-revalidate, no-transform")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.hits = 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/certs", server
    server.shutdown()


@pytest.fixture(scope="session")
def users_service(start_service):
    return start_service("users", "eindr_users.app:create_app")


def gateway_env(users_url: str, certs_url: str, **extra: str) -> dict[str, str]:
    env = {
        "EINDR_FIREBASE_PROJECT_ID": PROJECT,
        "EINDR_GATEWAY_FIREBASE_CERTS_URL": certs_url,
        # calendar and notes are not running in these tests: their port is closed on purpose.
        "EINDR_GATEWAY_SERVICE_URLS": json.dumps({"users": users_url, "calendar": "http://127.0.0.1:9", "notes": "http://127.0.0.1:9"}),
        "EINDR_GATEWAY_RATE_LIMITS": json.dumps({"free": "1000/minute", "premium": "1000/minute"}),
        "EINDR_GATEWAY_CLOCK_SKEW_S": "0",
    }
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def firebase_project() -> str:
    return PROJECT


@pytest.fixture(scope="session")
def gw_env():
    return gateway_env


@pytest.fixture(scope="session")
def gateway(start_service, users_service, certs_url):
    return start_service("gateway", "eindr_gateway.app:create_app", env=gateway_env(users_service.url, certs_url[0]))


@pytest.fixture(scope="session")
def account(signer, users_service):
    """A fresh user with a provisioned profile: returns (uid, Firebase ID token)."""
    import httpx
    from eindr_common.testing import auth_headers, new_uid

    def _account(**claims) -> tuple[str, str]:
        uid = new_uid()
        r = httpx.post(
            users_service.url + "/internal/users/provision",
            headers=auth_headers(uid, "users", claims={"email": f"{uid}@example.com"}),
            json={},
        )
        assert r.status_code in (200, 201), r.text
        return uid, signer.token(uid, **claims)

    return _account


class AccountWrites:
    """Writes plan and revocation the way the users and auth services do: through
    eindr_common's writers, which announce each change to the gateways."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url

    def _run(self, write, *args, **kw) -> None:
        import asyncio

        import redis.asyncio as aioredis

        async def go():
            client = aioredis.Redis.from_url(self.redis_url, decode_responses=True)
            try:
                await write(client, *args, **kw)
            finally:
                await client.aclose()

        asyncio.run(go())

    def set_plan(self, uid: str, plan: str) -> None:
        from eindr_common.identity import set_plan_key

        self._run(set_plan_key, uid, plan)

    def revoke(self, uid: str, revoked_at: int) -> None:
        from eindr_common.identity import set_revoked_at

        self._run(set_revoked_at, uid, revoked_at)


@pytest.fixture(scope="session")
def account_writes(redis_url) -> AccountWrites:
    return AccountWrites(redis_url)


@pytest.fixture(scope="session")
def eventually():
    """Polls ``check`` until it returns a truthy value: an announced change reaches the
    gateway within milliseconds, not within the same instant as the write."""
    from eindr_common.testing import eventually

    return lambda check, deadline_s=5.0: eventually(check, deadline_s, interval_s=0.02)
