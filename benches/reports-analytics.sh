#!/bin/sh
# The analytics reports' whole-process times on an existing database: the median of
# RUNS runs (default 11) of each report, after one warm-up, on the URL given.
# Usage: benches/reports-analytics.sh URL [SINCE UNTIL]   (a release build: cargo build --release)
# SINCE `default` runs each report with its default window (the last 24 hours of data).
# With VS=URL2, each run on URL is followed by the same run on URL2 (alternating, so
# that both see the same machine), and each report's line adds URL2's median and the
# ratio URL / URL2: the issue's "at most 1.5 times its 1M-row time" is this ratio.
# VS_LOGCTL=BINARY runs URL2's reports with another build (one from before a schema
# change, on a database that build made), to compare two versions the same way.
set -eu
url=$1
since=${2:-2026-11-26T12:00:00Z}
until=${3:-2026-11-27T12:00:00Z}
runs=${RUNS:-11}
vs=${VS:-}
logctl=${LOGCTL:-target/release/logctl}
vs_logctl=${VS_LOGCTL:-$logctl}
window="--since $since --until $until"
[ "$since" = default ] && window=""
# Milliseconds of one run of logctl on database $1 with the arguments after it.
once() {
    binary=$1
    on=$2
    shift 2
    start=$(date +%s%N)
    "$binary" --database-url "$on" "$@" >/dev/null 2>&1 || true
    echo $(( ($(date +%s%N) - start) / 1000000 ))
}
median() {
    sort -n | awk '{ t[NR] = $1 } END { print t[int((NR + 1) / 2)] }'
}
while IFS='|' read -r name args; do
    times=$(mktemp)
    # shellcheck disable=SC2086
    {
        once "$logctl" "$url" $args $window >/dev/null
        if [ -n "$vs" ]; then once "$vs_logctl" "$vs" $args $window >/dev/null; fi
        for _ in $(seq "$runs"); do
            echo "a $(once "$logctl" "$url" $args $window)"
            if [ -n "$vs" ]; then echo "b $(once "$vs_logctl" "$vs" $args $window)"; fi
        done
    } >"$times"
    a=$(awk '$1 == "a" { print $2 }' "$times" | median)
    if [ -n "$vs" ]; then
        b=$(awk '$1 == "b" { print $2 }' "$times" | median)
        printf '%-34s %6s ms %6s ms  ratio %s\n' "$name" "$a" "$b" \
            "$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }')"
    else
        printf '%-34s %6s ms\n' "$name" "$a"
    fi
    rm -f "$times"
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
