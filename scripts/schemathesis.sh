#!/usr/bin/env bash
# Checks the live API against its own OpenAPI description with schemathesis:
# no 5xx, responses and status codes as documented, malformed input refused
# with 4xx, protected operations refusing requests without a token.
#
# Builds the debug binary, starts `idm serve` on a free port with a fresh data
# folder, seeds an admin (CLI), a non-admin user, a consented subject and a
# link (API), then runs schemathesis (PyPI, pinned, in .venv/) with an admin
# token. SCHEMATHESIS_MAX_EXAMPLES (default 100) bounds the run; SCHEMATHESIS_SEED
# (default 1) picks the examples. Extra arguments go to `schemathesis run`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

schemathesis_version="4.32.5"
max_examples="${SCHEMATHESIS_MAX_EXAMPLES:-100}"
seed="${SCHEMATHESIS_SEED:-1}"

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
if ! .venv/bin/schemathesis --version 2>/dev/null | grep -q "$schemathesis_version"; then
    .venv/bin/pip install --quiet "schemathesis==$schemathesis_version"
fi

cargo build --bin idm
idm="$root/target/debug/idm"

data_dir="$(mktemp -d)"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$data_dir"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
export IDM_DATA_DIR="$data_dir"
export IDM_PORT="$port"
export IDM_PUBLIC_URL="$base"
export IDM_MAIL_TRANSPORT=file
# schemathesis sends many wrong logins; the default limits would answer
# nearly everything with 429 after a few seconds.
export IDM_LOGIN_ACCOUNT_LIMIT=1000000
export IDM_LOGIN_IP_LIMIT=1000000
export IDM_LOGIN_ACCOUNT_CEILING=2000000
export IDM_LOG_LEVEL=warn

admin="admin@example.org"
admin_password="schemathesis admin password $RANDOM$RANDOM"
printf '%s\n' "$admin_password" | "$idm" user add "$admin" --admin --password-stdin >/dev/null

"$idm" serve >"$data_dir/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
    if curl -fsS "$base/healthz" >/dev/null 2>&1; then break; fi
    sleep 0.1
done
curl -fsS "$base/healthz" >/dev/null

json_field() { .venv/bin/python -c "import json, sys; print(json.load(sys.stdin)$1)"; }
api() { # METHOD PATH [BODY]
    curl -fsS -X "$1" "$base$2" -H "Authorization: JWT ${token:-}" \
        -H 'Content-Type: application/json' ${3:+--data "$3"}
}

token="$(curl -fsS "$base/auth" -H 'Content-Type: application/json' \
    --data "{\"username\":\"$admin\",\"password\":\"$admin_password\"}" | json_field "['access_token']")"
api POST /user '{"username":"staff@example.org","password":"schemathesis staff password","admin":false}' >/dev/null
api POST /subject '{"sssid":"S-0001","name":"Ada Lovelace","bday":"1980-12-10","email":"ada@example.org","date_consented":"2024-05-01T09:30:00Z"}' >/dev/null
link="$(api POST /subject/S-0001/links | json_field "['data']['_id']")"

export IDM_ST_SSSID="S-0001" IDM_ST_LINK="$link" IDM_ST_USER="staff@example.org"

export SCHEMATHESIS_HOOKS="$root/scripts/schemathesis_hooks.py"
run_schemathesis() {
    .venv/bin/schemathesis --config-file scripts/schemathesis.toml run "$base/openapi.json" \
        --header "Authorization: Bearer $token" \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection,ignored_auth,unsupported_method \
        --phases examples,coverage,fuzzing \
        --max-examples "$max_examples" \
        --workers 2 \
        --seed "$seed" \
        --no-color "$@"
}
status=0
# DELETE /user runs last, on its own: it deletes the seeded user that the
# other /user operations address.
echo "==> schemathesis: all operations but DELETE /user"
run_schemathesis --exclude-operation-id deleteUser "$@" || status=$?
echo "==> schemathesis: DELETE /user"
run_schemathesis --include-operation-id deleteUser "$@" || status=$?

if grep -q "internal error" "$data_dir/server.log"; then
    echo "the server logged internal errors:" >&2
    grep "internal error" "$data_dir/server.log" >&2
    status=1
fi
if [ "$status" -ne 0 ]; then
    echo "==> the last lines of the server log" >&2
    tail -n 40 "$data_dir/server.log" >&2
fi
exit "$status"
