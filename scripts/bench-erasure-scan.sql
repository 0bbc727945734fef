-- The erasure's scan of a merchant's webhook messages (privacy::erasure::wipe_copies), on
-- 1,000,000 messages of which 10 name the member. Run against a server of your own:
--   psql "$DATABASE_URL" -f scripts/bench-erasure-scan.sql
-- It creates and drops the database privacy_scan_bench; the UPDATE is rolled back.
\timing on
DROP DATABASE IF EXISTS privacy_scan_bench;
CREATE DATABASE privacy_scan_bench;
\c privacy_scan_bench
CREATE TABLE webhook_messages (merchant_id uuid NOT NULL, id text NOT NULL, type text NOT NULL, data jsonb NOT NULL, created_at timestamptz NOT NULL, seq bigserial NOT NULL, PRIMARY KEY (merchant_id, id));
CREATE INDEX webhook_messages_since_idx ON webhook_messages (merchant_id, created_at, seq);
INSERT INTO webhook_messages (merchant_id, id, type, data, created_at)
SELECT '11111111-1111-1111-1111-111111111111', 'msg_' || g, 'points.changed',
       jsonb_build_object('member_id', md5((g % 100000)::text)::uuid, 'activity_id', gen_random_uuid(), 'activity_type', 'earn', 'delta', 10, 'points', 100, 'reason', 'welcome points', 'purchase_id', null, 'tier', 'Bronze'),
       now()
  FROM generate_series(1, 1000000) g;
VACUUM ANALYZE webhook_messages;
-- the erasure's statement for one member (10 messages of 1,000,000)
BEGIN;
UPDATE webhook_messages w SET data = w.data || (SELECT coalesce(jsonb_object_agg(k, 'null'::jsonb), '{}'::jsonb) FROM jsonb_object_keys(w.data) k WHERE k = ANY(ARRAY['name','email','phone','external_id','card_number','birth_date','reason']))
 WHERE w.merchant_id = '11111111-1111-1111-1111-111111111111'
   AND (w.data->>'member_id' = md5('42')::uuid::text OR (w.type LIKE 'member.%' AND w.data->>'id' = md5('42')::uuid::text));
ROLLBACK;
\c postgres
DROP DATABASE privacy_scan_bench;
