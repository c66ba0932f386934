-- 005: loads that keep no session state, so that they work through a connection
-- pooler in transaction mode (pgbouncer), and loader roles that do not own the tables.

-- Which load is reading which source. A claim is a row, not a session advisory lock: a
-- pooler hands each transaction to any of its server connections, where a session lock
-- would outlive the load. A load is alive while it holds the transaction-level advisory
-- lock ({{lock:loader_alive}}, loader) in a transaction of its own, open for the whole
-- load and ended by the server if the load dies; a claim whose load is gone is taken over.
CREATE TABLE logctl_claims (
    -- SHA-256 of the source's first line: sources that share it take turns, so loaders
    -- racing on one file agree on whether it is new before either records it.
    claim_key  bytea PRIMARY KEY,
    loader     integer NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now()
);

-- Claims a source for p_loader; true when it is now p_loader's, false while another
-- live load holds it (or p_loader does, for another source with the same first line).
CREATE FUNCTION logctl_claim(p_key bytea, p_loader integer) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    holder integer;
BEGIN
    -- Under REPEATABLE READ the row lock below would fail on a claim taken meanwhile
    -- instead of reading its holder.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'logctl_claim must run under READ COMMITTED';
    END IF;
    INSERT INTO logctl_claims (claim_key, loader) VALUES (p_key, p_loader)
    ON CONFLICT (claim_key) DO NOTHING;
    IF FOUND THEN
        RETURN true;
    END IF;
    SELECT loader INTO holder FROM logctl_claims WHERE claim_key = p_key FOR UPDATE;
    IF NOT FOUND OR holder = p_loader
       OR NOT pg_try_advisory_xact_lock({{lock:loader_alive}}, holder) THEN
        RETURN false;
    END IF;
    UPDATE logctl_claims SET loader = p_loader, claimed_at = now() WHERE claim_key = p_key;
    RETURN true;
END $$;

-- A loader role needs no more than to add rows and ranges. Merging a source's ranges
-- (a delete and an insert that keep what the ledger says) and creating a partition of
-- log_events (which needs its owner) run as the owner of these functions, with a
-- search path that the caller cannot redirect.
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION logctl_compact_ranges(bytea, integer) '
                   'SECURITY DEFINER SET search_path = %I, pg_temp', current_schema());
    EXECUTE format('ALTER FUNCTION logctl_ensure_partition(timestamptz) '
                   'SECURITY DEFINER SET search_path = %I, pg_temp', current_schema());
END $$;
