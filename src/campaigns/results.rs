//! What a campaign reached and what it moved: counts of its recipients, and purchases in
//! the attribution window in the sent group against the holdout, recomputed from the
//! purchases on every read (docs/CAMPAIGNS.md gives the formulas).

use super::CampaignRow;
pub use crate::analytics::report::Nps;
use crate::db::Tenant;
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Timestamptz, Uuid as SqlUuid};
use serde::Serialize;
use std::collections::HashMap;
use uuid::Uuid;

/// z of a two-sided 95% interval.
const Z95: f64 = 1.959_963_984_540_054;

/// Who a campaign's audience was and what reached them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema, QueryableByName)]
pub struct Counts {
    /// Members in the audience when it was fixed (sent group and holdout).
    #[diesel(sql_type = BigInt)]
    pub targeted: i64,
    /// Of them, held out: sent nothing.
    #[diesel(sql_type = BigInt)]
    pub held_out: i64,
    /// Sent-group members whose pass got the message (and the bonus points) so far.
    #[diesel(sql_type = BigInt)]
    pub sent: i64,
    /// Sent-group members with the pass on at least one Apple device when it was fixed.
    #[diesel(sql_type = BigInt)]
    pub with_apple_device: i64,
    /// Sent-group members with the pass saved in Google Wallet when it was fixed.
    #[diesel(sql_type = BigInt)]
    pub with_google_save: i64,
    /// Sent-group members of whom APNs accepted a push to a device holding the pass,
    /// after the message was on it.
    #[diesel(sql_type = BigInt)]
    pub pushed_apple: i64,
    /// Sent-group members with a Google save whose Google Wallet object took the message.
    #[diesel(sql_type = BigInt)]
    pub messaged_google: i64,
    /// Sent-group members with the pass installed nowhere (no Apple device, no Google
    /// save): the message waits on the pass, the bonus points are granted.
    #[diesel(sql_type = BigInt)]
    pub no_pass: i64,
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = SqlUuid)]
    campaign_id: Uuid,
    #[diesel(embed)]
    counts: Counts,
}

/// A table of recipients: a campaign's, or an automation's firings (the same columns).
#[derive(Debug, Clone, Copy)]
pub enum Table {
    Campaigns,
    Automations,
}

impl Table {
    /// The table and its key column.
    fn sql(self) -> (&'static str, &'static str) {
        match self {
            Table::Campaigns => ("campaign_recipients", "campaign_id"),
            Table::Automations => ("automation_firings", "automation_id"),
        }
    }
}

/// The counts of these campaigns (a campaign without recipients has none in the map).
pub fn counts(
    conn: &mut PgConnection,
    tenant: &Tenant,
    ids: &[Uuid],
) -> QueryResult<HashMap<Uuid, Counts>> {
    counts_of(conn, tenant, Table::Campaigns, ids)
}

/// The counts of these campaigns' or automations' recipients.
pub fn counts_of(
    conn: &mut PgConnection,
    tenant: &Tenant,
    table: Table,
    ids: &[Uuid],
) -> QueryResult<HashMap<Uuid, Counts>> {
    let (table, key) = table.sql();
    let rows: Vec<CountRow> = diesel::sql_query(format!(
        "SELECT {key} AS campaign_id, count(*) AS targeted,
                count(*) FILTER (WHERE held_out) AS held_out,
                count(*) FILTER (WHERE sent_at IS NOT NULL) AS sent,
                count(*) FILTER (WHERE NOT held_out AND apple_devices > 0) AS with_apple_device,
                count(*) FILTER (WHERE NOT held_out AND google_saved) AS with_google_save,
                count(*) FILTER (WHERE apple_pushed_at IS NOT NULL) AS pushed_apple,
                count(*) FILTER (WHERE google_messaged_at IS NOT NULL) AS messaged_google,
                count(*) FILTER (WHERE NOT held_out AND apple_devices = 0 AND NOT google_saved)
                    AS no_pass
           FROM {table}
          WHERE merchant_id = $1 AND {key} = ANY($2)
          GROUP BY {key}"
    ))
    .bind::<SqlUuid, _>(tenant.merchant_id())
    .bind::<Array<SqlUuid>, _>(ids)
    .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| (r.campaign_id, r.counts))
        .collect())
}

