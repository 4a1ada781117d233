"""connections, calendars, links, outbound queue, conflicts, sync runs"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE calendar.connections (
            id               uuid PRIMARY KEY,
            user_id          text NOT NULL,
            provider         text NOT NULL CHECK (provider IN ('google', 'caldav')),
            status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'needs_reauth', 'failed')),
            display_name     text,
            server_url       text,            -- CalDAV: the URL the user gave; Google: null
            principal_url    text,            -- CalDAV: discovered principal
            username         text,            -- CalDAV user / Google account email
            secret_enc       bytea,           -- Fernet: CalDAV password or Google refresh token
            access_token_enc bytea,           -- Fernet: Google access token
            access_expires_at timestamptz,
            import_mode      text NOT NULL DEFAULT 'alarms' CHECK (import_mode IN ('alarms', 'all', 'none')),
            poll_interval_s  integer NOT NULL CHECK (poll_interval_s BETWEEN 60 AND 86400),
            next_sync_at     timestamptz NOT NULL DEFAULT now(),
            requested_at     timestamptz,     -- a webhook / reminder change asked for a sync
            lease_until      timestamptz,
            failures         integer NOT NULL DEFAULT 0,
            last_error       text,
            last_sync_at     timestamptz,
            created_at       timestamptz NOT NULL DEFAULT now(),
            updated_at       timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX connections_user_idx ON calendar.connections (user_id, created_at, id);
        CREATE INDEX connections_due_idx ON calendar.connections (next_sync_at) WHERE status = 'active';

        CREATE TABLE calendar.calendars (
            id                 uuid PRIMARY KEY,
            connection_id      uuid NOT NULL REFERENCES calendar.connections (id) ON DELETE CASCADE,
            user_id            text NOT NULL,
            remote_id          text NOT NULL,   -- Google calendarId / CalDAV collection URL
            name               text,
            timezone           text,
            sync_enabled       boolean NOT NULL DEFAULT true,
            is_target          boolean NOT NULL DEFAULT false,
            sync_token         text,            -- Google nextSyncToken / CalDAV DAV:sync-token
            ctag               text,            -- CalDAV getctag
            channel_id         text UNIQUE,     -- Google events.watch channel
            channel_token_hash text,            -- sha256 of the channel's random token
            channel_resource_id text,
            channel_expires_at timestamptz,
            UNIQUE (connection_id, remote_id)
        );
        -- one target calendar per connection
        CREATE UNIQUE INDEX calendars_target_uq ON calendar.calendars (connection_id) WHERE is_target;
        CREATE INDEX calendars_channel_exp_idx ON calendar.calendars (channel_expires_at) WHERE channel_id IS NOT NULL;

        -- reminder <-> remote event
        CREATE TABLE calendar.links (
            id               uuid PRIMARY KEY,
            user_id          text NOT NULL,
            connection_id    uuid NOT NULL REFERENCES calendar.connections (id) ON DELETE CASCADE,
            calendar_id      uuid NOT NULL REFERENCES calendar.calendars (id) ON DELETE CASCADE,
            reminder_id      uuid NOT NULL,
            remote_uid       text NOT NULL,   -- Google event id / iCalendar UID
            href             text,            -- CalDAV object URL
            etag             text,
            origin           text NOT NULL CHECK (origin IN ('eindr', 'remote')),
            event_hash       text,            -- fingerprint of the event as last synced
            reminder_hash    text,            -- fingerprint of the reminder as last synced
            remote_modified_at   timestamptz,
            reminder_modified_at timestamptz,
            synced_at        timestamptz NOT NULL DEFAULT now(),
            UNIQUE (calendar_id, remote_uid),
            UNIQUE (connection_id, reminder_id)
        );
        CREATE INDEX links_reminder_idx ON calendar.links (user_id, reminder_id);
        CREATE INDEX links_href_idx ON calendar.links (calendar_id, href);

        -- reminder changes waiting to be written to a connection (filled by the event
        -- consumer, drained by that connection's next sync run)
        CREATE TABLE calendar.outbound (
            connection_id uuid NOT NULL REFERENCES calendar.connections (id) ON DELETE CASCADE,
            reminder_id   uuid NOT NULL,
            user_id       text NOT NULL,
            op            text NOT NULL CHECK (op IN ('upsert', 'delete')),
            queued_at     timestamptz NOT NULL DEFAULT now(),
            attempts      integer NOT NULL DEFAULT 0,
            PRIMARY KEY (connection_id, reminder_id)
        );

        CREATE TABLE calendar.conflicts (
            id            uuid PRIMARY KEY,
            user_id       text NOT NULL,
            connection_id uuid REFERENCES calendar.connections (id) ON DELETE SET NULL,
            reminder_id   uuid NOT NULL,
            remote_uid    text NOT NULL,
            winner        text NOT NULL CHECK (winner IN ('eindr', 'remote')),
            eindr_version jsonb NOT NULL,
            remote_version jsonb NOT NULL,
            eindr_modified_at  timestamptz,
            remote_modified_at timestamptz,
            created_at    timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX conflicts_user_idx ON calendar.conflicts (user_id, created_at DESC, id);

        CREATE TABLE calendar.runs (
            id            uuid PRIMARY KEY,
            connection_id uuid NOT NULL REFERENCES calendar.connections (id) ON DELETE CASCADE,
            user_id       text NOT NULL,
            trigger       text NOT NULL,
            started_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
            finished_at   timestamptz,
            status        text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'partial', 'failed')),
            changes_in    integer NOT NULL DEFAULT 0,
            changes_out   integer NOT NULL DEFAULT 0,
            requests      integer NOT NULL DEFAULT 0,
            full_resync   boolean NOT NULL DEFAULT false,
            errors        jsonb NOT NULL DEFAULT '[]'
        );
        CREATE INDEX runs_connection_idx ON calendar.runs (connection_id, started_at DESC, id);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE calendar.runs;
        DROP TABLE calendar.conflicts;
        DROP TABLE calendar.outbound;
        DROP TABLE calendar.links;
        DROP TABLE calendar.calendars;
        DROP TABLE calendar.connections;
        """
    )
