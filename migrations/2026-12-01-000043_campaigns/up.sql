-- Campaigns (issue 16): a message (and optional bonus points) to a segment's passes, with a
-- random holdout kept for measuring. The rules are in docs/CAMPAIGNS.md.
CREATE TABLE campaigns (
    id uuid PRIMARY KEY,
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    program_id uuid NOT NULL REFERENCES programs (id),
    state text NOT NULL CHECK (state IN ('scheduled', 'sending', 'sent', 'cancelled')),
    -- As the request gave them, checked by campaigns::NewCampaign.
    audience jsonb NOT NULL,
    holdout_percent smallint NOT NULL CHECK (holdout_percent BETWEEN 0 AND 50),
    -- {"en": {"header": ..., "body": ...}, "ru": ...}
    message jsonb NOT NULL,
    bonus_points bigint NOT NULL DEFAULT 0 CHECK (bonus_points >= 0),
    offer jsonb,
    attribution_days integer NOT NULL CHECK (attribution_days BETWEEN 1 AND 365),
    -- As asked (NULL: now), and when it goes: never outside sending hours.
    requested_send_at timestamptz,
    send_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    -- When the audience was fixed (the clock's now of the worker that fixed it).
    started_at timestamptz,
    finished_at timestamptz,
    cancelled_at timestamptz
);
CREATE INDEX campaigns_due_idx ON campaigns (send_at) WHERE state IN ('scheduled', 'sending');
CREATE INDEX campaigns_program_idx ON campaigns (merchant_id, program_id, created_at DESC, id DESC);

-- The audience, fixed at send time: one row per member, the holdout chosen then for good.
CREATE TABLE campaign_recipients (
    campaign_id uuid NOT NULL REFERENCES campaigns (id),
    member_id uuid NOT NULL REFERENCES members (id),
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    held_out boolean NOT NULL,
    pass_id uuid REFERENCES passes (id),
    -- Where the pass was installed when the audience was fixed.
    apple_devices integer NOT NULL DEFAULT 0,
    google_saved boolean NOT NULL DEFAULT false,
    -- Set in the transaction that put the message on the pass (NULL: held out, or not yet).
    sent_at timestamptz,
    -- A push to a device holding the pass was accepted by APNs after the message was set.
    apple_pushed_at timestamptz,
    -- Google Wallet accepted the message on the pass's object.
    google_messaged_at timestamptz,
    PRIMARY KEY (campaign_id, member_id)
);
CREATE INDEX campaign_recipients_pending_idx ON campaign_recipients (campaign_id, member_id)
    WHERE NOT held_out AND sent_at IS NULL;
-- What the outbox's settling looks up for every delivered batch: empty but for recipients
-- whose delivery is awaited, so it costs next to nothing without campaigns.
CREATE INDEX campaign_recipients_apple_due_idx ON campaign_recipients (pass_id)
    WHERE sent_at IS NOT NULL AND apple_devices > 0 AND apple_pushed_at IS NULL;
CREATE INDEX campaign_recipients_google_due_idx ON campaign_recipients (pass_id)
    WHERE sent_at IS NOT NULL AND google_saved AND google_messaged_at IS NULL;
CREATE INDEX campaign_recipients_member_idx ON campaign_recipients (member_id);
