#!/usr/bin/env bash
# Performance benchmark (issue 7). Builds release, and for each data size
# starts `idm serve` on loopback with a fresh store seeded with N subjects
# (each consented, with one issued link) and one admin, then drives each
# scenario with wrk and records requests/s, p50/p99, errors, the server's
# peak RSS and CPU. In the same run: baseline (a), a minimal axum server
# answering the same bytes as scenario 2 from memory, and baseline (b), the
# raw argon2id rate on all cores. Prints a table and writes it into
# BENCHMARKS.md (between the markers of the store it ran against).
#
# Settings (environment):
#   BENCH_SUBJECTS     data sizes, default "10000 100000"; other sizes
#                      (e.g. 1000000) are reported in their own section
#   BENCH_DURATION     seconds per scenario, default 10
#   BENCH_CONNECTIONS  connections per scenario, default 16
#   BENCH_DIR          work folder (data, logs, results), default target/bench
#   BENCH_CSV_ONLY     1: only the CSV figures (export, import, round trip),
#                      none of the wrk scenarios
#   IDM_DATABASE_URL   empty: SQLite (seeded on tmpfs, served from BENCH_DIR
#                      on disk); mongodb://... : that server, one fresh
#                      database per data size
# Only loopback is ever targeted; every wait below is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

subject_counts=${BENCH_SUBJECTS:-"10000 100000"}
duration=${BENCH_DURATION:-10}
connections=${BENCH_CONNECTIONS:-16}
wrk_threads=2
bench_dir=${BENCH_DIR:-$repo/target/bench}
database_url=${IDM_DATABASE_URL:-}
# Free loopback ports, so the run never talks to someone else's server.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
server_port=${BENCH_PORT:-$(free_port)}
baseline_port=$(free_port)
admin=bench-admin@example.org
admin_password=bench-Password-4711

step() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

case "$database_url" in
  "") store=sqlite ;;
  mongodb://* | mongodb+srv://*) store=mongodb ;;
  *) die "IDM_DATABASE_URL must be empty (SQLite) or a mongodb:// URL" ;;
esac

if ! command -v wrk >/dev/null; then
  step "installing wrk (Debian)"
  apt-get install -y wrk >/dev/null || die "cannot install wrk; install it and rerun"
fi
for tool in curl python3; do
  command -v "$tool" >/dev/null || die "$tool is needed"
done

step "building release"
build_json=$(cargo build --release --locked --bin idm --bench idm_bench --message-format=json)
# The executables as cargo reports them (CARGO_TARGET_DIR may move them).
executable() {
  printf '%s\n' "$build_json" | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == sys.argv[1] and m.get("executable"):
        print(m["executable"])' "$1"
}
idm_bin=$(executable idm)
bench_bin=$(executable idm_bench)
[ -x "$idm_bin" ] && [ -x "$bench_bin" ] || die "release build did not produce the binaries"

rm -rf "$bench_dir"
mkdir -p "$bench_dir"
results=$bench_dir/results.jsonl
: >"$results"

# Secrets for every process of the run (server, seeder, CLI).
export IDM_TOKEN_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export IDM_LINK_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export IDM_BIND=127.0.0.1 IDM_PORT=$server_port IDM_PUBLIC_URL=http://127.0.0.1:$server_port
export IDM_MAIL_TRANSPORT=none IDM_LOG_LEVEL=warn
# The benchmark logs in thousands of times from one address.
export IDM_LOGIN_IP_LIMIT=1000000 IDM_LOGIN_ACCOUNT_LIMIT=1000000 IDM_LOGIN_ACCOUNT_CEILING=2000000

record() { printf '%s\n' "$1" >>"$results"; }

step "baseline (b): argon2id verifications on all cores for ${duration} s"
record "$("$bench_bin" argon2 --seconds "$duration" | python3 -c '
import json, sys; d = json.load(sys.stdin); d["kind"] = "argon2"; print(json.dumps(d))')"

