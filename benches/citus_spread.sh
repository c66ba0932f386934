#!/usr/bin/env bash
# How log_events spreads over a Citus cluster's workers, and what loads and reports
# cost there (benches/README.md, "Citus: spreading rows over the workers"):
#
#   benches/citus_spread.sh LOGCTL URL FILE [load]
#
# With `load`, creates the distributed schema in the (empty) database at URL and loads
# FILE with LOGCTL, timed; then, either way, prints the rows and shards with rows on
# each worker, times the reports (best of three) and checks the rollups.
set -euo pipefail
logctl=$1 url=$2 file=$3
export DATABASE_URL=$url
sql() { psql -X -A -t -F ' ' -v ON_ERROR_STOP=1 "$url" -c "$1"; }
best_of_three() { # command...: the fastest of three runs, in seconds
    local best=
    for _ in 1 2 3; do
        local start end
        start=$(date +%s.%N)
        "$@" >/dev/null
        end=$(date +%s.%N)
        best=$(echo "$end - $start" | bc -l | awk -v b="$best" '{ if (b == "" || $1 < b) print $1; else print b }')
    done
    printf '%.2f s' "$best"
}
if [ "${4:-}" = load ]; then
    "$logctl" schema --distributed
    start=$(date +%s.%N)
    "$logctl" load --quiet "$file"
    end=$(date +%s.%N)
    printf 'load: %.1f s\n' "$(echo "$end - $start" | bc -l)"
fi
echo "distribution column: $(sql "SELECT column_to_column_name(logicalrelid, partkey)
    FROM pg_dist_partition WHERE logicalrelid = 'log_events'::regclass")"
echo "worker rows share shards-with-rows shards:"
sql "WITH counts AS (
         SELECT c.nodeport, r.result::bigint AS n
         FROM run_command_on_shards('log_events', 'SELECT count(*) FROM %s') r
         JOIN citus_shards c USING (shardid))
     SELECT nodeport, sum(n), round(100.0 * sum(n) / sum(sum(n)) OVER (), 1) || '%',
            count(*) FILTER (WHERE n > 0), count(*)
     FROM counts GROUP BY nodeport ORDER BY nodeport"
service=$(sql "SELECT service_name FROM services ORDER BY service_name LIMIT 1")
echo "slow --threshold 2000: $(best_of_three "$logctl" slow --threshold 2000)"
echo "slow --threshold 500: $(best_of_three "$logctl" slow --threshold 500)"
echo "slow --threshold 500 --service $service: $(best_of_three "$logctl" slow --threshold 500 --service "$service")"
per_service="SELECT service_id, count(*), percentile_cont(ARRAY[0.5, 0.95, 0.99])
    WITHIN GROUP (ORDER BY latency_ms) FROM log_events GROUP BY service_id"
echo "p50/p95/p99 per service, plain SQL: $(best_of_three sql "$per_service")"
echo "count per service, plain SQL: $(best_of_three sql "SELECT service_id, count(*) FROM log_events GROUP BY 1")"
echo "rollup verify: $("$logctl" rollup verify --since 2026-11-01T00:00:00Z 2>&1 | tail -1)"
