"""ledger entries (IOUs and settlements), audit log, event outbox"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        -- One row per IOU and one per settlement (a settlement is its own row pointing at
        -- the entry it pays down, so every balance stays auditable). Amounts are integer
        -- minor units of the ISO 4217 currency: sums are exact integers.
        CREATE TABLE ledger.entries (
            id                      uuid PRIMARY KEY,
            owner_id                text NOT NULL CHECK (length(owner_id) BETWEEN 1 AND 128),
            kind                    text NOT NULL DEFAULT 'entry' CHECK (kind IN ('entry', 'settlement')),
            settles_entry_id        uuid REFERENCES ledger.entries (id) ON DELETE CASCADE,
            counterparty_user_id    text CHECK (length(counterparty_user_id) BETWEEN 1 AND 128),
            counterparty_name       text CHECK (length(counterparty_name) BETWEEN 1 AND 200),
            counterparty_phone_hash text CHECK (counterparty_phone_hash ~ '^[0-9a-f]{64}$'),
            -- 'user:<uid>' or 'name:<case-folded name>': what totals are grouped by.
            contact_key             text NOT NULL,
            direction               text NOT NULL CHECK (direction IN ('they_owe_me', 'i_owe_them')),
            currency                char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
            amount_minor            bigint NOT NULL CHECK (amount_minor > 0 AND amount_minor <= 10000000000000000),
            signed_minor            bigint GENERATED ALWAYS AS
                                      (CASE WHEN direction = 'they_owe_me' THEN amount_minor ELSE -amount_minor END) STORED,
            -- For entries: the sum of their live settlements (kept under the entry's row lock).
            settled_minor           bigint NOT NULL DEFAULT 0,
            status                  text NOT NULL CHECK (status IN ('open', 'settled', 'applied', 'voided')),
            note                    text CHECK (length(note) <= 2000),
            occurred_on             date NOT NULL,
            due_at                  timestamptz,
            reminder_id             text,
            reminder_error          text,
            disputed                boolean NOT NULL DEFAULT false,
            dispute_reason          text,
            disputed_by             text,
            disputed_at             timestamptz,
            created_by              text,
            voided_by               text,
            voided_at               timestamptz,
            created_at              timestamptz NOT NULL DEFAULT clock_timestamp(),
            updated_at              timestamptz NOT NULL DEFAULT clock_timestamp(),
            CHECK (counterparty_user_id IS NOT NULL OR counterparty_name IS NOT NULL),
            CHECK (counterparty_user_id IS DISTINCT FROM owner_id),
            CHECK ((kind = 'entry') = (settles_entry_id IS NULL)),
            CHECK ((kind = 'entry' AND status IN ('open', 'settled')) OR (kind = 'settlement' AND status IN ('applied', 'voided'))),
            CHECK (settled_minor >= 0 AND settled_minor <= amount_minor),
            CHECK (kind = 'entry' OR settled_minor = 0)
        );
        -- Totals: an index-only scan per owner, grouped by contact and currency.
        CREATE INDEX entries_owner_totals_idx ON ledger.entries (owner_id, contact_key, currency)
            INCLUDE (signed_minor) WHERE status <> 'voided';
        -- Lists: newest first, keyset pagination on (occurred_on, id).
        CREATE INDEX entries_owner_list_idx ON ledger.entries (owner_id, occurred_on DESC, id DESC);
        -- Mirrored entries: what friends recorded about me.
        CREATE INDEX entries_counterparty_idx ON ledger.entries (counterparty_user_id, owner_id)
            INCLUDE (currency, signed_minor, status) WHERE counterparty_user_id IS NOT NULL;
        CREATE INDEX entries_settles_idx ON ledger.entries (settles_entry_id) WHERE settles_entry_id IS NOT NULL;

        -- Who changed what, when, under which request (field names, never amounts or notes).
        CREATE TABLE ledger.audit_log (
            id         bigserial PRIMARY KEY,
            at         timestamptz NOT NULL DEFAULT now(),
            actor      text NOT NULL,
            subject    text NOT NULL,
            action     text NOT NULL,
            entry_id   uuid,
            fields     text[] NOT NULL DEFAULT '{}',
            request_id text
        );
        CREATE INDEX audit_log_subject_idx ON ledger.audit_log (subject, at);

        -- Transactional outbox: events commit with the change, a relay publishes them.
        CREATE TABLE ledger.outbox (
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
        DROP TABLE ledger.outbox;
        DROP TABLE ledger.audit_log;
        DROP TABLE ledger.entries;
        """
    )
