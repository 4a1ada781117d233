"""Pure rules of the notes service: what may be stored, how audio is recognised, how text
is made inert on output, how two rankings are fused, how audio URLs are signed. No I/O."""

from __future__ import annotations

import hashlib
import hmac
import html
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from eindr_common import sharing

MAX_TITLE = 200
MAX_TEXT = 20_000
MAX_TAGS = 20
MAX_TAG = 50
MAX_QUERY = 500
RRF_K = 60

TAG_RE = re.compile(r"^[^\s,#][^,]{0,49}$")

# --- text validation --------------------------------------------------------------------


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """Why ``value`` cannot be stored as text, or None. Postgres refuses NUL bytes and lone
    surrogates would fail UTF-8 encoding: both are a 400, never a 500."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text (no lone surrogates)"
    for ch in value:
        if ch == "\x00":
            return "must not contain NUL bytes"
        if unicodedata.category(ch) == "Cc" and not (multiline and ch in "\n\t\r"):
            return "must not contain control characters"
    return None


def field_problems(title: str | None, text: str | None, tags: Sequence[str] | None) -> list[dict[str, str]]:
    """Every problem with a note's fields, as ``[{field, message}]`` (empty: valid)."""
    errors: list[dict[str, str]] = []
    if title is not None:
        if len(title) > MAX_TITLE:
            errors.append({"field": "title", "message": f"at most {MAX_TITLE} characters"})
        elif problem := text_problem(title):
            errors.append({"field": "title", "message": problem})
    if text is not None:
        if len(text) > MAX_TEXT:
            errors.append({"field": "text", "message": f"at most {MAX_TEXT} characters"})
        elif problem := text_problem(text, multiline=True):
            errors.append({"field": "text", "message": problem})
    if tags is not None:
        if len(tags) > MAX_TAGS:
            errors.append({"field": "tags", "message": f"at most {MAX_TAGS} tags"})
        else:
            for i, tag in enumerate(tags):
                if len(tag) > MAX_TAG:
                    errors.append({"field": f"tags[{i}]", "message": f"at most {MAX_TAG} characters"})
                elif problem := text_problem(tag):
                    errors.append({"field": f"tags[{i}]", "message": problem})
                elif not TAG_RE.match(tag.strip()):
                    errors.append({"field": f"tags[{i}]", "message": "1 to 50 characters, no comma, not starting with '#'"})
    return errors


def normalize_tags(tags: Iterable[str]) -> list[str]:
    """Trimmed, case-folded, de-duplicated, in first-seen order."""
    out: list[str] = []
    for tag in tags:
        t = unicodedata.normalize("NFC", tag.strip()).lower()
        if t and t not in out:
            out.append(t)
    return out


def split_tag_fields(values: Iterable[str]) -> list[str]:
    """Multipart tags: repeated ``tags`` fields and/or comma-separated lists."""
    out: list[str] = []
    for value in values:
        out.extend(part for part in value.split(",") if part.strip())
    return out


def clean_text(value: str | None) -> str | None:
    """Stored form of free text: NFC, surrounding whitespace trimmed, empty → None."""
    if value is None:
        return None
    value = unicodedata.normalize("NFC", value).strip()
    return value or None


# --- output neutralisation --------------------------------------------------------------
#
# THE RULE (docs: INTEGRATION.md "Plain text on output"). Titles, texts, transcripts and
# tags are stored exactly as plain text. Every such field in a response is "inert text":
#   1. HTML-escaped: & < > " ' become &amp; &lt; &gt; &quot; &#x27;  -> no tag, attribute or
#      entity written by a user can ever form when a client renders the value as HTML;
#   2. square brackets become &#91; and &#93;  -> no Markdown link, image or reference
#      definition ([x](javascript:…), ![x](…), [x]: …) can form when it is rendered as
#      Markdown (CommonMark never treats an entity as link syntax).
# A client shows the value by decoding HTML character references once (every HTML or
# Markdown renderer does exactly that); a client that edits the value decodes it first.

_NEUTRAL = str.maketrans({"[": "&#91;", "]": "&#93;"})


def neutralise(value: str | None) -> str | None:
    if value is None:
        return None
    return html.escape(value, quote=True).translate(_NEUTRAL)


