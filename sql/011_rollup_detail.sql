-- 011: the fine cells packed. A fine hour or day cell (service, route, method, status,
-- level) and a minute cell (service, status class, level) were rows of their own, and a
-- row's header, key and index entry cost more than the cell's counts and sketch: at the
-- generated logs' 50 lines a second the rollups took about 5% of the raw table. They are
-- now the `detail` of the row that sums them: the fine cells of a route in its route
-- cell, the minute cells of a service in its minute total (see `encode_detail` in
-- src/analytics/rollup.rs). A row's detail always sums to its own measures.

ALTER TABLE logctl_rollup_route_hour ADD COLUMN detail bytea NOT NULL DEFAULT '\x01';
ALTER TABLE logctl_rollup_route_hour ALTER COLUMN detail DROP DEFAULT;
ALTER TABLE logctl_rollup_route_day ADD COLUMN detail bytea NOT NULL DEFAULT '\x01';
ALTER TABLE logctl_rollup_route_day ALTER COLUMN detail DROP DEFAULT;
ALTER TABLE logctl_rollup_total_minute ADD COLUMN detail bytea NOT NULL DEFAULT '\x01';
ALTER TABLE logctl_rollup_total_minute ALTER COLUMN detail DROP DEFAULT;

-- The cells stored as rows are packed by `logctl schema` after the migrations (which
-- derives every grain from them anew, so 007's and 010's derivations are part of it),
-- and their tables dropped then; empty ones go now.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM logctl_rollup_minute)
       OR EXISTS (SELECT 1 FROM logctl_rollup_hour)
       OR EXISTS (SELECT 1 FROM logctl_rollup_day) THEN
        INSERT INTO logctl_settings (key, value) VALUES ('pack_rollup_details', 'pending');
    ELSE
        DROP TABLE logctl_rollup_minute, logctl_rollup_hour, logctl_rollup_day;
    END IF;
    DELETE FROM logctl_settings WHERE key IN ('derive_rollup_grains', 'derive_rollup_totals');
END $$;
