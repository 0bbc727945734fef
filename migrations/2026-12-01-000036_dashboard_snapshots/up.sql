-- The dashboard's figures of a merchant as of a moment (analytics::dashboard). A merchant
-- whose figures take long to sum (a million members) is shown these, kept up to date by
-- the dashboard job, instead of a sum over its ledgers on every view; the others' are
-- summed on every view and recorded here with how long that took. Nothing on the POS path
-- writes this table.
CREATE TABLE dashboard_snapshots (
    merchant_id uuid PRIMARY KEY REFERENCES merchants (id) ON DELETE CASCADE,
    as_of timestamptz NOT NULL,
    figures jsonb NOT NULL,
    took_ms integer NOT NULL CHECK (took_ms >= 0)
);
