#!/usr/bin/env bash
# Pass downloads over HTTP: fresh builds vs re-downloads of unchanged passes (cached bytes
# and 304), and the server's resident memory after issuing 10,000 passes.
#
#   bash benches/pass_downloads.sh            (needs wrk: apt-get install wrk)
#
# Runs a release `passfold serve` on its own private cluster in a temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 1; }
cargo build --release -q
BIN=$PWD/target/release/passfold
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export PASSFOLD_DATA_DIR=$WORK/data PASSFOLD_BIND=127.0.0.1:$PORT RUST_LOG=warn
unset DATABASE_URL
N=${N:-10000}
DURATION=${DURATION:-5s}

"$BIN" serve 2>"$WORK/serve.log" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
ADMIN=$("$BIN" merchant create --name "Bench" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["admin_key"])')

rss() { awk '/VmRSS/ {printf "%.1f", $2/1024}' /proc/$PID/status; }
echo "resident memory after start: $(rss) MB"

# Issue N gift cards (each with its pass) and collect their download paths.
python3 - "$PORT" "$ADMIN" "$N" > "$WORK/urls" <<'PY'
import json, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor
port, key, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def issue(i):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/gift-cards", method="POST",
        data=json.dumps({"template": "gift-card-default", "currency": "EUR", "initial_balance": 1000 + i}).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)["apple_pass_url"].split(str(port), 1)[1]
with ThreadPoolExecutor(8) as pool:
    for path in pool.map(issue, range(n)):
        print(path)
PY
echo "issued $(wc -l < "$WORK/urls") gift cards with passes; resident memory: $(rss) MB"

cat > "$WORK/paths.lua" <<'LUA'
local paths = {}
for line in io.lines(os.getenv("PATHS")) do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i + 1
  if i > #paths then i = 1 end
  return wrk.format("GET", paths[i], { ["If-None-Match"] = os.getenv("ETAG") })
end
LUA

rate() { grep 'Requests/sec' | awk '{print $2}'; }
# Fresh: every request a pass never downloaded before (one wrk thread walks the list once).
# Short enough that the list (N passes) is not used up, so no request is served from cache.
FRESH=$(PATHS=$WORK/urls ETAG= wrk -t1 -c16 -d"${FRESH_DURATION:-2s}" -s "$WORK/paths.lua" "http://127.0.0.1:$PORT" | tee "$WORK/fresh.txt" | rate)
echo "fresh builds:            $FRESH req/s   (resident memory now $(rss) MB)"
head -n 1000 "$WORK/urls" > "$WORK/hot"
PATHS=$WORK/hot ETAG= wrk -t1 -c16 -d2s -s "$WORK/paths.lua" "http://127.0.0.1:$PORT" >/dev/null
CACHED=$(PATHS=$WORK/hot ETAG= wrk -t2 -c16 -d"$DURATION" -s "$WORK/paths.lua" "http://127.0.0.1:$PORT" | rate)
echo "re-download, same bytes: $CACHED req/s"
ONE=$(head -n 1 "$WORK/urls")
TAG=$(curl -si "http://127.0.0.1:$PORT$ONE" | LC_ALL=C awk -F': ' 'tolower($1)=="etag" {print $2}' | tr -d '\r')
head -n 1 "$WORK/urls" > "$WORK/one"
NOTMOD=$(PATHS=$WORK/one ETAG=$TAG wrk -t1 -c16 -d"$DURATION" -s "$WORK/paths.lua" "http://127.0.0.1:$PORT" | rate)
echo "re-download, 304:        $NOTMOD req/s"
python3 -c "print(f'ratio cached/fresh: {$CACHED/$FRESH:.1f}  ratio 304/fresh: {$NOTMOD/$FRESH:.1f}  (target >= 20)')"
echo "resident memory at the end: $(rss) MB (target < 150 MB)"
