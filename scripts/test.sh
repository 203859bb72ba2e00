#!/usr/bin/env bash
# Runs the whole test suite:
#   1. formatting, lints, and no unused dependency (cargo-machete);
#   2. unit and integration tests on the embedded SQLite store, and the
#      store conformance suite on SQLite and MongoDB;
#   3. the same Rust tests with the clock shifted 400 days ahead (Debian's
#      faketime), so no test can depend on the calendar date;
#   4. the integration tests again with MongoDB as the store;
#   5. schemathesis against a live server, checked against /openapi.json;
#   6. the browser end-to-end tests in headless Chromium.
# Installs what the tests need: cargo-machete (crates.io), faketime (apt), the NX-27017 MongoDB wire-protocol server and
# schemathesis (PyPI, into .venv/), Debian's chromium, the npm packages of
# tests/e2e.
#
# To test against a real MongoDB instead of NX-27017, set
# IDM_TEST_MONGODB_URI=mongodb://user:pass@host:27017/?authSource=admin
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "formatting and lints"
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
# Every dependency in Cargo.toml is used (cargo-machete reads the sources).
if ! command -v cargo-machete >/dev/null 2>&1; then
    cargo install --locked cargo-machete
fi
cargo machete

if [[ -z "${IDM_TEST_MONGODB_URI:-}" ]]; then
    step "starting the MongoDB wire-protocol test server (NX-27017)"
    eval "$(scripts/mongo-test-server.sh)"
    trap 'kill "$IDM_TEST_MONGODB_PID" 2>/dev/null || true' EXIT
fi

step "tests on SQLite (and the store conformance suite on both stores)"
cargo test --locked --no-fail-fast

step "the same tests with the clock shifted 400 days ahead"
# Test clocks start at the real time; a test that hard-codes a date, or an
# outside check (JWT library, MongoDB TTL monitor) that disagrees with the
# injected clock, fails here. Only the built test binaries run under
# faketime: rustdoc and rustc are not made to run in a shifted time.
if ! command -v faketime >/dev/null 2>&1; then
    sudo_cmd=""
    if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
    $sudo_cmd apt-get update -qq
    $sudo_cmd apt-get install -y -qq faketime
fi
FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f '+400d' \
    cargo test --locked --no-fail-fast --lib --bins --test integration

step "the integration tests on MongoDB"
# Every test that starts the app gets a MongoDB database instead of a SQLite
# file (tests/integration/common/mongo.rs); the unit tests do not depend on
# the store, so they are not run again.
IDM_TEST_BACKEND=mongodb cargo test --locked --no-fail-fast --test integration

step "schemathesis: the live API against its OpenAPI description"
scripts/schemathesis.sh

step "browser end-to-end tests"
scripts/e2e.sh
