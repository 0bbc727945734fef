-- CSV imports (issue 17): members, their purchase history and gift cards from a merchant's
-- old system. The uploaded file is kept as chunks in the database (streamed in, never held
-- whole in memory) so that any worker process can read it, and a crash resumes from the
-- import's checkpoint (`rows`) instead of starting over.

CREATE TABLE imports (
    id uuid PRIMARY KEY,
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    kind text NOT NULL CHECK (kind IN ('members', 'purchases', 'gift_cards')),
    -- Members and purchases belong to a program; gift cards to a template.
    program_id uuid,
    template_id text,
    dry_run boolean NOT NULL,
    -- 'receiving' while the body streams in; a body cut short leaves it so, never queued.
    state text NOT NULL
        CHECK (state IN ('receiving', 'queued', 'validating', 'importing', 'done', 'failed')),
    bytes bigint NOT NULL DEFAULT 0,
    -- Data rows read (the checkpoint: a resumed import skips this many), imported, skipped
    -- as already present, and refused (all of them; at most 1,000 are kept).
    rows bigint NOT NULL DEFAULT 0,
    imported bigint NOT NULL DEFAULT 0,
    skipped bigint NOT NULL DEFAULT 0,
    error_count bigint NOT NULL DEFAULT 0,
    -- Why a failed import failed (a header that cannot be used, a file that is not text).
    failure text,
    -- Which worker holds it until when; a lapsed lease lets another resume it.
    leased_until timestamptz,
    created_at timestamptz NOT NULL,
    finished_at timestamptz,
    UNIQUE (merchant_id, id)
);
CREATE INDEX imports_merchant_idx ON imports (merchant_id, created_at DESC, id DESC);
CREATE INDEX imports_pending_idx ON imports (created_at)
    WHERE state IN ('queued', 'validating', 'importing');

CREATE TABLE import_chunks (
    merchant_id uuid NOT NULL,
    import_id uuid NOT NULL,
    n integer NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (merchant_id, import_id, n),
    FOREIGN KEY (merchant_id, import_id) REFERENCES imports (merchant_id, id) ON DELETE CASCADE
);

CREATE TABLE import_errors (
    merchant_id uuid NOT NULL,
    import_id uuid NOT NULL,
    n integer NOT NULL,
    line bigint NOT NULL,
    -- The header's name of the field at fault; null for the row as a whole.
    column_name text,
    message text NOT NULL,
    PRIMARY KEY (merchant_id, import_id, n),
    FOREIGN KEY (merchant_id, import_id) REFERENCES imports (merchant_id, id) ON DELETE CASCADE
);
