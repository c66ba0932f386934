#!/usr/bin/env bash
# The main job end to end: build logctl, start its local PostgreSQL instance,
# create the schema, load the bundled example logs, and print the slow report;
# then say where the binary is, how to use it and how to stop the instance.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*" >&2; }

step "checking that PostgreSQL's server programs are installed (Debian's package is installed if not)"
source scripts/ensure-postgres.sh

step "building logctl in release mode (the first build compiles its dependencies: a few minutes)"
cargo build --release
logctl="$PWD/target/release/logctl"

step "starting logctl's local PostgreSQL instance (created on first use)"
"$logctl" local start >/dev/null

step "creating the schema (logctl schema)"
"$logctl" schema

step "loading examples/app.ndjson and examples/shapes/ (logctl load)"
"$logctl" load examples/app.ndjson examples/shapes/

step "the requests slower than 2 s (logctl slow --threshold 2000 --limit 10)"
"$logctl" slow --threshold 2000 --limit 10

instance=$("$logctl" local status)
cat >&2 <<EOF

Done. logctl is at $logctl
  put it on your PATH:   cargo install --path .   (installs it into ~/.cargo/bin)
  shell completions:     source <(logctl completions bash)   (or zsh, fish; see logctl completions --help)
  the manual:            logctl man | man -l -
  try:                   logctl status
                         logctl slow --since 2026-11-24 --until 2026-11-25 --format json
                         logctl load 'your/logs/*.ndjson'
The local PostgreSQL instance is $instance
  stop it:               logctl local stop      (logctl local start starts it again)
  delete it:             logctl local destroy   (with all its data)
EOF
