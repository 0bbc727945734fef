#!/bin/sh
# Analytics for a year by month at scale: the data of scripts/bench-segments.sh (members
# and skewed purchases over 500 days, some returned) plus signup dates spread over those
# days and one points movement per purchase, then `GET /programs/{id}/analytics` timed
# through a running `passfold serve` (first answer cold, then warm).
# Usage: ADMIN_URL=postgres://postgres@127.0.0.1:5432/postgres scripts/bench-analytics.sh
set -eu
ADMIN_URL=${ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DB=${BENCH_DB:-passfold_bench_analytics}
MEMBERS=${MEMBERS:-1000000}
PURCHASES=${PURCHASES:-10000000}
BIN=${BIN:-target/release/passfold}
AT=${AT:-2026-06-01T00:00:00Z}
PORT=${PORT:-18093}
URL=$(echo "$ADMIN_URL" | sed "s#/[^/]*\$#/$DB#")
psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
KEYS=$(DATABASE_URL=$URL RUST_LOG=warn $BIN merchant create --name Bench)
MID=$(echo "$KEYS" | python3 -c 'import json,sys; print(json.load(sys.stdin)["merchant_id"])')
KEY=$(echo "$KEYS" | python3 -c 'import json,sys; print(json.load(sys.stdin)["admin_key"])')
echo "filling: $MEMBERS members, $PURCHASES purchases"
psql -q -v ON_ERROR_STOP=1 "$URL" <<SQL
INSERT INTO programs (id, merchant_id, name, template_id, currency, points_per_unit, join_code, lifecycle)
VALUES (gen_random_uuid(), '$MID', 'Bench', 'loyalty-default', 'EUR', 10, 'benchjoin',
        '{"point_value": 1, "timezone": "Europe/Berlin"}');
CREATE TEMP TABLE n AS
SELECT i, gen_random_uuid() AS id FROM generate_series(1, $MEMBERS) i;
CREATE INDEX ON n (i);
INSERT INTO members (id, merchant_id, program_id, name, card_number, referral_code, created_at)
SELECT n.id, '$MID', (SELECT id FROM programs), 'Member ' || i, lpad(i::text, 16, '0'), 'b' || i,
       '$AT'::timestamptz - random() * interval '500 days' FROM n;
-- Skewed: a few members buy often, many rarely, some never.
INSERT INTO purchases (id, merchant_id, member_id, amount, currency, points_earned, purchased_at)
SELECT gen_random_uuid(), '$MID', n.id, 100 + (random() * 9900)::int, 'EUR', 0,
       '$AT'::timestamptz - random() * interval '500 days'
  FROM (SELECT 1 + floor(power(random(), 1.5) * $MEMBERS)::int AS i FROM generate_series(1, $PURCHASES)) g
  JOIN n USING (i);
UPDATE purchases SET refunded_amount = amount WHERE random() < 0.02;
UPDATE purchases SET refunded_amount = amount / 2 WHERE refunded_amount = 0 AND random() < 0.02;
INSERT INTO point_activities (id, merchant_id, member_id, type, delta, points_after, created_at, purchase_id)
SELECT gen_random_uuid(), '$MID', member_id, 'earn', amount / 10, 0, purchased_at, id FROM purchases;
UPDATE members m SET points = s.p FROM (SELECT member_id, sum(delta) AS p FROM point_activities GROUP BY 1) s
 WHERE s.member_id = m.id;
VACUUM ANALYZE;
SQL
PID_PROGRAM=$(psql -At "$URL" -c "SELECT id FROM programs")
DATABASE_URL=$URL PASSFOLD_BIND=127.0.0.1:$PORT RUST_LOG=warn $BIN serve >/dev/null 2>&1 &
SERVER=$!
trap 'kill $SERVER' EXIT
until curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null; do sleep 0.5; done
for run in cold warm warm; do
  curl -fs -o /dev/null -w "year by month ($run): %{time_total} s\n" -H "Authorization: Bearer $KEY" \
    "http://127.0.0.1:$PORT/api/v1/programs/$PID_PROGRAM/analytics?from=2025-06-01&to=2026-06-01&interval=month"
done
