//! Firing automations as of the worker's `now`, within 09:00-21:00 in the program's time
//! zone, each automation under its row lock (`SKIP LOCKED`: a second worker leaves it):
//!
//! 1. **fire**: the events since the automation became active (at most [`CATCH_UP_DAYS`]
//!    back) that match its trigger become firings, one per member and event, unless the
//!    member was fired by it within its period (ever, without one); each firing's holdout
//!    is drawn then (`holdout_percent` chance), with where the pass was installed;
//! 2. **send** the firings not held out, in batches, through the one writer campaigns use
//!    (`sending::deliver`), marked sent in the same transaction.
//!
//! A firing's key (automation, member, event) makes a second run at the same instant, a
//! second worker and a restart fire nothing twice.

use super::automations::{AutomationRow, Trigger};
use super::sending::{deliver, texts, Content};
use crate::loyalty::sending_hours::sending_hours;
use crate::models::Program;
use crate::pass_events::Channels;
use crate::schema::{automations, programs};
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel::sql_types::{
    Array, BigInt, Int2, Int4, Integer, Nullable, SmallInt, Text, Timestamptz, Uuid as SqlUuid,
};
use uuid::Uuid;

/// How old an event may be and still fire (a worker down for longer does not send "happy
/// birthday" a month late). Birthdays use the birthday points' own window, the same length.
pub const CATCH_UP_DAYS: i64 = 7;
/// Firings sent per transaction.
const BATCH: i64 = 5_000;

/// Fires and sends what is due as of `now`; returns the firings sent.
pub fn run(
    conn: &mut PgConnection,
    channels: Channels,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let rows: Vec<AutomationRow> = automations::table
        .filter(automations::enabled.eq(true))
        .order(automations::id)
        .select(AutomationRow::as_select())
        .load(conn)?;
    let mut done = 0;
    for row in rows {
        match one(conn, channels, &row, now) {
            Ok(n) => done += n,
            // One rule that cannot go now does not hold up the others; the next run
            // continues it.
            Err(e) => tracing::warn!(
                automation = %row.id, error = format!("{e:#}"), "automation not run for now"
            ),
        }
    }
    Ok(done)
}

fn one(
    conn: &mut PgConnection,
    channels: Channels,
    row: &AutomationRow,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let program: Program = programs::table
        .filter(programs::merchant_id.eq(row.merchant_id))
        .filter(programs::id.eq(row.program_id))
        .select(Program::as_select())
        .first(conn)?;
    if !sending_hours(now, program.tz()) {
        return Ok(0);
    }
    if !fire(conn, row, &program, now)? {
        return Ok(0);
    }
    let rules = crate::loyalty::program::rules(&program)?;
    let texts = texts(&row.texts(), row.offer_parsed().as_ref());
    let reason = format!("automation {}", row.id);
    let content = Content {
        bonus_points: row.bonus_points,
        expires_in_days: row.bonus_expire_days.map(i64::from),
        texts: &texts,
        reason: &reason,
    };
    let mut done = 0;
    while let Some(n) = send_batch(conn, channels, row, (&content, &rules), now)? {
        done += n;
    }
    Ok(done)
}

/// Takes the automation's row lock for the transaction; false when another worker holds
/// it or it was paused meanwhile.
fn lock(conn: &mut PgConnection, row: &AutomationRow) -> QueryResult<bool> {
    Ok(automations::table
        .filter(automations::merchant_id.eq(row.merchant_id))
        .filter(automations::id.eq(row.id))
        .filter(automations::enabled.eq(true))
        .for_update()
        .skip_locked()
        .select(automations::id)
        .first::<Uuid>(conn)
        .optional()?
        .is_some())
}

