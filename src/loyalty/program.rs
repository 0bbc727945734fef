//! A loyalty program: creating one, and its rules and pos limits as its row holds them.

use super::rules::PosLimits;
use super::{Lifecycle, ProgramRules, ReferralRule, Tier};
use crate::db::Tenant;
use crate::domain::TemplateKind;
use crate::models::program::NewProgram;
use crate::models::{Program, Template};
use crate::pass_events::Channels;
use crate::problem::{ApiError, FieldProblem};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProgram {
    pub name: String,
    /// Id of a loyalty template, e.g. `loyalty-default`.
    pub template: String,
    pub currency: String,
    /// Points per one major unit of the currency (per 1 EUR, not per cent).
    #[schema(minimum = 0, maximum = 100000)]
    #[serde(deserialize_with = "crate::domain::ranges::whole")]
    pub points_per_unit: i64,
    #[serde(default)]
    #[schema(max_items = 20)]
    pub tiers: Vec<Tier>,
    #[serde(default, deserialize_with = "crate::domain::ranges::whole")]
    #[schema(minimum = 0, maximum = 1000000000_i64)]
    pub welcome_points: i64,
    pub referral: Option<ReferralRule>,
    /// Largest purchase (minor units) a pos key may record in one request; default 100000
    /// (1,000.00 in a two-decimal currency). Admin keys are not limited.
    #[serde(default)]
    pub pos_max_purchase: Option<i64>,
    /// Largest manual points change (either sign) a pos key may make in one request;
    /// default 1000. Admin keys are not limited.
    #[serde(default)]
    pub pos_max_points_adjustment: Option<i64>,
    /// Days after which each earned lot of points expires; never when absent.
    #[serde(default)]
    pub points_expire_days: Option<i64>,
    /// Days after which welcome points expire; as `points_expire_days` when absent.
    #[serde(default)]
    pub welcome_points_expire_days: Option<i64>,
    /// Days before expiry on which the card reminds its holder (e.g. `[14, 3]`), sent
    /// between 09:00 and 21:00 in the program's time zone.
    #[serde(default)]
    pub expiry_reminders_days: Vec<i64>,
    /// Most of a receipt (percent) payable with points; 100 when absent.
    #[serde(default)]
    pub max_points_payment_percent: Option<i64>,
    /// Money value of one point, minor units; points pay only when it is set.
    #[serde(default)]
    pub point_value: Option<i64>,
    /// Points on a member's birthday, once a year, in the program's time zone.
    #[serde(default, deserialize_with = "crate::domain::ranges::whole")]
    pub birthday_points: i64,
    /// Tiers judged on points earned in this rolling window of days.
    #[serde(default)]
    pub tier_window_days: Option<i64>,
    /// The program's IANA time zone (e.g. `Europe/Moscow`); UTC when absent.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Days of purchases RFM scores look at; 365 when absent (docs/SEGMENTS.md).
    #[serde(default)]
    pub rfm_window_days: Option<i64>,
    /// The merchant's RFM cut points; tertiles of the program's buyers when absent.
    #[serde(default)]
    pub rfm_thresholds: Option<crate::segments::Thresholds>,
    /// Days without a purchase after which a member with fewer than 3 purchases is
    /// `cooling`; 60 when absent.
    #[serde(default)]
    pub cooling_days: Option<i64>,
    /// ... and `lapsed`; 180 when absent.
    #[serde(default)]
    pub lapsed_days: Option<i64>,
}

impl CreateProgram {
    fn segments(&mut self) -> crate::segments::Settings {
        crate::segments::Settings {
            rfm_window_days: self.rfm_window_days,
            rfm_thresholds: self.rfm_thresholds.take(),
            cooling_days: self.cooling_days,
            lapsed_days: self.lapsed_days,
        }
    }

