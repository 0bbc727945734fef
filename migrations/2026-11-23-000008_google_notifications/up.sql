-- Google shows at most 3 notifications per pass in 24 hours: the updates sent with
-- NOTIFY_ON_UPDATE, so the budget is spent on the changes that matter.
CREATE TABLE google_notifications (
    id bigserial PRIMARY KEY,
    pass_id uuid NOT NULL REFERENCES passes (id) ON DELETE CASCADE,
    sent_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX google_notifications_pass_idx ON google_notifications (pass_id, sent_at);
