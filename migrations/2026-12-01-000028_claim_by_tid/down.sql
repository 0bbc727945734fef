-- Back to 000027's claim and the default autovacuum settings.
ALTER TABLE outbox RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold,
                          autovacuum_analyze_scale_factor, autovacuum_analyze_threshold);
CREATE OR REPLACE FUNCTION passfold_claim(p_channel text, p_limit integer, p_lease double precision,
                               p_one_sender_per_pass boolean)
RETURNS TABLE (id bigint, merchant_id uuid, pass_id uuid, reason text,
               created_at timestamptz, attempts integer) AS $$
DECLARE
    v_now timestamptz := clock_timestamp();
    v_until timestamptz := clock_timestamp() + make_interval(secs => p_lease);
    v_passes uuid[];
BEGIN
    IF NOT p_one_sender_per_pass THEN
        RETURN QUERY
        WITH c AS MATERIALIZED (
            SELECT w.id FROM outbox w
             WHERE w.channel = p_channel AND w.available_at <= v_now
               AND (w.leased_until IS NULL OR w.leased_until <= v_now)
             ORDER BY w.id LIMIT p_limit
             FOR UPDATE SKIP LOCKED
        )
        UPDATE outbox o SET leased_until = v_until
          FROM c WHERE o.id = c.id
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
    RETURN QUERY
    UPDATE outbox o SET leased_until = v_until
     WHERE o.channel = p_channel AND o.pass_id = ANY (v_passes)
       AND NOT EXISTS (SELECT 1 FROM outbox l
                        WHERE l.channel = p_channel AND l.pass_id = o.pass_id
                          AND l.leased_until > clock_timestamp())
    RETURNING o.id, o.merchant_id, o.pass_id, o.reason, o.created_at, o.attempts;
END
$$ LANGUAGE plpgsql;