/// One group's purchases in the window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct GroupResult {
    pub members: i64,
    /// Members with at least one purchase in the window.
    pub converted: i64,
    /// `converted / members` (0 for an empty group).
    pub conversion_rate: f64,
    pub purchases: i64,
    /// Sum of `amount - refunded_amount` of those purchases, minor units.
    pub revenue: i64,
    /// `revenue / members`, minor units (0 for an empty group).
    pub revenue_per_member: f64,
    /// Survey answers the group's members gave in the window, and their NPS.
    pub nps: Nps,
}

/// A 95% confidence interval. Named apart in the OpenAPI document: `Interval` there is the
/// analytics report's period length (`analytics::report::Interval`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = ConfidenceInterval)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

/// Sent group against holdout over the attribution window.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Results {
    /// Purchases count from here (the send), exclusive...
    pub window_from: DateTime<Utc>,
    /// ... up to here, inclusive.
    pub window_until: DateTime<Utc>,
    /// The window is over: these figures change only with returns.
    pub complete: bool,
    pub sent: GroupResult,
    pub holdout: GroupResult,
    /// `sent.conversion_rate - holdout.conversion_rate`; null without a holdout or a sent
    /// group.
    pub conversion_difference: Option<f64>,
    /// Normal approximation: the difference ± 1.96 × sqrt(p₁(1-p₁)/n₁ + p₀(1-p₀)/n₀).
    pub conversion_difference_ci95: Option<Interval>,
    /// `sent.revenue_per_member - holdout.revenue_per_member`; null as above.
    pub revenue_per_member_difference: Option<f64>,
    /// Revenue the campaign brought beyond what the sent group would have spent without
    /// it: `revenue_per_member_difference × sent.members`, minor units; null as above.
    pub incremental_revenue: Option<f64>,
    pub cost: Cost,
    /// Return on marketing investment: `(incremental_revenue - cost.total) / cost.total`
    /// (0.5 is 50%); null without a cost or without a holdout to compare with.
    pub romi: Option<f64>,
}

/// What the campaign cost, minor units of the program's currency.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Cost {
    /// Bonus points granted × the program's `point_value` (as it is now; 0 without one).
    pub bonus_points: i64,
    /// Messages put on passes × the campaign's `cost_per_message`.
    pub messages: i64,
    pub total: i64,
    /// The `point_value` the bonus points were valued at; null when the program has none.
    pub point_value: Option<i64>,
}

impl Cost {
    /// The cost of `bonus_points` and `cost_per_message` for `sent` members reached.
    pub fn of(
        bonus_points: i64,
        cost_per_message: i64,
        sent: i64,
        point_value: Option<i64>,
    ) -> Cost {
        let bonus = bonus_points
            .saturating_mul(point_value.unwrap_or(0))
            .saturating_mul(sent);
        let messages = cost_per_message.saturating_mul(sent);
        Cost {
            bonus_points: bonus,
            messages,
            total: bonus.saturating_add(messages),
            point_value,
        }
    }
}

/// ROMI of an incremental revenue against a cost; `None` without either.
pub fn romi(incremental_revenue: Option<f64>, cost: &Cost) -> Option<f64> {
    let gain = incremental_revenue?;
    (cost.total > 0).then(|| (gain - cost.total as f64) / cost.total as f64)
}

#[derive(QueryableByName)]
struct GroupRow {
    #[diesel(sql_type = Bool)]
    held_out: bool,
    #[diesel(sql_type = BigInt)]
    members: i64,
    #[diesel(sql_type = BigInt)]
    converted: i64,
    #[diesel(sql_type = BigInt)]
    purchases: i64,
    #[diesel(sql_type = BigInt)]
    revenue: i64,
    #[diesel(sql_type = BigInt)]
    answers: i64,
    #[diesel(sql_type = BigInt)]
    promoters: i64,
    #[diesel(sql_type = BigInt)]
    detractors: i64,
    #[diesel(sql_type = BigInt)]
    score_total: i64,
}

fn group(row: Option<&GroupRow>) -> GroupResult {
    let Some(r) = row else {
        return GroupResult::default();
    };
    let per = |x: i64| {
        if r.members > 0 {
            x as f64 / r.members as f64
        } else {
            0.0
        }
    };
    GroupResult {
        members: r.members,
        converted: r.converted,
        conversion_rate: per(r.converted),
        purchases: r.purchases,
        revenue: r.revenue,
        revenue_per_member: per(r.revenue),
        nps: Nps::of(r.answers, r.promoters, r.detractors, r.score_total),
    }
}