server_pid=
baseline_pid=
stop_servers() {
  for pid in $server_pid $baseline_pid; do
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
  server_pid= baseline_pid=
}
trap stop_servers EXIT

now_ms() { date +%s%3N; }

# Waits (at most 10 s) until process $3 answers GET on URL $1; prints the
# ms it took since $2.
wait_ready() {
  local url=$1 since=$2 pid=$3
  for _ in $(seq 2000); do
    kill -0 "$pid" 2>/dev/null || die "the server at $url exited; see its log"
    if curl -fs -o /dev/null "$url"; then echo $(($(now_ms) - since)); return; fi
    sleep 0.005
  done
  die "nothing answers at $url"
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
peak_rss_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
# Restarts the peak-RSS counter, so each scenario reports its own peak.
reset_peak_rss() { echo 5 >"/proc/$1/clear_refs" 2>/dev/null || true; }

# run_wrk NAME SCENARIO URL PID CONNECTIONS [VAR=value...]: one scenario, one JSON line.
run_wrk() {
  local name=$1 scenario=$2 url=$3 pid=$4 conns=$5
  shift 5
  reset_peak_rss "$pid"
  local ticks_before started out
  ticks_before=$(cpu_ticks "$pid")
  started=$(date +%s.%N)
  out=$(env BENCH_SCENARIO="$scenario" BENCH_THREADS=$wrk_threads "$@" \
    wrk -t$wrk_threads -c"$conns" -d"${duration}s" -s scripts/bench/scenario.lua "$url")
  python3 - "$name" "$subjects" "$store" "$(cpu_ticks "$pid")" "$ticks_before" "$started" \
    "$(date +%s.%N)" "$(peak_rss_kib "$pid")" "$(getconf CLK_TCK)" "$conns" "$out" <<'EOF' >>"$results"
import json, sys
name, subjects, store, t1, t0, s0, s1, rss, hz, conns, out = sys.argv[1:]
line = next(l for l in out.splitlines() if l.startswith("BENCH_JSON "))
d = json.loads(line[len("BENCH_JSON "):])
secs = d["duration_us"] / 1e6
d.update(kind="scenario", name=name, subjects=int(subjects), store=store,
         connections=int(conns), rps=d["requests"] / secs,
         cpu_pct=100 * (int(t1) - int(t0)) / int(hz) / (float(s1) - float(s0)),
         peak_rss_mb=int(rss) / 1024)
print(json.dumps(d))
EOF
  tail -n1 "$results" | python3 -c '
import json, sys; d = json.load(sys.stdin)
print("  %s: %.0f req/s, p50 %.2f ms, p99 %.2f ms, errors %d, RSS %.1f MB, CPU %.0f%%" % (
    d["name"], d["rps"], d["p50_us"] / 1000, d["p99_us"] / 1000, d["errors"], d["peak_rss_mb"], d["cpu_pct"]))' >&2
}

seconds_since() { python3 -c 'import sys, time; print(round(time.time() - float(sys.argv[1]), 3))' "$1"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# csv_figures BASE TOKEN DIR: (8) the whole list exported as CSV, its time
# and how far it raises the server's RSS above what it held before; (9)
# 10,000 new subjects (the export's first rows under new sssids) checked
# (dry run) and imported; (10) the export imported into a second server
# on an empty store and exported again, compared byte for byte.
csv_figures() {
  local base=$1 token=$2 dir=$3 auth
  auth="Authorization: JWT $2"
  reset_peak_rss "$server_pid"
  local before started
  before=$(rss_kib "$server_pid")
  started=$(date +%s.%N)
  curl -fs -m 300 -H "$auth" -o "$dir/export.csv" "$base/subject?format=csv"
  local export_s rows peak
  export_s=$(seconds_since "$started")
  peak=$(peak_rss_kib "$server_pid")
  rows=$(($(wc -l <"$dir/export.csv") - 1))
  record "{\"kind\":\"csv_export\",\"store\":\"$store\",\"subjects\":$subjects,\"rows\":$rows,\"seconds\":$export_s,\"rss_growth_mb\":$(((peak - before) / 1024))}"
  echo "  export: $rows rows in $export_s s, RSS +$(((peak - before) / 1024)) MB" >&2

  # New sssids for the first 10,000 rows: the import creates them all.
  python3 - "$dir/export.csv" "$dir/import.csv" <<'PY'
import sys
lines = open(sys.argv[1], newline="").read().split("\r\n")
out = [lines[0]] + ["IMP-" + line for line in lines[1:10001] if line]
open(sys.argv[2], "w", newline="").write("\r\n".join(out) + "\r\n")
PY
  local dry_s import_s imported
  started=$(date +%s.%N)
  curl -fs -m 300 -H "$auth" -H 'Content-Type: text/csv' --data-binary @"$dir/import.csv" \
    "$base/subject/import?dry_run=true" >"$dir/dry-run.json"
  dry_s=$(seconds_since "$started")
  started=$(date +%s.%N)
  curl -fs -m 600 -H "$auth" -H 'Content-Type: text/csv' --data-binary @"$dir/import.csv" \
    "$base/subject/import" >"$dir/import.json"
  import_s=$(seconds_since "$started")
  imported=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["data"]["imported"])' "$dir/import.json")
  record "{\"kind\":\"csv_import\",\"store\":\"$store\",\"subjects\":$subjects,\"rows\":$(($(wc -l <"$dir/import.csv") - 1)),\"imported\":$imported,\"dry_run_seconds\":$dry_s,\"seconds\":$import_s}"
  echo "  import of $(($(wc -l <"$dir/import.csv") - 1)) rows: dry run $dry_s s, import $import_s s ($imported imported)" >&2

  # The round trip, on a second server with an empty store.
  local port2 pid2 base2 token2 data2 round_s identical=false
  port2=$(free_port)
  data2=$dir/round-trip
  mkdir -p "$data2" && chmod 700 "$data2"
  local db_name=
  [ "$store" = mongodb ] && db_name=idm_bench_round_trip_${subjects}_$$
  printf '%s\n' "$admin_password" | env IDM_DATA_DIR="$data2" ${db_name:+IDM_DATABASE_NAME=$db_name} \
    "$idm_bin" user add "$admin" --admin --password-stdin >/dev/null
  env IDM_DATA_DIR="$data2" ${db_name:+IDM_DATABASE_NAME=$db_name} IDM_PORT="$port2" \
    IDM_PUBLIC_URL="http://127.0.0.1:$port2" "$idm_bin" serve >"$dir/round-trip.log" 2>&1 &
  pid2=$!
  baseline_pid=$pid2 # stopped with the servers
  base2=http://127.0.0.1:$port2
  wait_ready "$base2/" "$(now_ms)" "$pid2" >/dev/null
  token2=$(curl -fs -H 'Content-Type: application/json' \
    -d "{\"username\":\"$admin\",\"password\":\"$admin_password\"}" "$base2/auth" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
  # The first server's list without the 10,000 imported above.
  curl -fs -m 300 -H "$auth" -o "$dir/export.csv" "$base/subject?format=csv"
  grep -v '^IMP-' "$dir/export.csv" >"$dir/round-trip-in.csv"
  started=$(date +%s.%N)
  curl -fs -m 1800 -H "Authorization: JWT $token2" -H 'Content-Type: text/csv' \
    --data-binary @"$dir/round-trip-in.csv" "$base2/subject/import" >"$dir/round-trip.json"
  round_s=$(seconds_since "$started")
  curl -fs -m 300 -H "Authorization: JWT $token2" -o "$dir/round-trip-out.csv" "$base2/subject?format=csv"
  cmp -s "$dir/round-trip-in.csv" "$dir/round-trip-out.csv" && identical=true
  record "{\"kind\":\"csv_round_trip\",\"store\":\"$store\",\"subjects\":$subjects,\"rows\":$(($(wc -l <"$dir/round-trip-in.csv") - 1)),\"import_seconds\":$round_s,\"identical\":$identical}"
  echo "  round trip: imported in $round_s s into an empty store, byte-identical: $identical" >&2
  kill "$pid2"; wait "$pid2" 2>/dev/null || true; baseline_pid=
}

for subjects in $subject_counts; do
  run_dir=$bench_dir/$store-$subjects
  mkdir -p "$run_dir"
  export IDM_DATA_DIR=$run_dir/data
  # Enough fresh links that /establish never runs out within a scenario:
  # 60,000, spread over the first subjects.
  links_per_subject=$(((60000 + subjects - 1) / subjects))
  linked_subjects=$((subjects < 60000 ? subjects : 60000))
  step "$store, $subjects subjects: seeding"
  if [ "$store" = sqlite ]; then
    # Seeding writes one transaction per record; on tmpfs that takes
    # seconds instead of an fsync each. The server then runs on disk.
    seed_dir=$(mktemp -d /dev/shm/idm-bench-seed.XXXXXX 2>/dev/null || mktemp -d)
    IDM_DATABASE_URL=sqlite://$seed_dir/idm.sqlite3 "$bench_bin" seed \
      --subjects "$subjects" --links-per-subject "$links_per_subject" \
      --linked-subjects "$linked_subjects" --link-tokens "$run_dir/link-tokens.txt" >&2
    printf '%s\n' "$admin_password" | IDM_DATABASE_URL=sqlite://$seed_dir/idm.sqlite3 \
      "$idm_bin" user add "$admin" --admin --password-stdin >/dev/null
    mkdir -p "$IDM_DATA_DIR" && chmod 700 "$IDM_DATA_DIR"
    cp "$seed_dir"/idm.sqlite3* "$IDM_DATA_DIR"/
    rm -rf "$seed_dir"
    export IDM_DATABASE_URL=
  else
    export IDM_DATABASE_URL=$database_url IDM_DATABASE_NAME=idm_bench_${subjects}_$$
    "$bench_bin" seed --subjects "$subjects" --links-per-subject "$links_per_subject" \
      --linked-subjects "$linked_subjects" --link-tokens "$run_dir/link-tokens.txt" >&2
    printf '%s\n' "$admin_password" | "$idm_bin" user add "$admin" --admin --password-stdin >/dev/null
  fi
  sync

  step "$store, $subjects subjects: start-up"
  started=$(now_ms)
  "$idm_bin" serve >"$run_dir/server.log" 2>&1 &
  server_pid=$!
  startup_ms=$(wait_ready "http://127.0.0.1:$server_port/" "$started" "$server_pid")
  record "{\"kind\":\"startup\",\"store\":\"$store\",\"subjects\":$subjects,\"ms\":$startup_ms}"
  echo "  first answer after $startup_ms ms" >&2

  base=http://127.0.0.1:$server_port
  token=$(curl -fs -H 'Content-Type: application/json' \
    -d "{\"username\":\"$admin\",\"password\":\"$admin_password\"}" "$base/auth" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
  curl -fs -H "Authorization: JWT $token" "$base/subject/S000001" >"$run_dir/subject.json"
  # A browser session for the /users page: log in through the form.
  jar=$run_dir/cookies.txt
  csrf=$(curl -fs -c "$jar" -b "$jar" "$base/login" | sed -n 's/.*name="csrf-token" content="\([^"]*\)".*/\1/p')
  curl -fs -o /dev/null -c "$jar" -b "$jar" --data-urlencode "username=$admin" \
    --data-urlencode "password=$admin_password" --data-urlencode "csrf_token=$csrf" "$base/login"
  cookie=$(awk -F'\t' 'NF == 7 {printf "%s%s=%s", sep, $6, $7; sep="; "}' "$jar")

  if [ "${BENCH_CSV_ONLY:-}" != 1 ]; then
  step "$store, $subjects subjects: baseline (a), the same bytes from memory"
  "$bench_bin" baseline-server --port $baseline_port --body "$run_dir/subject.json" &
  baseline_pid=$!
  wait_ready "http://127.0.0.1:$baseline_port/subject/S000001" "$(now_ms)" "$baseline_pid" >/dev/null
  run_wrk "baseline (a): same bytes from memory" read "http://127.0.0.1:$baseline_port" \
    "$baseline_pid" "$connections" BENCH_SUBJECTS="$subjects"
  kill "$baseline_pid"; wait "$baseline_pid" 2>/dev/null || true; baseline_pid=

  step "$store, $subjects subjects: scenarios"
  common=(BENCH_SUBJECTS="$subjects" BENCH_TOKEN="$token")
  run_wrk "1 GET /" root "$base" "$server_pid" "$connections"
  run_wrk "2 GET /subject/<sssid>" read "$base" "$server_pid" "$connections" "${common[@]}"
  run_wrk "3 GET /subject?search=&perpage=50" search "$base" "$server_pid" "$connections" "${common[@]}"
  run_wrk "4 POST /subject" write "$base" "$server_pid" "$connections" "${common[@]}"
  # No lost write: every acknowledged create must be in the store.
  acknowledged=$(tail -n1 "$results" | python3 -c 'import json, sys; print(json.load(sys.stdin)["acknowledged_writes"])')
  # Counted page by page: past the count limit X-Total-Count is a lower
  # bound. A store too slow to answer (the Python test server at 100k)
  # leaves it unknown rather than ending the run.
  stored=$(python3 - "$base" "$token" <<'PY' || true
import json, sys, urllib.request
base, token = sys.argv[1:]
stored, offset = 0, 0
while True:
    request = urllib.request.Request(
        f"{base}/subject?search=WR-&perpage=500&offset={offset}",
        headers={"Authorization": f"JWT {token}"})
    page = json.load(urllib.request.urlopen(request, timeout=120))["data"]
    stored += len(page)
    offset += 500
    if len(page) < 500:
        break
print(stored)
PY
)
  record "{\"kind\":\"writes\",\"store\":\"$store\",\"subjects\":$subjects,\"acknowledged\":$acknowledged,\"stored\":${stored:-null}}"
  echo "  acknowledged $acknowledged writes, ${stored:-an unknown number (no count)} stored" >&2
  run_wrk "5 POST /auth" login "$base" "$server_pid" "$connections" \
    BENCH_USERNAME="$admin" BENCH_PASSWORD="$admin_password"
  run_wrk "6 GET /users (session)" users "$base" "$server_pid" "$connections" BENCH_COOKIE="$cookie"
  run_wrk "7 POST /establish" establish "$base" "$server_pid" "$connections" \
    BENCH_LINK_TOKENS="$run_dir/link-tokens.txt"

  # Logins saturating the hash pool while reads go on: run both at once.
  BENCH_SCENARIO=login BENCH_THREADS=1 BENCH_USERNAME="$admin" BENCH_PASSWORD="$admin_password" \
    wrk -t1 -c8 -d"$((duration + 2))s" -s scripts/bench/scenario.lua "$base" >"$run_dir/logins-during-reads.txt" &
  logins_pid=$!
  sleep 1
  run_wrk "2 during 5: reads while logins saturate the hashes" read "$base" "$server_pid" "$connections" "${common[@]}"
  wait "$logins_pid" || true
  fi

  step "$store, $subjects subjects: CSV export, import, round trip"
  csv_figures "$base" "$token" "$run_dir"

  stop_servers
done

step "report"
# The default sizes fill the store's section of BENCHMARKS.md; others their
# own (e.g. sqlite-1000000), so a run at a million keeps the smaller ones.
section=$store
[ "$subject_counts" = "10000 100000" ] || section=$store-$(printf '%s' "$subject_counts" | tr -s ' ' '+')
python3 scripts/bench/report.py "$results" "$store" "$connections" "$duration" "$section"
