"""share_with_friend: "share my dentist reminder with Ali" → a share in the friends service.

Who may see what between two users is decided by the friends service alone; the
assistant finds the two things the sentence names, as the user:

- the friend, among the user's friends (``GET /v1/friends``), by the display name each
  friend chose, matched with rapidfuzz like ledger contacts are. One clear match → that
  friend; a near tie ("Ali" with Ali Khan and Ali Raza) or nobody by that name → a
  question, never a guess. The question's candidates are kept as conversation state (TTL),
  so the next turn may just say the name.
- the item, among the user's *own* reminders or notes (the reminders/notes services only
  return the caller's items, plus notes friends share with them). The friends service
  cannot know whose item an id is, so the assistant never offers it an id the user does
  not own: a note someone shared with the user is refused here, honestly.
"""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING, Any

from . import conversation, replies, slots
from .clients import DomainRejected

if TYPE_CHECKING:
    from .pipeline import Turn

PENDING_KIND = "share_pick_friend"
MAX_CANDIDATES = 50  # kept in the pending question; more friends than that are named again
TITLE_MIN_SCORE = 60
_STOP_WORDS = {"the", "and", "for", "with", "about", "that", "this", "del", "las", "los", "una", "con", "der", "die", "das",
               "und", "mit", "les", "des", "une", "pour", "avec"}
_ANSWER_PREFIX = r"^(?:i mean|i meant|(?:share it |send it )?(?:with|to)|the one called|it's|its|con|mit|avec)\s+"


async def share_with_friend(turn: Turn) -> None:
    if turn.pending is not None:
        await _answered(turn)
        return
    s = turn.slots
    friends = await _friends(turn)
    if not friends:
        turn.act("share.create", "friends", "no_friends")
        turn.say("share_no_friends")
        return
    item = await _find_item(turn, s.get("item_type"), s.get("query"))
    if item is None:
        return
    if not s.get("friend"):
        await _ask_friend(turn, item, s, friends, "share_need_friend")
        return
    matches = slots.match_friends(s["friend"], friends)
    if not matches:
        await _ask_friend(turn, item, s, friends, "share_unknown_friend", name=s["friend"])
        return
    if len(matches) > 1:
        await _ask_friend(turn, item, s, matches, "share_which_friend", name=s["friend"])
        return
    await _share(turn, item, matches[0], s.get("access") or "view")


def answers_pending(text: str, pending: dict[str, Any]) -> bool:
    """Whether ``text`` is an answer to "which friend?" (a name among the candidates)
    rather than a new command, which lets the question lapse."""
    if pending.get("kind") != PENDING_KIND:
        return False
    answer = _answer(text)
    return 0 < len(answer.split()) <= 4 and bool(slots.match_friends(answer, pending.get("candidates") or []))


def _answer(text: str) -> str:
    return re.sub(_ANSWER_PREFIX, "", text.strip().strip(" .!?,"), flags=re.IGNORECASE).strip(" .!?,")


async def _answered(turn: Turn) -> None:
    deps = turn.deps
    pending = await conversation.take_pending(deps.redis, turn.principal.uid, turn.conversation_id)
    if pending is None:  # expired, or a racing turn answered it
        turn.say("nothing_to_confirm")
        return
    matches = slots.match_friends(_answer(turn.text), pending.get("candidates") or [])
    if len(matches) != 1:
        name = _answer(turn.text)
        pending["candidates"] = matches or pending.get("candidates") or []
        await conversation.put_pending(deps.redis, turn.principal.uid, turn.conversation_id, pending,
                                       deps.settings.assistant_confirm_ttl_s)
        turn.awaiting_confirmation = True
        turn.act("share.create", "friends", "needs_clarification", data={"candidates": _names(pending["candidates"])})
        turn.say("share_which_friend", name=name, options=_options(pending["candidates"], turn.reply_language))
        return
    turn.slots.update({"friend": matches[0].get("display_name"), "item_type": pending["item"]["type"],
                       "access": pending.get("access") or "view"})
    await _share(turn, pending["item"], matches[0], pending.get("access") or "view")


async def _friends(turn: Turn) -> list[dict[str, Any]]:
    page = await turn.deps.domain.call("friends", "GET", "/v1/friends", turn.principal, turn.deadline, params={"limit": 200, "scope": "own"})
    return [{"user_id": f["user_id"], "display_name": f.get("display_name")} for f in (page or {}).get("items", [])]


