//! Tier requalification, for programs with `tier_window_days`. A tier is reached at once
//! (`ledger::apply`) and held for a period of that many days; when the period ends
//! (`members.tier_review_at`), the qualifying points earned in the window that ended with
//! it decide: a member who no longer reaches the tier held drops ONE level (a `tier` ledger
//! row dated at the review, the pass changed with "Your tier is now Silver"), and either
//! way a new period starts where the last one ended.
//!
//! The window is the one ending at the review, not at the run, so a late run (a worker
//! that was down, `worker --once --at`) judges exactly what a timely one would have, and a
//! run that is several periods late judges each period in turn. Once per period: each
//! batch locks its members (in id order, as tills and the expiry job do) and judges only
//! those whose review is still due under the lock; the review moves forward in the same
//! transaction, and workers take turns through an advisory lock.

use crate::loyalty::notices::{self, Notice};
use crate::loyalty::ProgramRules;
use crate::models::Program;
use crate::pass_events::Channels;
use crate::schema::{members, programs};
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use std::collections::HashMap;
use uuid::Uuid;

/// Members judged per transaction.
pub const BATCH: i64 = 1_000;
/// The advisory lock the batches take (any fixed number of ours).
const LOCK: i64 = 0x7061_7373_7265_7131; // "passreq1"

pub struct Requalify {
    pub channels: Channels,
}

/// What a review decides for one member.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The tier from now on.
    pub tier: Option<String>,
    /// Whether it is lower than the tier held.
    pub dropped: bool,
    /// When the next period ends; `None` stops reviewing (the program has no window).
    pub next_review: Option<DateTime<Utc>>,
}

/// The review of a member holding `held`, due at `review`, who earned `window_points`
/// qualifying points in the window ending then, judged as of `now`.
pub fn judge(
    rules: &ProgramRules,
    held: Option<&str>,
    review: DateTime<Utc>,
    window_points: i64,
    now: DateTime<Utc>,
) -> Verdict {
    let Some(days) = rules.lifecycle.tier_window_days else {
        return Verdict {
            tier: held.map(str::to_string),
            dropped: false,
            next_review: None,
        };
    };
    let rank = |name: Option<&str>| name.and_then(|n| rules.tiers.iter().position(|t| t.name == n));
    let reached = rank(rules.tier_for(window_points).map(|t| t.name.as_str()));
    let (tier, dropped) = match (held, rank(held)) {
        // One level down, however far the window's points fell.
        (_, Some(h)) if reached < Some(h) => {
            let lower = h.checked_sub(1).map(|l| rules.tiers[l].name.clone());
            (lower, true)
        }
        // A tier the program no longer has: the window decides.
        (Some(_), None) => (reached.map(|r| rules.tiers[r].name.clone()), true),
        _ => (held.map(str::to_string), false),
    };
    let period = Duration::days(days);
    let mut next = review + period;
    if tier.is_none() {
        // Nothing left to lose: the periods that have passed meanwhile change nothing.
        while next <= now {
            next += period;
        }
    }
    Verdict {
        tier,
        dropped,
        next_review: Some(next),
    }
}

