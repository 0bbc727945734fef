-- Devices that registered a pass through Apple's web service, and which passes.
CREATE TABLE devices (
    device_library_identifier text PRIMARY KEY,
    push_token text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE registrations (
    device_library_identifier text NOT NULL REFERENCES devices (device_library_identifier) ON DELETE CASCADE,
    pass_id uuid NOT NULL REFERENCES passes (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_library_identifier, pass_id)
);
CREATE INDEX registrations_pass_idx ON registrations (pass_id);

-- What devices report through POST /apple/v1/log.
CREATE TABLE device_logs (
    id bigserial PRIMARY KEY,
    client text NOT NULL,
    message text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX device_logs_client_idx ON device_logs (client, created_at);

-- Update tags become the id of the transaction that made the change (64-bit, never
-- wraps). Unlike a sequence value, it lets the web service hold back changes whose
-- transactions are still running, so a change committed late is never skipped.
ALTER TABLE passes ALTER COLUMN update_tag SET DEFAULT (pg_current_xact_id()::text::bigint);
UPDATE passes SET update_tag = pg_current_xact_id()::text::bigint;

-- Delivery: rows wait until available_at (retries back off); attempts counts them.
ALTER TABLE outbox ADD COLUMN available_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE outbox ADD COLUMN attempts integer NOT NULL DEFAULT 0;
CREATE INDEX outbox_available_idx ON outbox (available_at, id);
