"""Settings of the assistant (``EINDR_*``; the shared ones come from CommonSettings)."""

from __future__ import annotations

from functools import lru_cache

from eindr_common.settings import CommonSettings


class AssistantSettings(CommonSettings):
    # Inference servers (standard protocols: OpenAI audio, TEI + /classify, TGI).
    stt_url: str = "http://127.0.0.1:8201"
    intent_url: str = "http://127.0.0.1:8202"
    chat_url: str = "http://127.0.0.1:8203"
    tts_url: str = "http://127.0.0.1:8204"
    # Domain services; an empty value switches that integration off ("I can't do that yet").
    users_url: str = "http://127.0.0.1:8102"
    reminders_url: str = "http://127.0.0.1:8103"
    notes_url: str = "http://127.0.0.1:8104"
    ledger_url: str = "http://127.0.0.1:8105"
    friends_url: str = "http://127.0.0.1:8106"  # share_with_friend (friends list, shares)
    calendar_url: str = "http://127.0.0.1:8107"  # calendar_query (connections and their sync state)
    history_url: str = "http://127.0.0.1:8108"
    # Below this intent confidence the assistant asks instead of acting.
    assistant_min_confidence: float = 0.45
    # Languages the intent model understands; others are classified on Whisper's English
    # translation (voice) while the original transcript is what gets stored.
    assistant_intent_languages: str = "en"
    # Deadlines: the whole request, and each call inside it.
    assistant_budget_s: float = 8.0
    assistant_stt_timeout_s: float = 5.0
    assistant_intent_timeout_s: float = 2.0
    assistant_chat_timeout_s: float = 1.5
    assistant_tts_timeout_s: float = 4.0
    assistant_domain_timeout_s: float = 3.0
    # Conversation state (pending confirmations) and reply audio kept in Redis.
    assistant_confirm_ttl_s: int = 120
    assistant_audio_ttl_s: int = 600
    assistant_max_audio_bytes: int = 10 * 1024 * 1024
    assistant_reply_max_chars: int = 280
    assistant_chat_max_new_tokens: int = 40
    assistant_chat_enabled: bool = True
    assistant_default_language: str = "en"
    assistant_default_timezone: str = "UTC"

    @property
    def intent_languages(self) -> set[str]:
        return {x.strip().lower() for x in self.assistant_intent_languages.split(",") if x.strip()}


@lru_cache
def get_settings() -> AssistantSettings:
    return AssistantSettings()
