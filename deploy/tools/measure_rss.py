"""Measure the memory of each component as it runs, to size Kubernetes requests/limits.

Starts a real PostgreSQL (pgserver) and Redis like the tests do, then each component that
is installed as its own uvicorn process (the same command its image runs), waits for
/readyz, sends it a few real requests (inference servers: a real transcription, embedding,
synthesis), and reads VmRSS (now) and VmHWM (peak) from /proc/<pid>/status.

    .venv/bin/python deploy/tools/measure_rss.py            # prints a Markdown table
    .venv/bin/python deploy/tools/measure_rss.py chat stt   # only these

Linux only (reads /proc). Results go into docs/operations.md ("Sizing").
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from eindr_common.localstack import (
    free_port,
    python_env,
    start_postgres,
    start_redis,
    wait_http,
)

SECRET = "measure-internal-token-secret-0123456789abcdef"

# name, import package, app factory, extra env
APPS: list[tuple[str, str, str, dict[str, str]]] = [
    ("gateway", "eindr_gateway", "eindr_gateway.app:create_app", {"FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9"}),
    ("auth", "eindr_auth", "eindr_auth.app:create_app", {}),
    ("users", "eindr_users", "eindr_users.app:create_app", {}),
    ("reminders", "eindr_reminders", "eindr_reminders.app:create_app", {}),
    ("notes", "eindr_notes", "eindr_notes.app:create_app", {}),
    ("notes-worker", "eindr_notes", "eindr_notes.worker:create_app", {}),
    ("ledger", "eindr_ledger", "eindr_ledger.app:create_app", {}),
    ("friends", "eindr_friends", "eindr_friends.app:create_app", {}),
    ("calendar", "eindr_calendar", "eindr_calendar.app:create_app", {}),
    ("history", "eindr_history", "eindr_history.app:create_app", {}),
    ("history-worker", "eindr_history", "eindr_history.worker:create_app", {}),
    ("audit", "eindr_audit", "eindr_audit.app:create_app", {}),
    # Workers run as `python -m`: their metrics server listens on the port given by env.
    ("reminders-worker", "eindr_reminders", "-m eindr_reminders.worker", {"_PORT_ENV": "EINDR_REMINDERS_WORKER_METRICS_PORT"}),
    ("calendar-worker", "eindr_calendar", "-m eindr_calendar.worker", {"_PORT_ENV": "EINDR_CALENDAR_WORKER_METRICS_PORT"}),
    ("assistant", "eindr_assistant", "eindr_assistant.app:create_app", {}),
    ("stt", "eindr_stt", "eindr_stt.app:create_app", {}),
    ("intent", "eindr_intent", "eindr_intent.app:create_app", {}),
    ("tts", "eindr_tts", "eindr_tts.app:create_app", {}),
    # A checkpoint of Bloom-560M's shape with random weights (no hub here): same memory.
    ("chat", "eindr_chat", "eindr_chat.app:create_app", {"EINDR_CHAT_DEVICE": "cpu"}),
]


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def exercise(name: str, url: str, tmp: Path) -> None:
    """A few real requests, so lazily loaded code and models are counted."""
    with httpx.Client(base_url=url, timeout=120) as c:
        for _ in range(20):
            c.get("/readyz")
            c.get("/metrics")
        if name == "stt" and shutil.which("espeak-ng"):
            wav = tmp / "cmd.wav"
            subprocess.run(["espeak-ng", "-w", str(wav), "remind me to call mum tomorrow at five"], check=True)
            for _ in range(3):
                r = c.post("/v1/audio/transcriptions", files={"file": ("cmd.wav", wav.read_bytes(), "audio/wav")},
                           data={"model": "whisper-1"})
                r.raise_for_status()
        elif name == "intent":
            for _ in range(5):
                c.post("/embed", json={"inputs": ["remind me to call mum tomorrow at five"] * 16}).raise_for_status()
        elif name == "chat":
            prompt = "Remind me to call mum tomorrow at five. " * 12
            for _ in range(3):
                c.post("/generate", json={"inputs": prompt, "parameters": {"max_new_tokens": 64}}).raise_for_status()
        elif name == "tts":
            for _ in range(3):
                c.post("/v1/audio/speech", json={"model": "tts-1", "input": "Your reminder is set for five tomorrow.",
                                                 "voice": "en_US-joe-medium"}).raise_for_status()


def main() -> None:
    only = set(sys.argv[1:])
    rows: list[tuple[str, int, int, str]] = []
    with tempfile.TemporaryDirectory(prefix="eindr-rss-") as tmpdir:
        tmp = Path(tmpdir)
        pg, db_url = start_postgres(tmp / "pg")
        redis_proc, redis_url = start_redis(tmp / "redis")
        try:
            for name, package, app, extra in APPS:
                if only and name not in only:
                    continue
                module = app[3:] if app.startswith("-m ") else app.split(":")[0]
                try:
                    if importlib.util.find_spec(module) is None:
                        continue
                except ModuleNotFoundError:
                    continue
                if name == "chat":
                    from eindr_chat.checkpoints import (
                        BLOOM_560M,
                        build_bloom_checkpoint,
                    )

                    extra = {**extra, "EINDR_CHAT_MODEL": str(build_bloom_checkpoint(tmp / "bloom-560m-shape", **BLOOM_560M)),
                             "EINDR_CHAT_MODEL_NAME": "bloom-560m"}
                port = free_port()
                env = python_env({
                    "EINDR_ENV": "test", "EINDR_DATABASE_URL": db_url, "EINDR_REDIS_URL": redis_url,
                    "EINDR_INTERNAL_TOKEN_SECRET": SECRET, "EINDR_MIGRATE_ON_START": "true",
                    "EINDR_FRIENDS_HASH_PEPPER": "measure-friends-pepper-0123456789abcdef",
                    "EINDR_CALENDAR_ENCRYPTION_KEYS": "bWVhc3VyZS1jYWxlbmRhci1rZXktMDEyMzQ1Njc4OWE=",
                    "EINDR_NOTES_STORAGE_DIR": str(tmp / "notes"), "EINDR_STT_CACHE_DIR": str(tmp / "stt"),
                    **extra,
                })
                port_env = env.pop("_PORT_ENV", None)
                if port_env:
                    env[port_env] = str(port)
                    cmd = [sys.executable, "-m", module]
                else:
                    cmd = [sys.executable, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1", "--port", str(port),
                           "--no-access-log"]
                proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                note = ""
                try:
                    wait_http(f"http://127.0.0.1:{port}/healthz", timeout_s=300, proc=proc)
                    exercise(name, f"http://127.0.0.1:{port}", tmp)
                    time.sleep(1)
                    rows.append((name, status_kb(proc.pid, "VmRSS"), status_kb(proc.pid, "VmHWM"), note))
                except Exception as exc:  # noqa: BLE001 (a component that cannot start here is reported, not fatal)
                    err = (proc.stderr.read(2000).decode(errors="replace") if proc.poll() is not None else "")
                    rows.append((name, 0, 0, f"not measured: {exc} {err[-300:]}".replace("\n", " ")))
                finally:
                    proc.terminate()
                    try:
                        proc.wait(10)
                    except subprocess.TimeoutExpired:
                        proc.kill()
        finally:
            redis_proc.terminate()
            pg.cleanup()
    print("| component | RSS after warm-up (MiB) | peak RSS (MiB) | note |")
    print("|---|---|---|---|")
    for name, rss, hwm, note in rows:
        print(f"| {name} | {rss / 1024:.0f} | {hwm / 1024:.0f} | {note} |")
    print(json.dumps({n: {"rss_mib": round(r / 1024), "hwm_mib": round(h / 1024)} for n, r, h, _ in rows}))


if __name__ == "__main__":
    main()
