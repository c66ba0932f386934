-- 002: the load ledger. What a load committed is recorded in the same transaction
-- as its rows, as byte ranges of each source, so a re-run, a crash or two racing
-- loaders never load a line twice or skip one.

CREATE TABLE logctl_sources (
    -- SHA-256 of the source's first fingerprint_bytes of content (1 KiB, or all its
    -- complete lines while it was shorter): it stays the same while the file grows and
    -- when logrotate renames or compresses it, and changes when a new file takes the name.
    source_key        bytea PRIMARY KEY,
    fingerprint_bytes integer NOT NULL,
    source_name       text NOT NULL,
    first_seen_at     timestamptz NOT NULL DEFAULT now(),
    last_seen_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE logctl_ranges (
    source_key     bytea  NOT NULL REFERENCES logctl_sources ON DELETE CASCADE,
    -- Offsets into the decompressed content; lines are numbered from 1 and end_line
    -- is the number of the first line after the range.
    start_offset   bigint NOT NULL,
    end_offset     bigint NOT NULL,
    start_line     bigint NOT NULL,
    end_line       bigint NOT NULL,
    loaded_rows    bigint NOT NULL,
    rejected_lines bigint NOT NULL,
    committed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_key, start_offset),
    CHECK (start_offset < end_offset AND start_line <= end_line)
);

-- Called once per batch, in the batch's transaction, after its COPY. Commits of one
-- source are serialised by a transaction-level advisory lock, and each statement in
-- here sees what the previous holder committed, so a range that overlaps committed
-- work is refused and the caller rolls its batch back.
CREATE FUNCTION logctl_commit_range(
    p_key bytea, p_lock integer, p_start bigint, p_end bigint, p_start_line bigint,
    p_end_line bigint, p_rows bigint, p_rejected bigint
) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    -- Under REPEATABLE READ the check below would not see ranges committed while
    -- this transaction waited for the lock.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'logctl_commit_range must run under READ COMMITTED';
    END IF;
    PERFORM pg_advisory_xact_lock({{lock:source_commit}}, p_lock);
    IF EXISTS (SELECT 1 FROM logctl_ranges
               WHERE source_key = p_key AND start_offset < p_end AND end_offset > p_start) THEN
        RETURN false;
    END IF;
    INSERT INTO logctl_ranges (source_key, start_offset, end_offset, start_line, end_line,
                               loaded_rows, rejected_lines)
    VALUES (p_key, p_start, p_end, p_start_line, p_end_line, p_rows, p_rejected);
    RETURN true;
END $$;

-- Merges adjacent ranges of a source into one row, so the ledger stays a few rows
-- per file however many batches loaded it.
CREATE FUNCTION logctl_compact_ranges(p_key bytea, p_lock integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    merged logctl_ranges[];
BEGIN
    PERFORM pg_advisory_xact_lock({{lock:source_commit}}, p_lock);
    SELECT array_agg(ROW(p_key, s, e, sl, el, r, j, c)::logctl_ranges ORDER BY s) INTO merged
    FROM (
        SELECT min(start_offset) AS s, max(end_offset) AS e, min(start_line) AS sl,
               max(end_line) AS el, sum(loaded_rows) AS r, sum(rejected_lines) AS j,
               max(committed_at) AS c
        FROM (
            SELECT *, sum(starts_island) OVER (ORDER BY start_offset) AS island
            FROM (
                SELECT *, CASE WHEN start_offset = lag(end_offset) OVER (ORDER BY start_offset)
                               THEN 0 ELSE 1 END AS starts_island
                FROM logctl_ranges WHERE source_key = p_key
            ) marked
        ) grouped
        GROUP BY island
    ) islands;
    IF cardinality(merged) < (SELECT count(*) FROM logctl_ranges WHERE source_key = p_key) THEN
        DELETE FROM logctl_ranges WHERE source_key = p_key;
        INSERT INTO logctl_ranges SELECT * FROM unnest(merged);
    END IF;
END $$;
