//! Sending a campaign, as of the worker's `now`, in two steps that each hold the
//! campaign's row lock (`SKIP LOCKED`: a second worker leaves a campaign another holds):
//!
//! 1. **fix the audience**: the members the audience selects become recipients, a random
//!    `holdout_percent` of them held out (stored per recipient, never drawn again), and
//!    the campaign is `sending`;
//! 2. **send** in batches, one transaction each: the bonus points through the ledger, the
//!    message on each pass through `notices::post` (one change per pass, delivered by the
//!    outbox to Apple devices and Google Wallet), and the recipients marked sent in the
//!    same transaction. A worker killed between batches leaves the rest pending for the
//!    next run: nothing is sent or granted twice.
//!
//! Neither step runs outside 09:00-21:00 in the program's time zone.

use super::{Audience, CampaignRow, MessageText, Offer};
use crate::db::Tenant;
use crate::domain::PointActivityType;
use crate::loyalty::ledger::{self, Entry};
use crate::loyalty::notices::{self, Notice};
use crate::loyalty::sending_hours::sending_hours;
use crate::models::{Member, Program};
use crate::pass_events::Channels;
use crate::schema::{campaigns, members, programs};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::Uuid as SqlUuid;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, SmallInt, Text, Timestamptz};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Recipients sent per transaction (as the expiry reminders).
const BATCH: i64 = 5_000;

/// The campaigns due as of `now` (scheduled and due, or sending), oldest due first.
fn due(conn: &mut PgConnection, now: DateTime<Utc>) -> QueryResult<Vec<CampaignRow>> {
    campaigns::table
        .filter(campaigns::state.eq_any(["scheduled", "sending"]))
        .filter(campaigns::send_at.le(now))
        .order((campaigns::send_at, campaigns::id))
        .select(CampaignRow::as_select())
        .load(conn)
}

/// Sends what is due as of `now`; returns the recipients sent.
pub fn run(
    conn: &mut PgConnection,
    channels: Channels,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    run_with(conn, channels, now, (BATCH, usize::MAX))
}

/// [`run`] with `batch` recipients a transaction, stopping after `batches` transactions
/// per campaign (as a worker killed there would; the tests' stand-in for a crash).
pub fn run_with(
    conn: &mut PgConnection,
    channels: Channels,
    now: DateTime<Utc>,
    (batch, batches): (i64, usize),
) -> anyhow::Result<usize> {
    let mut done = 0;
    for campaign in due(conn, now)? {
        match one(conn, channels, &campaign, now, (batch, batches)) {
            Ok(n) => done += n,
            // One campaign that cannot go now (a member's row held past the lock timeout,
            // a program's unreadable rules) does not hold up the others; it is retried on
            // the next run from where it stopped.
            Err(e) => tracing::warn!(
                campaign = %campaign.id, error = format!("{e:#}"), "campaign not sent for now"
            ),
        }
    }
    Ok(done)
}

/// Sends one due campaign as far as this worker may; returns the recipients sent.
fn one(
    conn: &mut PgConnection,
    channels: Channels,
    campaign: &CampaignRow,
    now: DateTime<Utc>,
    (size, batches): (i64, usize),
) -> anyhow::Result<usize> {
    let program: Program = programs::table
        .filter(programs::merchant_id.eq(campaign.merchant_id))
        .filter(programs::id.eq(campaign.program_id))
        .select(Program::as_select())
        .first(conn)?;
    if !sending_hours(now, program.tz()) {
        return Ok(0);
    }
    if campaign.state == "scheduled" && !fix_audience(conn, campaign, now)? {
        // Another worker holds it (or it was cancelled meanwhile).
        return Ok(0);
    }
    let rules = crate::loyalty::program::rules(&program)?;
    let texts = texts(&campaign.texts(), campaign.offer_parsed().as_ref());
    let reason = format!("campaign {}", campaign.id);
    let mut done = 0;
    for _ in 0..batches {
        match batch(
            conn,
            channels,
            (campaign, &rules, &texts, &reason),
            (now, size),
        )? {
            Some(n) => done += n,
            None => break,
        }
    }
    Ok(done)
}

/// The (header, body) of each language, the offer added to the body: its text, the coupon
/// code and the last day, labelled in Russian for `ru` and in English otherwise.
pub fn texts(
    message: &BTreeMap<String, MessageText>,
    offer: Option<&Offer>,
) -> BTreeMap<String, (String, String)> {
    message
        .iter()
        .map(|(lang, m)| {
            let mut body = m.body.clone();
            if let Some(o) = offer {
                let ru = lang == "ru";
                body.push_str("\n\n");
                body.push_str(&o.text);
                if let Some(code) = &o.coupon_code {
                    let label = if ru { "Промокод" } else { "Code" };
                    body.push_str(&format!("\n{label}: {code}"));
                }
                if let Some(day) = o.valid_until {
                    let label = if ru {
                        "Действует до"
                    } else {
                        "Valid until"
                    };
                    body.push_str(&format!("\n{label} {}", day.format("%Y-%m-%d")));
                }
            }
            (lang.clone(), (m.header.clone(), body))
        })
        .collect()
}