/// The difference of two conversion rates and its 95% interval (normal approximation);
/// `None` when either group is empty.
pub fn difference(sent: &GroupResult, holdout: &GroupResult) -> Option<(f64, Interval)> {
    if sent.members == 0 || holdout.members == 0 {
        return None;
    }
    let (p1, n1) = (sent.conversion_rate, sent.members as f64);
    let (p0, n0) = (holdout.conversion_rate, holdout.members as f64);
    let d = p1 - p0;
    let se = (p1 * (1.0 - p1) / n1 + p0 * (1.0 - p0) / n0).sqrt();
    Some((
        d,
        Interval {
            low: d - Z95 * se,
            high: d + Z95 * se,
        },
    ))
}

/// Whose purchases a comparison reads: a campaign's recipients over its one window, or an
/// automation's firings, each over its own window from when it fired.
pub enum Recipients {
    Campaign {
        id: Uuid,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    },
    Automation {
        id: Uuid,
        attribution_days: i32,
    },
}

/// The sent group and the holdout of `recipients`: their members and what they bought
/// (net of returns) and answered in the window.
pub fn groups(
    conn: &mut PgConnection,
    tenant: &Tenant,
    recipients: &Recipients,
) -> QueryResult<(GroupResult, GroupResult)> {
    let ((table, key), from, until) = match recipients {
        Recipients::Campaign { .. } => {
            (Table::Campaigns.sql(), "$3::timestamptz", "$4::timestamptz")
        }
        Recipients::Automation { .. } => (
            Table::Automations.sql(),
            "r.fired_at",
            "r.fired_at + make_interval(days => $3::int)",
        ),
    };
    let sql = format!(
        "SELECT r.held_out, count(*) AS members,
                count(*) FILTER (WHERE b.n > 0) AS converted,
                coalesce(sum(b.n), 0)::bigint AS purchases,
                coalesce(sum(b.revenue), 0)::bigint AS revenue,
                coalesce(sum(s.n), 0)::bigint AS answers,
                coalesce(sum(s.p), 0)::bigint AS promoters,
                coalesce(sum(s.d), 0)::bigint AS detractors,
                coalesce(sum(s.t), 0)::bigint AS score_total
           FROM {table} r
           CROSS JOIN LATERAL (
               SELECT count(*) AS n, sum(pu.amount - pu.refunded_amount) AS revenue
                 FROM purchases pu
                WHERE pu.merchant_id = r.merchant_id AND pu.member_id = r.member_id
                  AND pu.purchased_at > {from} AND pu.purchased_at <= {until}
                  AND pu.refunded_amount < pu.amount) b
           CROSS JOIN LATERAL (
               SELECT count(*) AS n, count(*) FILTER (WHERE a.score >= 9) AS p,
                      count(*) FILTER (WHERE a.score <= 6) AS d,
                      coalesce(sum(a.score), 0) AS t
                 FROM survey_invitations i
                 JOIN survey_answers a ON a.invitation_id = i.id
                WHERE i.member_id = r.member_id AND i.merchant_id = r.merchant_id
                  AND a.answered_at > {from} AND a.answered_at <= {until}) s
          WHERE r.merchant_id = $1 AND r.{key} = $2
          GROUP BY r.held_out"
    );
    let rows: Vec<GroupRow> = match recipients {
        Recipients::Campaign { id, from, until } => diesel::sql_query(sql)
            .bind::<SqlUuid, _>(tenant.merchant_id())
            .bind::<SqlUuid, _>(*id)
            .bind::<Timestamptz, _>(*from)
            .bind::<Timestamptz, _>(*until)
            .load(conn)?,
        Recipients::Automation {
            id,
            attribution_days,
        } => diesel::sql_query(sql)
            .bind::<SqlUuid, _>(tenant.merchant_id())
            .bind::<SqlUuid, _>(*id)
            .bind::<diesel::sql_types::Integer, _>(*attribution_days)
            .load(conn)?,
    };
    Ok((
        group(rows.iter().find(|r| !r.held_out)),
        group(rows.iter().find(|r| r.held_out)),
    ))
}

