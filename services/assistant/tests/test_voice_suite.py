"""The command suite: 41 English commands spoken by Piper through POST /v1/assistant/voice,
and 10 in Spanish, German, French, Hindi and Urdu through POST /v1/assistant/text (Whisper
base does not recognise espeak-ng's speech in those languages; see eval_commands.json),
each for a fresh user with that language and timezone, each judged on what was stored."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from eindr_assistant.evaluation import load_commands, score

COMMANDS = load_commands()


def _id(cmd: dict) -> str:
    return f"{cmd.get('lang', 'en')[:2]}-{cmd['say'][:40]}"


@pytest.mark.parametrize("cmd", COMMANDS, ids=[_id(c) for c in COMMANDS])
def test_command(cmd, make_user, speak, say, tts_voice, reminders_of, ledger_of, notes_of):
    lang = cmd.get("lang", "en-US")
    uid = make_user(language=lang, timezone=cmd.get("tz", "Europe/Amsterdam"))
    wav = tts_voice(cmd["say"], lang[:2]) if cmd.get("mode", "voice") == "voice" else None
    started = datetime.now(UTC)
    r = speak(uid, wav) if wav is not None else say(uid, cmd["say"])
    finished = datetime.now(UTC)
    assert r.status_code == 200, r.text
    body = r.json()
    stored = {"reminders": reminders_of(uid), "ledger": ledger_of(uid), "notes": notes_of(uid)}
    result = score(cmd, body, stored, started, finished)
    assert not result.problems, f"{result.problems}\ntranscript={body['transcript']!r} classified={body['classified_text']!r} slots={body['slots']}"
    assert body["reply"]["text"]
    assert body["language"] == lang[:2]
    for stage in ("stt", "intent", "slots", "action", "reply", "tts"):
        assert stage in body["timings_ms"]
