-- 006: routes and rollups. Every event gets a route (its endpoint templated, capped per
-- service); each batch appends its rollup cells as one delta per service, in the
-- transaction of its rows and its ledger range; compaction folds the deltas into
-- minute, hour and day cells, which the reports read instead of the raw rows.

ALTER TABLE log_events ADD COLUMN route text;

-- One service's cells of one committed batch (see src/analytics/rollup.rs for the
-- encoding). Append-only: racing loaders never wait on each other's rows.
CREATE TABLE logctl_rollup_deltas (
    service_id   integer NOT NULL,
    delta_id     bigint GENERATED ALWAYS AS IDENTITY,
    first_minute timestamptz NOT NULL,
    last_minute  timestamptz NOT NULL,
    cells        bytea NOT NULL,
    PRIMARY KEY (service_id, delta_id)
);

-- Minute cells: by service, status class (2 for 2xx, 0 without a status) and level
-- ('' without one). `latency` is the latency sketch (logctl_sketch_quantile reads it);
-- the latency columns beside it are exact.
CREATE TABLE logctl_rollup_minute (
    minute        timestamptz NOT NULL,
    service_id    integer     NOT NULL,
    status_class  smallint    NOT NULL,
    level         text        NOT NULL,
    events        bigint      NOT NULL,
    errors        bigint      NOT NULL,
    latency_count bigint      NOT NULL,
    latency_sum   bigint      NOT NULL,
    latency_min   integer,
    latency_max   integer,
    latency       bytea       NOT NULL,
    PRIMARY KEY (minute, service_id, status_class, level)
);

-- Hour and day cells: by service, route, method, status (0 without one) and level.
-- latency_p99 lets a top-N by p99 skip the cells that cannot reach it.
CREATE TABLE logctl_rollup_hour (
    hour          timestamptz NOT NULL,
    service_id    integer     NOT NULL,
    route         text        NOT NULL,
    method        text        NOT NULL,
    status        smallint    NOT NULL,
    level         text        NOT NULL,
    events        bigint      NOT NULL,
    errors        bigint      NOT NULL,
    latency_count bigint      NOT NULL,
    latency_sum   bigint      NOT NULL,
    latency_min   integer,
    latency_max   integer,
    latency_p99   real,
    latency       bytea       NOT NULL,
    PRIMARY KEY (hour, service_id, route, method, status, level)
);

CREATE TABLE logctl_rollup_day (
    day           timestamptz NOT NULL,
    service_id    integer     NOT NULL,
    route         text        NOT NULL,
    method        text        NOT NULL,
    status        smallint    NOT NULL,
    level         text        NOT NULL,
    events        bigint      NOT NULL,
    errors        bigint      NOT NULL,
    latency_count bigint      NOT NULL,
    latency_sum   bigint      NOT NULL,
    latency_min   integer,
    latency_max   integer,
    latency_p99   real,
    latency       bytea       NOT NULL,
    PRIMARY KEY (day, service_id, route, method, status, level)
);

-- How long each grain is kept (`logctl prune` drops older cells; --keep-rollups).
INSERT INTO logctl_settings (key, value) VALUES
    ('keep_rollup_minute', '14 days'),
    ('keep_rollup_hour', '400 days'),
    ('keep_rollup_day', '10 years');

-- On Citus, each rollup table lives beside the rows it summarises: distributed by
-- service_id and co-located with log_events, so a batch's deltas go to the shards of
-- its rows.
DO $$
BEGIN
    IF '{{distributed}}' = 'true' THEN
        PERFORM create_distributed_table(t, 'service_id', colocate_with => 'log_events')
        FROM unnest(ARRAY['logctl_rollup_deltas', 'logctl_rollup_minute',
                          'logctl_rollup_hour', 'logctl_rollup_day']) AS t;
    END IF;
END $$;

