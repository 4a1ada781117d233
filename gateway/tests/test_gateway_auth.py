"""Firebase ID token matrix through the running gateway (real process, real users service)."""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest
from eindr_common.testing import new_uid
from eindr_gateway.devtoken import emulator_token


def _get_me(gateway, token: str | None = None, header: str | None = None) -> httpx.Response:
    headers = {}
    if header is not None:
        headers["authorization"] = header
    elif token is not None:
        headers["authorization"] = f"Bearer {token}"
    return httpx.get(gateway.url + "/v1/users/me", headers=headers, timeout=10)


def test_valid_token_reaches_the_service_as_that_user(gateway, account):
    uid, token = account()
    r = _get_me(gateway, token)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == uid
    assert r.json()["email"] == f"{uid}@example.com"
    assert "RateLimit" in r.headers and "RateLimit-Policy" in r.headers
    assert r.headers["x-request-id"]


def _unsigned(claims: dict) -> str:
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")
    return f"{enc({'alg': 'none', 'typ': 'JWT'})}.{enc(claims)}."


CASES = {
    "expired": (lambda s, uid: s.token(uid, exp=int(time.time()) - 60, iat=int(time.time()) - 4000), "expired_id_token"),
    "iat_in_future": (lambda s, uid: s.token(uid, iat=int(time.time()) + 600), "issued_in_future"),
    "auth_time_in_future": (lambda s, uid: s.token(uid, auth_time=int(time.time()) + 600), "auth_time_in_future"),
    "wrong_aud": (lambda s, uid: s.token(uid, aud="someone-else"), "invalid_audience"),
    "wrong_iss": (lambda s, uid: s.token(uid, iss="https://securetoken.google.com/someone-else"), "invalid_issuer"),
    "bad_signature": (lambda s, uid: s.token(uid, key=s.other_key), "invalid_signature"),
    "unknown_kid": (lambda s, uid: s.token(uid, kid="not-a-published-kid"), "unknown_key_id"),
    "alg_none_outside_emulator": (lambda s, uid: _unsigned(s.claims(uid)), "invalid_algorithm"),
    "empty_sub": (lambda s, uid: s.token(uid, sub=""), "invalid_subject"),
    "sub_129_chars": (lambda s, uid: s.token(uid, sub="x" * 129), "invalid_subject"),
    "missing_exp": (lambda s, uid: s.token(uid, exp=None), "missing_claim"),
    "hs256_with_public_key_confusion": (
        lambda s, uid: __import__("jwt").encode(s.claims(uid), "secret", algorithm="HS256", headers={"kid": s.kid}),
        "invalid_algorithm",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_tokens_are_401_problems(gateway, signer, case):
    make, code = CASES[case]
    r = _get_me(gateway, make(signer, new_uid()))
    assert r.status_code == 401, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["code"] == code
    assert body["status"] == 401 and body["detail"] and body["instance"] == "/v1/users/me"
    assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "header,code",
    [
        (None, "missing_token"),
        ("Token abc.def.ghi", "malformed_authorization"),
        ("Bearer", "malformed_authorization"),
        ("Bearer not-a-jwt", "malformed_authorization"),
        ("Bearer a.b.c", "malformed_id_token"),
    ],
)
def test_missing_and_malformed_headers(gateway, header, code):
    r = httpx.get(gateway.url + "/v1/users/me", headers={"authorization": header} if header else {})
    assert r.status_code == 401
    assert r.json()["code"] == code


def test_certificates_are_cached_per_cache_control(gateway, account, certs_url):
    _, server = certs_url
    for _ in range(3):
        assert _get_me(gateway, account()[1]).status_code == 200
    assert server.hits == 1


def test_revoked_sessions_are_refused_until_the_user_signs_in_again(gateway, signer, account, account_writes, eventually):
    uid, _ = account()
    old = signer.token(uid, auth_time=int(time.time()) - 100)
    # Twice: the second answer comes from the gateway's in-memory account state.
    assert _get_me(gateway, old).status_code == 200
    assert _get_me(gateway, old).status_code == 200
    account_writes.revoke(uid, int(time.time()) - 50)
    r = eventually(lambda: (resp := _get_me(gateway, old)).status_code == 401 and resp)
    assert r and r.json()["code"] == "token_revoked"
    # Refused for good, not once.
    assert _get_me(gateway, old).status_code == 401
    fresh = signer.token(uid, auth_time=int(time.time()) - 1, iat=int(time.time()) - 1)
    assert _get_me(gateway, fresh).status_code == 200


def test_emulator_mode_accepts_unsigned_tokens(start_service, users_service, certs_url, account, gw_env, firebase_project):
    gw = start_service(
        "gateway-emulator", "eindr_gateway.app:create_app",
        env=gw_env(users_service.url, certs_url[0], FIREBASE_AUTH_EMULATOR_HOST="127.0.0.1:9099"),
    )
    uid, _ = account()
    r = _get_me(gw, emulator_token(uid, firebase_project))
    assert r.status_code == 200 and r.json()["id"] == uid
    expired = emulator_token(uid, firebase_project, now=int(time.time()) - 7200)
    assert _get_me(gw, expired).json()["code"] == "expired_id_token"
    assert _get_me(gw, emulator_token(uid, "other-project")).json()["code"] == "invalid_audience"


def test_production_refuses_emulator_mode(start_service, users_service, certs_url, gw_env):
    env = gw_env(
        users_service.url, certs_url[0], FIREBASE_AUTH_EMULATOR_HOST="127.0.0.1:9099", EINDR_ENV="production",
        EINDR_INTERNAL_TOKEN_SECRET="a-production-secret-that-is-long-enough-0123",
    )
    with pytest.raises(RuntimeError, match="refuses emulator tokens in production"):
        start_service("gateway-prod", "eindr_gateway.app:create_app", env=env)