    fn lifecycle(&mut self) -> Lifecycle {
        Lifecycle {
            points_expire_days: self.points_expire_days,
            welcome_points_expire_days: self.welcome_points_expire_days,
            expiry_reminders_days: std::mem::take(&mut self.expiry_reminders_days),
            max_points_payment_percent: self.max_points_payment_percent,
            point_value: self.point_value,
            birthday_points: self.birthday_points,
            tier_window_days: self.tier_window_days,
            timezone: self
                .timezone
                .take()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty()),
        }
    }
}

/// A program's rules and settings as a request gives them, parsed and checked against the
/// merchant's templates: what creating and changing a program share.
struct Parsed {
    name: String,
    rules: ProgramRules,
    limits: PosLimits,
    template_id: String,
    segments: crate::segments::Settings,
}

impl Parsed {
    fn new_program(&self) -> NewProgram<'_> {
        NewProgram {
            name: &self.name,
            template_id: &self.template_id,
            currency: self.rules.currency,
            // Checked by ProgramRules::parse: at most MAX_POINTS_PER_UNIT.
            points_per_unit: self.rules.points_per_unit as i32,
            welcome_points: self.rules.welcome_points,
            // Plain data of strings and numbers: serializing cannot fail.
            tiers: serde_json::to_value(&self.rules.tiers).unwrap_or_default(),
            referral: self
                .rules
                .referral
                .as_ref()
                .and_then(|r| serde_json::to_value(r).ok()),
            pos_max_purchase: self.limits.max_purchase,
            pos_max_points_adjustment: self.limits.max_points_adjustment,
            lifecycle: serde_json::to_value(&self.rules.lifecycle).unwrap_or_default(),
            segments: serde_json::to_value(&self.segments).unwrap_or_default(),
        }
    }
}

/// Every problem of the request (name, rules, limits, template) at once.
fn parse(
    conn: &mut PgConnection,
    tenant: &Tenant,
    mut input: CreateProgram,
) -> Result<Parsed, ApiError> {
    let lifecycle = input.lifecycle();
    let segments = input.segments();
    let name = input.name.trim().to_string();
    let mut problems = Vec::new();
    if name.is_empty() || name.chars().count() > 100 {
        problems.push(FieldProblem::new("/name", "1 to 100 characters"));
    }
    let rules = ProgramRules::parse(
        &input.currency,
        input.points_per_unit,
        input.tiers,
        input.welcome_points,
        input.referral,
        lifecycle,
    )
    .map_err(|p| problems.extend(p))
    .ok();
    let limits = PosLimits::parse(input.pos_max_purchase, input.pos_max_points_adjustment)
        .map_err(|p| problems.extend(p))
        .ok();
    problems.extend(segments.problems());
    let template_id = input.template;
    match Template::find(conn, tenant, &template_id) {
        Ok(t) if t.kind == TemplateKind::Loyalty => {}
        Ok(_) => problems.push(FieldProblem::new(
            "/template",
            "a program needs a loyalty template, not a gift-card one",
        )),
        Err(diesel::result::Error::NotFound) => problems.push(FieldProblem::new(
            "/template",
            format!("no template {template_id:?}"),
        )),
        Err(e) => return Err(e.into()),
    }
    match (rules, limits) {
        (Some(rules), Some(limits)) if problems.is_empty() => Ok(Parsed {
            name,
            rules,
            limits,
            template_id,
            segments,
        }),
        _ => Err(ApiError::invalid_fields(problems)),
    }
}

/// Creates a program on one of the merchant's loyalty templates.
pub fn create(
    conn: &mut PgConnection,
    tenant: &Tenant,
    input: CreateProgram,
) -> Result<(Program, ProgramRules), ApiError> {
    let parsed = parse(conn, tenant, input)?;
    let program = Program::create(conn, tenant, &parsed.new_program())?;
    Ok((program, parsed.rules))
}

/// Members moving from one tier to another (`None`: no tier).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TierMove {
    pub from: Option<String>,
    pub to: Option<String>,
    pub members: i64,
}

