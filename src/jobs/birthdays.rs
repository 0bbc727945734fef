//! Birthday points: a program's `birthday_points` granted once a year on the member's
//! birthday in the program's time zone (February 29 on February 28 in other years), as a
//! `birthday` activity through `ledger::apply` (a lot with the program's expiry, the pass
//! changed) with a greeting on the card.
//!
//! Once a year: `members.birthday_year` holds the local year whose birthday was granted,
//! set in the grant's transaction and checked under the member's row lock, so several
//! workers and restarts grant nothing twice; changing a birth date does not grant a second
//! birthday in the same year either.
//!
//! Catch-up: a birthday up to [`CATCH_UP_DAYS`] days past (in the program's zone) and not
//! granted in its year is granted on the next run, so a worker down on the day (or a
//! `worker --once --at` after an outage) still grants it; older ones are let go. The
//! activity is dated at the start of the birthday (never before the member's previous
//! activity, never after the run), so a late run writes the ledger a timely one would have.
//!
//! Candidates are found per program by month and day (`members_birthday_idx`) in batches;
//! only the members whose birthday it is cost a query each.

use crate::db::Tenant;
use crate::loyalty::ledger::{self, Entry};
use crate::loyalty::notices::{self, Notice};
use crate::loyalty::ProgramRules;
use crate::models::{Member, Program};
use crate::pass_events::Channels;
use crate::schema::{members, programs};
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Int2, Int4, Timestamptz, Uuid as SqlUuid};
use std::collections::HashMap;
use uuid::Uuid;

/// How many days late a birthday is still granted.
pub const CATCH_UP_DAYS: i64 = 7;
/// Members granted per transaction.
const BATCH: i64 = 1_000;
/// The advisory lock each batch takes: workers take turns instead of queueing on rows.
const LOCK: i64 = 0x7061_7373_6264_6179; // "passbday"

pub struct Birthdays {
    pub channels: Channels,
}

/// A day in the catch-up window and the birth dates kept on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Day {
    pub date: NaiveDate,
    /// `(month, day)` of the birth dates kept on `date` (two on February 28 of a year
    /// without a February 29).
    pub birth_dates: Vec<(u32, u32)>,
}

/// The days, today first, whose birthdays are due as of `today` (in the program's zone).
pub fn window(today: NaiveDate) -> Vec<Day> {
    (0..=CATCH_UP_DAYS)
        .filter_map(|k| today.checked_sub_signed(Duration::days(k)))
        .map(|date| {
            let mut birth_dates = vec![(date.month(), date.day())];
            let leap = NaiveDate::from_ymd_opt(date.year(), 2, 29).is_some();
            if (date.month(), date.day()) == (2, 28) && !leap {
                birth_dates.push((2, 29));
            }
            Day { date, birth_dates }
        })
        .collect()
}

/// The first instant of `date` in `tz` (an hour later where midnight does not exist).
pub fn day_start(tz: chrono_tz::Tz, date: NaiveDate) -> Option<DateTime<Utc>> {
    (0..3).find_map(|h| {
        tz.from_local_datetime(&date.and_hms_opt(h, 0, 0)?)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    })
}

#[derive(QueryableByName)]
struct Candidate {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    /// Index into the window's days.
    #[diesel(sql_type = Int4)]
    k: i32,
}