/// Takes the campaign's row lock for the transaction if it is in `state`; false when
/// another worker holds it or it has moved on.
fn lock(conn: &mut PgConnection, campaign: &CampaignRow, state: &str) -> QueryResult<bool> {
    Ok(campaigns::table
        .filter(campaigns::merchant_id.eq(campaign.merchant_id))
        .filter(campaigns::id.eq(campaign.id))
        .filter(campaigns::state.eq(state))
        .for_update()
        .skip_locked()
        .select(campaigns::id)
        .first::<Uuid>(conn)
        .optional()?
        .is_some())
}

/// Fixes the audience of a scheduled campaign and draws its holdout; false when another
/// worker holds the campaign or it is no longer scheduled.
fn fix_audience(
    conn: &mut PgConnection,
    campaign: &CampaignRow,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let audience: Audience = serde_json::from_value(campaign.audience.clone()).unwrap_or_default();
    conn.transaction(|conn| {
        if !lock(conn, campaign, "scheduled")? {
            return Ok(false);
        }
        let kinds = [
            &audience.groups,
            &audience.cells,
            &audience.stages,
            &audience.tiers,
        ];
        let any_kind = kinds.iter().any(|k| k.is_some());
        // Planned as costly, this statement was JIT-compiled: 0.29 s of its 3.35 s at
        // 100,000 recipients (the fan-out bench's plans), for work that is index probes
        // and inserts, which compiled expressions do not speed up.
        diesel::sql_query("SET LOCAL jit = off").execute(conn)?;
        // Kinds AND'd (a kind left out holds), values OR'd, member ids added; the holdout
        // is the first round(n × percent / 100) of a random order.
        diesel::sql_query(
            "WITH aud AS (
                 SELECT m.id FROM members m
                   LEFT JOIN member_segments s ON s.member_id = m.id
                  WHERE m.merchant_id = $1 AND m.program_id = $2 AND m.erased_at IS NULL
                    AND (($3 AND ($4::text[] IS NULL
                                  OR coalesce(s.rfm_group, 'no_purchases') = ANY($4))
                             AND ($5::text[] IS NULL OR s.cell = ANY($5))
                             AND ($6::text[] IS NULL
                                  OR coalesce(s.stage, 'registered') = ANY($6))
                             AND ($7::text[] IS NULL OR m.tier = ANY($7)))
                         OR m.id = ANY($8))),
             drawn AS (
                 SELECT id, row_number() OVER (ORDER BY random()) AS k, count(*) OVER () AS n
                   FROM aud)
             INSERT INTO campaign_recipients (campaign_id, member_id, merchant_id, held_out,
                                              pass_id, apple_devices, google_saved)
             SELECT $9, d.id, $1, d.k <= (d.n * $10 + 50) / 100, p.id,
                    (SELECT count(*) FROM registrations g
                      WHERE g.merchant_id = $1 AND g.pass_id = p.id)::int,
                    coalesce((SELECT gi.saved FROM google_installs gi
                               WHERE gi.merchant_id = $1 AND gi.pass_id = p.id),
                             false)
               FROM drawn d LEFT JOIN passes p ON p.merchant_id = $1 AND p.member_id = d.id",
        )
        .bind::<SqlUuid, _>(campaign.merchant_id)
        .bind::<SqlUuid, _>(campaign.program_id)
        .bind::<Bool, _>(any_kind)
        .bind::<Nullable<Array<Text>>, _>(&audience.groups)
        .bind::<Nullable<Array<Text>>, _>(&audience.cells)
        .bind::<Nullable<Array<Text>>, _>(&audience.stages)
        .bind::<Nullable<Array<Text>>, _>(&audience.tiers)
        .bind::<Array<SqlUuid>, _>(audience.member_ids.clone().unwrap_or_default())
        .bind::<SqlUuid, _>(campaign.id)
        .bind::<SmallInt, _>(campaign.holdout_percent)
        .execute(conn)?;
        // Statistics that know of the new audience, so that each batch's statements look
        // its rows up by key instead of reading the whole campaign.
        diesel::sql_query("ANALYZE campaign_recipients").execute(conn)?;
        diesel::update(campaigns::table.find(campaign.id))
            .filter(campaigns::merchant_id.eq(campaign.merchant_id))
            .set((
                campaigns::state.eq("sending"),
                campaigns::started_at.eq(now),
            ))
            .execute(conn)?;
        Ok(true)
    })
}

#[derive(QueryableByName)]
struct Pending {
    #[diesel(sql_type = SqlUuid)]
    member_id: Uuid,
}

