//! Receipts of customers who are not members, as a till reports them: the denominator of
//! the share of revenue that comes from members (SoR, see docs/ANALYTICS.md).

use crate::db::Tenant;
use crate::domain::ranges::{self, MAX_AMOUNT};
use crate::models::Program;
use crate::problem::{ApiError, FieldProblem, ProblemKind};
use crate::schema::non_member_receipts;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// How far ahead of the clock a till's `purchased_at` may be (as for purchases).
const CLOCK_SKEW_MINUTES: i64 = 5;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReceipt {
    /// Minor units paid.
    #[schema(minimum = 1, maximum = 1000000000000_i64)]
    #[serde(deserialize_with = "crate::domain::ranges::whole")]
    pub amount: i64,
    /// The program's currency.
    pub currency: String,
    /// When the customer paid (RFC 3339); now when absent. Not in the future; more than
    /// 48 hours back only with an admin key, as for purchases.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime, example = "2026-11-30T18:45:00+03:00")]
    pub purchased_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Receipt {
    pub id: Uuid,
    pub program_id: Uuid,
    pub amount: i64,
    pub currency: String,
    pub purchased_at: DateTime<Utc>,
}

/// Records a non-member receipt of `program_id` as of `now`; `admin` may date it further
/// back than a till.
pub fn record(
    conn: &mut PgConnection,
    tenant: &Tenant,
    program_id: Uuid,
    new: &NewReceipt,
    now: DateTime<Utc>,
    admin: bool,
) -> Result<Receipt, ApiError> {
    if let Some(p) = ranges::check("/amount", new.amount, 1..=MAX_AMOUNT, false) {
        return Err(ApiError::invalid_fields(vec![p]));
    }
    let program = Program::find(conn, tenant, program_id)?;
    let currency = crate::domain::Currency::parse(new.currency.trim())
        .map_err(|e| ApiError::invalid_fields(vec![FieldProblem::new("/currency", e)]))?;
    if currency != program.currency {
        return Err(ApiError::new(
            ProblemKind::CurrencyMismatch,
            format!(
                "the program counts receipts in {}, not {}",
                program.currency.code(),
                currency.code()
            ),
        ));
    }
    let at = time_of(new.purchased_at.as_deref(), now, admin)?;
    let receipt = Receipt {
        id: Uuid::new_v4(),
        program_id,
        amount: new.amount,
        currency: currency.code().to_string(),
        purchased_at: at,
    };
    diesel::insert_into(non_member_receipts::table)
        .values((
            non_member_receipts::id.eq(receipt.id),
            non_member_receipts::merchant_id.eq(tenant.merchant_id()),
            non_member_receipts::program_id.eq(program_id),
            non_member_receipts::amount.eq(receipt.amount),
            non_member_receipts::currency.eq(currency.code()),
            non_member_receipts::purchased_at.eq(at),
            non_member_receipts::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(receipt)
}

/// The receipt's time: `purchased_at` checked against `now` (same rules as purchases).
fn time_of(raw: Option<&str>, now: DateTime<Utc>, admin: bool) -> Result<DateTime<Utc>, ApiError> {
    let Some(raw) = raw else {
        return Ok(now);
    };
    let at = DateTime::parse_from_rfc3339(raw.trim())
        .map_err(|_| {
            ApiError::invalid_fields(vec![FieldProblem::new(
                "/purchased_at",
                "an RFC 3339 time with its offset, e.g. 2026-11-30T18:45:00+03:00",
            )])
        })?
        .with_timezone(&Utc);
    if at > now + chrono::Duration::minutes(CLOCK_SKEW_MINUTES) {
        return Err(ApiError::invalid_fields(vec![FieldProblem::new(
            "/purchased_at",
            "in the future: a receipt is recorded when it has been paid",
        )]));
    }
    let hours = crate::loyalty::points::POS_BACKDATE_HOURS;
    if !admin && at < now - chrono::Duration::hours(hours) {
        return Err(ApiError::forbidden(format!(
            "a receipt more than {hours} hours old (purchased_at) is recorded with an admin key"
        )));
    }
    Ok(at)
}
