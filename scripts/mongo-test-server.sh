#!/usr/bin/env bash
# Starts a throwaway MongoDB wire-protocol server (NX-27017 from PyPI, data in
# memory) on a free loopback port for the test suite, and prints the
# variables the tests read:
#
#   eval "$(scripts/mongo-test-server.sh)"   # exports IDM_TEST_MONGODB_URI,
#                                            # IDM_TEST_MONGODB_PID
#   cargo test ...
#   kill "$IDM_TEST_MONGODB_PID"
#
# NX-27017 is installed into .venv/ on first use (idempotent). To test
# against a real MongoDB instead, skip this script and set
# IDM_TEST_MONGODB_URI=mongodb://user:pass@host:27017/?authSource=admin
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
server="$venv/bin/nx-27017"

if [[ ! -x "$server" ]]; then
    echo "installing nx-27017 into $venv" >&2
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet nx-27017 >&2
fi

# A free port: bind port 0 and read what the kernel picked.
port="$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
state="$(mktemp -d "${TMPDIR:-/tmp}/idm-nx27017.XXXXXX")"

# --data-dir memory: every logical database is its own in-memory store, so
# tests using different database names are isolated.
nohup "$server" --data-dir memory --host 127.0.0.1 -p "$port" \
    --log-file "$state/server.log" --pid-file "$state/server.pid" \
    >"$state/stdout.log" 2>&1 &
pid=$!

for _ in $(seq 1 100); do
    if "$venv/bin/python" -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then
        echo "export IDM_TEST_MONGODB_URI='mongodb://127.0.0.1:$port/?directConnection=true'"
        echo "export IDM_TEST_MONGODB_PID=$pid"
        echo "export IDM_TEST_NX27017='$server'"
        echo "NX-27017 listening on 127.0.0.1:$port (pid $pid, logs in $state)" >&2
        exit 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "NX-27017 exited early; see $state/stdout.log" >&2
        cat "$state/stdout.log" >&2
        exit 1
    fi
    sleep 0.1
done
echo "NX-27017 did not start listening within 10 s; see $state" >&2
kill "$pid" 2>/dev/null || true
exit 1
