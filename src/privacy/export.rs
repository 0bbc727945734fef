//! A member's data export: everything passfold holds about one member, as one JSON
//! document read in one statement (one snapshot). [`TABLES`] says where each table that
//! names a member or their pass is covered; a test compares it with the database, so a new
//! such table cannot be left out unnoticed.

use crate::db::Tenant;
use crate::models::Member;
use crate::problem::ApiError;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

/// Every table with a column naming a member or a pass (`member_id`, `pass_id`,
/// `referrer_id`, `referee_id`, `referred_by`), and the section of the export that covers
/// it, or why it is left out.
pub const TABLES: &[(&str, &str)] = &[
    ("members", "member"),
    ("member_consents", "consents"),
    ("point_activities", "point_activities"),
    ("point_lots", "point_lots"),
    ("purchases", "purchases"),
    (
        "passes",
        "passes (without the authentication and download tokens)",
    ),
    (
        "registrations",
        "apple_devices (push tokens left out: the device's secret)",
    ),
    ("google_objects", "google.objects"),
    ("google_installs", "google.installs"),
    ("google_notifications", "google.notifications"),
    ("referrals", "referrals.made, referrals.received"),
    (
        "link_opens",
        "referrals.link_opens (a count: the visitors are other people)",
    ),
    ("member_segments", "segment"),
    ("member_stage_changes", "stage_changes"),
    (
        "campaign_recipients",
        "campaigns (with each campaign's message)",
    ),
    (
        "automation_firings",
        "automations (what fired each, with its message)",
    ),
    ("survey_invitations", "surveys (with the answers)"),
    (
        "outbox",
        "left out: deliveries queued for seconds, naming a pass whose content is exported",
    ),
];

/// The columns that tie a row to a member or a pass (what [`TABLES`] must cover).
pub const MEMBER_COLUMNS: &[&str] = &[
    "member_id",
    "pass_id",
    "referrer_id",
    "referee_id",
    "referred_by",
];

/// The document's format name, so that a reader can tell versions apart.
pub const FORMAT: &str = "passfold.member-export.v1";

#[derive(QueryableByName)]
struct Sections {
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    data: serde_json::Value,
}