/// The statement that turns the events `events` selects (`member_id, event, event_at`)
/// into firings: the earliest event per member not covered by an earlier firing in the
/// period, each told to the merchant's webhooks (`automation.fired`). Answers the firings. $1 automation, $2 merchant, $3 program, $4 now, $5 since, $6 period days,
/// $7 holdout percent; the events' own parameters from $8.
fn fire_statement(events: &str) -> String {
    format!(
        "WITH ev AS ({events}),
         due AS (
             SELECT DISTINCT ON (e.member_id) e.member_id, e.event, e.event_at
               FROM ev e
              WHERE NOT EXISTS (
                    SELECT 1 FROM automation_firings f
                     WHERE f.merchant_id = $2 AND f.member_id = e.member_id
                       AND f.automation_id = $1
                       AND (f.event = e.event OR $6::int IS NULL
                            OR f.event_at > e.event_at - make_interval(days => $6::int)))
              ORDER BY e.member_id, e.event_at, e.event),
         ins AS (
         INSERT INTO automation_firings (automation_id, member_id, merchant_id, event, event_at,
                                         fired_at, held_out, pass_id, apple_devices,
                                         google_saved)
         SELECT $1, d.member_id, $2, d.event, d.event_at, $4, random() * 100 < $7, p.id,
                (SELECT count(*) FROM registrations g
                  WHERE g.merchant_id = $2 AND g.pass_id = p.id)::int,
                coalesce((SELECT gi.saved FROM google_installs gi
                           WHERE gi.merchant_id = $2 AND gi.pass_id = p.id), false)
           FROM due d LEFT JOIN passes p ON p.merchant_id = $2 AND p.member_id = d.member_id
         ON CONFLICT DO NOTHING
         RETURNING member_id, event, event_at, held_out)
         -- `automation.fired` for the merchant's webhooks, in the same transaction.
         SELECT (SELECT count(*) FROM ins) AS fired,
                (SELECT passfold_webhook_events(
                            array_agg($2::uuid ORDER BY i.member_id),
                            'automation.fired',
                            array_agg(jsonb_build_object(
                                'automation_id', $1::uuid, 'program_id', $3::uuid,
                                'member_id', i.member_id, 'event', i.event,
                                'event_at', i.event_at, 'held_out', i.held_out)
                                ORDER BY i.member_id),
                            array_agg($4::timestamptz ORDER BY i.member_id))
                   FROM ins i) AS told"
    )
}

#[derive(QueryableByName)]
struct Fired {
    #[diesel(sql_type = BigInt)]
    fired: i64,
}

/// Members entering the stage ($8) since $5, still in it.
const STAGE_EVENTS: &str = "
    SELECT c.member_id, 'stage:' || c.id AS event, c.recorded_at AS event_at
      FROM member_stage_changes c
      JOIN member_segments s ON s.member_id = c.member_id AND s.stage = c.to_stage
      JOIN members m ON m.id = c.member_id AND m.erased_at IS NULL
     WHERE c.merchant_id = $2 AND c.program_id = $3 AND c.to_stage = $8
       AND c.recorded_at >= $5 AND c.recorded_at <= $4";

/// Members whose $8-th purchase (those not returned in full, in time order) was made since
/// $5.
const PURCHASE_EVENTS: &str = "
    SELECT r.member_id, 'purchase:' || k.id AS event, k.purchased_at AS event_at
      FROM (SELECT DISTINCT pu.member_id
              FROM purchases pu JOIN members m ON m.id = pu.member_id
             WHERE pu.merchant_id = $2 AND m.program_id = $3 AND m.erased_at IS NULL
               AND pu.purchased_at >= $5 AND pu.purchased_at <= $4) r
     CROSS JOIN LATERAL (
           SELECT pu.id, pu.purchased_at FROM purchases pu
            WHERE pu.merchant_id = $2 AND pu.member_id = r.member_id
              AND pu.refunded_amount < pu.amount AND pu.purchased_at <= $4
            ORDER BY pu.purchased_at, pu.id OFFSET $8::bigint - 1 LIMIT 1) k
     WHERE k.purchased_at >= $5";

/// Members whose birthday is kept on one of the days given ($8 months, $9 days, $10 the
/// day's start, $11 its year).
const BIRTHDAY_EVENTS: &str = "
    SELECT m.id AS member_id, 'birthday:' || d.year AS event, d.at AS event_at
      FROM unnest($8::int2[], $9::int2[], $10::timestamptz[], $11::int[])
           AS d(month, day, at, year)
      JOIN members m ON m.birth_month = d.month AND m.birth_day = d.day
     WHERE m.merchant_id = $2 AND m.program_id = $3 AND m.erased_at IS NULL";

