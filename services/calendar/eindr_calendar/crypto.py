"""Encryption at rest of stored credentials (Google refresh/access tokens, CalDAV passwords).

Fernet (AES-128-CBC + HMAC-SHA256) through MultiFernet: the first key of
``EINDR_CALENDAR_ENCRYPTION_KEYS`` encrypts, every listed key decrypts. Rotation:
1. put a new key first (``Fernet.generate_key()``), keep the old ones after it, deploy;
2. run ``python -m eindr_calendar.crypto rotate`` (re-encrypts every stored secret with
   the first key; safe to re-run);
3. drop the old key from the list and deploy again.
"""

from __future__ import annotations

import asyncio
import sys

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretUnreadable(RuntimeError):
    """A stored secret cannot be decrypted with any configured key (a key was dropped too early)."""


class Crypto:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("EINDR_CALENDAR_ENCRYPTION_KEYS is empty")
        self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])

    def encrypt(self, plaintext: str | None) -> bytes | None:
        if plaintext is None:
            return None
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, token: bytes | None) -> str | None:
        if token is None:
            return None
        try:
            return self._fernet.decrypt(bytes(token)).decode()
        except InvalidToken as exc:
            raise SecretUnreadable("a stored secret cannot be decrypted with the configured keys") from exc

    def rotate(self, token: bytes) -> bytes:
        return self._fernet.rotate(bytes(token))


SECRET_COLUMNS = (("connections", "id", ("secret_enc", "access_token_enc")),)


async def rotate_all(database_url: str, crypto: Crypto, user_id: str | None = None) -> int:
    import asyncpg

    conn = await asyncpg.connect(database_url)
    changed = 0
    try:
        for table, key, columns in SECRET_COLUMNS:
            where, args = ("WHERE user_id = $1", [user_id]) if user_id else ("", [])
            rows = await conn.fetch(f"SELECT {key}, {', '.join(columns)} FROM calendar.{table} {where}", *args)
            for row in rows:
                values = [crypto.rotate(row[c]) if row[c] is not None else None for c in columns]
                sets = ", ".join(f"{c} = ${i + 2}" for i, c in enumerate(columns))
                await conn.execute(f"UPDATE calendar.{table} SET {sets} WHERE {key} = $1", row[key], *values)
                changed += 1
    finally:
        await conn.close()
    return changed


def main(argv: list[str] | None = None) -> None:
    from .settings import CalendarSettings

    args = argv if argv is not None else sys.argv[1:]
    if args[:1] == ["generate"]:
        print(Fernet.generate_key().decode())
        return
    if args[:1] != ["rotate"] or len(args) not in (1, 3) or (len(args) == 3 and args[1] != "--user"):
        print("usage: python -m eindr_calendar.crypto generate | rotate [--user UID]", file=sys.stderr)
        raise SystemExit(2)
    settings = CalendarSettings()
    n = asyncio.run(rotate_all(settings.database_url, Crypto(settings.encryption_keys), args[2] if len(args) == 3 else None))
    print(f"re-encrypted {n} rows with the first key")


if __name__ == "__main__":
    main()
