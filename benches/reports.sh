#!/usr/bin/env bash
# Whole-process times of report commands, run in turn (A B C A B C ...) so that a drift
# of the machine's speed touches each alike, and the median of each printed in ms.
#
#   benches/reports.sh RUNS 'COMMAND A' 'COMMAND B' ...
#
# e.g. against the 10 M-row database of benches/README.md:
#   export LOGCTL_LOCAL_DIR=/path/to/bench/pg
#   benches/reports.sh 11 'target/release/logctl errors --since 24h' \
#       'target/release/logctl trace 01a217ba-1200-7abc-8def-0123456789ab'
# Each command's output is discarded; one run of each comes first, untimed.
set -euo pipefail

runs=${1:?usage: benches/reports.sh RUNS COMMAND...}
shift
declare -A times
for command in "$@"; do
    eval "$command" >/dev/null 2>&1 || true
done
for ((run = 0; run < runs; run++)); do
    index=0
    for command in "$@"; do
        start=$(date +%s%N)
        eval "$command" >/dev/null 2>&1 || true
        end=$(date +%s%N)
        times[$index]+="$(((end - start) / 1000000)) "
        index=$((index + 1))
    done
done
index=0
for command in "$@"; do
    median=$(tr ' ' '\n' <<<"${times[$index]}" | sed '/^$/d' | sort -n |
        awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
    printf '%8s ms  %s\n' "$median" "$command"
    index=$((index + 1))
done
