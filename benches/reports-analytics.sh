#!/bin/sh
# The analytics reports' whole-process times on an existing database: the median of
# RUNS runs (default 11) of each report, after one warm-up, on the URL given.
# Usage: benches/reports-analytics.sh URL [SINCE UNTIL]   (a release build: cargo build --release)
# SINCE `default` runs each report with its default window (the last 24 hours of data).
set -eu
url=$1
since=${2:-2026-11-26T12:00:00Z}
until=${3:-2026-11-27T12:00:00Z}
runs=${RUNS:-11}
logctl=${LOGCTL:-target/release/logctl}
window="--since $since --until $until"
[ "$since" = default ] && window=""
time_of() {
    "$@" >/dev/null 2>&1 || true
    for _ in $(seq "$runs"); do
        start=$(date +%s%N)
        "$@" >/dev/null 2>&1 || true
        echo $(( ($(date +%s%N) - start) / 1000000 ))
    done | sort -n | awk '{ t[NR] = $1 } END { print t[int((NR + 1) / 2)] }'
}
while IFS='|' read -r name args; do
    # shellcheck disable=SC2086
    printf '%-34s %6s ms\n' "$name" "$(time_of "$logctl" --database-url "$url" $args $window)"
done <<LIST
summary|summary
timeline (auto, by service)|timeline --by service
timeline (p99, 5m)|timeline --metric p99 --bucket 5m
top routes --by p99|top routes --by p99
top routes --by errors|top routes --by errors
top services --by p95|top services --by p95
latency --service|latency --service checkout
check|check --fail-if error-rate>2% --fail-if p99>2000
LIST
