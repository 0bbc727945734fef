DROP FUNCTION passfold_claim(text, integer, double precision, boolean);
CREATE FUNCTION passfold_claim(p_channel text, p_limit integer, p_lease double precision,
                               p_one_sender_per_pass boolean)
RETURNS TABLE (id bigint, merchant_id uuid, pass_id uuid, reason text,
               created_at timestamptz, attempts integer, message_id text) AS $$
DECLARE
    v_now timestamptz := clock_timestamp();
    v_until timestamptz := clock_timestamp() + make_interval(secs => p_lease);
    v_passes uuid[];
    v_busy uuid[];
BEGIN
    IF p_channel = 'webhook' THEN
        SELECT coalesce(array_agg(e.endpoint_id), '{}') INTO v_passes
          FROM (SELECT DISTINCT w.endpoint_id FROM outbox w
                 WHERE w.channel = 'webhook' AND w.available_at <= v_now
                   AND (w.leased_until IS NULL OR w.leased_until <= v_now)
                   -- Endpoints being sent to or waiting for a retry are passed over here,
                   -- so that they cannot fill the limit and starve the others.
                   AND NOT EXISTS (SELECT 1 FROM outbox b
                                    WHERE b.endpoint_id = w.endpoint_id
                                      AND (b.available_at > v_now OR b.leased_until > v_now))
                 LIMIT p_limit) e
         WHERE pg_try_advisory_xact_lock(hashtext('passfold.outbox.webhook'),
                                         hashtext(e.endpoint_id::text));
        -- Taken by another sender, or held back by a message waiting for its retry.
        SELECT coalesce(array_agg(DISTINCT l.endpoint_id), '{}') INTO v_busy
          FROM outbox l
         WHERE l.endpoint_id = ANY (v_passes)
           AND (l.leased_until > clock_timestamp() OR l.available_at > v_now);
        -- At most 50 messages of an endpoint at once: they are sent one after another.
        RETURN QUERY
        UPDATE outbox o SET leased_until = v_until
         WHERE o.id = ANY (ARRAY(
                SELECT r.id FROM (
                    SELECT w.id, row_number() OVER (PARTITION BY w.endpoint_id ORDER BY w.id) AS n
                      FROM outbox w
                     WHERE w.endpoint_id = ANY (v_passes) AND NOT (w.endpoint_id = ANY (v_busy))) r
                 WHERE r.n <= 50))
        RETURNING o.id, o.merchant_id, o.endpoint_id, o.reason, o.created_at, o.attempts,
                  o.message_id;
        RETURN;
    END IF;
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
        RETURNING o.id, o.merchant_id, o.pass_id, o.reason, o.created_at, o.attempts,
                  NULL::text;
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
    RETURNING o.id, o.merchant_id, o.pass_id, o.reason, o.created_at, o.attempts, NULL::text;
END
$$ LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan;
