// @generated automatically by Diesel CLI.

diesel::table! {
    api_keys (id) {
        id -> Uuid,
        merchant_id -> Uuid,
        scope -> Text,
        label -> Nullable<Text>,
        key_hash -> Bytea,
        display_prefix -> Text,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    merchants (id) {
        id -> Uuid,
        name -> Text,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(api_keys -> merchants (merchant_id));

diesel::allow_tables_to_appear_in_same_query!(api_keys, merchants,);
