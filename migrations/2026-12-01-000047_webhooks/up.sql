-- Signed webhooks (issue 17): a merchant's endpoints, the events as append-only messages,
-- each endpoint's delivery log, and the outbox generalised so that the one outbox loop
-- delivers messages to endpoints as a channel `webhook` beside Apple and Google.

CREATE TABLE webhook_endpoints (
    id uuid PRIMARY KEY,
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    url text NOT NULL,
    description text,
    events text[] NOT NULL,
    enabled boolean NOT NULL DEFAULT true,
    -- The HMAC key must be read back to sign, so it is kept as issued (`whsec_...`).
    secret text NOT NULL,
    -- After a rotation the previous secret signs too, until `previous_secret_until`.
    previous_secret text,
    previous_secret_until timestamptz,
    -- First failure of the current run of failures; cleared by a delivery.
    failing_since timestamptz,
    disabled_reason text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    UNIQUE (merchant_id, id)
);

-- Facts, like activities: what happened, once, whoever listens.
CREATE TABLE webhook_messages (
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    id text NOT NULL,
    type text NOT NULL,
    data jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    seq bigserial NOT NULL,
    PRIMARY KEY (merchant_id, id)
);
CREATE INDEX webhook_messages_since_idx ON webhook_messages (merchant_id, created_at, seq);

CREATE TABLE webhook_attempts (
    id bigserial PRIMARY KEY,
    merchant_id uuid NOT NULL,
    endpoint_id uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    message_id text NOT NULL,
    attempt integer NOT NULL,
    status text NOT NULL CHECK (status IN ('delivered', 'failed', 'gave_up')),
    response_code integer,
    error text,
    duration_ms integer NOT NULL,
    at timestamptz NOT NULL
);
CREATE INDEX webhook_attempts_endpoint_idx ON webhook_attempts (endpoint_id, id);

-- The outbox keeps its lean shape (no foreign keys, migration 000011); a webhook row names
-- its endpoint and message instead of a pass. The partial index is maintained only for
-- webhook rows, so pass rows cost what they did.
ALTER TABLE outbox ALTER COLUMN pass_id DROP NOT NULL,
    ADD COLUMN endpoint_id uuid,
    ADD COLUMN message_id text,
    DROP CONSTRAINT outbox_channel_check,
    ADD CONSTRAINT outbox_channel_check CHECK (channel IN ('apple', 'google', 'webhook')),
    ADD CONSTRAINT outbox_pass_or_message
        CHECK (pass_id IS NOT NULL OR (endpoint_id IS NOT NULL AND message_id IS NOT NULL));
CREATE INDEX outbox_webhook_endpoint_idx ON outbox (endpoint_id, id) WHERE endpoint_id IS NOT NULL;

-- Whether anyone listens to a merchant: merchants without endpoints (most) pay this one
-- index probe per fact, and no message is written.
CREATE FUNCTION passfold_webhooks_wanted(p_merchant uuid) RETURNS boolean AS $$
    SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE merchant_id = p_merchant)
$$ LANGUAGE sql STABLE;

-- The one writer of webhook messages: for each (merchant, data, time), in the order given,
-- a message, and an outbox row for every enabled endpoint of that merchant subscribed to
-- the type (the `webhook.` notices about endpoints go to all), in the caller's transaction.
-- Merchants without endpoints are skipped: no message is written for them. Set-based, so a
-- job's statement of 100,000 facts writes its messages in one go. Returns the messages
-- written.
CREATE FUNCTION passfold_webhook_events(p_merchants uuid[], p_type text, p_data jsonb[],
                                        p_at timestamptz[])
RETURNS integer AS $$
    WITH m AS (
        INSERT INTO webhook_messages (merchant_id, id, type, data, created_at)
        SELECT t.merchant, 'msg_' || replace(gen_random_uuid()::text, '-', ''), p_type, t.data,
               coalesce(t.at, now())
          FROM unnest(p_merchants, p_data, p_at) WITH ORDINALITY AS t (merchant, data, at, n)
         WHERE t.merchant IN (SELECT merchant_id FROM webhook_endpoints)
         ORDER BY t.n
        RETURNING merchant_id, id, type, seq
    ), queued AS (
        INSERT INTO outbox (merchant_id, endpoint_id, message_id, reason, channel, created_at,
                            available_at, attempts)
        SELECT m.merchant_id, e.id, m.id, m.type, 'webhook', now(), now(), 0
          FROM m JOIN webhook_endpoints e ON e.merchant_id = m.merchant_id
         WHERE e.enabled AND (m.type = ANY (e.events) OR m.type LIKE 'webhook.%')
         ORDER BY m.seq, e.id
        RETURNING 1
    )
    SELECT count(*)::integer FROM m