def unneutralise(value: str | None) -> str | None:
    """The inverse (what a client does to show or edit the value)."""
    return None if value is None else html.unescape(value)


# --- audio ------------------------------------------------------------------------------

AUDIO_MIME = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "flac": "audio/flac",
    "m4a": "audio/mp4",
    "webm": "audio/webm",
}


def sniff_audio(head: bytes) -> str | None:
    """The container of an upload from its first bytes: what the STT server decodes
    (wav, mp3, ogg/opus, flac, m4a, webm), or None for anything else."""
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:3] == b"ID3":
        return "mp3"
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0 and (head[1] & 0x06) != 0:
        return "mp3"  # MPEG audio frame sync (layer I/II/III)
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand[:3] in (b"M4A", b"M4B", b"mp4", b"iso", b"3gp", b"MSN") or brand in (b"isom", b"mp42", b"dash", b"qt  "):
            return "m4a"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"  # EBML (WebM/Matroska)
    return None


def storage_prefix(user_id: str) -> str:
    """Every object of a user lives under one prefix (erasing an account is one sweep);
    the uid is hashed so that no character of it reaches a path or an object key."""
    return hashlib.sha256(user_id.encode()).hexdigest()[:32] + "/"


def storage_key(user_id: str, note_id: str, fmt: str) -> str:
    return f"{storage_prefix(user_id)}{note_id}.{fmt}"


def audio_signature(secret: str, note_id: str, key: str, expires: int) -> str:
    msg = f"{note_id}\n{key}\n{expires}".encode()
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


def signature_ok(secret: str, note_id: str, key: str, expires: int, signature: str, now: float) -> bool:
    if expires < now:
        return False
    return hmac.compare_digest(audio_signature(secret, note_id, key, expires), signature)


# --- who may do what with a note -------------------------------------------------------
#
# A caller's access to a note is "owner" (theirs), or the access of a friend's share of it
# ("edit" or "view", from the friends service). Sharing grants reading; "edit" adds changing
# title, text and tags. Deleting, re-transcribing and sharing further stay the owner's.

ACCESS_LEVELS = sharing.ACCESS_LEVELS
ACTIONS = ("read", "edit", "delete", "retry")
permits = sharing.SharedAccess(ACTIONS).permits


# --- search -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Fused:
    id: str
    score: float
    semantic_rank: int | None
    fulltext_rank: int | None


def rrf(semantic: Sequence[str], fulltext: Sequence[str], *, k: int = RRF_K, limit: int = 20) -> list[Fused]:
    """Reciprocal rank fusion (Cormack et al. 2009): score(d) = Σ 1 / (k + rank(d)), ranks
    from 1. Ties keep the order of first appearance (semantic first)."""
    scores: dict[str, float] = {}
    sem_rank: dict[str, int] = {}
    fts_rank: dict[str, int] = {}
    for rank, doc in enumerate(semantic, start=1):
        sem_rank.setdefault(doc, rank)
    for rank, doc in enumerate(fulltext, start=1):
        fts_rank.setdefault(doc, rank)
    order: list[str] = []
    for doc in list(sem_rank) + list(fts_rank):
        if doc not in scores:
            order.append(doc)
            scores[doc] = 0.0
    for doc, rank in sem_rank.items():
        scores[doc] += 1.0 / (k + rank)
    for doc, rank in fts_rank.items():
        scores[doc] += 1.0 / (k + rank)
    position = {doc: i for i, doc in enumerate(order)}
    ranked = sorted(order, key=lambda d: (-scores[d], position[d]))[:limit]
    return [Fused(d, scores[d], sem_rank.get(d), fts_rank.get(d)) for d in ranked]


def query_problem(q: str) -> str | None:
    if not q.strip():
        return "must not be empty"
    if len(q) > MAX_QUERY:
        return f"at most {MAX_QUERY} characters"
    return text_problem(q)


def embedding_text(title: str | None, text: str | None, transcript: str | None) -> str | None:
    """What a note's embedding is computed from (None: nothing to embed yet)."""
    parts = [p for p in (title, text, transcript) if p]
    return "\n".join(parts) if parts else None
