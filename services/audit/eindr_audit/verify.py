"""``python -m eindr_audit.verify``: walk the whole chain; exit 1 on the first edited,
deleted or reordered record."""

from __future__ import annotations

import asyncio
import sys

import asyncpg
from eindr_common.settings import CommonSettings

from . import service


async def _run() -> int:
    conn = await asyncpg.connect(CommonSettings().database_url)
    try:
        await conn.set_type_codec("jsonb", encoder=__import__("json").dumps, decoder=__import__("json").loads, schema="pg_catalog")
        verdict = await service.verify_chain(conn)
    finally:
        await conn.close()
    if verdict.ok:
        print(f"audit chain intact: {verdict.checked} records")
        return 0
    print(f"audit chain BROKEN at record {verdict.first_bad_seq}: {verdict.reason} ({verdict.checked} records verified before it)")
    return 1


if __name__ == "__main__":
    sys.exit(asyncio.run(_run()))
