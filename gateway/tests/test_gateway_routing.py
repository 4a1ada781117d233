"""Rate limits, feature locks, routing failures, size limits and the merged OpenAPI document."""

from __future__ import annotations

import json
import socket
import tempfile
import threading
import time
from pathlib import Path

import httpx
import redis
import redis.asyncio
from eindr_common.localstack import start_redis
from eindr_common.testing import auth_headers, new_uid


def test_rate_limit_reaches_429_with_headers_and_resets(start_service, users_service, certs_url, account, gw_env):
    gw = start_service(
        "gateway-limited", "eindr_gateway.app:create_app",
        env=gw_env(users_service.url, certs_url[0], EINDR_GATEWAY_RATE_LIMITS=json.dumps({"free": "3 per 3 seconds", "premium": "100/minute"})),
    )
    headers = {"authorization": "Bearer " + account()[1]}
    statuses = [httpx.get(gw.url + "/v1/users/me", headers=headers).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    limited = httpx.get(gw.url + "/v1/users/me", headers=headers)
    assert limited.status_code == 429
    assert limited.headers["content-type"] == "application/problem+json"
    assert limited.json()["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["ratelimit-policy"] == '"plan-free";q=3;w=3'
    assert limited.headers["ratelimit"].startswith('"plan-free";r=0;')
    # Another user has their own budget.
    other = {"authorization": "Bearer " + account()[1]}
    assert httpx.get(gw.url + "/v1/users/me", headers=other).status_code == 200
    time.sleep(int(limited.headers["retry-after"]) + 0.5)
    assert httpx.get(gw.url + "/v1/users/me", headers=headers).status_code == 200


def test_feature_lock_is_403_with_the_plan_that_unlocks_it(gateway, signer, account_writes, eventually):
    uid = new_uid()
    headers = {"authorization": "Bearer " + signer.token(uid)}
    r = httpx.get(gateway.url + "/v1/calendar/connections", headers=headers)
    assert r.status_code == 403
    body = r.json()
    assert body["code"] == "feature_locked"
    assert body["feature"] == "calendar_sync" and body["required_plan"] == "premium"
    # Premium passes the lock (and meets a calendar service that is not running: 503), at
    # once although the gateway holds the user's account state in memory.
    account_writes.set_plan(uid, "premium")
    r = eventually(lambda: (resp := httpx.get(gateway.url + "/v1/calendar/connections", headers=headers)).status_code != 403 and resp)
    assert r and r.status_code == 503 and r.json()["code"] == "service_unavailable"
    account_writes.set_plan(uid, "free")
    assert eventually(lambda: httpx.get(gateway.url + "/v1/calendar/connections", headers=headers).status_code == 403)


def test_unknown_domain_is_404(gateway, signer):
    r = httpx.get(gateway.url + "/v1/nothing-here/x", headers={"authorization": "Bearer " + signer.token(new_uid())})
    assert r.status_code == 404 and r.json()["code"] == "route_not_found"


def test_body_over_the_route_limit_is_413(gateway, signer):
    headers = {"authorization": "Bearer " + signer.token(new_uid()), "content-type": "application/json"}
    r = httpx.patch(gateway.url + "/v1/users/me", headers=headers, content=b'{"display_name":"' + b"x" * (1024 * 1024 + 10) + b'"}')
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"

    def chunks():  # no Content-Length: the limit is enforced while streaming
        for _ in range(20):
            yield b"x" * 100_000

    r = httpx.patch(gateway.url + "/v1/users/me", headers=headers, content=chunks())
    assert r.status_code == 413


def test_service_down_is_503_and_recovers(start_service, certs_url, signer, account, gw_env):
    users = start_service("users-flaky", "eindr_users.app:create_app")
    gw = start_service("gateway-flaky", "eindr_gateway.app:create_app", env=gw_env(users.url, certs_url[0]))
    headers = {"authorization": "Bearer " + account()[1]}
    assert httpx.get(gw.url + "/v1/users/me", headers=headers).status_code == 200
    users.stop()
    down = httpx.get(gw.url + "/v1/users/me", headers=headers)
    assert down.status_code == 503
    assert down.headers["content-type"] == "application/problem+json"
    assert down.json()["code"] == "service_unavailable"
    users.start()
    assert httpx.get(gw.url + "/v1/users/me", headers=headers).status_code == 200


def test_slow_service_is_504(start_service, certs_url, signer, gw_env):
    # A TCP peer that accepts and never answers: the upstream read timeout must fire.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    accepted = []
    threading.Thread(target=lambda: accepted.append(silent.accept()), daemon=True).start()
    port = silent.getsockname()[1]
    gw = start_service(
        "gateway-slow", "eindr_gateway.app:create_app",
        env=gw_env(f"http://127.0.0.1:{port}", certs_url[0], EINDR_GATEWAY_UPSTREAM_READ_TIMEOUT_S="1"),
    )
    r = httpx.get(gw.url + "/v1/users/me", headers={"authorization": "Bearer " + signer.token(new_uid())}, timeout=10)
    assert r.status_code == 504 and r.json()["code"] == "upstream_timeout"
    silent.close()


def test_services_refuse_requests_without_the_internal_token(users_service):
    assert httpx.get(users_service.url + "/v1/users/me").status_code == 401
    # A token minted for another service does not open this one.
    r = httpx.get(users_service.url + "/v1/users/me", headers=auth_headers("alice", "auth"))
    assert r.status_code == 401 and r.json()["code"] == "invalid_internal_token"
    # Nor does a bare user-id header.
    assert httpx.get(users_service.url + "/v1/users/me", headers={"x-user-id": "alice"}).status_code == 401


def test_openapi_merges_every_running_service(gateway):
    doc = httpx.get(gateway.url + "/openapi.json").json()
    assert "/v1/users/me" in doc["paths"]
    assert "/healthz" not in doc["paths"]
    assert any(name.startswith("users.") for name in doc["components"]["schemas"])
    refs = json.dumps(doc["paths"])
    for ref in {part.split('"')[0] for part in refs.split("#/components/schemas/")[1:]}:
        assert ref in doc["components"]["schemas"], ref
    assert httpx.get(gateway.url + "/docs").status_code == 200


def test_gateway_metrics_label_by_upstream_domain(gateway, account):
    httpx.get(gateway.url + "/v1/users/me", headers={"authorization": "Bearer " + account()[1]})
    metrics = httpx.get(gateway.url + "/metrics").text
    assert 'route="/v1/users",service="gateway",status="200"' in metrics


def test_feature_locks_follow_per_user_flag_overrides(gateway, account, redis_url, eventually):
    import asyncio

    from eindr_common.flags import set_user_override

    uid, token = account()
    headers = {"authorization": "Bearer " + token}
    assert httpx.get(gateway.url + "/v1/calendar/connections", headers=headers).status_code == 403
    assert httpx.get(gateway.url + "/v1/calendar/connections", headers=headers).status_code == 403

    async def grant():
        client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
        await set_user_override(client, uid, "calendar_sync", True)
        await client.aclose()

    asyncio.run(grant())
    # Unlocked for this free user only (the calendar service is not running: 503).
    assert eventually(lambda: httpx.get(gateway.url + "/v1/calendar/connections", headers=headers).status_code == 503)


def test_environment_flag_override_locks_a_feature_for_every_plan(start_service, users_service, certs_url, gw_env, account, account_writes):
    gw = start_service(
        "gateway-flag-off", "eindr_gateway.app:create_app",
        env=gw_env(users_service.url, certs_url[0], EINDR_FLAG_CALENDAR_SYNC="off"),
    )
    uid, token = account()
    account_writes.set_plan(uid, "premium")
    r = httpx.get(gw.url + "/v1/calendar/connections", headers={"authorization": "Bearer " + token})
    assert r.status_code == 403 and r.json()["code"] == "feature_locked"


def test_signed_note_audio_urls_pass_without_a_token_and_nothing_else_does(gateway):
    note = "/v1/notes/4f8c2f1e-1d7a-4a8e-9a55-2b8e0f6d1c3a"
    # No Firebase token needed: the URL's own signature authorizes it (notes is down here: 503).
    assert httpx.get(gateway.url + note + "/audio", params={"expires": "1", "signature": "x"}).status_code == 503
    # Everything else under notes still needs a token.
    assert httpx.get(gateway.url + note).status_code == 401
    assert httpx.post(gateway.url + note + "/audio").status_code == 401
    assert httpx.get(gateway.url + note + "/audio/extra").status_code == 401


def test_proxy_passes_bodies_and_headers_byte_for_byte(start_service, users_service, certs_url, signer, gw_env):
    """Small answers go out in one message, large ones stream: both must arrive intact, with the
    upstream's status, headers and query string, and HEAD must not grow a body."""
    import hashlib
    import os
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    big = os.urandom(3 * 1024 * 1024 + 17)
    seen: list[tuple[str, str, str | None]] = []

    class Upstream(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self, with_body: bool) -> None:
            seen.append((self.command, self.path, self.headers.get("authorization")))
            if self.path.startswith("/v1/notes/big"):
                body, kind = big, "application/octet-stream"
            else:
                body, kind = b'{"ok": true, "path": "%s"}' % self.path.encode(), "application/json"
            self.send_response(201 if self.command == "POST" else 200)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(body)))
            self.send_header("x-upstream", "yes")
            self.end_headers()
            if with_body:
                self.wfile.write(body)

        def do_GET(self):
            self._answer(True)

        def do_HEAD(self):
            self._answer(False)

        def do_POST(self):
            self.rfile.read(int(self.headers["content-length"]))
            self._answer(True)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    upstream = f"http://127.0.0.1:{server.server_address[1]}"
    env = gw_env(users_service.url, certs_url[0])
    env["EINDR_GATEWAY_SERVICE_URLS"] = json.dumps({"users": users_service.url, "notes": upstream})
    gw = start_service("gateway-fidelity", "eindr_gateway.app:create_app", env=env)
    headers = {"authorization": "Bearer " + signer.token(new_uid())}
    try:
        small = httpx.get(gw.url + "/v1/notes/small?q=a%20b&n=1", headers=headers)
        assert small.status_code == 200 and small.json() == {"ok": True, "path": "/v1/notes/small?q=a%20b&n=1"}
        assert small.headers["x-upstream"] == "yes" and small.headers["ratelimit"].startswith('"plan-free"')
        assert int(small.headers["content-length"]) == len(small.content)

        large = httpx.get(gw.url + "/v1/notes/big", headers=headers, timeout=30)
        assert large.status_code == 200 and hashlib.sha256(large.content).digest() == hashlib.sha256(big).digest()
        assert large.headers["x-upstream"] == "yes" and "x-request-id" in large.headers

        head = httpx.head(gw.url + "/v1/notes/small", headers=headers)
        assert head.status_code == 200 and head.content == b""

        created = httpx.post(gw.url + "/v1/notes/small", headers=headers, content=b"x" * 1000)
        assert created.status_code == 201
        # The upstream saw the internal token, never the Firebase token.
        assert all(auth and auth != headers["authorization"] for _, _, auth in seen)

        not_allowed = httpx.request("TRACE", gw.url + "/v1/notes/small", headers=headers)
        assert not_allowed.status_code == 405 and not_allowed.json()["code"] == "method_not_allowed"
    finally:
        server.shutdown()


