#!/usr/bin/env bash
# The main job end to end: build logctl, start its local PostgreSQL instance,
# create the schema, load the bundled example logs, and print the slow report.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-postgres.sh

cargo build --release --quiet
logctl=target/release/logctl

$logctl local start >/dev/null
$logctl schema
$logctl load examples/app.ndjson examples/shapes/
$logctl slow --threshold 2000 --limit 10
