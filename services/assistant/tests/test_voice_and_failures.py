"""Voice turns beyond the suite (silence, cancellation and confirmation by voice, retries,
streamed audio) and failure behaviour: each dependency down, low confidence, the budget."""

from __future__ import annotations

import uuid

from eindr_common.testing import auth_headers


def _text(svc, client, uid: str, text: str, **kw):
    headers = auth_headers(uid, "assistant") | kw.pop("headers", {})
    return client.post(svc.url + "/v1/assistant/text", json={"text": text, **kw}, headers=headers)


def _voice(svc, client, uid: str, wav: bytes, headers: dict | None = None):
    return client.post(svc.url + "/v1/assistant/voice", files={"audio": ("a.wav", wav, "audio/wav")},
                       headers=auth_headers(uid, "assistant") | (headers or {}))


def test_silence_is_didnt_catch_that_and_does_nothing(make_user, speak, silence, reminders_of):
    uid = make_user()
    body = speak(uid, silence).json()
    assert body["reply"]["text"] == "Sorry, I didn't catch that."
    assert body["actions"] == [] and body["intent"] is None
    assert reminders_of(uid) == []


def test_not_audio_is_a_400_problem(make_user, speak):
    r = speak(make_user(), b"this is not audio at all" * 10)
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"


def test_cancel_by_voice(make_user, say, speak, tts_voice, reminders_of):
    uid = make_user()
    say(uid, "remind me to call mum tomorrow at five")
    say(uid, "remind me to pay the rent on friday at noon")
    body = speak(uid, tts_voice("cancel my reminder to call mum")).json()
    assert body["intent"]["name"] == "cancel_reminder", body
    assert body["actions"][0]["status"] == "done"
    assert [x["title"] for x in reminders_of(uid)] == ["Pay the rent"]


def test_confirmation_by_voice(make_user, say, speak, tts_voice, reminders_of):
    uid = make_user()
    for t in ("remind me to buy milk tomorrow at 9 am", "remind me to call the plumber tomorrow at 10 am"):
        say(uid, t)
    ask = speak(uid, tts_voice("cancel all my reminders for tomorrow")).json()
    assert ask["awaiting_confirmation"] is True, ask
    assert len(reminders_of(uid)) == 2
    yes = speak(uid, tts_voice("yes")).json()
    assert yes["intent"]["name"] == "confirm", yes
    assert yes["actions"][0]["data"]["cancelled"] == 2
    assert reminders_of(uid) == []


def test_voice_retry_with_the_same_idempotency_key_creates_once(make_user, speak, tts_voice, reminders_of):
    uid = make_user()
    wav = tts_voice("remind me to feed the cat tomorrow at 7 am")
    key = {"idempotency-key": uuid.uuid4().hex}
    first = speak(uid, wav, headers=dict(key))
    second = speak(uid, wav, headers=dict(key))
    assert first.status_code == second.status_code == 200
    assert second.headers.get("idempotent-replayed") == "true"
    assert len(reminders_of(uid)) == 1


def test_voice_reply_streams_as_wav(make_user, speak, tts_voice, reminders_of):
    uid = make_user()
    r = speak(uid, tts_voice("remind me to buy milk tomorrow at 9 am"), headers={"accept": "audio/wav"})
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    assert r.content[:4] == b"RIFF" and len(r.content) > 20_000
    assert r.headers["x-eindr-intent"] == "create_reminder"
    assert [x["title"] for x in reminders_of(uid)] == ["Buy milk"]


def test_stt_down_is_503_and_nothing_done(assistant_with, dead_url, client, make_user, tts_voice, reminders_of):
    svc = assistant_with(EINDR_STT_URL=dead_url)
    uid = make_user()
    r = _voice(svc, client, uid, tts_voice("remind me to buy milk tomorrow at 9 am"))
    assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "stt_unavailable" and r.headers.get("retry-after")
    assert reminders_of(uid) == []
    # Typed commands do not need STT.
    assert _text(svc, client, uid, "remind me to buy milk tomorrow at 9 am").status_code == 200
    assert len(reminders_of(uid)) == 1


