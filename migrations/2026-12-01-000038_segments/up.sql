-- Segments (issue 16): each member's RFM scores and lifecycle stage, computed from the
-- purchases (net of returns), kept up to date by the purchase's own transaction and by a
-- full recompute (jobs::segments). The rules are in docs/SEGMENTS.md.

-- A program's segment settings (rfm_window_days, rfm_thresholds, cooling_days,
-- lapsed_days), checked by segments::Settings when written.
ALTER TABLE programs ADD COLUMN segments jsonb NOT NULL DEFAULT '{}';

-- The RFM cut points a program's members are scored against, set by the full recompute
-- only (tertiles of the buyers in the window, or the merchant's thresholds): score 3 when
-- days since the last purchase <= r3_days (frequency >= f3, money >= m3), 2 at <= r2_days
-- (>= f2, >= m2), else 1. NULL: no value reaches that score.
CREATE TABLE program_rfm (
    program_id uuid PRIMARY KEY REFERENCES programs (id),
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    source text NOT NULL CHECK (source IN ('tertiles', 'merchant')),
    window_days integer NOT NULL,
    buyers bigint NOT NULL,
    r3_days integer,
    r2_days integer,
    f3 bigint,
    f2 bigint,
    m3 bigint,
    m2 bigint,
    computed_at timestamptz NOT NULL
);

-- One row per member who has ever had a purchase: the raw values, the scores and the
-- stage. No row: no purchase ever (stage `registered`, group `no_purchases`).
CREATE TABLE member_segments (
    member_id uuid PRIMARY KEY REFERENCES members (id),
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    program_id uuid NOT NULL REFERENCES programs (id),
    -- All time, purchases not returned in full.
    purchases bigint NOT NULL,
    last_purchase_at timestamptz,
    -- In the program's RFM window.
    window_purchases bigint NOT NULL,
    window_money bigint NOT NULL,
    window_last_at timestamptz,
    r smallint CHECK (r BETWEEN 1 AND 3),
    f smallint CHECK (f BETWEEN 1 AND 3),
    m smallint CHECK (m BETWEEN 1 AND 3),
    cell text GENERATED ALWAYS AS (r::text || f::text || m::text) STORED,
    rfm_group text NOT NULL,
    stage text NOT NULL CHECK (stage IN ('registered', 'first_purchase', 'repeat', 'cooling',
                                         'lapsed', 'reactivated')),
    -- When the member entered the stage, by the rules (a purchase's time, or the moment
    -- the silence passed the cooling or lapse threshold).
    stage_at timestamptz NOT NULL,
    -- Bumped by every write: the full recompute writes a row only if no purchase changed
    -- it since the recompute read it.
    version bigint NOT NULL,
    computed_at timestamptz NOT NULL,
    CHECK ((r IS NULL) = (f IS NULL) AND (r IS NULL) = (m IS NULL))
);
CREATE INDEX member_segments_stage_idx ON member_segments (program_id, stage);
CREATE INDEX member_segments_group_idx ON member_segments (program_id, rfm_group);
CREATE INDEX member_segments_cell_idx ON member_segments (program_id, cell);

-- Every stage change, append-only.
CREATE TABLE member_stage_changes (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    program_id uuid NOT NULL REFERENCES programs (id),
    member_id uuid NOT NULL REFERENCES members (id),
    from_stage text NOT NULL,
    to_stage text NOT NULL,
    -- When the change happened by the rules; recorded_at: when it was written.
    at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL
);
CREATE INDEX member_stage_changes_member_idx ON member_stage_changes (member_id, id);
CREATE INDEX member_stage_changes_program_idx ON member_stage_changes (program_id, at);

CREATE FUNCTION passfold_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;
CREATE TRIGGER member_stage_changes_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON member_stage_changes
    FOR EACH STATEMENT EXECUTE FUNCTION passfold_append_only();
