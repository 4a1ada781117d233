"""Append-only, hash-chained audit records."""

from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE audit.records (
            seq            bigint PRIMARY KEY,
            event_id       text NOT NULL UNIQUE,
            at             timestamptz NOT NULL,
            service        text NOT NULL,
            actor_uid      text NOT NULL,
            actor_roles    text NOT NULL,
            source_ip      text NOT NULL,
            action         text NOT NULL,
            resource_type  text NOT NULL,
            resource_id    text NOT NULL,
            subject_uid    text NOT NULL,
            request_id     text NOT NULL,
            details        jsonb NOT NULL,
            prev_hash      text NOT NULL,
            hash           text NOT NULL
        );
        CREATE INDEX records_actor ON audit.records (actor_uid, seq);
        CREATE INDEX records_subject ON audit.records (subject_uid, seq);
        CREATE INDEX records_action ON audit.records (action, seq);

        -- The chain head: one row, locked by each append so records chain in one order
        -- whatever the number of replicas.
        CREATE TABLE audit.chain_head (
            id        boolean PRIMARY KEY DEFAULT true CHECK (id),
            seq       bigint NOT NULL,
            hash      text NOT NULL
        );
        INSERT INTO audit.chain_head (seq, hash) VALUES (0, repeat('0', 64));

        -- Append-only: the database refuses edits and deletions. (Someone able to drop the
        -- trigger can still tamper; the hash chain is what detects that.)
        CREATE FUNCTION audit.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit records are append-only';
        END $$;
        CREATE TRIGGER records_append_only BEFORE UPDATE OR DELETE ON audit.records
            FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE audit.records; DROP TABLE audit.chain_head; DROP FUNCTION audit.refuse_change();")
