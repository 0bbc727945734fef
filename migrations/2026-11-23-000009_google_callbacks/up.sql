-- Google's save and delete callbacks: each nonce once, and whether each object is saved.
CREATE TABLE google_callbacks (
    nonce text PRIMARY KEY,
    object_id text NOT NULL,
    event_type text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX google_callbacks_received_idx ON google_callbacks (received_at);

CREATE TABLE google_installs (
    pass_id uuid PRIMARY KEY REFERENCES passes (id) ON DELETE CASCADE,
    saved boolean NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
