"""POST /v1/assistant/text end to end: real intent server (MiniLM), real users, reminders and
ledger services; each test checks what was stored, not only what was said."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from eindr_common.testing import auth_headers

TZ = "Europe/Amsterdam"


def local_tomorrow(hour: int, minute: int = 0, tz: str = TZ) -> datetime:
    zone = ZoneInfo(tz)
    day = datetime.now(zone).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)


def due(reminder: dict) -> datetime:
    return datetime.fromisoformat(reminder["due_at"])


def test_create_reminder_stores_title_and_due_time_in_the_users_zone(make_user, say, reminders_of):
    uid = make_user(timezone=TZ)
    r = say(uid, "remind me to call mum tomorrow at five")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["intent"]["name"] == "create_reminder" and body["intent"]["accepted"]
    [action] = body["actions"]
    assert action["type"] == "reminder.create" and action["status"] == "done"
    stored = reminders_of(uid)
    assert [x["title"] for x in stored] == ["Call mum"]
    assert str(stored[0]["id"]) == action["id"] and action["resource"] == f"/v1/reminders/{action['id']}"
    assert due(stored[0]) == local_tomorrow(17)
    assert stored[0]["timezone"] == TZ and stored[0]["source"] == "text"
    assert stored[0]["phrase"] == "remind me to call mum tomorrow at five"
    assert body["slots"]["title"] == "Call mum" and body["slots"]["rrule"] is None
    assert "call mum" in body["reply"]["text"] and "tomorrow" in body["reply"]["text"]
    assert body["reply"]["language"] == "en"
    for stage in ("stt", "intent", "slots", "action", "reply", "tts", "total"):
        assert stage in body["timings_ms"]


def test_recurring_reminder_gets_an_rrule(make_user, say, reminders_of):
    uid = make_user(timezone="America/New_York")
    r = say(uid, "remind me every other monday at 9 to water the plants")
    assert r.status_code == 200, r.text
    [stored] = reminders_of(uid)
    assert stored["title"] == "Water the plants"
    assert stored["rrule"].startswith("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO")
    local = due(stored).astimezone(ZoneInfo("America/New_York"))
    assert (local.weekday(), local.hour, local.minute) == (0, 9, 0)
    assert timedelta(0) < due(stored) - datetime.now(ZoneInfo("UTC")) <= timedelta(days=7)


def test_relative_time_is_computed_against_the_real_clock(make_user, say, reminders_of):
    uid = make_user(timezone="Asia/Karachi")
    before = datetime.now(ZoneInfo("UTC"))
    r = say(uid, "in 20 minutes remind me to check the oven")
    assert r.status_code == 200, r.text
    [stored] = reminders_of(uid)
    assert stored["title"] == "Check the oven"
    assert timedelta(minutes=19) <= due(stored) - before <= timedelta(minutes=22)


def test_reply_and_preferences_in_spanish(make_user, say, reminders_of):
    uid = make_user(language="es-ES", timezone="Europe/Madrid")
    # Typed Spanish: slots from the Spanish text; the reply in Spanish.
    r = say(uid, "recuérdame llamar a mamá mañana a las cinco de la tarde")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["reply"]["language"] == "es"
    assert "recordaré" in body["reply"]["text"] and "mañana" in body["reply"]["text"]
    [stored] = reminders_of(uid)
    assert due(stored) == local_tomorrow(17, tz="Europe/Madrid")


def test_missing_time_asks_and_creates_nothing(make_user, say, reminders_of):
    uid = make_user()
    body = say(uid, "remind me to call the bank").json()
    assert body["intent"]["name"] == "create_reminder"
    assert body["actions"][0]["status"] == "failed"
    assert body["reply"]["text"] == "When should I remind you?"
    assert reminders_of(uid) == []


def test_cancel_many_needs_confirmation_and_no_keeps_them(make_user, say, reminders_of):
    uid = make_user()
    for text in ("remind me to buy milk tomorrow at 9 am", "remind me to call the plumber tomorrow at 10 am",
                 "remind me to water the plants tomorrow at 6 pm", "remind me on the day after tomorrow at 8 am to run"):
        assert say(uid, text).json()["actions"][0]["status"] == "done"
    assert len(reminders_of(uid)) == 4

    conv = "c-" + uuid.uuid4().hex[:8]
    ask = say(uid, "cancel all my reminders for tomorrow", conversation_id=conv).json()
    assert ask["intent"]["name"] == "cancel_reminder"
    assert ask["awaiting_confirmation"] is True
    assert ask["actions"][0]["status"] == "pending_confirmation" and len(ask["actions"][0]["ids"]) == 3
    assert "3 reminders" in ask["reply"]["text"] and "?" in ask["reply"]["text"]
    assert len(reminders_of(uid)) == 4  # nothing cancelled yet

    no = say(uid, "no", conversation_id=conv).json()
    assert no["intent"]["name"] == "deny" and no["actions"][0]["status"] == "declined"
    assert len(reminders_of(uid)) == 4

    say(uid, "cancel all my reminders for tomorrow", conversation_id=conv)
    yes = say(uid, "yes please", conversation_id=conv).json()
    assert yes["intent"]["name"] == "confirm"
    assert yes["actions"][0]["status"] == "done" and yes["actions"][0]["data"]["cancelled"] == 3
    left = reminders_of(uid)
    assert [x["title"] for x in left] == ["Run"]  # the day after tomorrow is untouched
    assert len(reminders_of(uid, status="cancelled")) == 3

    # The question was answered: a second "yes" has nothing to confirm and does nothing.
    again = say(uid, "yes", conversation_id=conv).json()
    assert all(a["status"] != "done" for a in again["actions"])
    assert len(reminders_of(uid)) == 1


def test_cancel_one_by_its_words_needs_no_confirmation(make_user, say, reminders_of):
    uid = make_user()
    say(uid, "remind me to call mum tomorrow at five")
    say(uid, "remind me to pay the rent on friday at noon")
    body = say(uid, "cancel my reminder to call mum").json()
    assert body["intent"]["name"] == "cancel_reminder"
    assert body["actions"][0]["status"] == "done" and body["awaiting_confirmation"] is False
    assert [x["title"] for x in reminders_of(uid)] == ["Pay the rent"]


def test_list_reminders_reads_them_back(make_user, say):
    uid = make_user()
    say(uid, "remind me to buy milk tomorrow at 9 am")
    say(uid, "remind me to call the plumber tomorrow at 10 am")
    body = say(uid, "what are my reminders for tomorrow").json()
    assert body["intent"]["name"] == "list_reminders"
    assert body["actions"][0]["data"]["count"] == 2
    assert "Buy milk" in body["reply"]["text"] and "Call the plumber" in body["reply"]["text"]


def test_ledger_entry_with_amount_currency_and_direction(make_user, say, ledger_of):
    uid = make_user(language="en-US")
    body = say(uid, "Ali owes me twenty dollars").json()
    assert body["intent"]["name"] == "ledger_add", body
    assert body["actions"][0]["status"] == "done"
    [entry] = ledger_of(uid)
    assert entry["direction"] == "they_owe_me" and entry["currency"] == "USD"
    assert Decimal(entry["amount"]) == Decimal(20) and entry["counterparty"]["name"] == "Ali"
    assert body["reply"]["text"] == "Got it: Ali owes you $20.00."

    body = say(uid, "I owe ali 12 euros 50").json()
    # "ali" is matched to the contact the user already has.
    assert body["slots"]["contact"] == "Ali"
    entries = ledger_of(uid)
    assert len(entries) == 2
    owe = next(e for e in entries if e["direction"] == "i_owe_them")
    assert owe["currency"] == "EUR" and owe["counterparty"]["name"] == "Ali"


def test_idempotency_key_replays_and_creates_once(make_user, say, reminders_of):
    uid = make_user()
    key = {"idempotency-key": "k-" + uuid.uuid4().hex}
    first = say(uid, "remind me to take out the trash tomorrow at 8 pm", headers=dict(key))
    second = say(uid, "remind me to take out the trash tomorrow at 8 pm", headers=dict(key))
    assert first.status_code == second.status_code == 200
    assert second.headers.get("idempotent-replayed") == "true"
    assert second.json()["actions"] == first.json()["actions"]
    assert len(reminders_of(uid)) == 1


def test_out_of_scope_and_small_talk_take_no_action(make_user, say, reminders_of):
    uid = make_user()
    body = say(uid, "what is the capital of australia").json()
    assert body["intent"]["name"] in ("out_of_scope", "small_talk")
    assert all(a["status"] != "done" for a in body["actions"])
    body = say(uid, "hello, how are you today?").json()
    assert body["intent"]["name"] == "small_talk"
    # No chat server here: the localized template answers (the model never decides anything).
    assert body["reply"]["text"].startswith("I'm here to help")
    assert reminders_of(uid) == []


def test_reply_audio_url_serves_wav_to_its_owner_only(make_user, say, assistant_svc, client):
    uid = make_user()
    body = say(uid, "remind me to call mum tomorrow at five").json()
    url = body["reply"]["audio_url"]
    assert url and body["reply"]["audio_error"] is None
    r = client.get(assistant_svc.url + url, headers=auth_headers(uid, "assistant"))
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    assert r.content[:4] == b"RIFF" and len(r.content) > 10_000
    other = client.get(assistant_svc.url + url, headers=auth_headers(make_user(), "assistant"))
    assert other.status_code == 404


def test_streamed_reply_audio_with_accept_audio_wav(make_user, say, reminders_of):
    uid = make_user()
    r = say(uid, "remind me to feed the cat tomorrow at 7 am", headers={"accept": "audio/wav"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "audio/wav"
    assert r.content[:4] == b"RIFF"
    assert r.headers["x-eindr-intent"] == "create_reminder"
    assert "feed the cat" in r.headers["x-eindr-reply"]
    assert [x["title"] for x in reminders_of(uid)] == ["Feed the cat"]


def test_bad_requests_are_problems(assistant_svc, client, make_user):
    uid = make_user()
    url = assistant_svc.url + "/v1/assistant/text"
    r = client.post(url, json={"text": "hi"})
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    r = client.post(url, json={"text": ""}, headers=auth_headers(uid, "assistant"))
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "text"
    r = client.post(url, json={"text": "a\x00b"}, headers=auth_headers(uid, "assistant"))
    assert r.status_code == 400
    r = client.post(url, json={"text": "x" * 2001}, headers=auth_headers(uid, "assistant"))
    assert r.status_code == 400
    r = client.post(url, json={"text": "remind me at 5", "timezone": "Mars/Olympus"}, headers=auth_headers(uid, "assistant"))
    assert r.status_code == 400 and r.json()["code"] == "invalid_timezone"
