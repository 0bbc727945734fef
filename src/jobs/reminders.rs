//! Expiry reminders on the lock screen. When a lot comes within one of its program's
//! `expiry_reminders_days` of expiring, the member's card gets a message ("120 points
//! expire on 12 December"): the Apple pass's change message and a Google Wallet message,
//! notified within the pass's daily budget. Each offset is sent once per lot (recorded on
//! the lot in the transaction that sends it), and only between 09:00 and 21:00 in the
//! program's time zone: what falls due at night waits for the morning, and a lot that has
//! passed two offsets meanwhile gets one message, the most urgent.

use crate::loyalty::sending_hours::sending_hours;
use crate::loyalty::Lifecycle;
use crate::pass_events::Channels;
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Int4, Text, Timestamptz, Uuid as SqlUuid};
use std::collections::BTreeMap;
use std::time::Duration;
use uuid::Uuid;

/// Members reminded per transaction.
const BATCH: usize = 5_000;

pub struct Reminders {
    pub channels: Channels,
}

#[derive(QueryableByName)]
struct ProgramRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    merchant_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    lifecycle: serde_json::Value,
    #[diesel(sql_type = Text)]
    language: String,
}

#[derive(QueryableByName)]
struct LotRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = SqlUuid)]
    member_id: Uuid,
    #[diesel(sql_type = Timestamptz)]
    expires_at: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    remaining: i64,
    /// Offsets due now and not sent yet.
    #[diesel(sql_type = Array<Int4>)]
    newly: Vec<i32>,
}

/// What one member is told: the points expiring on the most urgent newly due day, and the
/// lots whose reminders this sends.
struct Reminder {
    member_id: Uuid,
    points: i64,
    day: NaiveDate,
    lots: Vec<i64>,
}

fn plan(rows: Vec<LotRow>, tz: chrono_tz::Tz) -> Vec<Reminder> {
    let mut by_member: BTreeMap<Uuid, Vec<LotRow>> = BTreeMap::new();
    for r in rows {
        by_member.entry(r.member_id).or_default().push(r);
    }
    let day = |at: DateTime<Utc>| at.with_timezone(&tz).date_naive();
    by_member
        .into_iter()
        .filter_map(|(member_id, lots)| {
            let first = lots
                .iter()
                .filter(|l| !l.newly.is_empty())
                .map(|l| day(l.expires_at))
                .min()?;
            let on_day: Vec<&LotRow> = lots.iter().filter(|l| day(l.expires_at) == first).collect();
            Some(Reminder {
                member_id,
                points: on_day.iter().map(|l| l.remaining).sum(),
                day: first,
                lots: on_day
                    .iter()
                    .filter(|l| !l.newly.is_empty())
                    .map(|l| l.id)
                    .collect(),
            })
        })
        .collect()
}

