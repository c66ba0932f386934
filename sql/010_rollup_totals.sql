-- 010: each service's totals per minute, hour and day, for the questions that name no
-- route, method, status or level (the front page, a timeline, a check, services
-- ranked): a service's minute is one cell here against about seven in
-- logctl_rollup_minute (one per status class and level), and its hour one against
-- dozens in the service grain, so such a question over a day reads a few thousand
-- cells instead of a few hundred thousand. Folded from the same deltas as the other
-- grains, in the same transactions.

CREATE TABLE logctl_rollup_total_minute (
    minute        timestamptz NOT NULL,
    service_id    integer     NOT NULL,
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
    PRIMARY KEY (minute, service_id)
);

CREATE TABLE logctl_rollup_total_hour (
    hour          timestamptz NOT NULL,
    service_id    integer     NOT NULL,
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
    PRIMARY KEY (hour, service_id)
);

CREATE TABLE logctl_rollup_total_day (
    day           timestamptz NOT NULL,
    service_id    integer     NOT NULL,
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
    PRIMARY KEY (day, service_id)
);

-- Retention goes by width: keep_rollup_minute, _hour and _day cover every grain of
-- that width (`logctl prune` pruned only the fine grains before, and these keys of 007
-- were never read).
DELETE FROM logctl_settings WHERE key IN (
    'keep_rollup_service_hour', 'keep_rollup_service_day',
    'keep_rollup_route_hour', 'keep_rollup_route_day');

-- Cells compacted before this migration are not in the totals yet: `logctl schema`
-- derives them (in Rust, which merges sketches) from the minute and service grains
-- while this row says it has yet to.
-- The service grain may itself be pending (007 in the same upgrade): its fine hour and
-- day cells count too, since 007's derivation runs first.
INSERT INTO logctl_settings (key, value)
SELECT 'derive_rollup_totals', 'pending'
WHERE EXISTS (SELECT 1 FROM logctl_rollup_minute)
   OR EXISTS (SELECT 1 FROM logctl_rollup_hour)
   OR EXISTS (SELECT 1 FROM logctl_rollup_day)
   OR EXISTS (SELECT 1 FROM logctl_rollup_service_hour)
   OR EXISTS (SELECT 1 FROM logctl_rollup_service_day);

DO $$
BEGIN
    IF '{{distributed}}' = 'true' THEN
        PERFORM create_distributed_table(t, 'service_id',
                                         colocate_with => 'logctl_rollup_service_hour')
        FROM unnest(ARRAY['logctl_rollup_total_minute', 'logctl_rollup_total_hour',
                          'logctl_rollup_total_day']) AS t;
    END IF;
END $$;
