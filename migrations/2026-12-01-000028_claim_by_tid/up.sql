-- The outbox is a queue: empty most of the time, then 100,000 rows after one template
-- change. PL/pgSQL keeps a generic plan once five runs have cost no more than it, so a
-- loop polling an empty queue fixed the plan of an empty table: 000027's claim joined its
-- batch back to the outbox by a nested loop over the whole queue (2,000 x 20,000
-- comparisons, 6 s a claim in benches/fanout.rs). The claim is now planned on every call,
-- for the queue as it is, and leases its rows by their tuple ids (a TID scan, no join);
-- the one-sender branch finds the passes already being sent with one scan instead of an
-- anti-join.
CREATE OR REPLACE FUNCTION passfold_claim(p_channel text, p_limit integer, p_lease double precision,
                               p_one_sender_per_pass boolean)
RETURNS TABLE (id bigint, merchant_id uuid, pass_id uuid, reason text,
               created_at timestamptz, attempts integer) AS $$
DECLARE
    v_now timestamptz := clock_timestamp();
    v_until timestamptz := clock_timestamp() + make_interval(secs => p_lease);
    v_passes uuid[];
    v_busy uuid[];
BEGIN
    IF NOT p_one_sender_per_pass THEN
        -- The rows stay locked by FOR UPDATE until this transaction ends, so their tuple
        -- ids cannot change before the update.
        RETURN QUERY
        UPDATE outbox o SET leased_until = v_until
         WHERE o.ctid = ANY (ARRAY(
                SELECT w.ctid FROM outbox w
                 WHERE w.channel = p_channel AND w.available_at <= v_now
                   AND (w.leased_until IS NULL OR w.leased_until <= v_now)
                 ORDER BY w.id LIMIT p_limit
                 FOR UPDATE SKIP LOCKED))
        RETURNING o.id, o.merchant_id, o.pass_id, o.reason, o.created_at, o.attempts;
        RETURN;
    END IF;
    -- A transaction lock per pass keeps two claims from taking one pass at once ...
    SELECT coalesce(array_agg(DISTINCT c.pass_id), '{}') INTO v_passes
      FROM (SELECT w.pass_id FROM outbox w
             WHERE w.channel = p_channel AND w.available_at <= v_now
               AND (w.leased_until IS NULL OR w.leased_until <= v_now)
             ORDER BY w.id LIMIT p_limit) c
     WHERE pg_try_advisory_xact_lock(hashtext('passfold.outbox.' || p_channel),
                                     hashtext(c.pass_id::text));
    -- ... and this statement, with a snapshot taken after the locks, sees every lease a
    -- claim committed before it: a pass with one is being sent, and is left alone.
    SELECT coalesce(array_agg(DISTINCT l.pass_id), '{}') INTO v_busy
      FROM outbox l
     WHERE l.channel = p_channel AND l.pass_id = ANY (v_passes)
       AND l.leased_until > clock_timestamp();
    RETURN QUERY
    UPDATE outbox o SET leased_until = v_until
     WHERE o.channel = p_channel AND o.pass_id = ANY (v_passes)
       AND NOT (o.pass_id = ANY (v_busy))
    RETURNING o.id, o.merchant_id, o.pass_id, o.reason, o.created_at, o.attempts;
END
$$ LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan;

-- A queue table churns: vacuum and analyse it after a thousand changed rows, not after a
-- fifth of whatever it held when last analysed.
ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
                        autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 1000);