#[derive(QueryableByName)]
struct Sum {
    #[diesel(sql_type = SqlUuid)]
    member_id: Uuid,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

type Due = (Uuid, Uuid, Uuid, Option<String>, Option<DateTime<Utc>>, i64);

/// One batch as of `now`: the members judged.
pub fn batch(
    conn: &mut PgConnection,
    channels: Channels,
    now: DateTime<Utc>,
    limit: i64,
) -> anyhow::Result<usize> {
    conn.transaction::<_, anyhow::Error, _>(|conn| {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<BigInt, _>(LOCK)
            .execute(conn)?;
        let ids: Vec<Uuid> = members::table
            .filter(members::tier_review_at.le(now))
            .order(members::tier_review_at)
            .limit(limit)
            .select(members::id)
            .load(conn)?;
        if ids.is_empty() {
            return Ok(0);
        }
        // Under the locks, only those still due (a till's upgrade may have moved them on).
        let due: Vec<Due> = members::table
            .filter(members::id.eq_any(&ids))
            .filter(members::tier_review_at.le(now))
            .order(members::id)
            .for_update()
            .select((
                members::id,
                members::merchant_id,
                members::program_id,
                members::tier,
                members::tier_review_at,
                members::points,
            ))
            .load(conn)?;
        let mut program_ids: Vec<Uuid> = due.iter().map(|d| d.2).collect();
        program_ids.sort_unstable();
        program_ids.dedup();
        let rules: HashMap<Uuid, ProgramRules> = programs::table
            .filter(programs::id.eq_any(&program_ids))
            .select(Program::as_select())
            .load(conn)?
            .iter()
            .filter_map(|p| match crate::loyalty::program::rules(p) {
                Ok(r) => Some((p.id, r)),
                Err(e) => {
                    tracing::warn!(program = %p.id, error = %e, "tier reviews stopped: unreadable rules");
                    None
                }
            })
            .collect();
        let window = |d: &Due| {
            let days = rules.get(&d.2)?.lifecycle.tier_window_days?;
            let review = d.4?;
            Some((review - Duration::days(days), review))
        };
        let (mut who, mut since, mut until) = (Vec::new(), Vec::new(), Vec::new());
        for d in &due {
            if let Some((from, to)) = window(d) {
                who.push(d.0);
                since.push(from);
                until.push(to);
            }
        }
        let sums: HashMap<Uuid, i64> = diesel::sql_query(
            "SELECT c.id AS member_id, coalesce(sum(a.qualifying), 0)::bigint AS n
               FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[]) AS c (id, since, until)
               LEFT JOIN point_activities a
                 ON a.member_id = c.id AND a.created_at > c.since AND a.created_at <= c.until
              GROUP BY c.id",
        )
        .bind::<Array<SqlUuid>, _>(&who)
        .bind::<Array<Timestamptz>, _>(&since)
        .bind::<Array<Timestamptz>, _>(&until)
        .load::<Sum>(conn)?
        .into_iter()
        .map(|s| (s.member_id, s.n))
        .collect();

        let (mut ids, mut tiers, mut reviews) = (Vec::new(), Vec::new(), Vec::new());
        let (mut rows, mut notes, mut silent) = (Vec::new(), Vec::new(), Vec::new());
        for d in &due {
            let (id, merchant, program, held, review, points) = d;
            let verdict = match (rules.get(program), review) {
                (Some(r), Some(review)) => judge(
                    r,
                    held.as_deref(),
                    *review,
                    sums.get(id).copied().unwrap_or(0),
                    now,
                ),
                // Rules that cannot be read: stop reviewing rather than judge blindly.
                _ => Verdict {
                    tier: held.clone(),
                    dropped: false,
                    next_review: None,
                },
            };
            if verdict.dropped {
                let at = review.unwrap_or(now);
                rows.push((*merchant, *id, *points, verdict.tier.clone(), at));
                match &verdict.tier {
                    Some(name) => notes.push((*merchant, *id, Notice::Tier { name: name.clone() })),
                    None => silent.push(*id),
                }
            }
            ids.push(*id);
            tiers.push(verdict.tier);
            reviews.push(verdict.next_review);
        }
        diesel::sql_query(
            "UPDATE members m SET tier = c.tier, tier_review_at = c.review, updated_at = now()
               FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS c (id, tier, review)
              WHERE m.id = c.id",
        )
        .bind::<Array<SqlUuid>, _>(&ids)
        .bind::<Array<Nullable<Text>>, _>(&tiers)
        .bind::<Array<Nullable<Timestamptz>>, _>(&reviews)
        .execute(conn)?;
        if !rows.is_empty() {
            let merchants: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
            let members: Vec<Uuid> = rows.iter().map(|r| r.1).collect();
            let points: Vec<i64> = rows.iter().map(|r| r.2).collect();
            let after: Vec<Option<String>> = rows.iter().map(|r| r.3.clone()).collect();
            let at: Vec<DateTime<Utc>> = rows.iter().map(|r| r.4).collect();
            diesel::sql_query(
                "INSERT INTO point_activities (id, merchant_id, member_id, type, delta,
                                               points_after, reason, tier_after, created_at,
                                               qualifying)
                 SELECT gen_random_uuid(), r.merchant_id, r.member_id, 'tier', 0, r.points,
                        'tier not earned again in its period', r.tier, r.at, 0
                   FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::timestamptz[])
                        AS r (merchant_id, member_id, points, tier, at)",
            )
            .bind::<Array<SqlUuid>, _>(&merchants)
            .bind::<Array<SqlUuid>, _>(&members)
            .bind::<Array<BigInt>, _>(&points)
            .bind::<Array<Nullable<Text>>, _>(&after)
            .bind::<Array<Timestamptz>, _>(&at)
            .execute(conn)?;
        }
        notices::post(conn, channels, &notes, now)?;
        if !silent.is_empty() {
            // Down to no tier: nothing to say, but the card changes.
            diesel::sql_query(
                "SELECT passfold_pass_changed(
                     ARRAY(SELECT id FROM passes WHERE member_id = ANY($1)), 'tier', $2)",
            )
            .bind::<Array<SqlUuid>, _>(&silent)
            .bind::<Array<Text>, _>(channels.all())
            .execute(conn)?;
        }
        Ok(due.len())
    })
}

impl super::Job for Requalify {
    fn name(&self) -> &'static str {
        "requalify"
    }

    fn every(&self) -> std::time::Duration {
        std::time::Duration::from_secs(60)
    }

    fn run(&self, conn: &mut PgConnection, now: DateTime<Utc>) -> anyhow::Result<usize> {
        let mut done = 0;
        loop {
            let n = batch(conn, self.channels, now, BATCH)?;
            done += n;
            if n == 0 {
                return Ok(done);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loyalty::{Lifecycle, Tier};

    fn rules() -> ProgramRules {
        let tier = |name: &str, min| Tier {
            name: name.into(),
            min_points: min,
            multiplier: None,
        };
        ProgramRules::parse(
            "EUR",
            10,
            vec![tier("Bronze", 0), tier("Silver", 500), tier("Gold", 1000)],
            0,
            None,
            Lifecycle {
                tier_window_days: Some(30),
                ..Lifecycle::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn a_tier_not_earned_again_drops_one_level() {
        let rules = rules();
        let review: DateTime<Utc> = "2026-06-01T00:00:00Z".parse().unwrap();
        let now = review + Duration::hours(1);
        let next = Some(review + Duration::days(30));
        // Gold with nothing earned: Silver, not Bronze.
        let v = judge(&rules, Some("Gold"), review, 0, now);
        assert_eq!(
            (v.tier.as_deref(), v.dropped, v.next_review),
            (Some("Silver"), true, next)
        );
        // Gold earned again: kept, a new period.
        let v = judge(&rules, Some("Gold"), review, 1000, now);
        assert_eq!((v.tier.as_deref(), v.dropped), (Some("Gold"), false));
        // The lowest tier cannot drop.
        let v = judge(&rules, Some("Bronze"), review, 0, now);
        assert_eq!((v.tier.as_deref(), v.dropped), (Some("Bronze"), false));
        // A tier that no longer exists: the window decides.
        let v = judge(&rules, Some("Platinum"), review, 600, now);
        assert_eq!((v.tier.as_deref(), v.dropped), (Some("Silver"), true));
    }
}
