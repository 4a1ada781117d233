"""Alembic, one migration history per service, each in the service's own Postgres schema
(tables and ``alembic_version`` both), so services deploy and migrate independently.

A service's ``migrations/env.py`` is two lines: ``from eindr_common.migrations import
run_env; run_env(schema="reminders")``. Migrations are plain SQL through ``op.execute``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, pool, text


def sqlalchemy_url(database_url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url[len(prefix):]
    return database_url


def alembic_config(migrations_dir: Path, database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    # ConfigParser interpolation would choke on '%' in passwords.
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url).replace("%", "%%"))
    return cfg


def upgrade(migrations_dir: Path, database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(migrations_dir, database_url), revision)


def run_env(schema: str) -> None:
    """Body of every service's ``env.py`` (online mode only: we always have a database)."""
    from alembic import context

    url = context.config.get_main_option("sqlalchemy.url")
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        # Serialise concurrent upgrades of the same schema (two replicas starting at once).
        connection.execute(text("SELECT pg_advisory_lock(hashtext(:s))"), {"s": f"alembic:{schema}"})
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        connection.commit()
        context.configure(
            connection=connection,
            version_table_schema=schema,
            include_schemas=True,
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
        connection.execute(text("SELECT pg_advisory_unlock(hashtext(:s))"), {"s": f"alembic:{schema}"})
        connection.commit()


def main(argv: list[str] | None = None) -> None:
    """``python -m eindr_common.migrations <migrations_dir>...``: upgrade each to head."""
    from .settings import CommonSettings

    args = argv if argv is not None else sys.argv[1:]
    settings = CommonSettings()
    for directory in args:
        upgrade(Path(directory), settings.database_url)
        print(f"migrated {directory}")


if __name__ == "__main__":
    main()