def test_ratelimit_remaining_counts_down_exactly_on_one_replica(start_service, users_service, certs_url, account, gw_env):
    # Most answers carry the replica's running estimate of the remaining budget (one Redis
    # round trip saved); on a single replica it must equal the exact count, down to the 429.
    gw = start_service(
        "gateway-countdown", "eindr_gateway.app:create_app",
        env=gw_env(users_service.url, certs_url[0], EINDR_GATEWAY_RATE_LIMITS=json.dumps({"free": "30/minute", "premium": "100/minute"})),
    )
    headers = {"authorization": "Bearer " + account()[1]}
    remaining = []
    for _ in range(30):
        r = httpx.get(gw.url + "/v1/users/me", headers=headers)
        assert r.status_code == 200
        remaining.append(int(r.headers["ratelimit"].split(";r=")[1].split(";")[0]))
    assert remaining == list(range(29, -1, -1))
    limited = httpx.get(gw.url + "/v1/users/me", headers=headers)
    assert limited.status_code == 429 and ";r=0;" in limited.headers["ratelimit"]


def test_a_request_far_from_its_limit_is_answered_while_its_hit_waits_for_redis(
    start_service, users_service, certs_url, account, gw_env, eindr_tmp, eventually
):
    # A Redis of its own: the test pauses its writes.
    redis_proc, own_redis = start_redis(Path(tempfile.mkdtemp(prefix="redis-", dir=eindr_tmp)))
    gw = start_service("gateway-admit-ahead", "eindr_gateway.app:create_app", env=gw_env(
        users_service.url, certs_url[0], EINDR_REDIS_URL=own_redis,
        EINDR_GATEWAY_RATE_LIMITS=json.dumps({"free": "1000/minute", "premium": "1000/minute"})))
    try:
        uid, token = account()
        headers = {"authorization": "Bearer " + token}
        rds = redis.Redis.from_url(own_redis, decode_responses=True)
        count_key = f"LIMITS:{{LIMITER/uid/{uid}/1000/1/minute}}"  # the limits library's window counter
        first = httpx.get(gw.url + "/v1/users/me", headers=headers)
        assert first.status_code == 200 and ";r=999;" in first.headers["ratelimit"]
        assert rds.get(count_key) == "1"  # a key seen for the first time is counted before the answer
        rds.execute_command("CLIENT", "PAUSE", "3000", "WRITE")
        second = httpx.get(gw.url + "/v1/users/me", headers=headers, timeout=10)
        assert second.status_code == 200 and ";r=998;" in second.headers["ratelimit"]
        assert rds.get(count_key) == "1"  # answered while its hit still waits for Redis
        assert eventually(lambda: rds.get(count_key) == "2", deadline_s=10)  # and counted once Redis takes writes
    finally:
        gw.stop()
        redis_proc.terminate()
        redis_proc.wait(5)
