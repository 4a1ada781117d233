"""reminders, deliveries, per-user delivery sequence, bulk jobs"""

revision = "0001"
down_revision = None

from alembic import op


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE reminders.reminders (
            id uuid PRIMARY KEY,
            uid text NOT NULL,
            title text NOT NULL,
            notes text,
            phrase text,
            source text NOT NULL DEFAULT 'text',
            priority text NOT NULL DEFAULT 'normal',
            tags text[] NOT NULL DEFAULT '{}',
            -- time: the anchor wall clock + its zone; tz_mode floating|zoned|fixed
            anchor_local timestamp NOT NULL,
            timezone text NOT NULL,
            tz_mode text NOT NULL,
            rrule text,
            exdates timestamp[] NOT NULL DEFAULT '{}',
            alarms integer[] NOT NULL DEFAULT '{0}',
            status text NOT NULL DEFAULT 'scheduled',
            -- the occurrence that is due next (or the last one, once the series is over)
            due_at timestamptz NOT NULL,
            -- scheduling state: the next (occurrence, offset) to deliver and when
            next_occurrence_at timestamptz,
            next_offset_s integer,
            next_fire_at timestamptz,
            held_for_quiet_hours boolean NOT NULL DEFAULT false,
            last_occurrence_at timestamptz,
            last_fired_at timestamptz,
            fired_count integer NOT NULL DEFAULT 0,
            version integer NOT NULL DEFAULT 1,
            lease_owner text,
            lease_until timestamptz,
            job_id uuid,
            job_index integer,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            completed_at timestamptz,
            cancelled_at timestamptz,
            CONSTRAINT reminders_status_ck CHECK (status IN ('scheduled', 'fired', 'completed', 'cancelled')),
            CONSTRAINT reminders_tz_mode_ck CHECK (tz_mode IN ('floating', 'zoned', 'fixed'))
        );
        CREATE INDEX reminders_uid_due_idx ON reminders.reminders (uid, due_at, id);
        CREATE INDEX reminders_uid_tags_idx ON reminders.reminders USING gin (tags);
        -- the scheduler's claim query: only rows that will fire are in this index
        CREATE INDEX reminders_next_fire_idx ON reminders.reminders (next_fire_at)
            WHERE status = 'scheduled' AND next_fire_at IS NOT NULL;
        CREATE INDEX reminders_lease_owner_idx ON reminders.reminders (lease_owner) WHERE lease_owner IS NOT NULL;
        CREATE UNIQUE INDEX reminders_job_item_uq ON reminders.reminders (job_id, job_index) WHERE job_id IS NOT NULL;

        -- one row per user: a gap-free, commit-ordered delivery sequence (the SSE event id)
        CREATE TABLE reminders.user_sequences (
            uid text PRIMARY KEY,
            seq bigint NOT NULL DEFAULT 0
        );

        CREATE TABLE reminders.deliveries (
            id uuid PRIMARY KEY,
            uid text NOT NULL,
            seq bigint NOT NULL,
            reminder_id uuid NOT NULL REFERENCES reminders.reminders (id) ON DELETE CASCADE,
            occurrence_at timestamptz NOT NULL,
            offset_s integer NOT NULL,
            fire_at timestamptz NOT NULL,
            delivered_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            title text NOT NULL,
            priority text NOT NULL,
            channels jsonb NOT NULL,
            push_attempts integer NOT NULL DEFAULT 0,
            push_pending boolean NOT NULL DEFAULT false,
            worker text,
            CONSTRAINT deliveries_occurrence_uq UNIQUE (reminder_id, occurrence_at, offset_s),
            CONSTRAINT deliveries_seq_uq UNIQUE (uid, seq)
        );
        CREATE INDEX deliveries_push_pending_idx ON reminders.deliveries (delivered_at) WHERE push_pending;

        CREATE TABLE reminders.jobs (
            id uuid PRIMARY KEY,
            uid text NOT NULL,
            kind text NOT NULL,
            status text NOT NULL DEFAULT 'queued',
            total integer NOT NULL,
            processed integer NOT NULL DEFAULT 0,
            succeeded integer NOT NULL DEFAULT 0,
            failures jsonb NOT NULL DEFAULT '[]',
            payload jsonb NOT NULL,
            timezone_default text,
            lease_owner text,
            lease_until timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            finished_at timestamptz,
            CONSTRAINT jobs_status_ck CHECK (status IN ('queued', 'running', 'succeeded', 'failed'))
        );
        CREATE INDEX jobs_pending_idx ON reminders.jobs (created_at) WHERE status IN ('queued', 'running');
        """
    )


def downgrade() -> None:
    op.execute(
        "DROP TABLE reminders.jobs; DROP TABLE reminders.deliveries; DROP TABLE reminders.user_sequences; DROP TABLE reminders.reminders;"
    )
