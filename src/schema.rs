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
    audit_log (merchant_id, id) {
        id -> Int8,
        merchant_id -> Uuid,
        staff_id -> Nullable<Uuid>,
        action -> Text,
        details -> Jsonb,
        client -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    automation_firings (automation_id, member_id, event) {
        automation_id -> Uuid,
        member_id -> Uuid,
        merchant_id -> Uuid,
        event -> Text,
        event_at -> Timestamptz,
        fired_at -> Timestamptz,
        held_out -> Bool,
        pass_id -> Nullable<Uuid>,
        apple_devices -> Int4,
        google_saved -> Bool,
        sent_at -> Nullable<Timestamptz>,
        apple_pushed_at -> Nullable<Timestamptz>,
        google_messaged_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    automations (id) {
        id -> Uuid,
        merchant_id -> Uuid,
        program_id -> Uuid,
        name -> Text,
        trigger_kind -> Text,
        trigger_stage -> Nullable<Text>,
        trigger_count -> Nullable<Int4>,
        period_days -> Nullable<Int4>,
        holdout_percent -> Int2,
        message -> Jsonb,
        bonus_points -> Int8,
        bonus_expire_days -> Nullable<Int4>,
        offer -> Nullable<Jsonb>,
        attribution_days -> Int4,
        cost_per_message -> Int8,
        enabled -> Bool,
        active_since -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    campaign_recipients (campaign_id, member_id) {
        campaign_id -> Uuid,
        member_id -> Uuid,
        merchant_id -> Uuid,
        held_out -> Bool,
        pass_id -> Nullable<Uuid>,
        apple_devices -> Int4,
        google_saved -> Bool,
        sent_at -> Nullable<Timestamptz>,
        apple_pushed_at -> Nullable<Timestamptz>,
        google_messaged_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    campaigns (id) {
        id -> Uuid,
        merchant_id -> Uuid,
        program_id -> Uuid,
        state -> Text,
        audience -> Jsonb,
        holdout_percent -> Int2,
        message -> Jsonb,
        bonus_points -> Int8,
        offer -> Nullable<Jsonb>,
        attribution_days -> Int4,
        requested_send_at -> Nullable<Timestamptz>,
        send_at -> Timestamptz,
        created_at -> Timestamptz,
        started_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
        cancelled_at -> Nullable<Timestamptz>,
        cost_per_message -> Int8,
    }
}

diesel::table! {
    device_logs (id) {
        id -> Int8,
        client -> Text,
        message -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    dashboard_snapshots (merchant_id) {
        merchant_id -> Uuid,
        as_of -> Timestamptz,
        figures -> Jsonb,
        took_ms -> Int4,
    }
}

diesel::table! {
    devices (device_library_identifier) {
        device_library_identifier -> Text,
        push_token -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    gift_card_activities (id) {
        id -> Uuid,
        merchant_id -> Uuid,
        gift_card_id -> Uuid,
        #[sql_name = "type"]
        type_ -> Text,
        amount -> Int8,
        balance_after -> Int8,
        refunds_activity_id -> Nullable<Uuid>,
        reason -> Nullable<Text>,
        created_at -> Timestamptz,
        seq -> Int8,
    }
}

diesel::table! {
    gift_cards (id) {
        id -> Uuid,
        merchant_id -> Uuid,
        template_id -> Text,
        gan -> Text,
        pin_hash -> Text,
        #[max_length = 3]
        currency -> Bpchar,
        balance -> Int8,
        state -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        import_key -> Nullable<Text>,
    }
}

diesel::table! {
    google_callbacks (nonce) {
        nonce -> Text,
        object_id -> Text,
        event_type -> Text,
        received_at -> Timestamptz,
    }
}

diesel::table! {
    google_installs (pass_id) {
        pass_id -> Uuid,
        saved -> Bool,
        updated_at -> Timestamptz,
        merchant_id -> Uuid,
    }
}

diesel::table! {
    google_notifications (id) {
        id -> Int8,
        pass_id -> Uuid,
        sent_at -> Timestamptz,
        merchant_id -> Uuid,
    }
}

diesel::table! {
    google_objects (pass_id) {
        pass_id -> Uuid,
        inserted_at -> Timestamptz,
        merchant_id -> Uuid,
    }
}

diesel::table! {
    idempotency_keys (merchant_id, key) {
        merchant_id -> Uuid,
        key -> Text,
        fingerprint -> Bytea,
        response_status -> Int2,
        response_body -> Bytea,
        response_content_type -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    import_chunks (merchant_id, import_id, n) {
        merchant_id -> Uuid,
        import_id -> Uuid,
        n -> Int4,
        data -> Bytea,
    }
}

diesel::table! {
    import_errors (merchant_id, import_id, n) {
        merchant_id -> Uuid,
        import_id -> Uuid,
        n -> Int4,
        line -> Int8,
        column_name -> Nullable<Text>,
        message -> Text,
    }
}

diesel::table! {
    imports (id) {
        id -> Uuid,
        merchant_id -> Uuid,
        kind -> Text,
        program_id -> Nullable<Uuid>,
        template_id -> Nullable<Text>,
        dry_run -> Bool,
        state -> Text,
        bytes -> Int8,
        rows -> Int8,
        imported -> Int8,
        skipped -> Int8,
        error_count -> Int8,
        failure -> Nullable<Text>,
        leased_until -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
        sha256 -> Nullable<Text>,
    }
}

diesel::table! {
    join_attempts (id) {
        id -> Int8,
        client -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    link_opens (id) {
        id -> Int8,
        program_id -> Uuid,
        referrer_id -> Nullable<Uuid>,
        visitor -> Bytea,
        created_at -> Timestamptz,
        client -> Nullable<Bytea>,
        merchant_id -> Uuid,
    }
}

diesel::table! {
    member_consents (merchant_id, id) {
        id -> Int8,
        merchant_id -> Uuid,
        member_id -> Uuid,
        kind -> Text,
        granted -> Bool,
        source -> Text,
        at -> Timestamptz,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
    }
}

diesel::table! {
    member_segments (member_id) {
        member_id -> Uuid,
        merchant_id -> Uuid,
        program_id -> Uuid,
        purchases -> Int8,
        last_purchase_at -> Nullable<Timestamptz>,
        window_purchases -> Int8,
        window_money -> Int8,
        window_last_at -> Nullable<Timestamptz>,
        r -> Nullable<Int2>,
        f -> Nullable<Int2>,
        m -> Nullable<Int2>,
        cell -> Nullable<Text>,
        rfm_group -> Text,
        stage -> Text,
        stage_at -> Timestamptz,
        version -> Int8,
        computed_at -> Timestamptz,
    }
}

diesel::table! {
    member_stage_changes (id) {
        id -> Int8,
        merchant_id -> Uuid,
        program_id -> Uuid,
        member_id -> Uuid,
        from_stage -> Text,
        to_stage -> Text,
        at -> Timestamptz,
        recorded_at -> Timestamptz,
    }
}

diesel::table! {
    members (id) {
        id -> Uuid,
        merchant_id -> Uuid,
        program_id -> Uuid,
        name -> Text,
        email -> Nullable<Text>,
        phone -> Nullable<Text>,
        external_id -> Nullable<Text>,
        card_number -> Text,
        points -> Int8,
        lifetime_points -> Int8,
        tier -> Nullable<Text>,
        referral_code -> Text,
        referred_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        search_name -> Text,
        birth_month -> Nullable<Int2>,
        birth_day -> Nullable<Int2>,
        birth_year -> Nullable<Int2>,
        birthday_year -> Nullable<Int2>,
        points_owed -> Int8,
        tier_review_at -> Nullable<Timestamptz>,
        erased_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    merchants (id) {
        id -> Uuid,
        name -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    non_member_receipts (merchant_id, id) {
        id -> Uuid,
        merchant_id -> Uuid,
        program_id -> Uuid,
        amount -> Int8,
        #[max_length = 3]
        currency -> Bpchar,
        purchased_at -> Timestamptz,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    outbox (id) {
        id -> Int8,
        merchant_id -> Uuid,
        pass_id -> Nullable<Uuid>,
        reason -> Text,
        created_at -> Timestamptz,
        available_at -> Timestamptz,
        attempts -> Int4,
        channel -> Text,
        leased_until -> Nullable<Timestamptz>,
        endpoint_id -> Nullable<Uuid>,
        message_id -> Nullable<Text>,
    }
}

diesel::table! {
    passes (id) {
        id -> Uuid,
        merchant_id -> Uuid,
        serial_number -> Text,
        member_id -> Nullable<Uuid>,
        gift_card_id -> Nullable<Uuid>,
        template_id -> Text,
        authentication_token -> Text,
        download_token -> Text,
        update_tag -> Int8,
        updated_at -> Timestamptz,
        created_at -> Timestamptz,
        message_header -> Nullable<Text>,
        message_body -> Nullable<Text>,
        message_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    pin_failures (id) {
        id -> Int8,
        gift_card_id -> Nullable<Uuid>,
        client -> Text,
        created_at -> Timestamptz,
        gan -> Nullable<Text>,
    }
}

diesel::table! {
    point_activities (id) {
        id -> Uuid,
        merchant_id -> Uuid,
        member_id -> Uuid,
        #[sql_name = "type"]
        type_ -> Text,
        delta -> Int8,
        points_after -> Int8,
        reason -> Nullable<Text>,
        purchase_amount -> Nullable<Int8>,
        #[max_length = 3]
        purchase_currency -> Nullable<Bpchar>,
        created_at -> Timestamptz,
        tier_after -> Nullable<Text>,
        seq -> Int8,
        referral_id -> Nullable<Uuid>,
        qualifying -> Int8,
        purchase_id -> Nullable<Uuid>,
        lot_id -> Nullable<Int8>,
    }
}

diesel::table! {
    point_lots (merchant_id, id) {
        id -> Int8,
        merchant_id -> Uuid,
        member_id -> Uuid,
        activity_id -> Uuid,
        earned_at -> Timestamptz,
        expires_at -> Nullable<Timestamptz>,
        points -> Int8,
        remaining -> Int8,
        expired -> Bool,
        reminded -> Array<Int4>,
    }
}

diesel::table! {
    program_rfm (program_id) {
        program_id -> Uuid,
        merchant_id -> Uuid,
        source -> Text,
        window_days -> Int4,
        buyers -> Int8,
        r3_days -> Nullable<Int4>,
        r2_days -> Nullable<Int4>,
        f3 -> Nullable<Int8>,
        f2 -> Nullable<Int8>,
        m3 -> Nullable<Int8>,
        m2 -> Nullable<Int8>,
        computed_at -> Timestamptz,
    }
}

diesel::table! {
    programs (id) {
        id -> Uuid,
        merchant_id -> Uuid,
        name -> Text,
        template_id -> Text,
        #[max_length = 3]
        currency -> Bpchar,
        points_per_unit -> Int4,
        welcome_points -> Int8,
        tiers -> Jsonb,
        referral -> Nullable<Jsonb>,
        created_at -> Timestamptz,
        join_code -> Text,
        pos_max_purchase -> Int8,
        pos_max_points_adjustment -> Int8,
        lifecycle -> Jsonb,
        segments -> Jsonb,
    }
}

diesel::table! {
    purchases (id) {
        id -> Uuid,
        merchant_id -> Uuid,
        member_id -> Uuid,
        amount -> Int8,
        #[max_length = 3]
        currency -> Bpchar,
        points_earned -> Int8,
        purchased_at -> Timestamptz,
        redemption_id -> Nullable<Uuid>,
        points_paid -> Int8,
        refunded_amount -> Int8,
        points_taken_back -> Int8,
        points_given_back -> Int8,
    }
}

diesel::table! {
    referrals (id) {
        id -> Uuid,
        merchant_id -> Uuid,
        program_id -> Uuid,
        referrer_id -> Uuid,
        referee_id -> Uuid,
        status -> Text,
        referrer_points -> Int8,
        referee_points -> Int8,
        first_purchase_at -> Nullable<Timestamptz>,
        rewarded_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    registrations (device_library_identifier, pass_id) {
        device_library_identifier -> Text,
        pass_id -> Uuid,
        created_at -> Timestamptz,
        merchant_id -> Uuid,
    }
}

diesel::table! {
    sign_in_failures (id) {
        id -> Int8,
        email -> Text,
        client -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    site_secrets (name) {
        name -> Text,
        secret -> Bytea,
    }
}

diesel::table! {
    staff (id) {
        id -> Uuid,
        merchant_id -> Uuid,
        email -> Text,
        role -> Text,
        password_hash -> Text,
        language -> Text,
        created_at -> Timestamptz,
        last_sign_in_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    staff_invitations (id) {
        id -> Uuid,
        merchant_id -> Uuid,
        email -> Text,
        role -> Text,
        token_hash -> Bytea,
        invited_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        accepted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    staff_sessions (token_hash) {
        token_hash -> Bytea,
        merchant_id -> Uuid,
        staff_id -> Uuid,
        created_at -> Timestamptz,
        last_seen_at -> Timestamptz,
    }
}

diesel::table! {
    template_blobs (merchant_id, sha256) {
        merchant_id -> Uuid,
        sha256 -> Bytea,
        data -> Bytea,
    }
}

diesel::table! {
    template_drafts (merchant_id, template_id) {
        merchant_id -> Uuid,
        template_id -> Text,
        document -> Jsonb,
        images -> Jsonb,
        based_on -> Int4,
        staff_id -> Nullable<Uuid>,
        api_key_id -> Nullable<Uuid>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    template_images (merchant_id, template_id, file_name) {
        merchant_id -> Uuid,
        template_id -> Text,
        file_name -> Text,
        data -> Bytea,
    }
}

diesel::table! {
    template_versions (merchant_id, template_id, version) {
        merchant_id -> Uuid,
        template_id -> Text,
        version -> Int4,
        document -> Jsonb,
        images -> Jsonb,
        published_at -> Timestamptz,
        staff_id -> Nullable<Uuid>,
        api_key_id -> Nullable<Uuid>,
        restored_from -> Nullable<Int4>,
    }
}

diesel::table! {
    survey_answers (invitation_id) {
        invitation_id -> Uuid,
        merchant_id -> Uuid,
        program_id -> Uuid,
        score -> Int2,
        comment -> Nullable<Text>,
        answered_at -> Timestamptz,
    }
}

diesel::table! {
    survey_invitations (id) {
        id -> Uuid,
        merchant_id -> Uuid,
        program_id -> Uuid,
        member_id -> Uuid,
        purchase_id -> Uuid,
        token_hash -> Bytea,
        invited_at -> Timestamptz,
    }
}

diesel::table! {
    survey_rules (program_id) {
        program_id -> Uuid,
        merchant_id -> Uuid,
        delay_minutes -> Int4,
        share_percent -> Int2,
        every_days -> Int4,
        since -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    templates (merchant_id, id) {
        merchant_id -> Uuid,
        id -> Text,
        kind -> Text,
        version -> Int4,
        document -> Jsonb,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    webhook_attempts (id) {
        id -> Int8,
        merchant_id -> Uuid,
        endpoint_id -> Uuid,
        message_id -> Text,
        attempt -> Int4,
        status -> Text,
        response_code -> Nullable<Int4>,
        error -> Nullable<Text>,
        duration_ms -> Int4,
        at -> Timestamptz,
    }
}

diesel::table! {
    webhook_endpoints (id) {
        id -> Uuid,
        merchant_id -> Uuid,
        url -> Text,
        description -> Nullable<Text>,
        events -> Array<Text>,
        enabled -> Bool,
        secret -> Text,
        previous_secret -> Nullable<Text>,
        previous_secret_until -> Nullable<Timestamptz>,
        failing_since -> Nullable<Timestamptz>,
        disabled_reason -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    webhook_messages (merchant_id, id) {
        merchant_id -> Uuid,
        id -> Text,
        #[sql_name = "type"]
        type_ -> Text,
        data -> Jsonb,
        created_at -> Timestamptz,
        seq -> Int8,
    }
}

diesel::joinable!(api_keys -> merchants (merchant_id));
diesel::joinable!(template_blobs -> merchants (merchant_id));
diesel::joinable!(audit_log -> merchants (merchant_id));
diesel::joinable!(automation_firings -> automations (automation_id));
diesel::joinable!(automations -> merchants (merchant_id));
diesel::joinable!(automations -> programs (program_id));
diesel::joinable!(campaign_recipients -> campaigns (campaign_id));
diesel::joinable!(campaign_recipients -> members (member_id));
diesel::joinable!(campaign_recipients -> merchants (merchant_id));
diesel::joinable!(campaign_recipients -> passes (pass_id));
diesel::joinable!(campaigns -> merchants (merchant_id));
diesel::joinable!(campaigns -> programs (program_id));
diesel::joinable!(dashboard_snapshots -> merchants (merchant_id));
diesel::joinable!(gift_card_activities -> gift_cards (gift_card_id));
diesel::joinable!(gift_card_activities -> merchants (merchant_id));
diesel::joinable!(gift_cards -> merchants (merchant_id));
diesel::joinable!(google_installs -> passes (pass_id));
diesel::joinable!(google_notifications -> passes (pass_id));
diesel::joinable!(google_objects -> passes (pass_id));
diesel::joinable!(idempotency_keys -> merchants (merchant_id));
diesel::joinable!(import_chunks -> imports (import_id));
diesel::joinable!(import_errors -> imports (import_id));
diesel::joinable!(imports -> merchants (merchant_id));
diesel::joinable!(link_opens -> members (referrer_id));
diesel::joinable!(link_opens -> programs (program_id));
diesel::joinable!(member_consents -> members (member_id));
diesel::joinable!(member_consents -> merchants (merchant_id));
diesel::joinable!(members -> merchants (merchant_id));
diesel::joinable!(members -> programs (program_id));
diesel::joinable!(non_member_receipts -> merchants (merchant_id));
diesel::joinable!(non_member_receipts -> programs (program_id));
diesel::joinable!(passes -> gift_cards (gift_card_id));
diesel::joinable!(passes -> members (member_id));
diesel::joinable!(passes -> merchants (merchant_id));
diesel::joinable!(pin_failures -> gift_cards (gift_card_id));
diesel::joinable!(point_activities -> members (member_id));
diesel::joinable!(point_activities -> merchants (merchant_id));
diesel::joinable!(point_activities -> referrals (referral_id));
diesel::joinable!(point_lots -> members (member_id));
diesel::joinable!(point_lots -> merchants (merchant_id));
diesel::joinable!(programs -> merchants (merchant_id));
diesel::joinable!(purchases -> members (member_id));
diesel::joinable!(purchases -> merchants (merchant_id));
diesel::joinable!(referrals -> merchants (merchant_id));
diesel::joinable!(referrals -> programs (program_id));
diesel::joinable!(registrations -> devices (device_library_identifier));
diesel::joinable!(registrations -> passes (pass_id));
diesel::joinable!(staff -> merchants (merchant_id));
diesel::joinable!(staff_invitations -> merchants (merchant_id));
diesel::joinable!(staff_invitations -> staff (invited_by));
diesel::joinable!(staff_sessions -> merchants (merchant_id));
diesel::joinable!(staff_sessions -> staff (staff_id));
diesel::joinable!(survey_answers -> survey_invitations (invitation_id));
diesel::joinable!(survey_invitations -> members (member_id));
diesel::joinable!(survey_invitations -> programs (program_id));
diesel::joinable!(survey_rules -> programs (program_id));
diesel::joinable!(templates -> merchants (merchant_id));
diesel::joinable!(webhook_attempts -> webhook_endpoints (endpoint_id));
diesel::joinable!(webhook_endpoints -> merchants (merchant_id));
diesel::joinable!(webhook_messages -> merchants (merchant_id));

diesel::allow_tables_to_appear_in_same_query!(
    api_keys,
    audit_log,
    automation_firings,
    automations,
    campaign_recipients,
    campaigns,
    dashboard_snapshots,
    device_logs,
    devices,
    gift_card_activities,
    gift_cards,
    google_callbacks,
    google_installs,
    google_notifications,
    google_objects,
    idempotency_keys,
    import_chunks,
    import_errors,
    imports,
    join_attempts,
    link_opens,
    member_consents,
    member_segments,
    member_stage_changes,
    members,
    merchants,
    non_member_receipts,
    outbox,
    passes,
    pin_failures,
    point_activities,
    point_lots,
    program_rfm,
    programs,
    purchases,
    referrals,
    registrations,
    sign_in_failures,
    site_secrets,
    staff,
    staff_invitations,
    staff_sessions,
    survey_answers,
    survey_invitations,
    survey_rules,
    template_blobs,
    template_drafts,
    template_images,
    template_versions,
    templates,
    webhook_attempts,
    webhook_endpoints,
    webhook_messages,
);
