#!/usr/bin/env bash
# What the rollups cost a load: whole-process wall times of builds loading the same two
# files, alternating round by round so that each sees the same machine. In each round
# every build loads FIRST into a fresh empty database (the one-transaction index
# rebuild) and then appends SECOND (batch by batch beside rows). The first build is the
# reference, normally `cargo build --release --features bench-without-rollups` of the
# same commit; each line gives the wall time, the time of the end-of-load rollup
# compaction, the peak RSS, and the ratio to the reference's run of that round. The
# medians of the ratios close the output.
# Usage: benches/load-rollups-ab.sh ROUNDS FIRST SECOND REFERENCE BUILD...
# (`logctl gen --lines 1000000 --seed 1 --output FIRST`, then --seed 2 for SECOND.)
# It runs its own PostgreSQL with `logctl local start` in LOGCTL_LOCAL_DIR (default
# target/bench-load-pg).
set -euo pipefail
rounds=$1
first=$2
second=$3
shift 3
builds=("$@")
export LOGCTL_LOCAL_DIR=${LOGCTL_LOCAL_DIR:-target/bench-load-pg}
url=$("${builds[0]}" local start 2>/dev/null)
server=${url%/logctl}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Loads $3 with build $1 into database $2; prints "wall compaction rss_kib".
load() {
    /usr/bin/time -o "$out/time" -f "%e %M" "$1" --database-url "$2" load --quiet \
        --format json "$3" >"$out/report.json"
    python3 - "$out/report.json" "$out/time" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
phases = {phase["name"]: phase["seconds"] for phase in report["phases"]}
wall, rss = open(sys.argv[2]).read().split()[-2:]
print(wall, phases.get("compacting the rollups", 0), rss)
PY
}

declare -A ratios
for round in $(seq 1 "$rounds"); do
    for index in "${!builds[@]}"; do
        build=${builds[$index]}
        psql -q -X -d "$server/postgres" -c "DROP DATABASE IF EXISTS load_ab" \
            -c "CREATE DATABASE load_ab" >/dev/null
        "$build" --database-url "$server/load_ab" schema 2>/dev/null
        sync
        read -r empty_wall empty_compaction empty_rss < <(load "$build" "$server/load_ab" "$first")
        sync
        read -r append_wall append_compaction append_rss < <(load "$build" "$server/load_ab" "$second")
        if [ "$index" = 0 ]; then
            reference_empty=$empty_wall
            reference_append=$append_wall
        fi
        empty_ratio=$(python3 -c "print(round($empty_wall / $reference_empty, 3))")
        append_ratio=$(python3 -c "print(round($append_wall / $reference_append, 3))")
        ratios[$index]="${ratios[$index]:-} $empty_ratio:$append_ratio"
        echo "round $round $(basename "$build"): empty ${empty_wall}s (compaction ${empty_compaction}s, ${empty_rss} KiB, ratio $empty_ratio)" \
            "append ${append_wall}s (compaction ${append_compaction}s, ${append_rss} KiB, ratio $append_ratio)"
    done
done
for index in "${!builds[@]}"; do
    python3 - "$(basename "${builds[$index]}")" ${ratios[$index]} <<'PY'
import statistics, sys
pairs = [tuple(map(float, pair.split(":"))) for pair in sys.argv[2:]]
print(f"{sys.argv[1]}: median ratio empty {statistics.median(p[0] for p in pairs):.2f}, "
      f"append {statistics.median(p[1] for p in pairs):.2f}")
PY
done