$$ LANGUAGE sql;

-- One event (the row triggers and Rust's `webhooks::events::emit`).
CREATE FUNCTION passfold_webhook_event(p_merchant uuid, p_type text, p_data jsonb, p_at timestamptz)
RETURNS integer AS $$
    SELECT passfold_webhook_events(ARRAY[p_merchant], p_type, ARRAY[p_data], ARRAY[p_at])
$$ LANGUAGE sql;

-- The facts' tables announce themselves: each fact is written in one place already (the
-- ledger functions, enrollment, the Apple web service, Google's callbacks, the set-based
-- jobs), and a row trigger on its table is the single point every one of those writers
-- passes, in its own transaction. Each row trigger returns at once when nobody listens;
-- the tables that jobs and imports fill many rows at a time (members, point activities)
-- announce a statement's rows together, from its transition table.

CREATE FUNCTION passfold_webhook_member(m members) RETURNS jsonb AS $$
    SELECT jsonb_build_object(
        'id', m.id, 'program_id', m.program_id, 'name', m.name, 'email', m.email,
        'phone', m.phone, 'external_id', m.external_id, 'card_number', m.card_number,
        'points', m.points, 'tier', m.tier, 'referred_by', m.referred_by,
        'created_at', m.created_at)
$$ LANGUAGE sql STABLE;

-- A pass being deleted (its registrations go with it) is named by its id alone.
CREATE FUNCTION passfold_webhook_pass(p_pass uuid, p_wallet text) RETURNS jsonb AS $$
    SELECT coalesce(
        (SELECT jsonb_build_object(
            'pass_id', p.id, 'serial_number', p.serial_number, 'member_id', p.member_id,
            'gift_card_id', p.gift_card_id, 'template', p.template_id, 'wallet', p_wallet)
           FROM passes p WHERE p.id = p_pass),
        jsonb_build_object('pass_id', p_pass, 'wallet', p_wallet))
$$ LANGUAGE sql STABLE;

CREATE FUNCTION passfold_webhook_on_member() RETURNS trigger AS $$
BEGIN
    IF NOT passfold_webhooks_wanted(NEW.merchant_id) THEN
        RETURN NULL;
    END IF;
    IF TG_ARGV[0] = 'tier' THEN
        PERFORM passfold_webhook_event(NEW.merchant_id, 'tier.changed',
            jsonb_build_object('member_id', NEW.id, 'program_id', NEW.program_id,
                               'from', OLD.tier, 'to', NEW.tier, 'points', NEW.points),
            now());
    ELSE
        PERFORM passfold_webhook_event(NEW.merchant_id, 'member.updated',
                                       passfold_webhook_member(NEW), now());
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE FUNCTION passfold_webhook_on_members_created() RETURNS trigger AS $$
BEGIN
    PERFORM passfold_webhook_events(array_agg(n.merchant_id ORDER BY n.created_at, n.id),
               'member.created',
               array_agg(passfold_webhook_member(n) ORDER BY n.created_at, n.id),
               array_agg(n.created_at ORDER BY n.created_at, n.id))
       FROM new_rows n
      WHERE n.merchant_id IN (SELECT merchant_id FROM webhook_endpoints)
     HAVING count(*) > 0;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER members_webhook_created AFTER INSERT ON members
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION passfold_webhook_on_members_created();
-- `UPDATE OF` plus `WHEN`: the points updates of every movement never call the function.
CREATE TRIGGER members_webhook_updated
    AFTER UPDATE OF name, email, phone, external_id, birth_month, birth_day, birth_year ON members
    FOR EACH ROW
    WHEN ((OLD.name, OLD.email, OLD.phone, OLD.external_id, OLD.birth_month, OLD.birth_day, OLD.birth_year)
          IS DISTINCT FROM
          (NEW.name, NEW.email, NEW.phone, NEW.external_id, NEW.birth_month, NEW.birth_day, NEW.birth_year))
    EXECUTE FUNCTION passfold_webhook_on_member('profile');
