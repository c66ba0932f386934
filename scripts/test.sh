#!/usr/bin/env bash
# The whole test suite: unit tests, integration tests against throwaway PostgreSQL
# clusters that the harness starts itself, and the benchmarks run once as tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-postgres.sh

cargo test --all-targets --no-fail-fast "$@"
