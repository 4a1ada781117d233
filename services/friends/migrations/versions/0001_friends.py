"""invites, per-direction grants (friendships), blocks, shares, discovery directory,
hashed identities, audit log, event outbox"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE friends.invites (
            id           uuid PRIMARY KEY,
            inviter_id   text NOT NULL CHECK (length(inviter_id) BETWEEN 1 AND 128),
            -- NULL for a shareable code until someone redeems it.
            invitee_id   text CHECK (length(invitee_id) BETWEEN 1 AND 128),
            via          text NOT NULL CHECK (via IN ('user_id', 'contact_hash', 'code')),
            -- SHA-256 of a shareable code (never the code itself).
            code_hash    bytea UNIQUE,
            status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'declined', 'cancelled')),
            created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
            expires_at   timestamptz NOT NULL,
            responded_at timestamptz,
            CHECK (invitee_id IS DISTINCT FROM inviter_id),
            CHECK ((via = 'code') = (code_hash IS NOT NULL))
        );
        -- At most one pending invite per ordered pair.
        CREATE UNIQUE INDEX invites_pending_pair_idx ON friends.invites (inviter_id, invitee_id)
            WHERE status = 'pending' AND invitee_id IS NOT NULL;
        CREATE INDEX invites_invitee_idx ON friends.invites (invitee_id, created_at DESC, id DESC);
        CREATE INDEX invites_inviter_idx ON friends.invites (inviter_id, created_at DESC, id DESC);

        -- A friendship is two rows: what each side grants the other.
        CREATE TABLE friends.grants (
            owner_id   text NOT NULL CHECK (length(owner_id) BETWEEN 1 AND 128),
            friend_id  text NOT NULL CHECK (length(friend_id) BETWEEN 1 AND 128),
            tier       text NOT NULL DEFAULT 'basic' CHECK (tier IN ('basic', 'trusted')),
            since      timestamptz NOT NULL DEFAULT clock_timestamp(),
            updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            PRIMARY KEY (owner_id, friend_id),
            CHECK (owner_id <> friend_id)
        );
        CREATE INDEX grants_friend_idx ON friends.grants (friend_id, owner_id) INCLUDE (tier);

        CREATE TABLE friends.blocks (
            blocker_id text NOT NULL,
            blocked_id text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            PRIMARY KEY (blocker_id, blocked_id),
            CHECK (blocker_id <> blocked_id)
        );
        CREATE INDEX blocks_blocked_idx ON friends.blocks (blocked_id, blocker_id);

        -- An item of another service (reminder, note) its owner shares with a friend.
        CREATE TABLE friends.shares (
            id         uuid PRIMARY KEY,
            owner_id   text NOT NULL,
            friend_id  text NOT NULL,
            item_type  text NOT NULL CHECK (item_type IN ('reminder', 'note')),
            item_id    text NOT NULL CHECK (length(item_id) BETWEEN 1 AND 128),
            access     text NOT NULL CHECK (access IN ('view', 'edit')),
            created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            UNIQUE (owner_id, item_type, item_id, friend_id),
            CHECK (owner_id <> friend_id)
        );
        CREATE INDEX shares_friend_idx ON friends.shares (friend_id, item_type, created_at DESC, id DESC);
        CREATE INDEX shares_owner_idx ON friends.shares (owner_id, created_at DESC, id DESC);

        -- Who may be found by contact matching, with the public profile shown then.
        CREATE TABLE friends.directory (
            user_id      text PRIMARY KEY CHECK (length(user_id) BETWEEN 1 AND 128),
            discoverable boolean NOT NULL DEFAULT false,
            display_name text CHECK (length(display_name) <= 100),
            avatar_url   text CHECK (length(avatar_url) <= 2048),
            updated_at   timestamptz NOT NULL DEFAULT clock_timestamp()
        );
        -- HMAC-SHA256(pepper, sha256(verified identifier)); never the identifier.
        CREATE TABLE friends.identities (
            hash    bytea PRIMARY KEY CHECK (length(hash) = 32),
            user_id text NOT NULL REFERENCES friends.directory (user_id) ON DELETE CASCADE,
            kind    text NOT NULL CHECK (kind IN ('phone', 'email'))
        );
        CREATE INDEX identities_user_idx ON friends.identities (user_id);

        CREATE TABLE friends.audit_log (
            id         bigserial PRIMARY KEY,
            at         timestamptz NOT NULL DEFAULT now(),
            actor      text NOT NULL,
            subject    text,
            action     text NOT NULL,
            request_id text
        );
        CREATE INDEX audit_log_actor_idx ON friends.audit_log (actor, at);

        CREATE TABLE friends.outbox (
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
        DROP TABLE friends.outbox;
        DROP TABLE friends.audit_log;
        DROP TABLE friends.identities;
        DROP TABLE friends.directory;
        DROP TABLE friends.shares;
        DROP TABLE friends.blocks;
        DROP TABLE friends.grants;
        DROP TABLE friends.invites;
        """
    )