CREATE TRIGGER members_webhook_tier AFTER UPDATE OF tier ON members
    FOR EACH ROW WHEN (OLD.tier IS DISTINCT FROM NEW.tier)
    EXECUTE FUNCTION passfold_webhook_on_member('tier');

CREATE FUNCTION passfold_webhook_on_point_activities() RETURNS trigger AS $$
BEGIN
    PERFORM passfold_webhook_events(array_agg(n.merchant_id ORDER BY n.seq), 'points.changed',
               array_agg(jsonb_build_object(
                   'member_id', n.member_id, 'activity_id', n.id, 'activity_type', n.type,
                   'delta', n.delta, 'points', n.points_after, 'reason', n.reason,
                   'purchase_id', n.purchase_id, 'tier', n.tier_after) ORDER BY n.seq),
               array_agg(n.created_at ORDER BY n.seq))
       FROM new_rows n
      WHERE n.delta <> 0 AND n.merchant_id IN (SELECT merchant_id FROM webhook_endpoints)
     HAVING count(*) > 0;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER point_activities_webhook AFTER INSERT ON point_activities
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION passfold_webhook_on_point_activities();

CREATE FUNCTION passfold_webhook_on_purchase() RETURNS trigger AS $$
BEGIN
    IF NOT passfold_webhooks_wanted(NEW.merchant_id) THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        PERFORM passfold_webhook_event(NEW.merchant_id, 'purchase.recorded',
            jsonb_build_object('id', NEW.id, 'member_id', NEW.member_id, 'amount', NEW.amount,
                               'currency', NEW.currency, 'points_earned', NEW.points_earned,
                               'points_paid', NEW.points_paid, 'purchased_at', NEW.purchased_at),
            now());
    ELSE
        PERFORM passfold_webhook_event(NEW.merchant_id, 'purchase.refunded',
            jsonb_build_object('id', NEW.id, 'member_id', NEW.member_id, 'amount', NEW.amount,
                               'currency', NEW.currency,
                               'refunded', NEW.refunded_amount - OLD.refunded_amount,
                               'refunded_amount', NEW.refunded_amount,
                               'points_taken_back', NEW.points_taken_back,
                               'points_given_back', NEW.points_given_back),
            now());
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER purchases_webhook_recorded AFTER INSERT ON purchases
    FOR EACH ROW EXECUTE FUNCTION passfold_webhook_on_purchase();
CREATE TRIGGER purchases_webhook_refunded AFTER UPDATE OF refunded_amount ON purchases
    FOR EACH ROW WHEN (NEW.refunded_amount > OLD.refunded_amount)
    EXECUTE FUNCTION passfold_webhook_on_purchase();

CREATE FUNCTION passfold_webhook_on_gift_card() RETURNS trigger AS $$
BEGIN
    IF NOT passfold_webhooks_wanted(NEW.merchant_id) THEN
        RETURN NULL;
    END IF;
    PERFORM passfold_webhook_event(NEW.merchant_id, 'gift_card.issued',
        jsonb_build_object('id', NEW.id, 'gan', NEW.gan, 'currency', NEW.currency,
                           'balance', NEW.balance, 'state', NEW.state,
                           'template', NEW.template_id),
        NEW.created_at);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER gift_cards_webhook_issued AFTER INSERT ON gift_cards
    FOR EACH ROW EXECUTE FUNCTION passfold_webhook_on_gift_card();

CREATE FUNCTION passfold_webhook_on_gift_card_activity() RETURNS trigger AS $$
DECLARE
    v_card gift_cards;
