"""The voice pipeline as LangChain runnables: stt | intent | slots | action | reply.

Each stage is an async function ``Turn -> Turn`` wrapped in a ``RunnableLambda`` with its
own name, so each can be invoked and tested alone (``STT.ainvoke(turn)``), and the whole is
their composition (``PIPELINE.ainvoke(turn)``). Each stage records its wall time in
``turn.timings`` and in the ``eindr_assistant_stage_seconds`` histogram. TTS is not in the
chain: the API runs it after the reply, buffered (JSON + audio URL) or streamed (audio/wav).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
from eindr_common.identity import Principal
from langchain_core.runnables import RunnableLambda
from prometheus_client import Counter, Histogram

from . import agenda, conversation, replies, sharing, slots
from .clients import (
    Deadline,
    Domain,
    DomainRejected,
    DomainUnavailable,
    Inference,
    StageUnavailable,
)
from .settings import AssistantSettings

log = logging.getLogger("eindr.assistant")

STAGE_SECONDS = Histogram(
    "eindr_assistant_stage_seconds", "Wall time of each assistant pipeline stage", ["stage"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8),
)
INTENTS = Counter("eindr_assistant_intents_total", "Utterances by intent and whether it was acted on", ["intent", "accepted"])
ACTIONS = Counter("eindr_assistant_actions_total", "Actions by type and outcome", ["type", "status"])
DEGRADED = Counter("eindr_assistant_degraded_total", "Stages that failed and were degraded or refused", ["stage"])

DESTRUCTIVE_CONFIRM_MIN = 2  # a destructive action on this many items or more asks first


@dataclass
class Deps:
    settings: AssistantSettings
    inference: Inference
    domain: Domain
    redis: aioredis.Redis  # decoded strings: conversation state
    redis_bin: aioredis.Redis | None = None  # raw bytes: reply audio
    background: set = field(default_factory=set)


@dataclass
class Turn:
    """Everything one utterance carries through the pipeline."""

    deps: Deps
    principal: Principal
    conversation_id: str
    language: str  # BCP 47 tag of the user (preferences or request)
    timezone: str
    voice: str | None = None
    source: str = "text"  # text | voice
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    deadline: Deadline | None = None
    idempotency_key: str | None = None
    interaction_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    # input
    audio: bytes | None = None
    filename: str = "audio.wav"
    content_type: str = "audio/wav"
    language_known: bool = True
    # understanding
    text: str = ""
    spoken_language: str = ""
    classified_text: str | None = None
    empty: bool = False
    intent: str | None = None
    confidence: float = 0.0
    alternatives: list[dict[str, Any]] = field(default_factory=list)
    accepted: bool = False
    pending: dict[str, Any] | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    # outcome
    actions: list[dict[str, Any]] = field(default_factory=list)
    reply_key: str | None = None
    reply_values: dict[str, Any] = field(default_factory=dict)
    reply: str = ""
    awaiting_confirmation: bool = False
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def lang(self) -> str:
        """The primary language subtag the slots and replies use (en, es, de, fr, ur, hi, …)."""
        return slots.primary_language(self.spoken_language or self.language)

    @property
    def reply_language(self) -> str:
        return self.spoken_language or self.language

    def say(self, key: str, **values: Any) -> None:
        self.reply_key, self.reply_values = key, values

    def act(self, type_: str, service: str, status: str, **kw: Any) -> dict[str, Any]:
        action = {"type": type_, "service": service, "status": status, **kw}
        self.actions.append(action)
        ACTIONS.labels(type_, status).inc()
        return action

    def sub_key(self, n: int) -> str | None:
        """An Idempotency-Key for the n-th domain write of this turn, derived from the client's."""
        return f"assistant:{self.idempotency_key}:{n}" if self.idempotency_key else None


def timed(stage: str, fn: Callable[[Turn], Awaitable[Turn]]) -> RunnableLambda:
    async def run(turn: Turn) -> Turn:
        started = time.perf_counter()
        try:
            return await fn(turn)
        finally:
            elapsed = time.perf_counter() - started
            turn.timings[stage] = round(turn.timings.get(stage, 0.0) + elapsed * 1000, 2)
            STAGE_SECONDS.labels(stage).observe(elapsed)

    return RunnableLambda(run, name=stage)