/// Records the firings due as of `now`; false when another worker holds the automation.
fn fire(
    conn: &mut PgConnection,
    row: &AutomationRow,
    program: &Program,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let since = row.active_since.max(now - Duration::days(CATCH_UP_DAYS));
    let trigger = row.trigger();
    let birthdays = match trigger {
        Trigger::Birthday => birthday_days(program.tz(), row.active_since, now),
        _ => Vec::new(),
    };
    conn.transaction(|conn| {
        if !lock(conn, row)? {
            return Ok(false);
        }
        // One firing per member a statement (the earliest event): repeat while a member has
        // another event beyond the period, so one run fires all that is due.
        let sql = fire_statement(match trigger {
            Trigger::StageEntered { .. } => STAGE_EVENTS,
            Trigger::FirstPurchase | Trigger::NthPurchase { .. } => PURCHASE_EVENTS,
            Trigger::Birthday => BIRTHDAY_EVENTS,
        });
        for _ in 0..10 {
            let q = diesel::sql_query(&sql)
                .bind::<SqlUuid, _>(row.id)
                .bind::<SqlUuid, _>(row.merchant_id)
                .bind::<SqlUuid, _>(row.program_id)
                .bind::<Timestamptz, _>(now)
                .bind::<Timestamptz, _>(since)
                .bind::<Nullable<Integer>, _>(row.period_days)
                .bind::<SmallInt, _>(row.holdout_percent);
            let n = match &trigger {
                Trigger::StageEntered { stage } => q.bind::<Text, _>(stage).get_result(conn)?,
                Trigger::FirstPurchase => q.bind::<BigInt, _>(1i64).get_result(conn)?,
                Trigger::NthPurchase { n } => q.bind::<BigInt, _>(*n).get_result(conn)?,
                Trigger::Birthday => q
                    .bind::<Array<Int2>, _>(birthdays.iter().map(|d| d.0).collect::<Vec<_>>())
                    .bind::<Array<Int2>, _>(birthdays.iter().map(|d| d.1).collect::<Vec<_>>())
                    .bind::<Array<Timestamptz>, _>(
                        birthdays.iter().map(|d| d.2).collect::<Vec<_>>(),
                    )
                    .bind::<Array<Int4>, _>(birthdays.iter().map(|d| d.3).collect::<Vec<_>>())
                    .get_result(conn)?,
            };
            let Fired { fired: n } = n;
            if n == 0 {
                break;
            }
        }
        Ok(true)
    })
}

/// The birth dates kept on the days of the catch-up window as of `now` (in `tz`) that had
/// not ended when the automation became active: `(month, day, the day's start, its year)`.
fn birthday_days(
    tz: chrono_tz::Tz,
    active_since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<(i16, i16, DateTime<Utc>, i32)> {
    use chrono::Datelike;
    let today = now.with_timezone(&tz).date_naive();
    let mut out = Vec::new();
    for day in crate::jobs::birthdays::window(today) {
        let Some(start) = crate::jobs::birthdays::day_start(tz, day.date) else {
            continue;
        };
        if start + Duration::days(1) <= active_since || start > now {
            continue;
        }
        for (m, d) in day.birth_dates {
            out.push((m as i16, d as i16, start, day.date.year()));
        }
    }
    out
}

#[derive(QueryableByName)]
struct Pending {
    #[diesel(sql_type = SqlUuid)]
    member_id: Uuid,
    #[diesel(sql_type = Text)]
    event: String,
}

/// Sends one batch of the automation's pending firings: `Some(n)` sent, `None` when none
/// is left for this worker.
fn send_batch(
    conn: &mut PgConnection,
    channels: Channels,
    row: &AutomationRow,
    (content, rules): (&Content<'_>, &crate::loyalty::ProgramRules),
    now: DateTime<Utc>,
) -> anyhow::Result<Option<usize>> {
    conn.transaction(|conn| {
        if !lock(conn, row)? {
            return Ok(None);
        }
        let pending: Vec<Pending> = diesel::sql_query(
            "SELECT member_id, event FROM automation_firings
              WHERE merchant_id = $2 AND automation_id = $1 AND NOT held_out AND sent_at IS NULL
              ORDER BY member_id, event LIMIT $3",
        )
        .bind::<SqlUuid, _>(row.id)
        .bind::<SqlUuid, _>(row.merchant_id)
        .bind::<BigInt, _>(BATCH)
        .load(conn)?;
        if pending.is_empty() {
            return Ok(None);
        }
        let mut members: Vec<Uuid> = pending.iter().map(|p| p.member_id).collect();
        // A member with two firings pending (two periods while sending was held up) gets
        // the message once.
        members.dedup();
        deliver(
            conn,
            channels,
            row.merchant_id,
            &members,
            content,
            rules,
            now,
        )?;
        let events: Vec<String> = pending.iter().map(|p| p.event.clone()).collect();
        let ids: Vec<Uuid> = pending.iter().map(|p| p.member_id).collect();
        diesel::sql_query(
            "UPDATE automation_firings f SET sent_at = $2
               FROM unnest($3::uuid[], $4::text[]) AS p(member_id, event)
              WHERE f.merchant_id = $5 AND f.automation_id = $1
                AND f.member_id = p.member_id AND f.event = p.event AND f.sent_at IS NULL",
        )
        .bind::<SqlUuid, _>(row.id)
        .bind::<Timestamptz, _>(now)
        .bind::<Array<SqlUuid>, _>(&ids)
        .bind::<Array<Text>, _>(&events)
        .bind::<SqlUuid, _>(row.merchant_id)
        .execute(conn)?;
        Ok(Some(pending.len()))
    })
}
