from __future__ import annotations

import uuid

import psycopg
import pytest


@pytest.fixture(scope="session")
def audit_service(start_service):
    return start_service("audit", "eindr_audit.app:create_app")


@pytest.fixture
def fresh_database(postgres_url):
    """A database of its own, for tests that tamper with the chain."""
    name = "audit_" + uuid.uuid4().hex[:10]
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, query = postgres_url.partition("?")
    url = base.rsplit("/", 1)[0] + "/" + name + (("?" + query) if query else "")
    return url