/// What a change of a program's rules does, said before it is saved.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Effects {
    /// Points a purchase of 10 major units (e.g. 10.00 EUR) earns without a tier
    /// multiplier, before and after.
    pub example_purchase_points: (i64, i64),
    pub welcome_points: (i64, i64),
    /// Members whose tier the new thresholds change (their passes show it).
    pub tier_moves: Vec<TierMove>,
    /// Passes that will be updated: every pass of the program when its name or template
    /// changes, else those of the members changing tier.
    pub passes_to_update: i64,
    /// The same, in sentences a merchant reads before saving.
    pub summary: Vec<String>,
}

/// The tier each member of a program would hold under `rules`, set-based: the same rule as
/// [`ProgramRules::tier_for`] (the highest tier whose minimum the lifetime points reach),
/// over the tiers' minimums and names in ascending order.
const TIER_UNDER_RULES: &str =
    "(SELECT t.name FROM unnest($3::bigint[], $4::text[]) AS t (min, name)
                                WHERE t.min <= m.lifetime_points ORDER BY t.min DESC LIMIT 1)";

#[derive(QueryableByName)]
struct MoveRow {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    before: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    after: Option<String>,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    members: i64,
}

fn tier_arrays(rules: &ProgramRules) -> (Vec<i64>, Vec<String>) {
    rules
        .tiers
        .iter()
        .map(|t| (t.min_points, t.name.clone()))
        .unzip()
}

fn tier_moves(
    conn: &mut PgConnection,
    tenant: &Tenant,
    program_id: Uuid,
    rules: &ProgramRules,
) -> QueryResult<Vec<TierMove>> {
    use diesel::sql_types::{Array, BigInt, Text, Uuid as SqlUuid};
    let (mins, names) = tier_arrays(rules);
    let rows: Vec<MoveRow> = diesel::sql_query(format!(
        "SELECT before, after, count(*) AS members FROM (
             SELECT m.tier AS before, {TIER_UNDER_RULES} AS after
               FROM members m WHERE m.merchant_id = $1 AND m.program_id = $2) x
          WHERE before IS DISTINCT FROM after
          GROUP BY before, after ORDER BY before NULLS FIRST, after NULLS FIRST"
    ))
    .bind::<SqlUuid, _>(tenant.merchant_id())
    .bind::<SqlUuid, _>(program_id)
    .bind::<Array<BigInt>, _>(&mins)
    .bind::<Array<Text>, _>(&names)
    .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| TierMove {
            from: r.before,
            to: r.after,
            members: r.members,
        })
        .collect())
}

fn effects(
    conn: &mut PgConnection,
    tenant: &Tenant,
    program: &Program,
    before: &ProgramRules,
    after: &Parsed,
) -> QueryResult<Effects> {
    let moves = tier_moves(conn, tenant, program.id, &after.rules)?;
    let everything = after.name != program.name || after.template_id != program.template_id;
    let passes_to_update = if everything {
        Program::installs(conn, tenant, program.id)?.members
    } else {
        moves.iter().map(|m| m.members).sum()
    };
    let example =
        |rules: &ProgramRules| rules.points_for(10 * rules.currency.minor_per_major(), None);
    let earning = (example(before), example(&after.rules));
    let welcome = (before.welcome_points, after.rules.welcome_points);
    let mut summary = Vec::new();
    if earning.0 != earning.1 {
        summary.push(format!(
            "A purchase of 10 {} will earn {} points instead of {}.",
            after.rules.currency, earning.1, earning.0
        ));
    }
    if welcome.0 != welcome.1 {
        summary.push(format!(
            "New members will get {} welcome points instead of {}; members who joined keep theirs.",
            welcome.1, welcome.0
        ));
    }
    summary.extend(lifecycle_changes(&before.lifecycle, &after.rules.lifecycle));
    let tier = |t: &Option<String>| t.clone().unwrap_or_else(|| "no tier".into());
    for m in &moves {
        summary.push(format!(
            "{} member(s) move from {} to {}.",
            m.members,
            tier(&m.from),
            tier(&m.to)
        ));
    }
    if everything {
        summary.push(format!(
            "The program's name or card design changes: all {passes_to_update} cards are updated."
        ));
    } else if passes_to_update > 0 {
        summary.push(format!("{passes_to_update} card(s) are updated."));
    }
    if summary.is_empty() {
        summary.push("Nothing changes for members or their cards.".into());
    }
    Ok(Effects {
        example_purchase_points: earning,
        welcome_points: welcome,
        tier_moves: moves,
        passes_to_update,
        summary,
    })
}

