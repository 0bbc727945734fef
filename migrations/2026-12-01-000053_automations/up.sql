-- Automations: standing rules that put a message (and optional bonus points and offer) on a
-- member's pass when something happens to them, with a random holdout per firing.
CREATE TABLE automations (
    id uuid PRIMARY KEY,
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    program_id uuid NOT NULL REFERENCES programs (id),
    name text NOT NULL,
    trigger_kind text NOT NULL
        CHECK (trigger_kind IN ('stage_entered', 'first_purchase', 'nth_purchase', 'birthday')),
    -- The stage entered, for stage_entered; the purchase's ordinal, for nth_purchase.
    trigger_stage text CHECK ((trigger_kind = 'stage_entered') = (trigger_stage IS NOT NULL)),
    trigger_count integer CHECK ((trigger_kind = 'nth_purchase') = (trigger_count IS NOT NULL)),
    -- After a firing the member is not fired again by this rule for this many days;
    -- NULL: never again.
    period_days integer,
    holdout_percent smallint NOT NULL,
    message jsonb NOT NULL,
    bonus_points bigint NOT NULL DEFAULT 0,
    -- Days the bonus points last; NULL: the program's points_expire_days.
    bonus_expire_days integer,
    offer jsonb,
    attribution_days integer NOT NULL,
    cost_per_message bigint NOT NULL DEFAULT 0,
    enabled boolean NOT NULL DEFAULT true,
    -- Events from this instant on fire (creation, or the last time it was enabled).
    active_since timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX automations_program_idx ON automations (merchant_id, program_id, created_at DESC, id DESC);
CREATE INDEX automations_enabled_idx ON automations (program_id) WHERE enabled;

-- One row per member and event that fired a rule; the holdout drawn then for good.
CREATE TABLE automation_firings (
    automation_id uuid NOT NULL REFERENCES automations (id),
    member_id uuid NOT NULL,
    merchant_id uuid NOT NULL,
    -- What fired it: 'stage:<change id>', 'purchase:<purchase id>', 'birthday:<year>'.
    event text NOT NULL,
    event_at timestamptz NOT NULL,
    fired_at timestamptz NOT NULL,
    held_out boolean NOT NULL,
    pass_id uuid,
    apple_devices integer NOT NULL DEFAULT 0,
    google_saved boolean NOT NULL DEFAULT false,
    sent_at timestamptz,
    apple_pushed_at timestamptz,
    google_messaged_at timestamptz,
    PRIMARY KEY (automation_id, member_id, event)
);
CREATE INDEX automation_firings_pending_idx ON automation_firings (automation_id, member_id)
    WHERE NOT held_out AND sent_at IS NULL;
CREATE INDEX automation_firings_apple_due_idx ON automation_firings (pass_id)
    WHERE sent_at IS NOT NULL AND apple_devices > 0 AND apple_pushed_at IS NULL;
CREATE INDEX automation_firings_google_due_idx ON automation_firings (pass_id)
    WHERE sent_at IS NOT NULL AND google_saved AND google_messaged_at IS NULL;
CREATE INDEX automation_firings_member_idx ON automation_firings (member_id, automation_id, event_at);

-- Stage entries by when they were recorded, as the stage_entered rules look for them.
CREATE INDEX member_stage_changes_entered_idx
    ON member_stage_changes (program_id, to_stage, recorded_at);