/// Sends one batch of a sending campaign: `Some(n)` recipients sent (the campaign marked
/// sent when none were left), `None` when there is nothing more for this worker to do.
fn batch(
    conn: &mut PgConnection,
    channels: Channels,
    (campaign, rules, texts, reason): (
        &CampaignRow,
        &crate::loyalty::ProgramRules,
        &BTreeMap<String, (String, String)>,
        &str,
    ),
    (now, size): (DateTime<Utc>, i64),
) -> anyhow::Result<Option<usize>> {
    conn.transaction(|conn| {
        if !lock(conn, campaign, "sending")? {
            return Ok(None);
        }
        let pending: Vec<Uuid> = diesel::sql_query(
            "SELECT member_id FROM campaign_recipients
              WHERE merchant_id = $3 AND campaign_id = $1 AND NOT held_out AND sent_at IS NULL
              ORDER BY member_id LIMIT $2",
        )
        .bind::<SqlUuid, _>(campaign.id)
        .bind::<BigInt, _>(size.max(1))
        .bind::<SqlUuid, _>(campaign.merchant_id)
        .load::<Pending>(conn)?
        .into_iter()
        .map(|p| p.member_id)
        .collect();
        if pending.is_empty() {
            diesel::update(campaigns::table.find(campaign.id))
                .filter(campaigns::merchant_id.eq(campaign.merchant_id))
                .set((campaigns::state.eq("sent"), campaigns::finished_at.eq(now)))
                .execute(conn)?;
            sent_event(conn, campaign, now)?;
            return Ok(None);
        }
        let content = Content {
            bonus_points: campaign.bonus_points,
            expires_in_days: None,
            texts,
            reason,
        };
        deliver(
            conn,
            channels,
            campaign.merchant_id,
            &pending,
            &content,
            rules,
            now,
        )?;
        // The pending rows' own index: the batch's rows by key, however many were sent.
        diesel::sql_query(
            "UPDATE campaign_recipients SET sent_at = $3
              WHERE merchant_id = $4 AND campaign_id = $1 AND member_id = ANY($2)
                AND NOT held_out AND sent_at IS NULL",
        )
        .bind::<SqlUuid, _>(campaign.id)
        .bind::<Array<SqlUuid>, _>(&pending)
        .bind::<Timestamptz, _>(now)
        .bind::<SqlUuid, _>(campaign.merchant_id)
        .execute(conn)?;
        Ok(Some(pending.len()))
    })
}

/// What a campaign or an automation puts on each pass it sends to.
pub(super) struct Content<'a> {
    /// Points granted to each member (ledger type `campaign`), 0 for none.
    pub bonus_points: i64,
    /// Days those points last, when not the program's rule.
    pub expires_in_days: Option<i64>,
    /// (header, body) per language, the offer in the body.
    pub texts: &'a BTreeMap<String, (String, String)>,
    /// The ledger's reason, e.g. `campaign <id>`.
    pub reason: &'a str,
}

/// Grants the points and posts the message to `members` (of `merchant_id`), in the
/// caller's transaction: the one writer both campaigns and automations send through.
pub(super) fn deliver(
    conn: &mut PgConnection,
    channels: Channels,
    merchant_id: Uuid,
    members: &[Uuid],
    content: &Content<'_>,
    rules: &crate::loyalty::ProgramRules,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let note = |m: Uuid| {
        let texts = content.texts.clone();
        (merchant_id, m, Notice::Campaign { texts })
    };
    if content.bonus_points > 0 {
        let tenant = Tenant::of_authenticated(merchant_id);
        // In id order, as the other jobs and tills take member locks.
        let found: Vec<Member> = members::table
            .filter(members::merchant_id.eq(merchant_id))
            .filter(members::id.eq_any(members))
            .filter(members::erased_at.is_null())
            .order(members::id)
            .select(Member::as_select())
            .load(conn)?;
        for member in &found {
            let entry = Entry {
                reason: Some(content.reason),
                expires_in_days: content.expires_in_days,
                ..Entry::new(content.bonus_points, PointActivityType::Campaign, now)
            };
            ledger::apply(conn, channels, &tenant, member, rules, entry)
                .map_err(|e| anyhow::anyhow!("bonus points for member {}: {e}", member.id))?;
            // The message right after the points (a tier they reached gives way to it): the
            // pass's two outbox rows are neighbours, claimed together into one push.
            notices::post(conn, channels, &[note(member.id)], now)?;
        }
    } else {
        let notes: Vec<(Uuid, Uuid, Notice)> = members.iter().map(|m| note(*m)).collect();
        notices::post(conn, channels, &notes, now)?;
    }
    Ok(())
}

/// `campaign.sent` for the merchant's webhooks, in the transaction that marks it sent.
fn sent_event(
    conn: &mut PgConnection,
    campaign: &CampaignRow,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let tenant = Tenant::of_authenticated(campaign.merchant_id);
    let c = super::results::counts(conn, &tenant, &[campaign.id])?
        .remove(&campaign.id)
        .unwrap_or_default();
    let data = serde_json::json!({
        "campaign_id": campaign.id,
        "program_id": campaign.program_id,
        "targeted": c.targeted,
        "held_out": c.held_out,
        "sent": c.sent,
    });
    crate::webhooks::events::emit(conn, campaign.merchant_id, "campaign.sent", &data, now)?;
    Ok(())
}
