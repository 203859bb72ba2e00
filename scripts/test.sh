#!/usr/bin/env bash
# Runs the whole test suite: formatting and lints, unit and integration tests
# on the embedded SQLite store, the same API suite on a MongoDB wire-protocol
# server, and the browser end-to-end tests. Installs what the tests need
# (the NX-27017 test server into .venv/, Debian chromium, npm packages).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "formatting and lints"
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings

step "tests on SQLite"
cargo test --locked
