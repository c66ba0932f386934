#!/usr/bin/env bash
# The whole test suite: unit tests, integration tests against throwaway PostgreSQL
# clusters (and a pgbouncer in front of one) that the harness starts itself, the manual
# pages rendered by man, the HTML report opened in a headless chromium and checked by
# tidy, and the benchmarks run once as tests.
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_PGBOUNCER=1 WITH_MAN=1 WITH_BROWSER=1 source scripts/ensure-postgres.sh

cargo test --all-targets --no-fail-fast "$@"
