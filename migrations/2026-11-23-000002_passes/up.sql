-- Pass templates: a document of our own format (docs/TEMPLATES.md) plus PNG images.
-- `version` grows on every change, so rendered passes and image hashes can be cached by it.
CREATE TABLE templates (
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    id text NOT NULL CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    kind text NOT NULL CHECK (kind IN ('loyalty', 'gift_card')),
    version integer NOT NULL DEFAULT 1 CHECK (version > 0),
    document jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, id)
);

CREATE TABLE template_images (
    merchant_id uuid NOT NULL,
    template_id text NOT NULL,
    file_name text NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (merchant_id, template_id, file_name),
    FOREIGN KEY (merchant_id, template_id) REFERENCES templates (merchant_id, id) ON DELETE CASCADE
);

CREATE TABLE programs (
    id uuid PRIMARY KEY,
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    template_id text NOT NULL,
    currency char(3) NOT NULL,
    points_per_unit integer NOT NULL CHECK (points_per_unit >= 0),
    welcome_points bigint NOT NULL DEFAULT 0 CHECK (welcome_points >= 0),
    -- [{"name", "min_points", "multiplier"?}] ordered by min_points; the first has min_points 0.
    tiers jsonb NOT NULL DEFAULT '[]',
    -- {"referrer_points", "referee_points", "trigger", ...} or NULL
    referral jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (merchant_id, template_id) REFERENCES templates (merchant_id, id)
);
CREATE INDEX programs_merchant_idx ON programs (merchant_id);

CREATE TABLE members (
    id uuid PRIMARY KEY,
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    program_id uuid NOT NULL REFERENCES programs (id),
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    email text,
    phone text,
    external_id text,
    card_number text NOT NULL CHECK (card_number ~ '^[0-9]{16}$'),
    points bigint NOT NULL DEFAULT 0 CHECK (points >= 0),
    lifetime_points bigint NOT NULL DEFAULT 0 CHECK (lifetime_points >= 0),
    tier text,
    referral_code text NOT NULL UNIQUE,
    referred_by uuid REFERENCES members (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (merchant_id, card_number)
);
CREATE INDEX members_program_idx ON members (program_id);
CREATE UNIQUE INDEX members_program_email_idx ON members (program_id, lower(email)) WHERE email IS NOT NULL;
CREATE UNIQUE INDEX members_program_phone_idx ON members (program_id, phone) WHERE phone IS NOT NULL;
CREATE UNIQUE INDEX members_program_external_idx ON members (program_id, external_id) WHERE external_id IS NOT NULL;

CREATE TABLE gift_cards (
    id uuid PRIMARY KEY,
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    template_id text NOT NULL,
    gan text NOT NULL UNIQUE CHECK (gan ~ '^[0-9]{16}$'),
    pin_hash text NOT NULL,
    currency char(3) NOT NULL,
    balance bigint NOT NULL CHECK (balance >= 0),
    state text NOT NULL CHECK (state IN ('pending', 'active', 'deactivated')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (merchant_id, template_id) REFERENCES templates (merchant_id, id)
);
CREATE INDEX gift_cards_merchant_idx ON gift_cards (merchant_id);

-- Append-only ledgers. The balance (points) of a card (member) always equals the sum of
-- its activities' signed amounts; balance_after records the running total.
CREATE TABLE gift_card_activities (
    id uuid PRIMARY KEY,
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    gift_card_id uuid NOT NULL REFERENCES gift_cards (id),
    type text NOT NULL CHECK (type IN ('activate', 'load', 'redeem', 'refund', 'adjust', 'deactivate')),
    -- signed change of the balance: negative for redeem
    amount bigint NOT NULL,
    balance_after bigint NOT NULL CHECK (balance_after >= 0),
    refunds_activity_id uuid REFERENCES gift_card_activities (id),
    reason text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX gift_card_activities_card_idx ON gift_card_activities (gift_card_id, created_at);

CREATE TABLE point_activities (
    id uuid PRIMARY KEY,
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    member_id uuid NOT NULL REFERENCES members (id),
    type text NOT NULL CHECK (type IN ('welcome', 'purchase', 'adjust', 'referral')),
    delta bigint NOT NULL,
    points_after bigint NOT NULL CHECK (points_after >= 0),
    reason text,
    purchase_amount bigint,
    purchase_currency char(3),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX point_activities_member_idx ON point_activities (member_id, created_at);

-- One Apple/Google pass per member or gift card. update_tag comes from a sequence, so tags
-- are strictly increasing even for changes within the same second.
CREATE SEQUENCE pass_update_tag_seq;
CREATE TABLE passes (
    id uuid PRIMARY KEY,
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    serial_number text NOT NULL UNIQUE,
    member_id uuid UNIQUE REFERENCES members (id),
    gift_card_id uuid UNIQUE REFERENCES gift_cards (id),
    template_id text NOT NULL,
    authentication_token text NOT NULL CHECK (char_length(authentication_token) >= 16),
    download_token text NOT NULL UNIQUE,
    update_tag bigint NOT NULL DEFAULT nextval('pass_update_tag_seq'),
    updated_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((member_id IS NULL) <> (gift_card_id IS NULL)),
    FOREIGN KEY (merchant_id, template_id) REFERENCES templates (merchant_id, id)
);
CREATE INDEX passes_template_idx ON passes (merchant_id, template_id);