# --- 1-2. speech to text (and an English rendering for classification) -----------------------


async def stt_stage(turn: Turn) -> Turn:
    if turn.audio is None:  # the text endpoint
        turn.spoken_language = slots.primary_language(turn.language)
        return turn
    deps = turn.deps
    inf = deps.inference
    lang = slots.primary_language(turn.language) if turn.language_known else None
    needs_english = (lang or "") not in deps.settings.intent_languages
    if needs_english and lang:
        started = time.perf_counter()
        original, english = await asyncio.gather(
            inf.transcribe(turn.audio, turn.filename, turn.content_type, language=lang, translate=False, deadline=turn.deadline),
            inf.transcribe(turn.audio, turn.filename, turn.content_type, language=None, translate=True, deadline=turn.deadline),
        )
        turn.timings["translate"] = round((time.perf_counter() - started) * 1000, 2)
    else:
        original = await inf.transcribe(turn.audio, turn.filename, turn.content_type, language=lang, translate=False, deadline=turn.deadline)
        english = None
        if lang is None and original.language not in deps.settings.intent_languages and not original.no_speech:
            started = time.perf_counter()
            english = await inf.transcribe(turn.audio, turn.filename, turn.content_type, language=None, translate=True, deadline=turn.deadline)
            turn.timings["translate"] = round((time.perf_counter() - started) * 1000, 2)
    turn.text = original.text
    turn.spoken_language = original.language if not lang else lang
    turn.empty = original.no_speech or not _has_words(original.text)
    if english is not None and english.text.strip():
        turn.classified_text = english.text.strip()
    return turn


