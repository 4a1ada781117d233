"""who created a reminder for its owner (a trusted friend) and when the owner refused it"""

revision = "0003"
down_revision = "0002"

from alembic import op


def upgrade() -> None:
    # Nullable, no default: a catalogue-only change, no table rewrite of the reminders the
    # scheduler is firing meanwhile.
    op.execute(
        """
        ALTER TABLE reminders.reminders
            ADD COLUMN created_by text,
            ADD COLUMN refused_at timestamptz;
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE reminders.reminders DROP COLUMN refused_at, DROP COLUMN created_by;")
