"""single-occurrence overrides (links keyed per occurrence, Google instance exceptions),
calendar re-discovery time, delete-vs-edit conflicts"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        -- when the account's calendar list was last read (new calendars show up on the next run after this is stale)
        ALTER TABLE calendar.connections ADD COLUMN calendars_checked_at timestamptz;

        -- a link of one edited occurrence of a recurring event: the series' UID and the
        -- occurrence it replaces (RECURRENCE-ID / Google originalStartTime), as text
        ALTER TABLE calendar.links ADD COLUMN master_uid text;
        ALTER TABLE calendar.links ADD COLUMN recurrence_id text;
        CREATE INDEX links_master_idx ON calendar.links (calendar_id, master_uid) WHERE master_uid IS NOT NULL;

        -- Google lists a moved or deleted occurrence as its own item (recurringEventId +
        -- originalStartTime) and never as an EXDATE of the series; a later incremental page may
        -- carry the exception without its series, so the exceptions are remembered here and the
        -- series' reminder skips each of them
        CREATE TABLE calendar.instance_exceptions (
            calendar_id    uuid NOT NULL REFERENCES calendar.calendars (id) ON DELETE CASCADE,
            master_uid     text NOT NULL,
            instance_uid   text NOT NULL,
            original_start jsonb NOT NULL,   -- Google originalStartTime: {dateTime, timeZone} or {date}
            cancelled      boolean NOT NULL,
            PRIMARY KEY (calendar_id, instance_uid)
        );
        CREATE INDEX instance_exceptions_master_idx ON calendar.instance_exceptions (calendar_id, master_uid);

        -- a conflict where one side deleted and the other edited: the deleted side's version is
        -- {"deleted": true, ...}
        ALTER TABLE calendar.conflicts ADD COLUMN kind text NOT NULL DEFAULT 'edit'
            CHECK (kind IN ('edit', 'delete_vs_edit'));
        """
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE calendar.conflicts DROP COLUMN kind;
        DROP TABLE calendar.instance_exceptions;
        DROP INDEX calendar.links_master_idx;
        ALTER TABLE calendar.links DROP COLUMN recurrence_id;
        ALTER TABLE calendar.links DROP COLUMN master_uid;
        ALTER TABLE calendar.connections DROP COLUMN calendars_checked_at;
        """
    )