async def _find_item(turn: Turn, item_type: str | None, query: str | None) -> dict[str, Any] | None:
    """The user's own reminder or note the words name; says why and returns None otherwise."""
    if not query:
        turn.act("share.create", "friends", "needs_item")
        turn.say("share_need_item")
        return None
    if item_type in (None, "reminder"):
        page = await turn.deps.domain.call("reminders", "GET", "/v1/reminders", turn.principal, turn.deadline,
                                           params={"q": query[:200], "limit": 50, "scope": "own"})
        found = _by_title([it for it in (page or {}).get("items", []) if it.get("status") != "cancelled"], query)
        if not found:
            # The words may be a paraphrase of the title: look at the whole list too.
            page = await turn.deps.domain.call("reminders", "GET", "/v1/reminders", turn.principal, turn.deadline,
                                               params={"limit": 200})
            found = _by_title([it for it in (page or {}).get("items", []) if it.get("status") != "cancelled"], query)
        if len(found) > 1:
            titles = [it["title"] for it in found[:4]]
            turn.act("share.create", "friends", "needs_clarification", ids=[str(it["id"]) for it in found])
            turn.say("share_which_item", options=_join(titles, turn.reply_language))
            return None
        if found:
            return {"type": "reminder", "id": str(found[0]["id"]), "title": found[0]["title"]}
    if item_type == "note" or (item_type is None and turn.deps.domain.available("notes")):
        hits = await turn.deps.domain.call("notes", "GET", "/v1/notes/search", turn.principal, turn.deadline,
                                           params={"q": query[:200], "limit": 10})
        # Search ranks by meaning and by any shared word; only a note that has every word the
        # user said (or a close spelling of it) is the one they named.
        notes = [h["note"] for h in (hits or {}).get("items", []) if _note_has_words(query, h.get("note") or {})]
        own = [n for n in notes if not n.get("shared_by")]
        if own:
            return {"type": "note", "id": str(own[0]["id"]), "title": _note_title(own[0])}
        if notes:
            turn.act("share.create", "friends", "not_permitted", id=str(notes[0]["id"]),
                     detail="the note belongs to another user (shared with this user)")
            turn.say("share_not_owner", item=replies.render("item_shared", turn.reply_language))
            return None
    turn.act("share.create", "friends", "nothing_found", detail=f"no {item_type or 'reminder or note'} matching the words")
    turn.say("share_item_not_found", query=query)
    return None


def _title_score(query: str, title: str) -> float:
    from rapidfuzz import fuzz, utils

    return fuzz.token_set_ratio(utils.default_process(query), utils.default_process(title)) if title else 0.0


def _note_has_words(query: str, note: dict[str, Any]) -> bool:
    from rapidfuzz import fuzz, utils

    parts = utils.default_process(" ".join(str(note.get(k) or "") for k in ("title", "text", "transcript"))).split()
    tokens = set(parts) | {a + b for a, b in itertools.pairwise(parts)}  # "wi fi" is "wifi"
    said = utils.default_process(query).split()
    words = [w for w in said if len(w) > 2 and w not in _STOP_WORDS] or said
    return bool(words) and all(any(fuzz.ratio(w, t) >= 85 for t in tokens) for w in words)


def _by_title(items: list[dict[str, Any]], query: str) -> list[dict[str, Any]]:
    """The items whose title fits the words best (ties kept: the user is asked which)."""
    scored = [(_title_score(query, it.get("title") or ""), it) for it in items]
    best = max((s for s, _ in scored), default=0)
    if best < TITLE_MIN_SCORE:
        return []
    return [it for s, it in sorted(scored, key=lambda x: -x[0]) if s >= best - 5]


def _note_title(note: dict[str, Any]) -> str:
    return note.get("title") or replies.cap(note.get("text") or note.get("transcript") or "", 40)


async def _ask_friend(turn: Turn, item: dict[str, Any], s: dict[str, Any], candidates: list[dict[str, Any]], key: str,
                      name: str = "") -> None:
    pending = {"kind": PENDING_KIND, "intent": "share_with_friend", "item": item, "access": s.get("access") or "view",
               "candidates": [c for c in candidates if c.get("display_name")][:MAX_CANDIDATES], "language": turn.reply_language}
    await conversation.put_pending(turn.deps.redis, turn.principal.uid, turn.conversation_id, pending,
                                   turn.deps.settings.assistant_confirm_ttl_s)
    turn.awaiting_confirmation = True
    status = "needs_clarification" if key == "share_which_friend" else "friend_not_found" if name else "needs_friend"
    turn.act("share.create", "friends", status, data={"heard": name or None, "candidates": _names(candidates) if key == "share_which_friend" else []})
    turn.say(key, name=name, options=_options(candidates, turn.reply_language))


def _names(friends: list[dict[str, Any]]) -> list[str]:
    return [f.get("display_name") or "" for f in friends]


def _options(friends: list[dict[str, Any]], lang: str) -> str:
    return _join([n for n in _names(friends) if n][:4], lang)


def _join(words: list[str], lang: str) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + replies.render("or", lang) + words[-1]


async def _share(turn: Turn, item: dict[str, Any], friend: dict[str, Any], access: str) -> None:
    name = friend.get("display_name") or ""
    body = {"friend_id": friend["user_id"], "item_type": item["type"], "item_id": item["id"], "access": access}
    try:
        # The friends service upserts (one share per owner, friend and item): a retry changes nothing.
        share = await turn.deps.domain.call("friends", "POST", "/v1/friends/shares", turn.principal, turn.deadline, json=body)
    except DomainRejected as exc:
        if exc.status == 403:
            turn.act("share.create", "friends", "not_permitted", detail=f"{exc.code}: {exc.detail}",
                     data={"friend_id": friend["user_id"], "item_type": item["type"], "item_id": item["id"]})
            turn.say("share_not_friends", name=name)
            return
        raise
    sid = str(share["id"])
    turn.act("share.create", "friends", "done", resource=f"/v1/friends/shares/{sid}", id=sid, data={
        "friend_id": friend["user_id"], "friend_name": name, "item_type": item["type"], "item_id": item["id"],
        "item_title": item.get("title"), "access": share.get("access", access),
    })
    what = replies.render("item_reminder" if item["type"] == "reminder" else "item_note", turn.reply_language,
                          title=replies.cap(item.get("title") or "", 60))
    turn.say("share_done_edit" if share.get("access") == "edit" else "share_done", name=name, item=what)
