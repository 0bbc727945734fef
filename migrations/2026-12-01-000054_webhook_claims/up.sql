-- The webhook channel's claim looked at every queued message of every endpoint (a
-- NOT EXISTS per message over the endpoint's messages): with 20,000 messages queued for one
-- endpoint it ran past the statement timeout and nothing was delivered. Now it judges each
-- endpoint by its oldest message, found by index. The other channels' claims are as before.
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
        -- An endpoint's messages go in order and a claim leases a prefix of them, so the
        -- oldest message says what the endpoint is doing: leased (being sent), waiting for
        -- its retry, or due. Each endpoint is found by one index probe (a loose scan of
        -- outbox_webhook_endpoint_idx) and judged by its oldest row: the cost follows the
        -- number of endpoints, not of queued messages.
        WITH RECURSIVE ep AS (
            (SELECT w.endpoint_id FROM outbox w WHERE w.endpoint_id IS NOT NULL
              ORDER BY w.endpoint_id LIMIT 1)
            UNION ALL
            SELECT (SELECT w.endpoint_id FROM outbox w
                     WHERE w.endpoint_id > ep.endpoint_id
                     ORDER BY w.endpoint_id LIMIT 1)
              FROM ep WHERE ep.endpoint_id IS NOT NULL)
        SELECT coalesce(array_agg(e.endpoint_id), '{}') INTO v_passes
          FROM (SELECT ep.endpoint_id FROM ep
                 CROSS JOIN LATERAL (
                       SELECT h.available_at, h.leased_until FROM outbox h
                        WHERE h.endpoint_id = ep.endpoint_id ORDER BY h.id LIMIT 1) oldest
                 WHERE ep.endpoint_id IS NOT NULL AND oldest.available_at <= v_now
                   AND (oldest.leased_until IS NULL OR oldest.leased_until <= v_now)
                 LIMIT p_limit) e
         WHERE pg_try_advisory_xact_lock(hashtext('passfold.outbox.webhook'),
                                         hashtext(e.endpoint_id::text));
        -- Taken by another sender meanwhile (this snapshot follows the locks), or held
        -- back by a message waiting for its retry.
        SELECT coalesce(array_agg(e), '{}') INTO v_busy
          FROM unnest(v_passes) e
         CROSS JOIN LATERAL (
               SELECT h.available_at, h.leased_until FROM outbox h
                WHERE h.endpoint_id = e ORDER BY h.id LIMIT 1) oldest
         WHERE oldest.leased_until > clock_timestamp() OR oldest.available_at > v_now;
        -- At most 50 messages of an endpoint at once: they are sent one after another.
        RETURN QUERY
        UPDATE outbox o SET leased_until = v_until
         WHERE o.id = ANY (ARRAY(
                SELECT r.id FROM unnest(v_passes) e
                 CROSS JOIN LATERAL (SELECT w.id FROM outbox w
                                      WHERE w.endpoint_id = e ORDER BY w.id LIMIT 50) r
                 WHERE NOT (e = ANY (v_busy))))
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
