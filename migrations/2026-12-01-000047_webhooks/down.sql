DROP FUNCTION passfold_claim(text, integer, double precision, boolean);
CREATE FUNCTION passfold_claim(p_channel text, p_limit integer, p_lease double precision,
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
    SELECT coalesce(array_agg(DISTINCT c.pass_id), '{}') INTO v_passes
      FROM (SELECT w.pass_id FROM outbox w
             WHERE w.channel = p_channel AND w.available_at <= v_now
               AND (w.leased_until IS NULL OR w.leased_until <= v_now)
             ORDER BY w.id LIMIT p_limit) c
     WHERE pg_try_advisory_xact_lock(hashtext('passfold.outbox.' || p_channel),
                                     hashtext(c.pass_id::text));
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
DROP TRIGGER google_installs_webhook_changed ON google_installs;
DROP TRIGGER google_installs_webhook_new ON google_installs;
DROP TRIGGER registrations_webhook ON registrations;
DROP TRIGGER referrals_webhook_rewarded ON referrals;
DROP TRIGGER referrals_webhook_joined ON referrals;
DROP TRIGGER gift_card_activities_webhook ON gift_card_activities;
DROP TRIGGER gift_cards_webhook_issued ON gift_cards;
DROP TRIGGER purchases_webhook_refunded ON purchases;
DROP TRIGGER purchases_webhook_recorded ON purchases;
DROP TRIGGER point_activities_webhook ON point_activities;
DROP TRIGGER members_webhook_tier ON members;
DROP TRIGGER members_webhook_updated ON members;
DROP TRIGGER members_webhook_created ON members;
DROP FUNCTION passfold_webhook_on_google_install();
DROP FUNCTION passfold_webhook_on_registration();
DROP FUNCTION passfold_webhook_on_referral();
DROP FUNCTION passfold_webhook_on_gift_card_activity();
DROP FUNCTION passfold_webhook_on_gift_card();
DROP FUNCTION passfold_webhook_on_purchase();
DROP FUNCTION passfold_webhook_on_point_activities();
DROP FUNCTION passfold_webhook_on_members_created();
DROP FUNCTION passfold_webhook_on_member();
DROP FUNCTION passfold_webhook_pass(uuid, text);
DROP FUNCTION passfold_webhook_member(members);
DROP FUNCTION passfold_webhook_event(uuid, text, jsonb, timestamptz);
DROP FUNCTION passfold_webhook_events(uuid[], text, jsonb[], timestamptz[]);
DROP FUNCTION passfold_webhooks_wanted(uuid);
DELETE FROM outbox WHERE pass_id IS NULL;
DROP INDEX outbox_webhook_endpoint_idx;
ALTER TABLE outbox DROP CONSTRAINT outbox_pass_or_message,
    DROP CONSTRAINT outbox_channel_check,
    ADD CONSTRAINT outbox_channel_check CHECK (channel IN ('apple', 'google')), DROP COLUMN message_id,
    DROP COLUMN endpoint_id, ALTER COLUMN pass_id SET NOT NULL;
DROP TABLE webhook_attempts;
DROP TABLE webhook_messages;
DROP TABLE webhook_endpoints;