#[derive(QueryableByName)]
struct MemberId {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

/// Sends what is due for one program as of `now`, a batch of members per transaction (so
/// pushes start while later batches are planned); returns the members reminded.
///
/// The due lots are read once a run, so a run costs what it sends, not the square of it
/// (rescanning the window for each batch did). Each batch locks its members (`SKIP LOCKED`:
/// another worker's batch is left to it) and only then reads their lots, so a lot's
/// reminder is decided under the lock that its sending commits with: two workers never
/// send one twice.
fn program(
    conn: &mut PgConnection,
    channels: Channels,
    p: &ProgramRow,
    rules: &Lifecycle,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    let offsets: Vec<i32> = rules
        .expiry_reminders_days
        .iter()
        .map(|d| *d as i32)
        .collect();
    let Some(max) = offsets.iter().max().copied() else {
        return Ok(0);
    };
    // Lots of the program within the longest offset of expiring, open.
    const OPEN: &str = "l.merchant_id = $1 AND l.remaining > 0 AND NOT l.expired
                AND l.expires_at IS NOT NULL
                AND l.expires_at > $3 AND l.expires_at <= $3 + make_interval(days => $5)";
    // Offsets due as of $3 and not sent yet.
    const NEWLY: &str = "SELECT d FROM unnest($4::int[]) d
                WHERE l.expires_at - make_interval(days => d) <= $3 AND NOT d = ANY(l.reminded)";
    // Whose reminders are due: one read of the program's due lots per run. Lots coming due
    // while the run lasts are the next run's.
    let due: Vec<MemberId> = diesel::sql_query(format!(
        "SELECT DISTINCT l.member_id AS id
           FROM point_lots l JOIN members m ON m.id = l.member_id
          WHERE m.program_id = $2 AND m.erased_at IS NULL AND {OPEN} AND EXISTS ({NEWLY})"
    ))
    .bind::<SqlUuid, _>(p.merchant_id)
    .bind::<SqlUuid, _>(p.id)
    .bind::<Timestamptz, _>(now)
    .bind::<Array<Int4>, _>(&offsets)
    .bind::<Int4, _>(max)
    .load(conn)?;
    let mut done = 0;
    for batch in due.chunks(BATCH) {
        let ids: Vec<Uuid> = batch.iter().map(|m| m.id).collect();
        done += conn.transaction(|conn| {
            let locked: Vec<MemberId> = diesel::sql_query(
                "SELECT id FROM members WHERE id = ANY($1) ORDER BY id FOR UPDATE SKIP LOCKED",
            )
            .bind::<Array<SqlUuid>, _>(&ids)
            .load(conn)?;
            let locked: Vec<Uuid> = locked.into_iter().map(|m| m.id).collect();
            // A fresh statement under the locks; `newly` the offsets due and unsent (none
            // if another worker sent them since the due lots were read).
            let rows: Vec<LotRow> = diesel::sql_query(format!(
                "SELECT l.id, l.member_id, l.expires_at, l.remaining, ARRAY({NEWLY}) AS newly
                   FROM point_lots l
                  WHERE l.member_id = ANY($2) AND {OPEN}"
            ))
            .bind::<SqlUuid, _>(p.merchant_id)
            .bind::<Array<SqlUuid>, _>(&locked)
            .bind::<Timestamptz, _>(now)
            .bind::<Array<Int4>, _>(&offsets)
            .bind::<Int4, _>(max)
            .load(conn)?;
            let reminders = plan(rows, rules.tz());
            if !reminders.is_empty() {
                send(conn, channels, p, &offsets, &reminders, now)?;
            }
            Ok::<_, diesel::result::Error>(reminders.len())
        })?;
    }
    Ok(done)
}

fn send(
    conn: &mut PgConnection,
    channels: Channels,
    p: &ProgramRow,
    offsets: &[i32],
    reminders: &[Reminder],
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let mut lot_ids = Vec::new();
    let mut messages = crate::pass_events::Messages::default();
    for r in reminders {
        lot_ids.extend(r.lots.iter().copied());
        let (header, body) = crate::messages::expiry_text(&p.language, r.points, r.day);
        messages.push(p.merchant_id, r.member_id, header, body);
    }
    // The offsets recorded are the ones the plan was made of: the same rows, read under
    // the same locks, in the same transaction.
    diesel::sql_query(
        "UPDATE point_lots l
            SET reminded = l.reminded || ARRAY(SELECT d FROM unnest($3::int[]) d
                                                WHERE l.expires_at - make_interval(days => d) <= $4
                                                  AND NOT d = ANY(l.reminded))
          WHERE l.merchant_id = $1 AND l.id = ANY($2)",
    )
    .bind::<SqlUuid, _>(p.merchant_id)
    .bind::<Array<BigInt>, _>(&lot_ids)
    .bind::<Array<Int4>, _>(offsets)
    .bind::<Timestamptz, _>(now)
    .execute(conn)?;
    crate::pass_events::messages_posted(conn, &messages, now, "message", channels.all())?;
    // The same reminders as webhook events, one statement for the batch.
    let members: Vec<Uuid> = reminders.iter().map(|r| r.member_id).collect();
    let points: Vec<i64> = reminders.iter().map(|r| r.points).collect();
    let days: Vec<String> = reminders.iter().map(|r| r.day.to_string()).collect();
    crate::webhooks::events::emit_points_expiring(
        conn,
        p.merchant_id,
        &members,
        &points,
        &days,
        now,
    )?;
    Ok(())
}

impl super::Job for Reminders {
    fn name(&self) -> &'static str {
        "reminders"
    }

    fn every(&self) -> Duration {
        Duration::from_secs(60)
    }

    fn run(&self, conn: &mut PgConnection, now: DateTime<Utc>) -> anyhow::Result<usize> {
        let programs: Vec<ProgramRow> = diesel::sql_query(
            "SELECT p.id, p.merchant_id, p.lifecycle,
                    CASE WHEN t.document -> 'localizations' ? 'en' THEN 'en'
                         WHEN t.document -> 'localizations' ? 'ru' THEN 'ru'
                         ELSE 'en' END AS language
               FROM programs p
               LEFT JOIN templates t ON t.merchant_id = p.merchant_id AND t.id = p.template_id
              WHERE jsonb_array_length(coalesce(p.lifecycle -> 'expiry_reminders_days', '[]')) > 0",
        )
        .load(conn)?;
        let mut done = 0;
        for p in &programs {
            let Ok(rules) = serde_json::from_value::<Lifecycle>(p.lifecycle.clone()) else {
                continue;
            };
            if !sending_hours(now, rules.tz()) {
                continue;
            }
            done += program(conn, self.channels, p, &rules, now)?;
        }
        Ok(done)
    }
}
