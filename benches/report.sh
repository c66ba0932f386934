#!/bin/sh
# `logctl report`'s whole-process time and page size on an existing database: the
# median of RUNS runs (default 5), after one warm-up, of the HTML page and of the JSON
# for each window, and the page's size. Needs a release build (cargo build --release).
# Usage: benches/report.sh URL [WINDOW ...]   e.g. "--since 30d"
set -eu
url=$1
shift
[ $# -gt 0 ] || set -- "--since 30d"
runs=${RUNS:-5}
logctl=${LOGCTL:-target/release/logctl}
page=$(mktemp --suffix=.html)
trap 'rm -f "$page"' EXIT
median_ms() {
    "$@" >/dev/null 2>&1
    for _ in $(seq "$runs"); do
        start=$(date +%s%N)
        "$@" >/dev/null 2>&1
        echo $(( ($(date +%s%N) - start) / 1000000 ))
    done | sort -n | awk '{ t[NR] = $1 } END { print t[int((NR + 1) / 2)] }'
}
for window in "$@"; do
    # shellcheck disable=SC2086
    html=$(median_ms "$logctl" --database-url "$url" report $window -o "$page")
    # shellcheck disable=SC2086
    json=$(median_ms "$logctl" --database-url "$url" report $window --format json)
    printf '%-50s html %6s ms  json %6s ms  page %7s bytes\n' \
        "report $window" "$html" "$json" "$(wc -c < "$page")"
done
