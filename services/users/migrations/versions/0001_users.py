"""users, preferences, audit log, event outbox"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE users.users (
            id           text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
            display_name text,
            avatar_url   text,
            email        text,
            phone        text,
            plan         text NOT NULL DEFAULT 'free' CHECK (plan IN ('free', 'premium')),
            created_at   timestamptz NOT NULL DEFAULT now(),
            updated_at   timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE users.preferences (
            user_id                text PRIMARY KEY REFERENCES users.users (id) ON DELETE CASCADE,
            language               text NOT NULL DEFAULT 'en',
            timezone               text NOT NULL DEFAULT 'UTC',
            voice                  text,
            quiet_hours_start      time,
            quiet_hours_end        time,
            default_lead_minutes   integer NOT NULL DEFAULT 0 CHECK (default_lead_minutes BETWEEN 0 AND 10080),
            history_retention_days integer NOT NULL DEFAULT 90 CHECK (history_retention_days BETWEEN 1 AND 3650),
            notification_channels  text[] NOT NULL DEFAULT ARRAY['push', 'sse'],
            updated_at             timestamptz NOT NULL DEFAULT now(),
            CHECK ((quiet_hours_start IS NULL) = (quiet_hours_end IS NULL))
        );

        -- Who changed what, when, under which request. Field names only, never values
        -- (no personal data beyond the pseudonymous uid).
        CREATE TABLE users.audit_log (
            id         bigserial PRIMARY KEY,
            at         timestamptz NOT NULL DEFAULT now(),
            actor      text NOT NULL,
            subject    text NOT NULL,
            action     text NOT NULL,
            fields     text[] NOT NULL DEFAULT '{}',
            detail     jsonb,
            request_id text
        );
        CREATE INDEX audit_log_subject_idx ON users.audit_log (subject, at);

        -- Transactional outbox: events are written in the same transaction as the change
        -- and relayed to the Redis stream afterwards, so none is lost if Redis is down.
        CREATE TABLE users.outbox (
            id         bigserial PRIMARY KEY,
            created_at timestamptz NOT NULL DEFAULT now(),
            event_type text NOT NULL,
            payload    jsonb NOT NULL
        );
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE users.outbox;
        DROP TABLE users.audit_log;
        DROP TABLE users.preferences;
        DROP TABLE users.users;
        """
    )