/// The lifecycle rules' changes in sentences. They apply to what happens from now on:
/// lots already earned keep their expiry.
fn lifecycle_changes(b: &Lifecycle, a: &Lifecycle) -> Vec<String> {
    let mut out = Vec::new();
    if b.points_expire_days != a.points_expire_days
        || b.welcome_points_expire_days != a.welcome_points_expire_days
    {
        out.push(match (a.points_expire_days, a.welcome_points_expire_days) {
            (Some(d), None) => format!(
                "Points earned from now on will expire {d} days after they are earned; points already earned keep their expiry."
            ),
            (Some(d), Some(w)) => format!(
                "Points earned from now on will expire {d} days after they are earned (welcome points after {w}); points already earned keep their expiry."
            ),
            (None, Some(w)) => format!(
                "Welcome points given from now on will expire after {w} days; other points do not expire."
            ),
            (None, None) => {
                "Points earned from now on will not expire; points already earned keep their expiry."
                    .into()
            }
        });
    }
    if b.expiry_reminders_days != a.expiry_reminders_days {
        out.push(if a.expiry_reminders_days.is_empty() {
            "No expiry reminders will be sent.".into()
        } else {
            let days: Vec<String> = a.expiry_reminders_days.iter().map(i64::to_string).collect();
            format!(
                "Cards will be reminded {} days before their points expire, between 09:00 and 21:00.",
                days.join(" and ")
            )
        });
    }
    if (b.point_value, b.max_points_payment_percent)
        != (a.point_value, a.max_points_payment_percent)
    {
        out.push(match a.point_value {
            Some(v) => format!(
                "Points will pay at {v} minor units each, up to {}% of a receipt.",
                a.max_points_payment_percent.unwrap_or(100)
            ),
            None => "Points will not pay at the till.".into(),
        });
    }
    if b.birthday_points != a.birthday_points {
        out.push(format!(
            "Members will get {} points on their birthday.",
            a.birthday_points
        ));
    }
    if b.tier_window_days != a.tier_window_days {
        out.push(match a.tier_window_days {
            Some(d) => format!(
                "Tiers will be judged on the points of the last {d} days: a tier not earned again drops one level at the end of its period."
            ),
            None => "Tiers will follow lifetime points again.".into(),
        });
    }
    if b.tz() != a.tz() {
        out.push(format!("Days will be counted in {}.", a.tz()));
    }
    out
}

/// Changes a program's rules and settings; with `dry_run`, only says what the change would
/// do. Members whose tier the new thresholds change move in the same transaction, each with
/// a `tier` ledger row, and their passes (every pass of the program when its name or
/// template changes) are updated through `pass_events`. A program's currency cannot change:
/// its ledger is kept in it.
pub fn update(
    conn: &mut PgConnection,
    channels: Channels,
    tenant: &Tenant,
    program_id: Uuid,
    input: CreateProgram,
    dry_run: bool,
) -> Result<(Program, ProgramRules, Effects), ApiError> {
    conn.transaction(|conn| {
        // The row lock orders concurrent changes of one program.
        let program = Program::find_for_update(conn, tenant, program_id)?;
        let before = rules(&program)?;
        let parsed = parse(conn, tenant, input)?;
        if parsed.rules.currency != before.currency {
            return Err(ApiError::invalid_fields(vec![FieldProblem::new(
                "/currency",
                format!(
                    "a program's currency cannot change (its ledger is in {})",
                    before.currency
                ),
            )]));
        }
        let effects = effects(conn, tenant, &program, &before, &parsed)?;
        if dry_run {
            return Ok((program, before, effects));
        }
        let updated = Program::update(conn, tenant, program_id, &parsed.new_program())?;
        let moved = move_tiers(conn, tenant, program_id, &parsed.rules)?;
        let passes: Vec<Uuid> =
            if updated.template_id != program.template_id || updated.name != program.name {
                Program::retemplate_passes(conn, tenant, program_id, &updated.template_id)?
            } else {
                Program::passes_of_members(conn, tenant, &moved)?
            };
        crate::pass_events::passes_changed(conn, &passes, "program", channels.all())?;
        Ok((updated, parsed.rules, effects))
    })
}

