-- Template drafts and version history (issue 14). A draft is saved as the designer types
-- and changes no card; publishing makes the next version, recorded here with who made it;
-- rolling back publishes an earlier version again. Image bytes are kept once per merchant,
-- by their SHA-256, however many versions and drafts use them.
CREATE TABLE template_blobs (
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    sha256 bytea NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (merchant_id, sha256)
);

CREATE TABLE template_versions (
    merchant_id uuid NOT NULL,
    template_id text NOT NULL,
    version integer NOT NULL,
    document jsonb NOT NULL,
    -- file name -> hex SHA-256 of a template_blobs row
    images jsonb NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now(),
    -- Who published: a console user or an API key (neither for examples and old versions).
    staff_id uuid,
    api_key_id uuid,
    -- Set when this version republished an earlier one (a rollback).
    restored_from integer,
    PRIMARY KEY (merchant_id, template_id, version),
    FOREIGN KEY (merchant_id, template_id) REFERENCES templates (merchant_id, id) ON DELETE CASCADE
);

CREATE TABLE template_drafts (
    merchant_id uuid NOT NULL,
    template_id text NOT NULL,
    -- As typed: may not validate yet.
    document jsonb NOT NULL,
    images jsonb NOT NULL,
    -- The version the draft was started from: publishing over a newer one is refused.
    based_on integer NOT NULL,
    staff_id uuid,
    api_key_id uuid,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, template_id),
    FOREIGN KEY (merchant_id, template_id) REFERENCES templates (merchant_id, id) ON DELETE CASCADE
);

-- Every existing template's current state is its first recorded version.
INSERT INTO template_blobs (merchant_id, sha256, data)
SELECT DISTINCT ON (merchant_id, sha256(data)) merchant_id, sha256(data), data
  FROM template_images
ON CONFLICT DO NOTHING;

INSERT INTO template_versions (merchant_id, template_id, version, document, images, published_at)
SELECT t.merchant_id, t.id, t.version, t.document,
       coalesce((SELECT jsonb_object_agg(i.file_name, encode(sha256(i.data), 'hex'))
                   FROM template_images i
                  WHERE i.merchant_id = t.merchant_id AND i.template_id = t.id), '{}'),
       t.updated_at
  FROM templates t;
