-- 011: the fine cells packed. A fine hour or day cell (service, route, method, status,
-- level) and a minute cell (service, status class, level) were rows of their own, and a
-- row's header, key and index entry cost more than the cell's counts and sketch: at the
-- generated logs' 50 lines a second the rollups took about 5% of the raw table. They are
-- now packed into one `detail` per cell that sums them (see `encode_detail` in
-- src/analytics/rollup.rs): the fine cells of a route in its route cell's, the minute
-- cells of a service in its minute total's. The details have tables of their own, keyed
-- as the cells they belong to, so that the reports that read only the route cells and
-- the minute totals (most of them) read rows as narrow as before.

CREATE TABLE logctl_rollup_route_hour_detail (
    hour       timestamptz NOT NULL,
    service_id integer     NOT NULL,
    route      text        NOT NULL,
    detail     bytea       NOT NULL,
    PRIMARY KEY (hour, service_id, route)
);

CREATE TABLE logctl_rollup_route_day_detail (
    day        timestamptz NOT NULL,
    service_id integer     NOT NULL,
    route      text        NOT NULL,
    detail     bytea       NOT NULL,
    PRIMARY KEY (day, service_id, route)
);

CREATE TABLE logctl_rollup_total_minute_detail (
    minute     timestamptz NOT NULL,
    service_id integer     NOT NULL,
    detail     bytea       NOT NULL,
    PRIMARY KEY (minute, service_id)
);

DO $$
BEGIN
    IF '{{distributed}}' = 'true' THEN
        PERFORM create_distributed_table(t, 'service_id',
                                         colocate_with => 'logctl_rollup_service_hour')
        FROM unnest(ARRAY['logctl_rollup_route_hour_detail', 'logctl_rollup_route_day_detail',
                          'logctl_rollup_total_minute_detail']) AS t;
    END IF;
END $$;

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
