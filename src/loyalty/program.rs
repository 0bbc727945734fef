//! A loyalty program: creating one, and its rules and pos limits as its row holds them.

use super::rules::PosLimits;
use super::{ProgramRules, ReferralRule, Tier};
use crate::db::Tenant;
use crate::domain::TemplateKind;
use crate::models::program::NewProgram;
use crate::models::{Program, Template};
use crate::problem::{ApiError, FieldProblem};
use diesel::prelude::*;
use serde::Deserialize;
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
}

/// Creates a program on one of the merchant's loyalty templates; every problem of the
/// request (name, rules, limits, template) answered at once.
pub fn create(
    conn: &mut PgConnection,
    tenant: &Tenant,
    input: CreateProgram,
) -> Result<(Program, ProgramRules), ApiError> {
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
    )
    .map_err(|p| problems.extend(p))
    .ok();
    let limits = PosLimits::parse(input.pos_max_purchase, input.pos_max_points_adjustment)
        .map_err(|p| problems.extend(p))
        .ok();
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
    let (Some(rules), Some(limits)) = (rules, limits) else {
        return Err(ApiError::invalid_fields(problems));
    };
    if !problems.is_empty() {
        return Err(ApiError::invalid_fields(problems));
    }
    // Plain data of strings and numbers: serializing cannot fail.
    let tiers = serde_json::to_value(&rules.tiers).unwrap_or_default();
    let referral = rules
        .referral
        .as_ref()
        .and_then(|r| serde_json::to_value(r).ok());
    let program = Program::create(
        conn,
        tenant,
        &NewProgram {
            name: &name,
            template_id: &template_id,
            currency: rules.currency,
            // Checked above: at most MAX_POINTS_PER_UNIT.
            points_per_unit: rules.points_per_unit as i32,
            welcome_points: rules.welcome_points,
            tiers,
            referral,
            pos_max_purchase: limits.max_purchase,
            pos_max_points_adjustment: limits.max_points_adjustment,
        },
    )?;
    Ok((program, rules))
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
    ProgramRules::check(
        program.currency,
        i64::from(program.points_per_unit),
        tiers,
        program.welcome_points,
        referral,
    )
    .map_err(|p| bad(format!("stored program rules are invalid: {p:?}")))
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