def test_intent_down_is_503_and_nothing_done(assistant_with, dead_url, client, make_user, reminders_of):
    svc = assistant_with(EINDR_INTENT_URL=dead_url)
    uid = make_user()
    r = _text(svc, client, uid, "remind me to buy milk tomorrow at 9 am")
    assert r.status_code == 503 and r.json()["code"] == "intent_unavailable"
    assert reminders_of(uid) == []


def test_tts_down_still_acts_and_replies_in_text(assistant_with, dead_url, client, make_user, reminders_of):
    svc = assistant_with(EINDR_TTS_URL=dead_url)
    uid = make_user()
    body = _text(svc, client, uid, "remind me to buy milk tomorrow at 9 am").json()
    assert body["reply"]["text"].startswith("OK, I'll remind you to buy milk")
    assert body["reply"]["audio_url"] is None and body["reply"]["audio_error"].startswith("tts_unavailable")
    assert len(reminders_of(uid)) == 1
    r = _text(svc, client, uid, "remind me to call mum tomorrow at five", headers={"accept": "audio/wav"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.headers["x-eindr-audio"] == "unavailable" and "call mum" in r.json()["reply"]["text"]
    assert len(reminders_of(uid)) == 2


def test_reminders_down_answers_honestly(assistant_with, dead_url, client, make_user):
    svc = assistant_with(EINDR_REMINDERS_URL=dead_url)
    body = _text(svc, client, make_user(), "remind me to buy milk tomorrow at 9 am").json()
    assert body["actions"][0]["status"] == "unavailable"
    assert body["reply"]["text"] == "Sorry, I can't set a reminder right now. Please try again in a moment."


def test_service_not_there_yet_says_so(assistant_with, client, make_user):
    svc = assistant_with(EINDR_NOTES_URL="")
    body = _text(svc, client, make_user(), "take a note: the wifi password is on the fridge").json()
    assert body["intent"]["name"] == "add_note"
    assert body["actions"][0]["status"] == "not_supported"
    assert body["reply"]["text"] == "Sorry, I can't take a note yet."


def test_low_confidence_asks_and_never_acts(assistant_with, client, make_user, reminders_of):
    svc = assistant_with(EINDR_ASSISTANT_MIN_CONFIDENCE="0.999")
    uid = make_user()
    body = _text(svc, client, uid, "cancel all my reminders for tomorrow").json()
    assert body["intent"]["accepted"] is False and body["actions"] == []
    assert body["reply"]["text"].startswith("Sorry, I'm not sure what you meant. Did you want to")
    body = _text(svc, client, uid, "remind me to buy milk tomorrow at 9 am").json()
    assert body["actions"] == [] and reminders_of(uid) == []


def test_the_request_budget_ends_in_a_problem_not_a_hang(assistant_with, client, make_user, tts_voice, reminders_of):
    svc = assistant_with(EINDR_ASSISTANT_BUDGET_S="0.2", EINDR_ASSISTANT_STT_TIMEOUT_S="0.2")
    uid = make_user()
    r = _voice(svc, client, uid, tts_voice("remind me to buy milk tomorrow at 9 am"))
    assert r.status_code in (503, 504) and r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] in ("stt_unavailable", "assistant_timeout")
    assert reminders_of(uid) == []


def test_metrics_carry_the_stage_timings(assistant_svc, client, make_user, say):
    say(make_user(), "remind me to buy milk tomorrow at 9 am")
    text = client.get(assistant_svc.url + "/metrics").text
    for stage in ("stt", "intent", "slots", "action", "reply", "tts", "total"):
        assert f'eindr_assistant_stage_seconds_count{{stage="{stage}"}}' in text
    assert 'eindr_assistant_intents_total{accepted="true",intent="create_reminder"}' in text
