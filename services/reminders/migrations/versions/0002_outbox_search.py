"""event outbox; trigram keys and their GIN index for the free-text filter ``q``"""

revision = "0002"
down_revision = "0001"

from alembic import op


def upgrade() -> None:
    op.execute(
        r"""
        -- Transactional outbox: an event commits with its change (a delivery, an API write);
        -- eindr_common's OutboxRelay publishes it to eindr:events:reminders afterwards.
        CREATE TABLE reminders.outbox (
            id         bigserial PRIMARY KEY,
            created_at timestamptz NOT NULL DEFAULT now(),
            event_type text NOT NULL,
            payload    jsonb NOT NULL
        );

        -- Search keys of each reminder's title, notes and phrase (domain.search_grams has the
        -- why). A table of their own, not a column or an expression index on reminders: the
        -- scheduler updates every reminder row it claims and fires, and those updates are
        -- not HOT (they change indexed columns), so every index on reminders gets new
        -- entries each time; ~40 GIN keys per row would be written twice per fire. Here they
        -- are written only when a reminder is created or its texts change.
        CREATE TABLE reminders.reminder_search (
            reminder_id uuid PRIMARY KEY REFERENCES reminders.reminders (id) ON DELETE CASCADE,
            grams       text[] NOT NULL
        );
        CREATE INDEX reminder_search_grams_idx ON reminders.reminder_search USING gin (grams);

        -- domain.search_grams in SQL, for backfills (the service computes the keys in
        -- Python, ~10x cheaper per row; test_api checks the two agree).
        CREATE FUNCTION reminders.search_grams(doc text) RETURNS text[]
            LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
            AS $$
                SELECT coalesce(array_agg(DISTINCT substr(f.t, i, 3) COLLATE "C" ORDER BY substr(f.t, i, 3) COLLATE "C"), '{}')
                FROM (SELECT regexp_replace(
                          translate(doc, E'ABCDEFGHIJKLMNOPQRSTUVWXYZ\u0130\u0131\u212a', 'abcdefghijklmnopqrstuvwxyziik'),
                          '[^\x01-\x7f]', E'\x1a', 'g') AS t) f,
                     generate_series(1, char_length(f.t) - 2) AS i
            $$;

        INSERT INTO reminders.reminder_search (reminder_id, grams)
        SELECT r.id, ARRAY(
            SELECT DISTINCT g FROM unnest(
                reminders.search_grams(r.title) || reminders.search_grams(r.notes) || reminders.search_grams(r.phrase)
            ) AS u(g))
        FROM reminders.reminders r;
        """
    )


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION reminders.search_grams(text); DROP TABLE reminders.reminder_search; DROP TABLE reminders.outbox;"
    )
