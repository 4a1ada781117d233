"""Use cases: one utterance (text or audio) in, actions and a reply (text + audio) out."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from eindr_common.errors import GatewayTimeout, Problem, ServiceUnavailable
from eindr_common.identity import Principal

from . import conversation, replies
from .clients import (
    BudgetExceeded,
    Deadline,
    DomainRejected,
    DomainUnavailable,
    StageUnavailable,
)
from .pipeline import DEGRADED, PIPELINE, STAGE_SECONDS, Deps, Turn

log = logging.getLogger("eindr.assistant")

WHISPER_LANGS = {
    "en", "es", "de", "fr", "ur", "hi", "it", "pt", "nl", "ar", "zh", "ja", "ko", "ru", "tr", "pl", "sv", "da", "fi",
    "no", "bn", "pa", "ta", "te", "mr", "gu", "fa", "id", "ms", "vi", "th", "uk", "el", "he", "ro", "cs", "hu",
}


async def preferences(deps: Deps, principal: Principal, deadline: Deadline) -> dict[str, Any]:
    """The user's language, timezone and voice; defaults when users is down or has no account."""
    try:
        prefs = await deps.domain.call("users", "GET", "/v1/users/me/preferences", principal, deadline)
        return prefs or {}
    except (DomainUnavailable, DomainRejected) as exc:
        log.warning("preferences unavailable, using defaults: %s", exc)
        DEGRADED.labels("users").inc()
        return {}


async def new_turn(deps: Deps, principal: Principal, *, conversation_id: str | None, language: str | None,
                   timezone: str | None, idempotency_key: str | None, source: str) -> Turn:
    deadline = Deadline(deps.settings.assistant_budget_s)
    started = time.perf_counter()
    prefs = await preferences(deps, principal, deadline)
    pref_language = prefs.get("language")
    turn = Turn(
        deps=deps,
        principal=principal,
        conversation_id=conversation_id or "default",
        language=language or pref_language or deps.settings.assistant_default_language,
        timezone=timezone or prefs.get("timezone") or deps.settings.assistant_default_timezone,
        voice=prefs.get("voice"),
        source=source,
        deadline=deadline,
        idempotency_key=idempotency_key,
    )
    turn.language_known = bool(language or pref_language)
    if turn.language_known and turn.language.split("-")[0].lower() not in WHISPER_LANGS:
        turn.language_known = False
    turn.timings["preferences"] = round((time.perf_counter() - started) * 1000, 2)
    return turn


async def run(turn: Turn) -> Turn:
    """Run the chain; a stage the turn cannot do without (STT, intent) → 503 problem."""
    try:
        return await PIPELINE.ainvoke(turn)
    except BudgetExceeded as exc:
        DEGRADED.labels(exc.stage).inc()
        raise GatewayTimeout(f"The assistant ran out of time at the {exc.stage} stage", code="assistant_timeout") from exc
    except StageUnavailable as exc:
        DEGRADED.labels(exc.stage).inc()
        stage = "stt" if exc.stage == "translate" else exc.stage
        raise ServiceUnavailable(
            f"The {stage} server is unavailable ({exc.reason}); nothing was done.",
            code=f"{stage}_unavailable", headers={"Retry-After": "2"},
        ) from exc


async def synthesize(turn: Turn) -> tuple[str | None, str | None]:
    """Buffered TTS into Redis for the audio URL: (url, error). Text survives a TTS failure."""
    deps = turn.deps
    started = time.perf_counter()
    try:
        audio = await deps.inference.speak(turn.reply, turn.voice, turn.lang, _tts_deadline(turn))
        await conversation.put_audio(deps.redis_bin, turn.principal.uid, turn.interaction_id, audio, deps.settings.assistant_audio_ttl_s)
        return f"/v1/assistant/audio/{turn.interaction_id}", None
    except StageUnavailable as exc:
        DEGRADED.labels("tts").inc()
        return None, f"tts_unavailable: {exc.reason}"
    finally:
        elapsed = time.perf_counter() - started
        turn.timings["tts"] = round(elapsed * 1000, 2)
        STAGE_SECONDS.labels("tts").observe(elapsed)