/// The sent group against the holdout, and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Uplift {
    /// `sent.conversion_rate - holdout.conversion_rate`; null without a holdout or a sent
    /// group.
    pub conversion_difference: Option<f64>,
    /// Normal approximation: the difference ± 1.96 × sqrt(p₁(1-p₁)/n₁ + p₀(1-p₀)/n₀).
    pub conversion_difference_ci95: Option<Interval>,
    /// `sent.revenue_per_member - holdout.revenue_per_member`; null as above.
    pub revenue_per_member_difference: Option<f64>,
    /// Revenue brought beyond what the sent group would have spent without the message:
    /// `revenue_per_member_difference × sent.members`, minor units; null as above.
    pub incremental_revenue: Option<f64>,
    pub cost: Cost,
    /// Return on marketing investment: `(incremental_revenue - cost.total) / cost.total`
    /// (0.5 is 50%); null without a cost or without a holdout to compare with.
    pub romi: Option<f64>,
}

/// Compares the groups and weighs the gain against `cost`.
pub fn uplift(sent: &GroupResult, holdout: &GroupResult, cost: Cost) -> Uplift {
    let diff = difference(sent, holdout);
    // Both groups have members exactly when the conversion difference exists.
    let revenue_diff = diff
        .as_ref()
        .map(|_| sent.revenue_per_member - holdout.revenue_per_member);
    let incremental_revenue = revenue_diff.map(|d| d * sent.members as f64);
    Uplift {
        romi: romi(incremental_revenue, &cost),
        incremental_revenue,
        cost,
        conversion_difference: diff.as_ref().map(|d| d.0),
        conversion_difference_ci95: diff.map(|d| d.1),
        revenue_per_member_difference: revenue_diff,
    }
}

/// The campaign's results as of `now`, with its `counts` and the program's `point_value`;
/// `None` before its audience is fixed.
pub fn results(
    conn: &mut PgConnection,
    tenant: &Tenant,
    campaign: &CampaignRow,
    counts: &Counts,
    point_value: Option<i64>,
    now: DateTime<Utc>,
) -> QueryResult<Option<Results>> {
    let Some(from) = campaign.started_at else {
        return Ok(None);
    };
    let until = from + Duration::days(i64::from(campaign.attribution_days));
    let recipients = Recipients::Campaign {
        id: campaign.id,
        from,
        until,
    };
    let (sent, holdout) = groups(conn, tenant, &recipients)?;
    let cost = Cost::of(
        campaign.bonus_points,
        campaign.cost_per_message,
        counts.sent,
        point_value,
    );
    let u = uplift(&sent, &holdout, cost);
    Ok(Some(Results {
        romi: u.romi,
        incremental_revenue: u.incremental_revenue,
        cost: u.cost,
        window_from: from,
        window_until: until,
        complete: now >= until,
        conversion_difference: u.conversion_difference,
        conversion_difference_ci95: u.conversion_difference_ci95,
        revenue_per_member_difference: u.revenue_per_member_difference,
        sent,
        holdout,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(members: i64, converted: i64) -> GroupResult {
        GroupResult {
            members,
            converted,
            conversion_rate: converted as f64 / members as f64,
            ..GroupResult::default()
        }
    }

    #[test]
    fn the_interval_is_the_normal_approximation() {
        // 30% of 1000 against 20% of 200: se = sqrt(.21/1000 + .16/200) = 0.031780...
        let (d, ci) = difference(&g(1000, 300), &g(200, 40)).unwrap();
        assert!((d - 0.1).abs() < 1e-12);
        let se = (0.21f64 / 1000.0 + 0.16 / 200.0).sqrt();
        assert!((ci.low - (0.1 - 1.959_964 * se)).abs() < 1e-6);
        assert!((ci.high - (0.1 + 1.959_964 * se)).abs() < 1e-6);
        assert!(difference(&g(10, 1), &GroupResult::default()).is_none());
    }

    #[test]
    fn romi_is_the_gain_over_the_cost_of_points_and_messages() {
        let cost = Cost {
            bonus_points: 4_000,
            messages: 1_000,
            total: 5_000,
            point_value: Some(2),
        };
        // 12,500 more revenue for 5,000 spent: 150%.
        assert_eq!(romi(Some(12_500.0), &cost), Some(1.5));
        assert_eq!(romi(Some(2_500.0), &cost), Some(-0.5));
        assert_eq!(romi(None, &cost), None);
        let free = Cost {
            bonus_points: 0,
            messages: 0,
            total: 0,
            point_value: None,
        };
        assert_eq!(romi(Some(100.0), &free), None);
    }
}
