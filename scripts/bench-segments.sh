#!/bin/sh
# The full segments recompute at scale: `passfold worker --once --at` (cut points, then
# members in batches of 20,000, a transaction each) against the same work as two single
# statements run by psql on the same server and data (scripts/segments_sql.py).
# Usage: ADMIN_URL=postgres://postgres@127.0.0.1:5432/postgres scripts/bench-segments.sh
set -eu
ADMIN_URL=${ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DB=${BENCH_DB:-passfold_bench_segments}
MEMBERS=${MEMBERS:-1000000}
PURCHASES=${PURCHASES:-10000000}
BIN=${BIN:-target/release/passfold}
AT=${AT:-2026-06-01T00:00:00Z}
URL=$(echo "$ADMIN_URL" | sed "s#/[^/]*\$#/$DB#")
psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
MID=$(DATABASE_URL=$URL RUST_LOG=warn $BIN merchant create --name Bench | python3 -c 'import json,sys; print(json.load(sys.stdin)["merchant_id"])')
echo "filling: $MEMBERS members, $PURCHASES purchases"
psql -q -v ON_ERROR_STOP=1 "$URL" <<SQL
INSERT INTO programs (id, merchant_id, name, template_id, currency, points_per_unit, join_code)
VALUES (gen_random_uuid(), '$MID', 'Bench', 'loyalty-default', 'EUR', 10, 'benchjoin');
CREATE TEMP TABLE n AS
SELECT i, gen_random_uuid() AS id FROM generate_series(1, $MEMBERS) i;
CREATE INDEX ON n (i);
INSERT INTO members (id, merchant_id, program_id, name, card_number, referral_code)
SELECT n.id, '$MID', (SELECT id FROM programs), 'Member ' || i, lpad(i::text, 16, '0'), 'b' || i FROM n;
-- Skewed: a few members buy often, many rarely, some never.
INSERT INTO purchases (id, merchant_id, member_id, amount, currency, points_earned, purchased_at)
SELECT gen_random_uuid(), '$MID', n.id, 100 + (random() * 9900)::int, 'EUR', 0,
       '$AT'::timestamptz - random() * interval '500 days'
  FROM (SELECT 1 + floor(power(random(), 1.5) * $MEMBERS)::int AS i FROM generate_series(1, $PURCHASES)) g
  JOIN n USING (i);
UPDATE purchases SET refunded_amount = amount WHERE random() < 0.02;
UPDATE purchases SET refunded_amount = amount / 2 WHERE refunded_amount = 0 AND random() < 0.02;
VACUUM ANALYZE;
SQL
echo "worker --once (empty segments):"
T0=$(date +%s.%N)
DATABASE_URL=$URL RUST_LOG=warn $BIN worker --once --at "$AT" >/dev/null 2>&1
T1=$(date +%s.%N)
echo "worker: $(echo "$T1 - $T0" | bc) s"
psql -q "$URL" <<SQL
ALTER TABLE member_stage_changes DISABLE TRIGGER member_stage_changes_append_only;
TRUNCATE member_segments, member_stage_changes, program_rfm;
ALTER TABLE member_stage_changes ENABLE TRIGGER member_stage_changes_append_only;
VACUUM ANALYZE member_segments;
SQL
DIR=$(dirname "$0")
{ printf '%s\n' '\timing on'; echo 'SET statement_timeout = 0;'; python3 "$DIR/segments_sql.py" th "$AT"; python3 "$DIR/segments_sql.py" mem "$AT"; } \
  | psql "$URL" | grep -E '^Time|written|^ +[0-9]'
psql -q "$URL" -c "SELECT stage, count(*) FROM member_segments GROUP BY 1 ORDER BY 1"
