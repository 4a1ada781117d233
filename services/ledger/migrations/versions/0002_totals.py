"""ledger.totals: per (owner, contact, currency) net kept by a trigger in the same
transaction as every entry change, so balances read a few hundred rows, not 100,000"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE ledger.totals (
            owner_id    text NOT NULL,
            contact_key text NOT NULL,
            currency    char(3) NOT NULL,
            -- Sum of signed_minor of the live (non-voided) rows: numeric, so it never overflows.
            net_minor   numeric NOT NULL DEFAULT 0,
            entries     bigint NOT NULL DEFAULT 0 CHECK (entries >= 0),
            name        text,
            PRIMARY KEY (owner_id, contact_key, currency)
        );
        -- Friends' totals about me: contact_key = 'user:<me>'.
        CREATE INDEX totals_contact_idx ON ledger.totals (contact_key, owner_id);

        -- Every change of an entry row moves its old contribution out and its new one in,
        -- under the totals row's lock, in the writer's transaction: concurrent writers
        -- serialise on that row and the sum stays exact (tests compare it with GROUP BY).
        CREATE FUNCTION ledger.apply_totals() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status <> 'voided' THEN
                UPDATE ledger.totals
                   SET net_minor = net_minor - OLD.signed_minor, entries = entries - 1
                 WHERE owner_id = OLD.owner_id AND contact_key = OLD.contact_key AND currency = OLD.currency;
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.status <> 'voided' THEN
                INSERT INTO ledger.totals AS t (owner_id, contact_key, currency, net_minor, entries, name)
                VALUES (NEW.owner_id, NEW.contact_key, NEW.currency, NEW.signed_minor, 1, NEW.counterparty_name)
                ON CONFLICT (owner_id, contact_key, currency) DO UPDATE
                   SET net_minor = t.net_minor + EXCLUDED.net_minor,
                       entries = t.entries + 1,
                       name = coalesce(EXCLUDED.name, t.name);
            END IF;
            RETURN NULL;
        END $$;

        CREATE TRIGGER entries_totals
            AFTER INSERT OR DELETE OR UPDATE OF owner_id, contact_key, currency, amount_minor, direction, status, counterparty_name
            ON ledger.entries FOR EACH ROW EXECUTE FUNCTION ledger.apply_totals();

        INSERT INTO ledger.totals (owner_id, contact_key, currency, net_minor, entries, name)
        SELECT owner_id, contact_key, currency, sum(signed_minor), count(*), max(counterparty_name)
          FROM ledger.entries WHERE status <> 'voided'
         GROUP BY 1, 2, 3;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER entries_totals ON ledger.entries;
        DROP FUNCTION ledger.apply_totals();
        DROP TABLE ledger.totals;
        """
    )
