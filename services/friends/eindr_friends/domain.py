"""Pure rules of the friends service: permission tiers, identifier normalisation and
hashing, invite codes. No I/O here.

Tiers are granted per direction — what I allow my friend:
  basic    see what I explicitly share with them (per item, view or edit);
  trusted  also create reminders for me (they arrive with source=friend, I can refuse
           them) and see my ledger entries about them.
A ledger entry shows in the counterparty's ledger when both sides are trusted: the owner
lets the friend see it, and the friend lets the owner write into their totals.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata

import phonenumbers

TIERS = ("basic", "trusted")
ITEM_TYPES = ("reminder", "note")
ACCESS = ("view", "edit")
CONTACT_HASH = re.compile(r"^[0-9a-f]{64}$")
INVITE_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed
INVITE_CODE_LENGTH = 12  # 32^12 = 2^60 codes


def can_see_shared_item(friends: bool, share_access: str | None) -> bool:
    return friends and share_access is not None


def can_create_reminders(friends: bool, tier: str | None) -> bool:
    """May the viewer create reminders for the owner? (owner granted them trusted)"""
    return friends and tier == "trusted"


def shares_ledger(tier: str | None, reverse_tier: str | None) -> bool:
    """Does the owner's ledger entry about the viewer show in the viewer's ledger?"""
    return tier == "trusted" and reverse_tier == "trusted"


def normalize_phone(raw: str, default_region: str | None = None) -> str | None:
    """E.164 form of a phone number, or None when it is not a valid number."""
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str) -> str | None:
    email = unicodedata.normalize("NFC", raw.strip()).lower()
    if email.count("@") != 1 or email.startswith("@") or email.endswith("@") or len(email) > 320:
        return None
    return email


def client_hash(identifier: str) -> str:
    """What the app sends for a normalised contact: hex SHA-256 of the E.164 phone or the
    lower-cased email. (Unsalted, so it is never stored as such.)"""
    return hashlib.sha256(identifier.encode()).hexdigest()


def stored_hash(pepper: bytes, contact_hash_hex: str) -> bytes:
    """What the server stores and looks up: HMAC-SHA256(pepper, sha256(identifier)).
    Without the pepper a leaked table cannot be reversed by hashing the phone space."""
    return hmac.new(pepper, bytes.fromhex(contact_hash_hex), hashlib.sha256).digest()


def new_invite_code() -> str:
    return "".join(secrets.choice(INVITE_CODE_ALPHABET) for _ in range(INVITE_CODE_LENGTH))


def normalize_invite_code(raw: str) -> str | None:
    code = re.sub(r"[\s-]", "", raw).upper()
    if len(code) != INVITE_CODE_LENGTH or any(ch not in INVITE_CODE_ALPHABET for ch in code):
        return None
    return code


def code_digest(code: str) -> bytes:
    """Codes are stored as their SHA-256 only: a database dump yields no usable code."""
    return hashlib.sha256(code.encode()).digest()


def text_problem(value: str) -> str | None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text (no lone surrogates)"
    for ch in value:
        if ch == "\x00":
            return "must not contain NUL bytes"
        if unicodedata.category(ch) == "Cc":
            return "must not contain control characters"
    return None
