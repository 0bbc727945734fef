#!/usr/bin/env bash
# Schema-driven fuzzing of the HTTP API with schemathesis: starts the debug build against a
# fresh database on the local PostgreSQL server, runs every check once with an admin key and
# once with a pos key, then stops the service and drops the database.
#
#   cargo build && scripts/fuzz-api.sh            # defaults below
#   FUZZ_MAX_EXAMPLES=50 scripts/fuzz-api.sh -- --phases=coverage,fuzzing
#
# Environment: PG_SERVER_URL (server to create the database on, default
# postgres://postgres@127.0.0.1:5432), PASSFOLD_BIN (default target/debug/passfold),
# FUZZ_MAX_EXAMPLES (per operation, default 30), FUZZ_REPORT_DIR (default target/fuzz).
# Arguments after `--` go to `schemathesis run`. Exits non-zero when either run fails.
set -euo pipefail

cd "$(dirname "$0")/.."
server=${PG_SERVER_URL:-postgres://postgres@127.0.0.1:5432}
bin=${PASSFOLD_BIN:-target/debug/passfold}
examples=${FUZZ_MAX_EXAMPLES:-30}
reports=${FUZZ_REPORT_DIR:-target/fuzz}
extra=()
if [[ ${1:-} == "--" ]]; then shift; extra=("$@"); fi

command -v schemathesis >/dev/null || { echo "schemathesis is not installed (pip install schemathesis)" >&2; exit 2; }
command -v psql >/dev/null || { echo "psql is needed to create the database" >&2; exit 2; }
[[ -x $bin ]] || { echo "$bin is missing: run cargo build first" >&2; exit 2; }

db="passfold_fuzz_$$_$RANDOM"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$reports"
reports=$(cd "$reports" && pwd)
log="$reports/service.log"
pid=""
keys_pid=""

cleanup() {
    if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    if [[ -n $keys_pid ]]; then kill "$keys_pid" 2>/dev/null || true; wait "$keys_pid" 2>/dev/null || true; fi
    psql -q "$server/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null || true
}
trap cleanup EXIT

psql -q "$server/postgres" -c "CREATE DATABASE $db" >/dev/null
export DATABASE_URL="$server/$db"
export PASSFOLD_BIND="127.0.0.1:$port"
export PASSFOLD_DATA_DIR="$reports/data"
export PASSFOLD_LOG_FORMAT=${PASSFOLD_LOG_FORMAT:-json}
# Google's callback signing keys come from a loopback stand-in with no keys (every callback
# is then refused with 401), not from the internet.
mkdir -p "$reports/google"
echo '{"keys": []}' >"$reports/google/keys"
keys_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server "$keys_port" --bind 127.0.0.1 --directory "$reports/google" >/dev/null 2>&1 &
keys_pid=$!
export GOOGLE_CALLBACK_KEYS_URL="http://127.0.0.1:$keys_port/keys"
export APNS_URL=${APNS_URL:-https://127.0.0.1:9}
export GOOGLE_WALLET_API_URL=${GOOGLE_WALLET_API_URL:-http://127.0.0.1:9}
export GOOGLE_OAUTH_TOKEN_URL=${GOOGLE_OAUTH_TOKEN_URL:-http://127.0.0.1:9/token}

"$bin" serve >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { echo "the service exited; see $log" >&2; exit 1; }
    sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/openapi.json" -o "$reports/openapi.json"
keys=$("$bin" merchant create --name "Fuzz")
admin=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["admin_key"])' "$keys")
pos=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["pos_key"])' "$keys")

status=0
for who in admin pos; do
    key=$admin; [[ $who == pos ]] && key=$pos
    echo "=== schemathesis with the $who key ==="
    # From the report folder: schemathesis keeps its state in ./.schemathesis.
    (cd "$reports" && schemathesis run "http://127.0.0.1:$port/openapi.json" \
        --header "Authorization: Bearer $key" \
        --checks all \
        --max-examples "$examples" \
        --workers 2 \
        --generation-database none \
        --no-color \
        --report junit --report-junit-path "$reports/$who.xml" \
        ${extra[@]+"${extra[@]}"}) || status=$?
done
echo "service log: $log"
exit $status
