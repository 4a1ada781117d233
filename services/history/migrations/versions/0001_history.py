"""interactions (pgvector HNSW + full text), retention preferences, habit suggestions"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE EXTENSION IF NOT EXISTS vector;

        CREATE TABLE history.interactions (
            id             uuid PRIMARY KEY,
            user_id        text NOT NULL CHECK (length(user_id) BETWEEN 1 AND 128),
            occurred_at    timestamptz NOT NULL,
            transcript     text NOT NULL CHECK (length(transcript) <= 4000),
            language       text,
            intent         text,
            slots          jsonb NOT NULL DEFAULT '{}',
            actions        jsonb NOT NULL DEFAULT '[]',
            reply          text CHECK (length(reply) <= 4000),
            latency_ms     jsonb NOT NULL DEFAULT '{}',
            outcome        text NOT NULL,
            embedding      vector(384),
            embed_attempts integer NOT NULL DEFAULT 0,
            search_tsv     tsvector GENERATED ALWAYS AS (
                to_tsvector('english'::regconfig, transcript || ' ' || coalesce(reply, ''))
            ) STORED,
            created_at     timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX interactions_user_time_idx ON history.interactions (user_id, occurred_at DESC, id DESC);
        CREATE INDEX interactions_user_intent_idx ON history.interactions (user_id, intent, occurred_at DESC);
        CREATE INDEX interactions_time_idx ON history.interactions (occurred_at);
        CREATE INDEX interactions_tsv_idx ON history.interactions USING gin (search_tsv);
        CREATE INDEX interactions_embedding_hnsw_idx ON history.interactions USING hnsw (embedding vector_cosine_ops);
        CREATE INDEX interactions_unembedded_idx ON history.interactions (created_at) WHERE embedding IS NULL;

        -- Each user's "history retention days" preference, from the users service's
        -- user.preferences_changed events (absent: the users service's default, 90).
        CREATE TABLE history.retention (
            user_id    text PRIMARY KEY,
            days       integer NOT NULL CHECK (days BETWEEN 1 AND 3650),
            updated_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE history.suggestions (
            id            uuid PRIMARY KEY,
            user_id       text NOT NULL,
            title         text NOT NULL,
            rrule         text NOT NULL,
            weekday       smallint NOT NULL CHECK (weekday BETWEEN 0 AND 6),
            minute_of_day integer NOT NULL CHECK (minute_of_day BETWEEN 0 AND 1439),
            timezone      text,
            occurrences   integer NOT NULL,
            embedding     vector(384) NOT NULL,
            status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'dismissed')),
            reminder_id   text,
            created_at    timestamptz NOT NULL DEFAULT now(),
            decided_at    timestamptz,
            UNIQUE (user_id, weekday, minute_of_day, title)
        );
        CREATE INDEX suggestions_user_idx ON history.suggestions (user_id, status, created_at DESC);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE history.suggestions; DROP TABLE history.retention; DROP TABLE history.interactions;")
