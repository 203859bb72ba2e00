#!/usr/bin/env bash
# Runs the whole test suite: formatting and lints, unit and integration tests
# on the embedded SQLite store, the browser end-to-end tests in headless
# Chromium. Installs what the tests need (Debian chromium, npm packages).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "formatting and lints"
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings

step "tests on SQLite"
cargo test --locked

step "browser end-to-end tests"
scripts/e2e.sh
