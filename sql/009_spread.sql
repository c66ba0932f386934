-- 009: on Citus, log_events is distributed by `spread`, a key the loader gives each
-- batch (the shards in turn), instead of by service_id: with a few services hashed into
-- the shards, many shards got no rows and one worker most of them. A batch's rollup
-- deltas carry its key, so they land on the shard of its rows, and a batch writes to one
-- shard. A plain or partitioned database has no spread in log_events, and 0 in the deltas.

ALTER TABLE logctl_rollup_deltas ADD COLUMN spread integer NOT NULL DEFAULT 0;

DO $$
BEGIN
    IF '{{distributed}}' = 'true' THEN
        -- Rows loaded before get a key from their event_id, which spreads them as evenly.
        ALTER TABLE log_events ADD COLUMN spread integer;
        UPDATE log_events SET spread = hashtext(event_id::text);
        ALTER TABLE log_events ALTER COLUMN spread SET NOT NULL;
        -- Citus moves the rows only while no unique key lacks the new distribution
        -- column; the key is built once, after the move.
        ALTER TABLE log_events DROP CONSTRAINT log_events_pkey;
        PERFORM alter_distributed_table('log_events', distribution_column := 'spread');
        EXECUTE 'ALTER TABLE log_events ADD PRIMARY KEY (event_id, spread'
            || CASE WHEN '{{partition}}' = '' THEN ')' ELSE ', created_at)' END;

        -- Citus cannot redistribute a table with an identity column: the deltas table is
        -- made anew, and the pending deltas moved into it (compaction takes them from
        -- any shard).
        ALTER TABLE logctl_rollup_deltas RENAME TO logctl_rollup_deltas_by_service;
        CREATE TABLE logctl_rollup_deltas (
            service_id   integer NOT NULL,
            delta_id     bigint GENERATED ALWAYS AS IDENTITY,
            first_minute timestamptz NOT NULL,
            last_minute  timestamptz NOT NULL,
            cells        bytea NOT NULL,
            spread       integer NOT NULL DEFAULT 0,
            PRIMARY KEY (spread, service_id, delta_id)
        );
        PERFORM create_distributed_table('logctl_rollup_deltas', 'spread',
                                         colocate_with => 'log_events');
        INSERT INTO logctl_rollup_deltas (service_id, first_minute, last_minute, cells)
        SELECT service_id, first_minute, last_minute, cells
        FROM logctl_rollup_deltas_by_service ORDER BY delta_id;
        DROP TABLE logctl_rollup_deltas_by_service;
    END IF;
END $$;