/// Everything but the profile, in one statement: $1 merchant, $2 member.
const SECTIONS: &str = r#"
SELECT jsonb_build_object(
  'consents', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'kind', c.kind, 'granted', c.granted, 'source', c.source, 'at', c.at,
                   'ip', c.ip, 'user_agent', c.user_agent) ORDER BY c.id), '[]')
                 FROM member_consents c WHERE c.merchant_id = $1 AND c.member_id = $2),
  'point_activities', (SELECT coalesce(jsonb_agg(to_jsonb(a) - 'merchant_id' - 'member_id'
                                                 ORDER BY a.seq), '[]')
                         FROM point_activities a WHERE a.merchant_id = $1 AND a.member_id = $2),
  'point_lots', (SELECT coalesce(jsonb_agg(to_jsonb(l) - 'merchant_id' - 'member_id'
                                           ORDER BY l.id), '[]')
                   FROM point_lots l WHERE l.merchant_id = $1 AND l.member_id = $2),
  'purchases', (SELECT coalesce(jsonb_agg(to_jsonb(p) - 'merchant_id' - 'member_id'
                                          ORDER BY p.purchased_at, p.id), '[]')
                  FROM purchases p WHERE p.merchant_id = $1 AND p.member_id = $2),
  'passes', (SELECT coalesce(jsonb_agg(to_jsonb(p) - 'merchant_id' - 'member_id'
                                       - 'authentication_token' - 'download_token'
                                       ORDER BY p.created_at), '[]')
               FROM passes p WHERE p.merchant_id = $1 AND p.member_id = $2),
  'apple_devices', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                        'device_library_identifier', r.device_library_identifier,
                        'pass_id', r.pass_id, 'registered_at', r.created_at)
                        ORDER BY r.created_at), '[]')
                      FROM registrations r JOIN passes p ON p.id = r.pass_id
                     WHERE p.merchant_id = $1 AND p.member_id = $2),
  'google', jsonb_build_object(
      'objects', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                      'pass_id', o.pass_id, 'object_id_suffix', 'pass_' || p.serial_number,
                      'inserted_at', o.inserted_at)), '[]')
                    FROM google_objects o JOIN passes p ON p.id = o.pass_id
                   WHERE p.merchant_id = $1 AND p.member_id = $2),
      'installs', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                       'pass_id', i.pass_id, 'saved', i.saved, 'updated_at', i.updated_at)), '[]')
                     FROM google_installs i JOIN passes p ON p.id = i.pass_id
                    WHERE p.merchant_id = $1 AND p.member_id = $2),
      'notifications', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                            'pass_id', n.pass_id, 'sent_at', n.sent_at) ORDER BY n.id), '[]')
                          FROM google_notifications n JOIN passes p ON p.id = n.pass_id
                         WHERE p.merchant_id = $1 AND p.member_id = $2)),
  'referrals', jsonb_build_object(
      'made', (SELECT coalesce(jsonb_agg(to_jsonb(r) - 'merchant_id' ORDER BY r.created_at), '[]')
                 FROM referrals r WHERE r.merchant_id = $1 AND r.referrer_id = $2),
      'received', (SELECT coalesce(jsonb_agg(to_jsonb(r) - 'merchant_id' ORDER BY r.created_at), '[]')
                     FROM referrals r WHERE r.merchant_id = $1 AND r.referee_id = $2),
      'link_opens', (SELECT count(*) FROM link_opens o
                      WHERE o.merchant_id = $1 AND o.referrer_id = $2)),
  'segment', (SELECT to_jsonb(s) - 'merchant_id' - 'member_id'
                FROM member_segments s WHERE s.merchant_id = $1 AND s.member_id = $2),
  'stage_changes', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                        'from', s.from_stage, 'to', s.to_stage, 'at', s.at) ORDER BY s.id), '[]')
                      FROM member_stage_changes s
                     WHERE s.merchant_id = $1 AND s.member_id = $2),
  'campaigns', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                    'campaign_id', r.campaign_id, 'held_out', r.held_out, 'message', c.message,
                    'bonus_points', c.bonus_points, 'sent_at', r.sent_at,
                    'apple_pushed_at', r.apple_pushed_at,
                    'google_messaged_at', r.google_messaged_at) ORDER BY c.send_at), '[]')
                  FROM campaign_recipients r JOIN campaigns c ON c.id = r.campaign_id
                 WHERE r.merchant_id = $1 AND r.member_id = $2),
  'automations', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                      'automation_id', a.id, 'name', a.name, 'event', f.event,
                      'event_at', f.event_at, 'fired_at', f.fired_at, 'held_out', f.held_out,
                      'message', a.message, 'bonus_points', a.bonus_points,
                      'sent_at', f.sent_at, 'apple_pushed_at', f.apple_pushed_at,
                      'google_messaged_at', f.google_messaged_at) ORDER BY f.fired_at), '[]')
                    FROM automation_firings f JOIN automations a ON a.id = f.automation_id
                   WHERE f.merchant_id = $1 AND f.member_id = $2),
  'surveys', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                  'invitation_id', i.id, 'purchase_id', i.purchase_id,
                  'invited_at', i.invited_at, 'score', a.score, 'comment', a.comment,
                  'answered_at', a.answered_at) ORDER BY i.invited_at), '[]')
                FROM survey_invitations i LEFT JOIN survey_answers a ON a.invitation_id = i.id
               WHERE i.merchant_id = $1 AND i.member_id = $2),
  'webhook_messages', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                           'id', w.id, 'type', w.type, 'data', w.data,
                           'created_at', w.created_at) ORDER BY w.seq), '[]')
                         FROM webhook_messages w
                        WHERE w.merchant_id = $1 AND (
                              w.data->>'member_id' = $2::text
                           OR w.data->>'referrer_id' = $2::text
                           OR w.data->>'referee_id' = $2::text
                           OR (w.type LIKE 'member.%' AND w.data->>'id' = $2::text))),
  'audit_log', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                    'action', l.action, 'details', l.details, 'at', l.created_at)
                    ORDER BY l.id), '[]')
                  FROM audit_log l WHERE l.merchant_id = $1 AND l.details->>'member' = $2::text)
) AS data
"#;

/// The member's profile as the export shows it.
fn profile(m: &Member) -> serde_json::Value {
    serde_json::json!({
        "id": m.id,
        "program_id": m.program_id,
        "name": m.name,
        "email": m.email,
        "phone": m.phone,
        "external_id": m.external_id,
        "birth_date": m.birth_date().map(|d| d.to_string()),
        "card_number": m.card_number,
        "tier": m.tier,
        "points": m.points,
        "lifetime_points": m.lifetime_points,
        "points_owed": m.points_owed,
        "referral_code": m.referral_code,
        "referred_by": m.referred_by,
        "created_at": m.created_at,
        "updated_at": m.updated_at,
        "erased_at": m.erased_at,
    })
}

/// The export of one member of the tenant, as of `at`.
pub fn export(
    conn: &mut PgConnection,
    tenant: &Tenant,
    member_id: Uuid,
    at: DateTime<Utc>,
) -> Result<serde_json::Value, ApiError> {
    conn.build_transaction()
        .read_only()
        .repeatable_read()
        .run(|conn| {
            let member = Member::find(conn, tenant, member_id)?;
            let sections: Sections = diesel::sql_query(SECTIONS)
                .bind::<diesel::sql_types::Uuid, _>(tenant.merchant_id())
                .bind::<diesel::sql_types::Uuid, _>(member.id)
                .get_result(conn)?;
            let mut doc = serde_json::json!({
                "format": FORMAT,
                "exported_at": at,
                "member": profile(&member),
            });
            if let (Some(out), serde_json::Value::Object(sections)) =
                (doc.as_object_mut(), sections.data)
            {
                out.extend(sections);
            }
            Ok(doc)
        })
}
