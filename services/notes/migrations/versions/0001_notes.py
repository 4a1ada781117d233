"""notes, tombstones; pgvector HNSW + full-text indexes"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE EXTENSION IF NOT EXISTS vector;

        -- array_to_string is only STABLE; a generated column needs IMMUTABLE (it is, for text[]).
        CREATE FUNCTION notes.tags_text(text[]) RETURNS text
            LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT array_to_string($1, ' ') $$;

        CREATE TABLE notes.notes (
            id              uuid PRIMARY KEY,
            user_id         text NOT NULL CHECK (length(user_id) BETWEEN 1 AND 128),
            title           text CHECK (length(title) <= 200),
            body            text CHECK (length(body) <= 20000),
            transcript      text,
            tags            text[] NOT NULL DEFAULT '{}',
            -- pending: audio waits for transcription; transcribed: done; failed: see
            -- failure_reason (POST .../retry); ready: a text-only note (nothing to transcribe).
            status          text NOT NULL CHECK (status IN ('pending', 'transcribed', 'failed', 'ready')),
            failure_reason  text,
            attempts        integer NOT NULL DEFAULT 0,
            language        text,
            audio_key       text,
            audio_format    text,
            audio_bytes     bigint,
            duration_s      double precision,
            -- all-MiniLM-L6-v2 (384 dims, normalised) of title + text + transcript;
            -- content_version guards against storing the embedding of an older text.
            embedding       vector(384),
            content_version integer NOT NULL DEFAULT 1,
            search_tsv      tsvector GENERATED ALWAYS AS (
                to_tsvector('english'::regconfig,
                    coalesce(title, '') || ' ' || coalesce(body, '') || ' ' || coalesce(transcript, '') || ' ' ||
                    notes.tags_text(tags))
            ) STORED,
            created_at      timestamptz NOT NULL DEFAULT now(),
            updated_at      timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX notes_user_created_idx ON notes.notes (user_id, created_at DESC, id DESC);
        CREATE INDEX notes_tags_idx ON notes.notes USING gin (tags);
        CREATE INDEX notes_tsv_idx ON notes.notes USING gin (search_tsv);
        CREATE INDEX notes_embedding_hnsw_idx ON notes.notes USING hnsw (embedding vector_cosine_ops);
        CREATE INDEX notes_pending_idx ON notes.notes (updated_at) WHERE status = 'pending' OR embedding IS NULL;

        -- Deleted notes' ids, so that deleting twice is a 204 for the owner (idempotent)
        -- while another user's id stays a 404. Purged after 30 days by the worker.
        CREATE TABLE notes.tombstones (
            note_id    uuid PRIMARY KEY,
            user_id    text NOT NULL,
            deleted_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX tombstones_user_idx ON notes.tombstones (user_id);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE notes.tombstones; DROP TABLE notes.notes; DROP FUNCTION notes.tags_text(text[]);")
