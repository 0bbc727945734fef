CREATE TABLE merchants (
    id uuid PRIMARY KEY,
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- API keys are stored only as SHA-256 hashes of the high-entropy secret.
CREATE TABLE api_keys (
    id uuid PRIMARY KEY,
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    scope text NOT NULL CHECK (scope IN ('admin', 'pos')),
    label text CHECK (label IS NULL OR char_length(label) <= 100),
    key_hash bytea NOT NULL UNIQUE,
    display_prefix text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE INDEX api_keys_merchant_idx ON api_keys (merchant_id);