/// Sets every member's tier by `rules`, recording each move in the ledger; returns the
/// members moved.
fn move_tiers(
    conn: &mut PgConnection,
    tenant: &Tenant,
    program_id: Uuid,
    rules: &ProgramRules,
) -> QueryResult<Vec<Uuid>> {
    use diesel::sql_types::{Array, BigInt, Text, Uuid as SqlUuid};
    #[derive(QueryableByName)]
    struct Moved {
        #[diesel(sql_type = SqlUuid)]
        member_id: Uuid,
    }
    let (mins, names) = tier_arrays(rules);
    let moved: Vec<Moved> = diesel::sql_query(format!(
        "WITH t AS (
             SELECT m.id, m.tier AS before, {TIER_UNDER_RULES} AS after
               FROM members m WHERE m.merchant_id = $1 AND m.program_id = $2),
         moved AS (
             UPDATE members m SET tier = t.after, updated_at = now()
               FROM t WHERE m.id = t.id AND m.merchant_id = $1 AND t.before IS DISTINCT FROM t.after
             RETURNING m.id, m.points, m.tier)
         INSERT INTO point_activities (id, merchant_id, member_id, type, delta, points_after, reason, tier_after)
         SELECT gen_random_uuid(), $1, id, 'tier', 0, points, 'the program''s tiers changed', tier FROM moved
         RETURNING member_id"
    ))
    .bind::<SqlUuid, _>(tenant.merchant_id())
    .bind::<SqlUuid, _>(program_id)
    .bind::<Array<BigInt>, _>(&mins)
    .bind::<Array<Text>, _>(&names)
    .load(conn)?;
    Ok(moved.into_iter().map(|m| m.member_id).collect())
}

/// The program's rules as stored; they were checked when the program was created.
pub fn rules(program: &Program) -> QueryResult<ProgramRules> {
    let bad = |e: String| diesel::result::Error::DeserializationError(e.into());
    let tiers: Vec<Tier> =
        serde_json::from_value(program.tiers.clone()).map_err(|e| bad(e.to_string()))?;
    let referral: Option<ReferralRule> = match &program.referral {
        Some(v) => Some(serde_json::from_value(v.clone()).map_err(|e| bad(e.to_string()))?),
        None => None,
    };
    let lifecycle: Lifecycle =
        serde_json::from_value(program.lifecycle.clone()).map_err(|e| bad(e.to_string()))?;
    ProgramRules::check(
        program.currency,
        i64::from(program.points_per_unit),
        tiers,
        program.welcome_points,
        referral,
        lifecycle,
    )
    .map_err(|p| bad(format!("stored program rules are invalid: {p:?}")))
}

/// A member and the rules of their program: what every points movement starts from.
pub fn member_and_rules(
    conn: &mut PgConnection,
    tenant: &Tenant,
    member_id: Uuid,
) -> Result<(crate::models::Member, ProgramRules), ApiError> {
    let member = crate::models::Member::find(conn, tenant, member_id)?;
    let rules = rules(&Program::find(conn, tenant, member.program_id)?)?;
    Ok((member, rules))
}

/// The pos limits of the program a member belongs to (one query, before a pos key's
/// purchase or adjustment is judged).
pub fn pos_limits_of_member(
    conn: &mut PgConnection,
    tenant: &Tenant,
    member_id: Uuid,
) -> QueryResult<PosLimits> {
    let (max_purchase, max_points_adjustment) =
        Program::pos_limits_of_member(conn, tenant, member_id)?;
    Ok(PosLimits {
        max_purchase,
        max_points_adjustment,
    })
}
