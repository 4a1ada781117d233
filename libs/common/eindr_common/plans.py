"""Plans: which features each plan unlocks and how much traffic it may send.

One table, read by the gateway (feature locks, rate limits) and the auth service (the
feature flags it returns to the app). Change it here and both follow.
"""

from __future__ import annotations

PLANS = ("free", "premium")

# feature -> plans allowed to use it
FEATURES: dict[str, tuple[str, ...]] = {
    "reminders": ("free", "premium"),
    "notes": ("free", "premium"),
    "ledger": ("free", "premium"),
    "history": ("free", "premium"),
    "friends": ("free", "premium"),
    "assistant": ("free", "premium"),
    "calendar_sync": ("premium",),
    "bulk_reminders": ("premium",),
    "ledger_export": ("premium",),
}

# Rate limits in the `limits` library's notation, per authenticated user.
RATE_LIMITS: dict[str, str] = {
    "free": "60/minute",
    "premium": "600/minute",
}
# Before authentication, per client IP (stops token-guessing floods).
ANONYMOUS_RATE_LIMIT = "120/minute"


def features_for(plan: str) -> dict[str, bool]:
    return {feature: plan in allowed for feature, allowed in FEATURES.items()}


def cheapest_plan_with(feature: str) -> str | None:
    allowed = FEATURES.get(feature, ())
    return next((plan for plan in PLANS if plan in allowed), None)