BEGIN
    IF NOT passfold_webhooks_wanted(NEW.merchant_id) THEN
        RETURN NULL;
    END IF;
    SELECT * INTO v_card FROM gift_cards WHERE id = NEW.gift_card_id;
    PERFORM passfold_webhook_event(NEW.merchant_id,
        CASE NEW.type WHEN 'activate' THEN 'gift_card.loaded'
                      WHEN 'load' THEN 'gift_card.loaded'
                      WHEN 'redeem' THEN 'gift_card.redeemed'
                      WHEN 'refund' THEN 'gift_card.refunded'
                      WHEN 'adjust' THEN 'gift_card.adjusted'
                      ELSE 'gift_card.deactivated' END,
        jsonb_build_object('gift_card_id', NEW.gift_card_id, 'gan', v_card.gan,
                           'activity_id', NEW.id, 'activity_type', NEW.type,
                           'amount', NEW.amount, 'balance', NEW.balance_after,
                           'currency', v_card.currency, 'state', v_card.state,
                           'refunds_activity_id', NEW.refunds_activity_id),
        NEW.created_at);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER gift_card_activities_webhook AFTER INSERT ON gift_card_activities
    FOR EACH ROW EXECUTE FUNCTION passfold_webhook_on_gift_card_activity();

CREATE FUNCTION passfold_webhook_on_referral() RETURNS trigger AS $$
DECLARE
    v_data jsonb;
BEGIN
    IF NOT passfold_webhooks_wanted(NEW.merchant_id) THEN
        RETURN NULL;
    END IF;
    v_data := jsonb_build_object('id', NEW.id, 'program_id', NEW.program_id,
                                 'referrer_id', NEW.referrer_id, 'referee_id', NEW.referee_id,
                                 'status', NEW.status, 'referrer_points', NEW.referrer_points,
                                 'referee_points', NEW.referee_points);
    IF TG_OP = 'INSERT' THEN
        PERFORM passfold_webhook_event(NEW.merchant_id, 'referral.joined', v_data, NEW.created_at);
    END IF;
    IF NEW.status = 'rewarded' AND (TG_OP = 'INSERT' OR OLD.status <> 'rewarded') THEN
        PERFORM passfold_webhook_event(NEW.merchant_id, 'referral.rewarded', v_data,
                                       coalesce(NEW.rewarded_at, now()));
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER referrals_webhook_joined AFTER INSERT ON referrals
    FOR EACH ROW EXECUTE FUNCTION passfold_webhook_on_referral();
CREATE TRIGGER referrals_webhook_rewarded AFTER UPDATE OF status ON referrals
    FOR EACH ROW WHEN (NEW.status = 'rewarded' AND OLD.status <> 'rewarded')
    EXECUTE FUNCTION passfold_webhook_on_referral();

-- Apple: a device registering for a pass installs it, unregistering removes it.
CREATE FUNCTION passfold_webhook_on_registration() RETURNS trigger AS $$
DECLARE
    v_row registrations;
BEGIN
    v_row := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    IF NOT passfold_webhooks_wanted(v_row.merchant_id) THEN
        RETURN NULL;
    END IF;
    PERFORM passfold_webhook_event(v_row.merchant_id,
        CASE WHEN TG_OP = 'DELETE' THEN 'pass.removed' ELSE 'pass.installed' END,
        passfold_webhook_pass(v_row.pass_id, 'apple'),
        CASE WHEN TG_OP = 'DELETE' THEN now() ELSE v_row.created_at END);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER registrations_webhook AFTER INSERT OR DELETE ON registrations
    FOR EACH ROW EXECUTE FUNCTION passfold_webhook_on_registration();

-- Google: the save and delete callbacks, as recorded in `google_installs`.
CREATE FUNCTION passfold_webhook_on_google_install() RETURNS trigger AS $$
BEGIN
    IF NOT passfold_webhooks_wanted(NEW.merchant_id) THEN
        RETURN NULL;
    END IF;
    PERFORM passfold_webhook_event(NEW.merchant_id,
        CASE WHEN NEW.saved THEN 'pass.installed' ELSE 'pass.removed' END,
        passfold_webhook_pass(NEW.pass_id, 'google'), NEW.updated_at);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER google_installs_webhook_new AFTER INSERT ON google_installs
    FOR EACH ROW EXECUTE FUNCTION passfold_webhook_on_google_install();
CREATE TRIGGER google_installs_webhook_changed AFTER UPDATE OF saved ON google_installs
    FOR EACH ROW WHEN (OLD.saved IS DISTINCT FROM NEW.saved)
    EXECUTE FUNCTION passfold_webhook_on_google_install();

-- The claim learns the webhook channel: one sender per endpoint, in the order of creation,
-- and none while the endpoint's oldest message waits for its retry. The pass channels'
-- branches are 000028's, unchanged; the endpoint stands in the `pass_id` column of the
-- answer (the key a claim is coalesced by).
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