def _tts_deadline(turn: Turn) -> Deadline:
    # TTS gets at least its own timeout even when the rest used most of the budget: a late
    # voice is better than none, and the text is already decided.
    left = turn.deadline.left() if turn.deadline else 0
    return Deadline(max(left, min(2.0, turn.deps.settings.assistant_tts_timeout_s)))


async def stream_speech(turn: Turn) -> tuple[AsyncIterator[bytes], bytes] | None:
    """Open the streamed TTS (first sentence first); None when TTS is down (caller falls back to JSON)."""
    started = time.perf_counter()
    try:
        stream, first = await turn.deps.inference.speak_stream(turn.reply, turn.voice, turn.lang, _tts_deadline(turn))
    except StageUnavailable:
        DEGRADED.labels("tts").inc()
        return None
    finally:
        elapsed = time.perf_counter() - started
        turn.timings["tts_first_byte"] = round(elapsed * 1000, 2)
        STAGE_SECONDS.labels("tts_first_byte").observe(elapsed)
    return stream, first


def response_body(turn: Turn, audio_url: str | None, audio_error: str | None, total_started: float) -> dict[str, Any]:
    turn.timings["total"] = round((time.perf_counter() - total_started) * 1000, 2)
    STAGE_SECONDS.labels("total").observe(turn.timings["total"] / 1000)
    intent = None
    if turn.intent is not None:
        intent = {
            "name": turn.intent,
            "confidence": round(turn.confidence, 4),
            "alternatives": [{"intent": a["intent"], "confidence": round(float(a["confidence"]), 4)} for a in turn.alternatives],
            "accepted": turn.accepted,
        }
    return {
        "interaction_id": turn.interaction_id,
        "conversation_id": turn.conversation_id,
        "transcript": turn.text,
        "language": turn.spoken_language or turn.lang,
        "classified_text": turn.classified_text,
        "intent": intent,
        "slots": turn.slots,
        "actions": turn.actions,
        "reply": {"text": turn.reply, "language": replies.language_of(turn.reply_language), "audio_url": audio_url, "audio_error": audio_error},
        "awaiting_confirmation": turn.awaiting_confirmation,
        "timings_ms": turn.timings,
    }


def history_outcome(turn: Turn) -> str:
    """The history service's outcome for this turn."""
    if turn.awaiting_confirmation or not turn.accepted:
        return "clarification"
    statuses = [a.get("status") for a in turn.actions]
    if not statuses or all(s == "done" for s in statuses):
        return "success"
    if any(s == "done" for s in statuses):
        return "partial"
    return "failed"


def log_history(turn: Turn, body: dict[str, Any]) -> None:
    """Append the interaction to the history service when it runs (fire and forget)."""
    deps = turn.deps
    if not deps.domain.available("history") or not turn.text:
        return
    record = {
        "transcript": turn.text[:4000],
        "language": (body.get("language") or None),
        "intent": turn.intent,
        "slots": turn.slots,
        "actions": turn.actions[:50],
        "reply": (turn.reply or None) and turn.reply[:4000],
        "latency_ms": {k: float(v) for k, v in turn.timings.items()},
        "outcome": history_outcome(turn),
    }

    async def send() -> None:
        try:
            await deps.domain.call("history", "POST", "/v1/history", turn.principal, Deadline(2.0), json=record,
                                   idempotency_key=f"assistant:{turn.interaction_id}")
        except (DomainUnavailable, DomainRejected, Problem) as exc:
            log.info("history not recorded: %s", exc)

    task = asyncio.create_task(send())
    deps.background.add(task)
    task.add_done_callback(deps.background.discard)
