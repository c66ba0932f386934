-- 004: one definition of a partition's name and bounds, shared by the loaders that
-- create partitions in place (logctl_ensure_partition) and those that build new
-- partitions detached and attach them at the end of a load.

-- The name and bounds of the partition that holds p_at.
CREATE FUNCTION logctl_partition_bounds(p_at timestamptz, OUT name text, OUT lower timestamptz,
                                        OUT upper timestamptz)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    unit text := (SELECT value FROM logctl_settings WHERE key = 'partition');
BEGIN
    IF unit = '' THEN
        RAISE EXCEPTION 'log_events is not partitioned';
    END IF;
    lower := date_trunc(unit, p_at, 'UTC');
    upper := lower + ('1 ' || unit)::interval;
    name := 'log_events_' || to_char(lower AT TIME ZONE 'UTC', 'YYYYMMDD');
END $$;

-- Returns the partition that holds p_at, creating it if needed. Concurrent loaders
-- creating the same partition take turns on an advisory lock; the second may still
-- see its catalog from before the first committed, so "already exists" is success.
CREATE OR REPLACE FUNCTION logctl_ensure_partition(p_at timestamptz) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    name  text;
    lower timestamptz;
    upper timestamptz;
BEGIN
    SELECT b.name, b.lower, b.upper INTO name, lower, upper FROM logctl_partition_bounds(p_at) b;
    IF to_regclass(name) IS NULL THEN
        PERFORM pg_advisory_xact_lock({{lock:partition_name}}, hashtext(name));
        -- Citus creates a distributed partition's shards over one connection per node
        -- when the table has a foreign key to a reference table (services).
        IF (SELECT value FROM logctl_settings WHERE key = 'distributed') = 'true' THEN
            PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', true);
        END IF;
        BEGIN
            EXECUTE format('CREATE TABLE %I PARTITION OF log_events FOR VALUES FROM (%L) TO (%L)',
                           name, lower, upper);
        EXCEPTION WHEN duplicate_table THEN
            NULL;
        END;
    END IF;
    RETURN name;
END $$;
