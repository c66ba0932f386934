-- 007: coarser grains for the reports. A report over a day or a month must not merge
-- every route × method × status × level cell of its hours: the service grain keeps
-- what a question about services, statuses, methods or levels needs (no routes), and
-- the route grain what a question about routes needs (no method, status or level).
-- Both are folded from the same deltas as the other grains, in the same transactions.
-- Every hour-like grain stores its cells' p50, p95 and p99 beside the sketch, so a
-- top-N by a quantile skips the cells that cannot reach it.

ALTER TABLE logctl_rollup_hour ADD COLUMN latency_p50 real, ADD COLUMN latency_p95 real;
ALTER TABLE logctl_rollup_day ADD COLUMN latency_p50 real, ADD COLUMN latency_p95 real;

CREATE TABLE logctl_rollup_service_hour (
    hour          timestamptz NOT NULL,
    service_id    integer     NOT NULL,
    method        text        NOT NULL,
    status        smallint    NOT NULL,
    level         text        NOT NULL,
    events        bigint      NOT NULL,
    errors        bigint      NOT NULL,
    latency_count bigint      NOT NULL,
    latency_sum   bigint      NOT NULL,
    latency_min   integer,
    latency_max   integer,
    latency_p50   real,
    latency_p95   real,
    latency_p99   real,
    latency       bytea       NOT NULL,
    PRIMARY KEY (hour, service_id, method, status, level)
);

CREATE TABLE logctl_rollup_service_day (
    day           timestamptz NOT NULL,
    service_id    integer     NOT NULL,
    method        text        NOT NULL,
    status        smallint    NOT NULL,
    level         text        NOT NULL,
    events        bigint      NOT NULL,
    errors        bigint      NOT NULL,
    latency_count bigint      NOT NULL,
    latency_sum   bigint      NOT NULL,
    latency_min   integer,
    latency_max   integer,
    latency_p50   real,
    latency_p95   real,
    latency_p99   real,
    latency       bytea       NOT NULL,
    PRIMARY KEY (day, service_id, method, status, level)
);

CREATE TABLE logctl_rollup_route_hour (
    hour          timestamptz NOT NULL,
    service_id    integer     NOT NULL,
    route         text        NOT NULL,
    events        bigint      NOT NULL,
    errors        bigint      NOT NULL,
    latency_count bigint      NOT NULL,
    latency_sum   bigint      NOT NULL,
    latency_min   integer,
    latency_max   integer,
    latency_p50   real,
    latency_p95   real,
    latency_p99   real,
    latency       bytea       NOT NULL,
    PRIMARY KEY (hour, service_id, route)
);

CREATE TABLE logctl_rollup_route_day (
    day           timestamptz NOT NULL,
    service_id    integer     NOT NULL,
    route         text        NOT NULL,
    events        bigint      NOT NULL,
    errors        bigint      NOT NULL,
    latency_count bigint      NOT NULL,
    latency_sum   bigint      NOT NULL,
    latency_min   integer,
    latency_max   integer,
    latency_p50   real,
    latency_p95   real,
    latency_p99   real,
    latency       bytea       NOT NULL,
    PRIMARY KEY (day, service_id, route)
);

INSERT INTO logctl_settings (key, value) VALUES
    ('keep_rollup_service_hour', '400 days'),
    ('keep_rollup_service_day', '10 years'),
    ('keep_rollup_route_hour', '400 days'),
    ('keep_rollup_route_day', '10 years');

-- Cells compacted before this migration are in the hour and day grains only: `logctl
-- schema` derives the new grains from them (in Rust, which merges sketches) while this
-- row says it has yet to.
INSERT INTO logctl_settings (key, value)
SELECT 'derive_rollup_grains', 'pending'
WHERE EXISTS (SELECT 1 FROM logctl_rollup_hour) OR EXISTS (SELECT 1 FROM logctl_rollup_day);

DO $$
BEGIN
    IF '{{distributed}}' = 'true' THEN
        PERFORM create_distributed_table(t, 'service_id', colocate_with => 'log_events')
        FROM unnest(ARRAY['logctl_rollup_service_hour', 'logctl_rollup_service_day',
                          'logctl_rollup_route_hour', 'logctl_rollup_route_day']) AS t;
    END IF;
END $$;