#[derive(QueryableByName)]
struct LastActivity {
    #[diesel(sql_type = SqlUuid)]
    member_id: Uuid,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

/// Grants one batch of a program's due birthdays after member id `after`; returns the
/// members granted and the last member looked at (`None` when there are no more).
fn batch(
    conn: &mut PgConnection,
    channels: Channels,
    (program, rules): (&Program, &ProgramRules),
    days: &[Day],
    (now, after): (DateTime<Utc>, Uuid),
) -> anyhow::Result<(usize, Option<Uuid>)> {
    let tz = rules.lifecycle.tz();
    let (mut months, mut mdays, mut years, mut ks) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (k, day) in days.iter().enumerate() {
        for (m, d) in &day.birth_dates {
            months.push(*m as i16);
            mdays.push(*d as i16);
            years.push(day.date.year() as i16);
            ks.push(k as i32);
        }
    }
    conn.transaction::<_, anyhow::Error, _>(|conn| {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<BigInt, _>(LOCK)
            .execute(conn)?;
        let found: Vec<Candidate> = diesel::sql_query(
            "SELECT m.id, c.k FROM members m
               JOIN unnest($3::int2[], $4::int2[], $5::int2[], $6::int4[]) AS c (month, day, year, k)
                 ON m.birth_month = c.month AND m.birth_day = c.day
              WHERE m.merchant_id = $1 AND m.program_id = $2 AND m.birth_month IS NOT NULL
                AND (m.birthday_year IS NULL OR m.birthday_year < c.year)
                AND m.id > $7
              ORDER BY m.id LIMIT $8",
        )
        .bind::<SqlUuid, _>(program.merchant_id)
        .bind::<SqlUuid, _>(program.id)
        .bind::<Array<Int2>, _>(&months)
        .bind::<Array<Int2>, _>(&mdays)
        .bind::<Array<Int2>, _>(&years)
        .bind::<Array<Int4>, _>(&ks)
        .bind::<SqlUuid, _>(after)
        .bind::<BigInt, _>(BATCH)
        .load(conn)?;
        let Some(last) = found.last().map(|c| c.id) else {
            return Ok((0, None));
        };
        let due: HashMap<Uuid, usize> = found.iter().map(|c| (c.id, c.k as usize)).collect();
        let ids: Vec<Uuid> = found.iter().map(|c| c.id).collect();
        // Locked in id order (as the expiry job and tills take them), then judged again
        // on what the rows say now: another worker may have granted meanwhile.
        let locked: Vec<(Member, Option<i16>)> = members::table
            .filter(members::merchant_id.eq(program.merchant_id))
            .filter(members::id.eq_any(&ids))
            .order(members::id)
            .for_update()
            .select((Member::as_select(), members::birthday_year))
            .load(conn)?;
        let previous: HashMap<Uuid, DateTime<Utc>> = diesel::sql_query(
            "SELECT DISTINCT ON (member_id) member_id, created_at FROM point_activities
              WHERE member_id = ANY($1) ORDER BY member_id, seq DESC",
        )
        .bind::<Array<SqlUuid>, _>(&ids)
        .load::<LastActivity>(conn)?
        .into_iter()
        .map(|a| (a.member_id, a.created_at))
        .collect();
        let tenant = Tenant::of_authenticated(program.merchant_id);
        let points = rules.lifecycle.birthday_points;
        let (mut granted, mut granted_years, mut notes) = (Vec::new(), Vec::new(), Vec::new());
        for (member, birthday_year) in locked {
            let Some(day) = due.get(&member.id).and_then(|k| days.get(*k)) else {
                continue;
            };
            let year = day.date.year();
            let kept_today = member.birth_date().is_some_and(|b| b.is_kept_on(day.date));
            if !kept_today || birthday_year.is_some_and(|y| i32::from(y) >= year) {
                continue;
            }
            let mut at = day_start(tz, day.date).unwrap_or(now);
            if let Some(before) = previous.get(&member.id) {
                at = at.max(*before);
            }
            let entry = Entry {
                reason: Some("birthday points"),
                ..Entry::new(points, crate::domain::PointActivityType::Birthday, at.min(now))
            };
            ledger::apply(conn, channels, &tenant, &member, rules, entry)
                .map_err(|e| anyhow::anyhow!("birthday points for member {}: {e}", member.id))?;
            granted.push(member.id);
            granted_years.push(year as i16);
            notes.push((program.merchant_id, member.id, Notice::Birthday { points }));
        }
        diesel::sql_query(
            "UPDATE members m SET birthday_year = c.year
               FROM unnest($1::uuid[], $2::int2[]) AS c (id, year) WHERE m.id = c.id",
        )
        .bind::<Array<SqlUuid>, _>(&granted)
        .bind::<Array<Int2>, _>(&granted_years)
        .execute(conn)?;
        notices::post(conn, channels, &notes, now)?;
        Ok((granted.len(), Some(last)))
    })
}

/// Grants what is due in one program as of `now`.
fn program(
    conn: &mut PgConnection,
    channels: Channels,
    program: &Program,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let rules = crate::loyalty::program::rules(program)?;
    if rules.lifecycle.birthday_points <= 0 {
        return Ok(0);
    }
    let today = now.with_timezone(&rules.lifecycle.tz()).date_naive();
    let days = window(today);
    let (mut done, mut after) = (0, Uuid::nil());
    loop {
        match batch(conn, channels, (program, &rules), &days, (now, after))? {
            (n, Some(last)) => {
                done += n;
                after = last;
            }
            (n, None) => return Ok(done + n),
        }
    }
}

impl super::Job for Birthdays {
    fn name(&self) -> &'static str {
        "birthdays"
    }

    fn every(&self) -> std::time::Duration {
        std::time::Duration::from_secs(60)
    }

    fn run(&self, conn: &mut PgConnection, now: DateTime<Utc>) -> anyhow::Result<usize> {
        let with_birthdays: Vec<Program> = programs::table
            .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
                "jsonb_typeof(lifecycle -> 'birthday_points') = 'number' \
                 AND (lifecycle ->> 'birthday_points')::numeric > 0",
            ))
            .order(programs::id)
            .select(Program::as_select())
            .load(conn)?;
        let mut done = 0;
        for p in &with_birthdays {
            match program(conn, self.channels, p, now) {
                Ok(n) => done += n,
                // One program's unreadable rules do not hold up the others' birthdays.
                Err(e) => {
                    tracing::warn!(program = %p.id, error = format!("{e:#}"), "birthdays skipped")
                }
            }
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn the_window_is_today_and_a_week_back() {
        let w = window(day(2027, 3, 3));
        assert_eq!(w.len(), 8);
        assert_eq!(w[0].date, day(2027, 3, 3));
        assert_eq!(w[7].date, day(2027, 2, 24));
        // 2027 has no February 29: its birthdays are kept on the 28th.
        let feb28 = w.iter().find(|d| d.date == day(2027, 2, 28)).unwrap();
        assert_eq!(feb28.birth_dates, vec![(2, 28), (2, 29)]);
        let leap = window(day(2028, 2, 29));
        assert_eq!(leap[0].birth_dates, vec![(2, 29)]);
        assert_eq!(leap[1].birth_dates, vec![(2, 28)]);
    }

    #[test]
    fn a_day_starts_at_local_midnight() {
        let moscow = day_start(chrono_tz::Europe::Moscow, day(2026, 5, 17)).unwrap();
        assert_eq!(moscow.to_rfc3339(), "2026-05-16T21:00:00+00:00");
        // Midnight did not exist in Santiago on 2026-09-06 (clocks went to 01:00).
        let santiago = day_start(chrono_tz::America::Santiago, day(2026, 9, 6)).unwrap();
        assert_eq!(santiago.to_rfc3339(), "2026-09-06T04:00:00+00:00");
    }
}
