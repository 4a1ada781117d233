"""Gateway overhead: ``GET /v1/users/me`` through the gateway vs. straight at the users
service, same run, same concurrency (32), measured with wrk (a C load generator, so the
client costs little of the machine's two cores).

Prints a Markdown table row per path and the ratio; ``scripts/bench.py`` appends them to
docs/benchmarks.md.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
from eindr_common.identity import Principal, mint_internal_token
from eindr_common.localstack import start_postgres, start_redis
from eindr_common.testing import TEST_SECRET, ServiceProcess
from eindr_gateway.devtoken import emulator_token

DURATION_S = 10
ROUNDS = 3
CONNECTIONS = 32


def _wrk(url: str, token: str, connections: int = CONNECTIONS) -> dict[str, float]:
    threads = min(2, connections)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{DURATION_S}s", "--latency", "-H", f"Authorization: Bearer {token}", url],
        capture_output=True, text=True, check=True,
    ).stdout
    unit = {"us": 1e-3, "ms": 1.0, "s": 1000.0}

    def latency(pct: str) -> float:
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        return float(m.group(1)) * unit[m.group(2)]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": latency("50"), "p99": latency("99"), "errors": int(non2xx.group(1)) if non2xx else 0}


def _median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="eindr-bench-") as tmp:
        pg, db_url = start_postgres(Path(tmp) / "pg")
        redis_proc, redis_url = start_redis(Path(tmp) / "redis")
        env = {"EINDR_ENV": "test", "EINDR_DATABASE_URL": db_url, "EINDR_REDIS_URL": redis_url,
               "EINDR_INTERNAL_TOKEN_SECRET": TEST_SECRET, "EINDR_MIGRATE_ON_START": "true", "EINDR_LOG_LEVEL": "WARNING"}
        users = ServiceProcess("users", "eindr_users.app:create_app", env).start()
        gateway = ServiceProcess("gateway", "eindr_gateway.app:create_app", {
            **env, "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099", "EINDR_FIREBASE_PROJECT_ID": "eindr-bench",
            "EINDR_GATEWAY_SERVICE_URLS": f'{{"users": "{users.url}"}}',
            "EINDR_GATEWAY_RATE_LIMITS": '{"free": "100000000/minute", "premium": "100000000/minute"}',
            "EINDR_GATEWAY_ANONYMOUS_RATE_LIMIT": "100000000/minute",
        }).start()
        try:
            firebase_token = emulator_token("bench-user", "eindr-bench", ttl_s=3600)
            internal = mint_internal_token(Principal(uid="bench-user"), "users", TEST_SECRET, ttl_s=60)
            # Provision the profile once (what POST /v1/auth/session does on first login).
            httpx.post(users.url + "/internal/users/provision", headers={"authorization": f"Bearer {internal}"}, json={}).raise_for_status()
            httpx.get(gateway.url + "/v1/users/me", headers={"authorization": f"Bearer {firebase_token}"}).raise_for_status()
            _wrk(users.url + "/v1/users/me", internal)  # warm-up

            def direct_token() -> str:  # internal tokens live ≤ 60 s: a fresh one per run
                return mint_internal_token(Principal(uid="bench-user"), "users", TEST_SECRET, ttl_s=60)

            # Alternating rounds, medians reported: on a 2-core VM one 10 s run can be off by
            # a third either way, and alternation spreads any drift over both paths.
            rounds = []
            for _ in range(ROUNDS):
                rounds.append((_wrk(users.url + "/v1/users/me", direct_token()), _wrk(gateway.url + "/v1/users/me", firebase_token)))
            direct = _median_run([d for d, _ in rounds])
            through = _median_run([t for _, t in rounds])
            # One connection: what the gateway adds to a single request when nothing queues.
            direct_1 = _wrk(users.url + "/v1/users/me", direct_token(), 1)
            through_1 = _wrk(gateway.url + "/v1/users/me", firebase_token, 1)
        finally:
            gateway.stop()
            users.stop()
            redis_proc.terminate()
            pg.cleanup()
    ratio = through["rps"] / direct["rps"]
    added_p50 = through["p50"] - direct["p50"]
    print("| path | req/s | p50 ms | p99 ms | non-2xx |")
    print("|---|---|---|---|---|")
    print(f"| users direct, {CONNECTIONS} connections | {direct['rps']:.0f} | {direct['p50']:.2f} | {direct['p99']:.2f} | {direct['errors']} |")
    print(f"| through gateway, {CONNECTIONS} connections | {through['rps']:.0f} | {through['p50']:.2f} | {through['p99']:.2f} | {through['errors']} |")
    print(f"| users direct, 1 connection | {direct_1['rps']:.0f} | {direct_1['p50']:.2f} | {direct_1['p99']:.2f} | {direct_1['errors']} |")
    print(f"| through gateway, 1 connection | {through_1['rps']:.0f} | {through_1['p50']:.2f} | {through_1['p99']:.2f} | {through_1['errors']} |")
    per_round = ", ".join(f"{t['rps'] / d['rps']:.0%}" for d, t in rounds)
    print(f"\nper-round throughput kept: {per_round}; medians of {ROUNDS} alternating rounds above")
    print(f"throughput kept at {CONNECTIONS} connections: {ratio:.0%} (target ≥ 70%); added p50: {added_p50:.2f} ms at "
          f"{CONNECTIONS} connections (target ≤ 1 ms), {through_1['p50'] - direct_1['p50']:.2f} ms with one connection; "
          f"{DURATION_S} s each, wrk")
    return 0


if __name__ == "__main__":
    sys.exit(main())
