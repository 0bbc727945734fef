#!/usr/bin/env bash
# Gift-card redemptions over HTTP against pgbench running a transaction of the same shape
# (one conditional UPDATE and three INSERTs: activity, idempotency record, outbox) on the
# same PostgreSQL server, in the same script.
#
#   bash benches/redeem.sh            (needs wrk: apt-get install wrk)
#   SERVERS=2 bash benches/redeem.sh  (two `passfold serve` processes on the one database,
#                                      the clients split between them; maximum rate only)
#
#   BIN=/path/to/passfold bash benches/redeem.sh  (an already built binary, no build; a
#                                      binary from before the rename works too: its
#                                      variables and database names follow its file name)
#   PERF_OUT=/tmp/x.data bash benches/redeem.sh   (`perf record -g` on the server during the
#                                      maximum-rate run)
#
# Runs a release `passfold serve` on its own private cluster in a temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 1; }
if [ -z "${BIN:-}" ]; then
  cargo build --release -q
  BIN=$PWD/target/release/passfold
fi
# A binary from before the project's rename reads <ITS NAME>_* and names its database and
# PostgreSQL user after itself.
NAME=$(basename "$BIN")
ENVP=$(echo "$NAME" | tr a-z A-Z)
PGBIN=$(pg_config --bindir 2>/dev/null || ls -d /usr/lib/postgresql/*/bin | tail -n1)
WORK=$(mktemp -d)
chmod 755 "$WORK"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DATA_DIR=$WORK/data
export "${ENVP}_DATA_DIR=$DATA_DIR" "${ENVP}_BIND=127.0.0.1:$PORT" RUST_LOG=warn "${ENVP}_DB_POOL_SIZE=${POOL:-16}"
unset DATABASE_URL
CLIENTS=${CLIENTS:-32}
CARDS=${CARDS:-1000}
DURATION=${DURATION:-10s}

SERVERS=${SERVERS:-1}
"$BIN" serve 2>"$WORK/serve.log" &
PID=$!
PIDS=$PID
trap 'kill $PIDS 2>/dev/null; wait $PIDS 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
PORTS=$PORT
if [ "$SERVERS" = 2 ]; then
  PORT2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  env "${ENVP}_BIND=127.0.0.1:$PORT2" "$BIN" serve 2>"$WORK/serve2.log" &
  PIDS="$PIDS $!"
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$PORT2/readyz" >/dev/null && break; sleep 0.2; done
  PORTS="$PORT $PORT2"
fi
KEYS=$("$BIN" merchant create --name "Bench" 2>/dev/null)
ADMIN=$(echo "$KEYS" | python3 -c 'import json,sys; print(json.load(sys.stdin)["admin_key"])')
POS=$(echo "$KEYS" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pos_key"])')
python3 - "$PORT" "$ADMIN" "$CARDS" > "$WORK/gans" <<'PY'
import json, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor
port, key, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def issue(i):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/gift-cards", method="POST",
        data=json.dumps({"template": "gift-card-default", "currency": "EUR", "initial_balance": 100000000}).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)["gan"]
with ThreadPoolExecutor(8) as pool:
    for gan in pool.map(issue, range(n)):
        print(gan)
PY

cat > "$WORK/redeem.lua" <<'LUA'
-- Every request carries a fresh Idempotency-Key: unique per run (RUN), per thread and per
-- request, so no request is a replay (LuaJIT's unseeded math.random repeats itself).
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local gans = {}
for line in io.lines(os.getenv("GANS")) do gans[#gans + 1] = line end
local hot = os.getenv("HOT") == "1"
local pause = tonumber(os.getenv("PAUSE_MS") or "0")
local counter = 0
local tag
function init(args)
  math.randomseed(os.time() * 1000 + tid)
  tag = os.getenv("RUN") .. "-" .. os.time() .. "-" .. tid
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("POS")
wrk.body = '{"amount": 1, "currency": "EUR"}'
request = function()
  counter = counter + 1
  local gan = hot and gans[1] or gans[math.random(1, #gans)]
  wrk.headers["Idempotency-Key"] = tag .. "-" .. counter
  return wrk.format(nil, "/api/v1/gift-cards/" .. gan .. "/redeem")
end
delay = function() return pause end
LUA
export GANS=$WORK/gans POS
# CPU seconds used so far by the server and by the cluster's processes (postmaster and its
# children, the postmaster's counting its ended children too), in clock ticks: the cost per
# redemption, which other load on the machine changes far less than it changes rates.
ticks() { awk '{s += $14 + $15} END {print s + 0}' "/proc/$1/stat" 2>/dev/null || echo 0; }
pg_ticks() {
  local pm
  pm=$(sed -n 1p "$DATA_DIR/postgres/data/postmaster.pid")
  { awk '{print $14 + $15 + $16 + $17}' "/proc/$pm/stat"; pgrep -P "$pm" | while read -r p; do ticks "$p"; done; } |
    awk '{s += $1} END {print s + 0}'
}
rate() { grep 'Requests/sec' | awk '{print $2}'; }
p99() { grep -E '^ +99%' | awk '{print $2}'; }
non2xx() { grep -E 'Non-2xx' | awk '{print $NF}' || true; }

# Warm up, then the maximum rate on random cards (with two servers: the clients split
# between them, two wrk processes at once, their rates added).
RUN=warmup wrk -t2 -c"$CLIENTS" -d3s -s "$WORK/redeem.lua" "http://127.0.0.1:$PORT" >/dev/null
if [ "$SERVERS" = 2 ]; then
  WRKS=""
  for p in $PORTS; do
    RUN=max-$p wrk -t1 -c"$((CLIENTS / 2))" -d"$DURATION" --latency -s "$WORK/redeem.lua" "http://127.0.0.1:$p" > "$WORK/max-$p.txt" &
    WRKS="$WRKS $!"
  done
  wait $WRKS
  cat "$WORK"/max-*.txt > "$WORK/max.txt"
  MAX=$(rate < "$WORK/max.txt" | awk '{s += $1} END {print s}')
  echo "passfold redemptions over 2 serve processes, $CLIENTS clients, random cards: $MAX req/s (p99 per server: $(p99 < "$WORK/max.txt" | tr '\n' ' '))"
else
  if [ -n "${PERF_OUT:-}" ]; then
    /usr/bin/perf record -g -p "$PID" -o "$PERF_OUT" -- sleep "${DURATION%s}" 2>/dev/null &
    PERFPID=$!
  fi
  SRV0=$(ticks "$PID") PG0=$(pg_ticks)
  RUN=max wrk -t2 -c"$CLIENTS" -d"$DURATION" --latency -s "$WORK/redeem.lua" "http://127.0.0.1:$PORT" > "$WORK/max.txt"
  SRV1=$(ticks "$PID") PG1=$(pg_ticks)
  [ -n "${PERF_OUT:-}" ] && wait "$PERFPID"
  MAX=$(rate < "$WORK/max.txt")
  echo "$NAME redemptions, $CLIENTS clients, random cards: $MAX req/s (p99 $(p99 < "$WORK/max.txt"), non-2xx: $(non2xx < "$WORK/max.txt"))"
  N=$(grep -E 'requests in' "$WORK/max.txt" | awk '{print $1}')
  HZ=$(getconf CLK_TCK)
  python3 -c "print(f'CPU per redemption: server {($SRV1-$SRV0)/$HZ/$N*1e6:.0f} us, PostgreSQL {($PG1-$PG0)/$HZ/$N*1e6:.0f} us')"
fi

if [ "$SERVERS" = 1 ]; then
# Half of that rate: each connection pauses so that together they offer MAX/2.
PAUSE=$(python3 -c "print(max(1, int($CLIENTS * 1000 / ($MAX / 2))))")
RUN=half PAUSE_MS=$PAUSE wrk -t2 -c"$CLIENTS" -d"$DURATION" --latency -s "$WORK/redeem.lua" "http://127.0.0.1:$PORT" > "$WORK/half.txt"
echo "at half rate ($(rate < "$WORK/half.txt") req/s offered by $CLIENTS clients pausing ${PAUSE} ms): p99 $(p99 < "$WORK/half.txt") (target < 25ms)"

RUN=hot HOT=1 wrk -t2 -c"$CLIENTS" -d"$DURATION" --latency -s "$WORK/redeem.lua" "http://127.0.0.1:$PORT" > "$WORK/hot.txt"
echo "hot card (all $CLIENTS clients on one card): $(rate < "$WORK/hot.txt") req/s (p99 $(p99 < "$WORK/hot.txt"))"
fi

# pgbench on the same server: the private cluster's port and password.
PGPORT=$(sed -n 4p "$DATA_DIR/postgres/data/postmaster.pid")
export PGPASSWORD=$(cat "$DATA_DIR/postgres.password") PGHOST=127.0.0.1 PGPORT PGUSER=$NAME
"$PGBIN/psql" -q -d postgres -c "DROP DATABASE IF EXISTS pgbench_shape" -c "CREATE DATABASE pgbench_shape"
"$PGBIN/psql" -q -d pgbench_shape <<SQL
CREATE TABLE cards (id int PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0));
INSERT INTO cards SELECT g, 100000000 FROM generate_series(1, $CARDS) g;
CREATE TABLE activities (id uuid PRIMARY KEY, card_id int NOT NULL, amount bigint, balance_after bigint, created_at timestamptz DEFAULT now());
CREATE TABLE idem (merchant uuid, key text, fingerprint bytea, status smallint, body bytea, PRIMARY KEY (merchant, key));
CREATE TABLE outbox (id bigserial PRIMARY KEY, pass_id uuid, reason text, created_at timestamptz DEFAULT now());
SQL
cat > "$WORK/shape.sql" <<SQL
\set id random(1, $CARDS)
BEGIN;
UPDATE cards SET balance = balance - 1 WHERE id = :id AND balance >= 1;
INSERT INTO activities (id, card_id, amount, balance_after) VALUES (gen_random_uuid(), :id, -1, 0);
INSERT INTO idem VALUES ('00000000-0000-0000-0000-000000000001', md5(random()::text), '\x00', 200, '\x7b7d');
INSERT INTO outbox (pass_id, reason) VALUES (gen_random_uuid(), 'redeem');
END;
SQL
PGB0=$(pg_ticks)
"$PGBIN/pgbench" -n -c "$CLIENTS" -j 2 -T "${DURATION%s}" -f "$WORK/shape.sql" pgbench_shape > "$WORK/pgbench.txt" 2>&1
PGB1=$(pg_ticks)
PGB=$(grep -E '^tps' "$WORK/pgbench.txt" | head -n1 | awk '{print $3}')
PGBN=$(grep -E 'transactions actually processed' "$WORK/pgbench.txt" | awk '{print $NF}' | cut -d/ -f1)
echo "pgbench, same transaction shape, $CLIENTS clients: $PGB tps (PostgreSQL CPU per transaction: $(python3 -c "print(f'{($PGB1-$PGB0)/$(getconf CLK_TCK)/$PGBN*1e6:.0f}')") us)"
# Sanity: every answered request was a real redemption, none a replay.
SENT=$(cat "$WORK"/max.txt "$WORK"/half.txt "$WORK"/hot.txt 2>/dev/null | grep -E 'requests in' | awk '{s += $1} END {print s}')
DONE=$("$PGBIN/psql" -tA -d "$NAME" -c "SELECT count(*) FROM gift_card_activities WHERE type = 'redeem'")
echo "redemptions recorded: $DONE (answered in the measured runs: $SENT, plus the warm-up)"
python3 -c "print(f'ratio $NAME/pgbench: {$MAX/$PGB:.2f} (target >= 0.5)')"
