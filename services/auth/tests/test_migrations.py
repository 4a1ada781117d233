"""The auth migrations apply to an empty database, roll back to nothing and apply again."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from alembic import command
from eindr_common.migrations import alembic_config, upgrade

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


def test_upgrade_downgrade_upgrade(postgres_url):
    name = "auth_migrations_" + uuid.uuid4().hex[:8]
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(postgres_url)._replace(path="/" + name))

    def tables() -> set[str]:
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'auth'"
            ).fetchall()
        return {r[0] for r in rows}

    upgrade(MIGRATIONS, url)
    created = tables()
    assert created >= {"alembic_version", "audit_log"}
    command.downgrade(alembic_config(MIGRATIONS, url), "base")
    assert tables() == {"alembic_version"}
    upgrade(MIGRATIONS, url)
    assert tables() == created