def _has_words(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


# --- 3. intent --------------------------------------------------------------------------------


async def intent_stage(turn: Turn) -> Turn:
    if turn.empty:
        return turn
    deps = turn.deps
    pending = await conversation.get_pending(deps.redis, turn.principal.uid, turn.conversation_id)
    if pending is not None:
        answer = slots.yes_no(turn.text, turn.lang)
        if answer is None and turn.classified_text:
            answer = slots.yes_no(turn.classified_text, "en")
        if answer is not None:
            turn.intent, turn.confidence, turn.accepted = ("confirm" if answer else "deny"), 1.0, True
            turn.pending = pending
            INTENTS.labels(turn.intent, "true").inc()
            return turn
        if sharing.answers_pending(turn.text, pending):
            # "Which Ali?" — "Ali Raza": the name answers the question, no classifier needed.
            turn.intent, turn.confidence, turn.accepted = "share_with_friend", 1.0, True
            turn.pending = pending
            turn.slots["intent_source"] = "follow_up"
            INTENTS.labels(turn.intent, "true").inc()
            return turn
        # Anything else is a new command: the question lapses.
        await conversation.drop_pending(deps.redis, turn.principal.uid, turn.conversation_id)
    text = turn.classified_text or turn.text
    result = await deps.inference.classify(text, turn.deadline)
    turn.intent, turn.confidence, turn.alternatives = result.intent, result.confidence, result.alternatives
    turn.accepted = result.intent == "out_of_scope" or result.confidence >= deps.settings.assistant_min_confidence
    if turn.lang not in deps.settings.intent_languages:
        # The English model saw a translation (voice) or the raw text (typed): an explicit
        # command verb of the user's language overrules a weak or out-of-scope guess.
        hint = slots.command_hint(turn.text, turn.lang)
        if hint and (hint != turn.intent) and (not turn.accepted or turn.intent in ("out_of_scope", "small_talk")
                                               or turn.classified_text is None):
            turn.alternatives = [{"intent": turn.intent, "confidence": turn.confidence}] + turn.alternatives[:2]
            turn.intent, turn.confidence, turn.accepted = hint, 1.0, True
            turn.slots["intent_source"] = "command_verb"
    if turn.intent == "share_with_friend" and slots.starts_as_reminder(text):
        # The model hears "share … with Omar" in "remind me to share the slides with Omar at 9".
        turn.alternatives = [{"intent": turn.intent, "confidence": turn.confidence}] + turn.alternatives[:2]
        turn.intent, turn.accepted = "create_reminder", True
        turn.slots["intent_source"] = "command_verb"
    INTENTS.labels(result.intent, str(turn.accepted).lower()).inc()
    return turn


# --- 4. slots ---------------------------------------------------------------------------------


def extract_slots(turn: Turn) -> dict[str, Any]:
    """Pure: the slots of ``turn.intent`` from the transcript (original language first,
    then the English rendering for what the original does not yield)."""
    intent = turn.intent
    lang = turn.lang
    text = slots.normalize_numbers(turn.text, lang)
    out: dict[str, Any] = {}
    zone = turn.timezone
    if intent == "create_reminder":
        when = slots.parse_when(text, lang=lang, timezone=zone, now=turn.now)
        title_src, title_lang, spans = text, lang, when.spans if when else []
        if when is None and turn.classified_text:
            en = slots.normalize_numbers(turn.classified_text, "en")
            when = slots.parse_when(en, lang="en", timezone=zone, now=turn.now)
            if lang == "en":
                title_src, spans = en, when.spans if when else []
        title = slots.reminder_title(title_src, lang=title_lang, spans=spans)
        if not title and turn.classified_text:
            en = slots.normalize_numbers(turn.classified_text, "en")
            en_when = slots.parse_when(en, lang="en", timezone=zone, now=turn.now)
            title = slots.reminder_title(en, lang="en", spans=en_when.spans if en_when else [])
        out["title"] = title or None
        if when is not None:
            out["local_due"] = when.local_due.isoformat(timespec="minutes")
            out["due_at"] = when.due_at.isoformat(timespec="minutes")
            out["timezone"] = when.timezone
            out["rrule"] = when.rrule
    elif intent in ("cancel_reminder", "list_reminders", "snooze_reminder", "calendar_query"):
        rng = slots.day_range(text, lang=lang, timezone=zone, now=turn.now)
        if rng is None and turn.classified_text:
            rng = slots.day_range(turn.classified_text, lang="en", timezone=zone, now=turn.now)
        if rng is not None:
            out["due_from"], out["due_to"], out["day"] = rng.start.isoformat(), rng.end.isoformat(), rng.label
        if intent not in ("list_reminders", "calendar_query"):
            q_src = turn.classified_text if (lang != "en" and turn.classified_text) else text
            q_rng = slots.day_range(q_src, lang="en" if q_src is not text else lang, timezone=zone, now=turn.now)
            q = slots.reminder_query(q_src, q_rng.spans if q_rng else [])
            if q and intent == "snooze_reminder":
                q = _strip_snooze_duration(q)
            out["query"] = q
            out["all"] = slots.is_all(text) or (bool(turn.classified_text) and slots.is_all(turn.classified_text or ""))
        if intent == "snooze_reminder":
            out["minutes"] = slots.snooze_minutes(text, lang) or (
                slots.snooze_minutes(turn.classified_text, "en") if turn.classified_text else None) or 10
    elif intent in ("ledger_add", "ledger_settle", "ledger_query"):
        led = slots.parse_ledger(text, lang=lang, lang_tag=turn.language)
        if (led.name is None or led.amount is None or led.direction is None) and turn.classified_text:
            en = slots.parse_ledger(turn.classified_text, lang="en", lang_tag=turn.language)
            led = slots.LedgerSlots(led.name or en.name, led.direction or en.direction, led.amount or en.amount)
        out["contact"] = led.name
        out["direction"] = led.direction
        if led.amount is not None:
            out["amount"] = str(led.amount.value)
            out["currency"] = led.amount.currency
    elif intent == "share_with_friend":
        share = slots.parse_share(text, lang=lang)
        if (share.friend is None or share.query is None) and turn.classified_text:
            en = slots.parse_share(turn.classified_text, lang="en")
            share = slots.ShareSlots(share.friend or en.friend, share.item_type or en.item_type, share.query or en.query,
                                     share.access if share.access == "edit" else en.access)
        out.update(friend=share.friend, item_type=share.item_type, query=share.query, access=share.access)
    elif intent == "add_note":
        out["text"] = slots.note_text(turn.text)
    elif intent == "search_notes":
        out["query"] = slots.search_query(turn.classified_text or turn.text if lang != "en" else turn.text)
    return out


def _strip_snooze_duration(q: str) -> str | None:
    import re

    q = re.sub(r"\b(?:for|by)\s+(?:\d+|an?|one|half an?)\s+(?:minutes?|mins?|hours?|hrs?)\b", "", q, flags=re.IGNORECASE)
    q = re.sub(r"\bin\s+(?:\d+|an?|one|half an?)\s+(?:minutes?|mins?|hours?|hrs?)\b", "", q, flags=re.IGNORECASE)
    q = " ".join(q.split()).strip(" ,")
    return q or None


async def slots_stage(turn: Turn) -> Turn:
    if turn.empty or not turn.accepted or turn.intent in ("confirm", "deny") or turn.pending is not None:
        return turn
    source = turn.slots.get("intent_source")
    turn.slots = extract_slots(turn)
    if source:
        turn.slots["intent_source"] = source
    if turn.intent in ("ledger_add", "ledger_settle", "ledger_query") and turn.slots.get("contact"):
        contacts = await _known_contacts(turn)
        match = slots.match_contact(turn.slots["contact"], contacts)
        if match:
            turn.slots["contact"] = match
            turn.slots["contact_matched"] = True
    return turn


async def _known_contacts(turn: Turn) -> list[str]:
    """Names the user already uses in the ledger (best effort: none when ledger is down)."""
    try:
        body = await turn.deps.domain.call("ledger", "GET", "/v1/ledger/balances", turn.principal, turn.deadline)
    except (DomainUnavailable, DomainRejected):
        return []
    names = []
    for item in (body or {}).get("items", []):
        cp = item.get("counterparty") or {}
        name = cp.get("name") or item.get("contact")
        if name and name not in names:
            names.append(name)
    return names


# --- 5. action --------------------------------------------------------------------------------

SERVICE_OF = {
    "create_reminder": "reminders", "cancel_reminder": "reminders", "list_reminders": "reminders", "snooze_reminder": "reminders",
    "add_note": "notes", "search_notes": "notes",
    "ledger_add": "ledger", "ledger_settle": "ledger", "ledger_query": "ledger",
    "share_with_friend": "friends", "calendar_query": "calendar",
}


async def action_stage(turn: Turn) -> Turn:
    if turn.empty:
        turn.say("didnt_catch")
        return turn
    if turn.intent in ("confirm", "deny"):
        await _resolve_pending(turn)
        return turn
    if not turn.accepted:
        option = turn.intent or "out_of_scope"
        turn.say("clarify", option=replies.action_phrase(option, turn.reply_language))
        return turn
    intent = turn.intent or "out_of_scope"
    if intent == "out_of_scope":
        turn.say("out_of_scope")
        return turn
    if intent == "small_talk":
        turn.say("small_talk")
        return turn
    service = SERVICE_OF.get(intent)
    handler = HANDLERS.get(intent)
    if service is None or handler is None or not turn.deps.domain.available(service):
        turn.act(intent, service or "none", "not_supported", detail="this integration is not available yet")
        turn.say("not_yet", what=replies.action_phrase(intent, turn.reply_language))
        return turn
    try:
        await handler(turn)
    except DomainUnavailable as exc:
        DEGRADED.labels(exc.service).inc()
        turn.act(intent, exc.service, "unavailable", detail=exc.reason)
        turn.say("unavailable", what=replies.action_phrase(intent, turn.reply_language))
    except DomainRejected as exc:
        turn.act(intent, exc.service, "failed", detail=f"{exc.code}: {exc.detail}")
        turn.say("rejected", detail=exc.detail or exc.code)
    return turn


def _local(iso: str, zone: str) -> datetime:
    return datetime.fromisoformat(iso).astimezone(ZoneInfo(zone))


def _today(turn: Turn):
    return turn.now.astimezone(ZoneInfo(turn.timezone)).date()


async def create_reminder(turn: Turn) -> None:
    s = turn.slots
    if not s.get("title"):
        turn.act("reminder.create", "reminders", "failed", detail="no title understood")
        turn.say("need_title")
        return
    if not s.get("local_due"):
        turn.act("reminder.create", "reminders", "failed", detail="no time understood")
        turn.say("need_time")
        return
    body = {
        "title": s["title"][:500],
        "local_due": s["local_due"],
        "timezone": s["timezone"],
        "source": "voice" if turn.source == "voice" else "text",
        "phrase": turn.text[:2000],
    }
    if s.get("rrule"):
        body["rrule"] = s["rrule"]
    created = await turn.deps.domain.call("reminders", "POST", "/v1/reminders", turn.principal, turn.deadline,
                                          json=body, idempotency_key=turn.sub_key(0))
    rid = str(created["id"])
    turn.act("reminder.create", "reminders", "done", resource=f"/v1/reminders/{rid}", id=rid,
             data={"title": created.get("title"), "due_at": created.get("due_at"), "rrule": created.get("rrule")})
    local = datetime.fromisoformat(s["local_due"])
    when = replies.when_words(local, _today(turn), turn.reply_language)
    title = replies.lower_first(s["title"], turn.reply_language)
    turn.say("reminder_created_recurring" if s.get("rrule") else "reminder_created", title=title, when=when)


async def _scheduled(turn: Turn, *, status: str = "scheduled") -> list[dict[str, Any]]:
    # Own reminders only: a friend's shared reminder is not the user's to cancel or snooze.
    params: dict[str, Any] = {"status": status, "limit": 100, "scope": "own"}
    if turn.slots.get("due_from"):
        params["due_from"], params["due_to"] = turn.slots["due_from"], turn.slots["due_to"]
    page = await turn.deps.domain.call("reminders", "GET", "/v1/reminders", turn.principal, turn.deadline, params=params)
    return list((page or {}).get("items", []))


def _matching(items: list[dict[str, Any]], query: str | None) -> list[dict[str, Any]]:
    if not query:
        return items
    from rapidfuzz import fuzz, utils

    q = utils.default_process(query)
    scored = [(fuzz.token_set_ratio(q, utils.default_process(it.get("title") or "")), it) for it in items]
    best = max((s for s, _ in scored), default=0)
    if best < 60:
        return []
    # Everything as good as the best (ties: "cancel the call mum reminders" matching several).
    return [it for s, it in scored if s >= max(60, best - 5)]


def _range_words(turn: Turn) -> str:
    if not turn.slots.get("due_from"):
        return ""
    day = _local(turn.slots["due_from"], turn.timezone).date()
    return replies.render("range_day", turn.reply_language, day=replies.day_word(day, _today(turn), turn.reply_language))


async def list_reminders(turn: Turn) -> None:
    items = await _scheduled(turn)
    items.sort(key=lambda it: it.get("next_fire_at") or it.get("due_at") or "")
    rng = _range_words(turn)
    turn.act("reminder.list", "reminders", "done", ids=[str(it["id"]) for it in items], data={"count": len(items)})
    if not items:
        turn.say("reminders_none", range=rng)
        return
    shown = []
    for it in items[:5]:
        local = _local(it.get("due_at"), turn.timezone)
        shown.append(replies.render("item_at", turn.reply_language, title=it["title"],
                                    time=replies.when_words(local, _today(turn), turn.reply_language)))
    turn.say("reminders_list_one" if len(items) == 1 else "reminders_list", n=len(items), range=rng, items="; ".join(shown))


async def cancel_reminder(turn: Turn) -> None:
    items = _matching(await _scheduled(turn), turn.slots.get("query"))
    if not items:
        turn.act("reminder.cancel", "reminders", "nothing_found")
        turn.say("no_match")
        return
    if len(items) >= DESTRUCTIVE_CONFIRM_MIN:
        ids = [str(it["id"]) for it in items]
        pending = {"kind": "cancel_reminders", "ids": ids, "titles": [it["title"] for it in items][:20],
                   "intent": turn.intent, "language": turn.reply_language, "created_at": turn.now.isoformat()}
        await conversation.put_pending(turn.deps.redis, turn.principal.uid, turn.conversation_id, pending,
                                       turn.deps.settings.assistant_confirm_ttl_s)
        turn.awaiting_confirmation = True
        turn.act("reminder.cancel", "reminders", "pending_confirmation", ids=ids, data={"count": len(ids)})
        turn.say("confirm_cancel", n=len(ids), range=_range_words(turn))
        return
    it = items[0]
    rid = str(it["id"])
    await turn.deps.domain.call("reminders", "POST", f"/v1/reminders/{rid}/cancel", turn.principal, turn.deadline,
                                json={"scope": "series"}, idempotency_key=turn.sub_key(0))
    turn.act("reminder.cancel", "reminders", "done", resource=f"/v1/reminders/{rid}", id=rid, ids=[rid])
    turn.say("cancelled_one", title=replies.lower_first(it["title"], turn.reply_language))


async def snooze_reminder(turn: Turn) -> None:
    items = await _scheduled(turn, status="fired")
    if not items or turn.slots.get("query"):
        items = items + await _scheduled(turn)
    items = _matching(items, turn.slots.get("query"))
    if not items:
        turn.act("reminder.snooze", "reminders", "nothing_found")
        turn.say("no_match")
        return
    # The one that fired last, else the next due.
    items.sort(key=lambda it: (it.get("last_fired_at") or "", ), reverse=True)
    it = items[0]
    rid = str(it["id"])
    minutes = int(turn.slots.get("minutes") or 10)
    updated = await turn.deps.domain.call("reminders", "POST", f"/v1/reminders/{rid}/snooze", turn.principal, turn.deadline,
                                          json={"minutes": minutes}, idempotency_key=turn.sub_key(0))
    turn.act("reminder.snooze", "reminders", "done", resource=f"/v1/reminders/{rid}", id=rid, data={"minutes": minutes})
    until = (updated or {}).get("next_fire_at") or (turn.now + timedelta(minutes=minutes)).isoformat()
    turn.say("snoozed", title=it["title"], time=replies.time_words(_local(until, turn.timezone), turn.reply_language))


async def add_note(turn: Turn) -> None:
    text = turn.slots.get("text")
    if not text:
        turn.act("note.create", "notes", "failed", detail="empty note")
        turn.say("need_note")
        return
    body = {"text": text, "language": turn.lang}
    created = await turn.deps.domain.call("notes", "POST", "/v1/notes", turn.principal, turn.deadline, json=body,
                                          idempotency_key=turn.sub_key(0))
    nid = str(created["id"])
    turn.act("note.create", "notes", "done", resource=f"/v1/notes/{nid}", id=nid)
    turn.say("note_added", text=replies.cap(text, 120))


async def search_notes(turn: Turn) -> None:
    q = turn.slots.get("query") or turn.text
    found = await turn.deps.domain.call("notes", "GET", "/v1/notes/search", turn.principal, turn.deadline,
                                        params={"q": q[:200], "limit": 5})
    items = list((found or {}).get("items", []))
    turn.act("note.search", "notes", "done", ids=[str(i.get("id") or (i.get("note") or {}).get("id")) for i in items],
             data={"count": len(items)})
    if not items:
        turn.say("notes_none")
        return
    top = items[0].get("note") or items[0]
    snippet = top.get("title") or top.get("text") or top.get("snippet") or ""
    turn.say("notes_found", n=len(items), snippet=replies.cap(snippet, 140))


async def ledger_add(turn: Turn) -> None:
    s = turn.slots
    if not s.get("contact"):
        turn.act("ledger.add", "ledger", "failed", detail="no contact understood")
        turn.say("need_contact")
        return
    if not s.get("amount"):
        turn.act("ledger.add", "ledger", "failed", detail="no amount understood")
        turn.say("need_amount")
        return
    if not s.get("direction"):
        turn.act("ledger.add", "ledger", "failed", detail="no direction understood")
        turn.say("need_direction")
        return
    body = {"counterparty_name": s["contact"], "direction": s["direction"], "amount": s["amount"],
            "currency": s["currency"], "note": turn.text[:500]}
    created = await turn.deps.domain.call("ledger", "POST", "/v1/ledger/entries", turn.principal, turn.deadline,
                                          json=body, idempotency_key=turn.sub_key(0))
    eid = str(created["id"])
    turn.act("ledger.add", "ledger", "done", resource=f"/v1/ledger/entries/{eid}", id=eid,
             data={"amount": created.get("amount"), "currency": created.get("currency"), "direction": created.get("direction")})
    amount = replies.money(s["amount"], s["currency"], turn.reply_language)
    turn.say("ledger_they_owe" if s["direction"] == "they_owe_me" else "ledger_i_owe", name=s["contact"], amount=amount)


async def ledger_query(turn: Turn) -> None:
    body = await turn.deps.domain.call("ledger", "GET", "/v1/ledger/balances", turn.principal, turn.deadline)
    items = list((body or {}).get("items", []))
    name = turn.slots.get("contact")
    if name:
        items = [it for it in items if (slots.match_contact(name, [(it.get("counterparty") or {}).get("name") or it.get("contact") or ""]))]
    turn.act("ledger.query", "ledger", "done", data={"balances": len(items)})
    if not items:
        turn.say("balance_settled" if name else "balance_none", name=name or "")
        return
    parts = []
    for it in items[:3]:
        who = (it.get("counterparty") or {}).get("name") or name or it.get("contact")
        amount = replies.money(it["net_amount"], it["currency"], turn.reply_language)
        key = {"they_owe_me": "balance_they_owe", "i_owe_them": "balance_i_owe"}.get(it.get("direction"), "balance_settled")
        parts.append(replies.render(key, turn.reply_language, name=who, amount=amount))
    turn.reply_key = None
    turn.reply = " ".join(parts)


async def ledger_settle(turn: Turn) -> None:
    name = turn.slots.get("contact")
    if not name:
        turn.act("ledger.settle", "ledger", "failed", detail="no contact understood")
        turn.say("need_contact")
        return
    page = await turn.deps.domain.call("ledger", "GET", "/v1/ledger/entries", turn.principal, turn.deadline,
                                       params={"status": "open", "limit": 100})
    entries = [e for e in (page or {}).get("items", [])
               if e.get("kind", "entry") == "entry" and e.get("status") == "open" and not e.get("mirrored")
               and slots.match_contact(name, [(e.get("counterparty") or {}).get("name") or ""])]
    if not entries:
        turn.act("ledger.settle", "ledger", "nothing_found")
        turn.say("ledger_nothing_open", name=name)
        return
    if len(entries) >= DESTRUCTIVE_CONFIRM_MIN:
        ids = [str(e["id"]) for e in entries]
        pending = {"kind": "settle_entries", "ids": ids, "name": name, "language": turn.reply_language}
        await conversation.put_pending(turn.deps.redis, turn.principal.uid, turn.conversation_id, pending,
                                       turn.deps.settings.assistant_confirm_ttl_s)
        turn.awaiting_confirmation = True
        turn.act("ledger.settle", "ledger", "pending_confirmation", ids=ids)
        turn.say("confirm_settle", n=len(ids), name=name)
        return
    await _settle(turn, entries[0], turn.slots.get("amount"), 0)


async def _settle(turn: Turn, entry: dict[str, Any], amount: str | None, n: int) -> None:
    eid = str(entry["id"])
    body: dict[str, Any] = {"amount": amount} if amount else {}
    await turn.deps.domain.call("ledger", "POST", f"/v1/ledger/entries/{eid}/settle", turn.principal, turn.deadline,
                                json=body, idempotency_key=turn.sub_key(n))
    turn.act("ledger.settle", "ledger", "done", resource=f"/v1/ledger/entries/{eid}", id=eid)
    shown = amount or entry.get("remaining_amount") or entry.get("amount")
    turn.say("ledger_settled", name=(entry.get("counterparty") or {}).get("name") or "",
             amount=replies.money(shown, entry["currency"], turn.reply_language))


async def _resolve_pending(turn: Turn) -> None:
    deps = turn.deps
    pending = await conversation.take_pending(deps.redis, turn.principal.uid, turn.conversation_id)
    if pending is None:  # expired or taken by a racing turn
        turn.say("nothing_to_confirm")
        return
    kind = pending.get("kind")
    if turn.intent == "deny":
        service = {"cancel_reminders": "reminders", sharing.PENDING_KIND: "friends"}.get(kind or "", "ledger")
        turn.act(kind or "pending", service, "declined", ids=pending.get("ids", []))
        turn.say("share_declined" if kind == sharing.PENDING_KIND else "confirm_declined")
        return
    try:
        if kind == "cancel_reminders":
            ids = pending["ids"]
            result = await deps.domain.call("reminders", "POST", "/v1/reminders:cancel", turn.principal, turn.deadline,
                                            json={"ids": ids}, idempotency_key=turn.sub_key(0))
            n = int((result or {}).get("cancelled", len(ids)))
            turn.act("reminder.cancel", "reminders", "done", ids=ids, data={"cancelled": n})
            turn.say("cancelled_many", n=n)
        elif kind == "settle_entries":
            for i, eid in enumerate(pending["ids"]):
                entry = await deps.domain.call("ledger", "GET", f"/v1/ledger/entries/{eid}", turn.principal, turn.deadline)
                await _settle(turn, entry, None, i)
        else:
            turn.say("nothing_to_confirm")
    except DomainUnavailable as exc:
        # Nothing was done: put the question back so a retry can answer it again.
        await conversation.put_pending(deps.redis, turn.principal.uid, turn.conversation_id, pending,
                                       deps.settings.assistant_confirm_ttl_s)
        turn.act(kind or "pending", exc.service, "unavailable", detail=exc.reason)
        turn.say("unavailable", what=replies.action_phrase(pending.get("intent") or "cancel_reminder", turn.reply_language))
    except DomainRejected as exc:
        turn.act(kind or "pending", exc.service, "failed", detail=f"{exc.code}: {exc.detail}")
        turn.say("rejected", detail=exc.detail or exc.code)


HANDLERS: dict[str, Callable[[Turn], Awaitable[None]]] = {
    "create_reminder": create_reminder,
    "list_reminders": list_reminders,
    "cancel_reminder": cancel_reminder,
    "snooze_reminder": snooze_reminder,
    "add_note": add_note,
    "search_notes": search_notes,
    "ledger_add": ledger_add,
    "ledger_query": ledger_query,
    "ledger_settle": ledger_settle,
    "share_with_friend": sharing.share_with_friend,
    "calendar_query": agenda.calendar_query,
}


# --- 6. reply ---------------------------------------------------------------------------------


async def reply_stage(turn: Turn) -> Turn:
    settings = turn.deps.settings
    if turn.reply_key == "small_talk" and settings.assistant_chat_enabled:
        said = await _chat(turn)
        if said:
            turn.reply = said
            return turn
    if turn.reply_key:
        turn.reply = replies.render(turn.reply_key, turn.reply_language, **turn.reply_values)
    turn.reply = replies.cap(turn.reply or replies.render("didnt_catch", turn.reply_language), settings.assistant_reply_max_chars)
    return turn


async def _chat(turn: Turn) -> str | None:
    """Small talk from the chat model, capped; None (→ the template) when it fails, times
    out or says something unusable. Nothing the model says triggers an action."""
    limit = min(160, turn.deps.settings.assistant_reply_max_chars)
    prompt = (
        "The following is a conversation with Eindr, a friendly voice assistant for reminders, notes and IOUs. "
        "Eindr answers in one short sentence.\n"
        f"User: {turn.text[:300]}\nEindr:"
    )
    try:
        text = await turn.deps.inference.small_talk(prompt, turn.deadline)
    except StageUnavailable:
        DEGRADED.labels("chat").inc()
        return None
    text = " ".join(text.replace("Eindr:", " ").split()).strip()
    if len(text) < 2 or not any(ch.isalpha() for ch in text):
        return None
    return replies.cap(text, limit)


# --- the chain --------------------------------------------------------------------------------

STT = timed("stt", stt_stage)
INTENT = timed("intent", intent_stage)
SLOTS = timed("slots", slots_stage)
ACTION = timed("action", action_stage)
REPLY = timed("reply", reply_stage)
PIPELINE = (STT | INTENT | SLOTS | ACTION | REPLY).with_config(run_name="assistant_turn")
