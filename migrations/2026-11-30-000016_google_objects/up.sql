-- The cards whose object Google Wallet has (inserted by the sync or for a save link): their
-- save links carry only the object's id, not the whole object.
CREATE TABLE google_objects (
    pass_id uuid PRIMARY KEY REFERENCES passes (id) ON DELETE CASCADE,
    inserted_at timestamptz NOT NULL DEFAULT now()
);
