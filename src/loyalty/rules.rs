use crate::domain::ranges::{
    self, MAX_AMOUNT, MAX_MONTHLY_CAP, MAX_POINTS_CHANGE, MAX_POINTS_PER_UNIT,
};
use crate::domain::{Currency, ReferralStatus};
use crate::problem::{ApiError, FieldProblem};
use serde::{Deserialize, Serialize};

/// A tier, reached when a member's lifetime points reach `min_points`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    #[schema(min_length = 1, max_length = 40)]
    pub name: String,
    /// Lifetime points from which the tier holds.
    #[schema(minimum = 0, maximum = 1000000000000_i64)]
    #[serde(deserialize_with = "crate::domain::ranges::whole")]
    pub min_points: i64,
    /// Points earned on purchases are multiplied by this (e.g. 1.5); 1 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 100)]
    pub multiplier: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReferralTrigger {
    Join,
    FirstPurchase,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferralRule {
    #[schema(minimum = 0, maximum = 1000000000_i64)]
    #[serde(deserialize_with = "crate::domain::ranges::whole")]
    pub referrer_points: i64,
    #[schema(minimum = 0, maximum = 1000000000_i64)]
    #[serde(deserialize_with = "crate::domain::ranges::whole")]
    pub referee_points: i64,
    pub trigger: ReferralTrigger,
    /// With `first_purchase`: the smallest purchase (minor units) that counts.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::ranges::whole_opt"
    )]
    #[schema(minimum = 0, maximum = 1000000000000_i64)]
    pub min_purchase: Option<i64>,
    /// Most referral rewards one referrer earns per calendar month.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::ranges::whole_opt"
    )]
    #[schema(minimum = 0, maximum = 1000000_i64)]
    pub monthly_cap: Option<i64>,
}

/// How points live and die in a program: every rule optional (points never expire, no
/// payment with points, no birthday points, tiers on lifetime points, days in UTC).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
// No `deny_unknown_fields`: a program's answer flattens this beside its other fields, and
// utoipa would document that as `additionalProperties: false`, refusing those fields.
pub struct Lifecycle {
    /// Each earned lot of points expires this many days after it was earned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 3650)]
    pub points_expire_days: Option<i64>,
    /// Welcome points expire this many days after joining (else as `points_expire_days`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 3650)]
    pub welcome_points_expire_days: Option<i64>,
    /// Days before a lot expires on which the card reminds its holder, e.g. `[14, 3]`.
    #[serde(default)]
    #[schema(max_items = 5)]
    pub expiry_reminders_days: Vec<i64>,
    /// Most of a receipt (percent) payable with points; 100 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 100)]
    pub max_points_payment_percent: Option<i64>,
    /// Money value of one point in minor units; without it points cannot pay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 1000000)]
    pub point_value: Option<i64>,
    /// Points granted on a member's birthday, once a year.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1000000000_i64)]
    pub birthday_points: i64,
    /// Tiers judged on the points earned in this many days: reached at once, and at the
    /// end of each period a tier not earned again drops one level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 3650)]
    pub tier_window_days: Option<i64>,
    /// The program's IANA time zone, for days, birthdays and quiet hours; UTC when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "Europe/Moscow")]
    pub timezone: Option<String>,
}

impl Lifecycle {
    pub fn problems(&self) -> Vec<FieldProblem> {
        let mut problems = Vec::new();
        let days = 1..=3650;
        for (key, v) in [
            ("points_expire_days", self.points_expire_days),
            (
                "welcome_points_expire_days",
                self.welcome_points_expire_days,
            ),
            ("tier_window_days", self.tier_window_days),
        ] {
            if let Some(v) = v {
                problems.extend(ranges::check(&format!("/{key}"), v, days.clone(), false));
            }
        }
        if self.expiry_reminders_days.len() > 5 {
            problems.push(FieldProblem::new(
                "/expiry_reminders_days",
                "at most 5 reminders",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, d) in self.expiry_reminders_days.iter().enumerate() {
            let at = format!("/expiry_reminders_days/{i}");
            if let Some(p) = ranges::check(&at, *d, 1..=365, false) {
                problems.push(p);
            } else if !seen.insert(*d) {
                problems.push(FieldProblem::new(at, "each day once"));
            }
        }
        if !self.expiry_reminders_days.is_empty()
            && self.points_expire_days.is_none()
            && self.welcome_points_expire_days.is_none()
        {
            problems.push(FieldProblem::new(
                "/expiry_reminders_days",
                "reminders need points that expire (points_expire_days)",
            ));
        }
        if let Some(p) = self.max_points_payment_percent {
            problems.extend(ranges::check(
                "/max_points_payment_percent",
                p,
                1..=100,
                false,
            ));
        }
        if let Some(v) = self.point_value {
            problems.extend(ranges::check("/point_value", v, 1..=1_000_000, false));
        }
        problems.extend(ranges::check(
            "/birthday_points",
            self.birthday_points,
            0..=MAX_POINTS_CHANGE,
            false,
        ));
        if let Some(tz) = &self.timezone {
            if tz.parse::<chrono_tz::Tz>().is_err() {
                problems.push(FieldProblem::new(
                    "/timezone",
                    "not an IANA time zone (e.g. Europe/Moscow)",
                ));
            }
        }
        problems
    }

    /// Reminder offsets, largest first (the earliest reminder first).
    fn sorted(mut self) -> Self {
        self.expiry_reminders_days.sort_unstable_by(|a, b| b.cmp(a));
        self
    }

    /// The program's time zone (UTC when none or, for rows written before the check, an
    /// unknown one).
    pub fn tz(&self) -> chrono_tz::Tz {
        self.timezone
            .as_deref()
            .and_then(|t| t.parse().ok())
            .unwrap_or(chrono_tz::UTC)
    }

    /// When points of `kind` earned at `at` expire, if they do.
    pub fn expiry_of(
        &self,
        kind: crate::domain::PointActivityType,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        let days = match kind {
            crate::domain::PointActivityType::Welcome => {
                self.welcome_points_expire_days.or(self.points_expire_days)
            }
            _ => self.points_expire_days,
        }?;
        Some(at + chrono::Duration::days(days))
    }
}

/// The rules of one program, checked once when the program is created.
#[derive(Debug, Clone)]
pub struct ProgramRules {
    pub currency: Currency,
    pub points_per_unit: i64,
    /// Sorted by `min_points`.
    pub tiers: Vec<Tier>,
    pub welcome_points: i64,
    pub referral: Option<ReferralRule>,
    pub lifecycle: Lifecycle,
}

pub use crate::domain::ranges::MAX_POINTS;

/// What a pos key may do in one operation on a program's members; an admin key is not
/// bound by these. A till that needs more (a large order, a goodwill grant) asks a manager
/// holding the admin key, so a leaked or misused till key cannot mint points at will.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PosLimits {
    /// Largest purchase amount, minor units.
    pub max_purchase: i64,
    /// Largest absolute manual points change.
    pub max_points_adjustment: i64,
}

impl PosLimits {
    /// 1,000.00 in a two-decimal currency: far above a till's usual receipt.
    pub const DEFAULT_MAX_PURCHASE: i64 = 100_000;
    /// A generous goodwill grant, far below what would buy much.
    pub const DEFAULT_MAX_POINTS_ADJUSTMENT: i64 = 1_000;

    pub fn parse(
        max_purchase: Option<i64>,
        max_points_adjustment: Option<i64>,
    ) -> Result<Self, Vec<FieldProblem>> {
        let limits = Self {
            max_purchase: max_purchase.unwrap_or(Self::DEFAULT_MAX_PURCHASE),
            max_points_adjustment: max_points_adjustment
                .unwrap_or(Self::DEFAULT_MAX_POINTS_ADJUSTMENT),
        };
        let mut problems = Vec::new();
        if !(0..=MAX_POINTS).contains(&limits.max_purchase) {
            problems.push(FieldProblem::new(
                "/pos_max_purchase",
                "must be from 0 to 10^12 minor units",
            ));
        }
        if !(0..=MAX_POINTS).contains(&limits.max_points_adjustment) {
            problems.push(FieldProblem::new(
                "/pos_max_points_adjustment",
                "must be from 0 to 10^12 points",
            ));
        }
        if problems.is_empty() {
            Ok(limits)
        } else {
            Err(problems)
        }
    }

    /// Whether a pos key may record a purchase of `amount` minor units.
    pub fn check_purchase(&self, amount: i64) -> Result<(), ApiError> {
        if amount > self.max_purchase {
            return Err(ApiError::forbidden(format!(
                "a purchase of {amount} minor units is above this program's pos_max_purchase \
                 ({}); a pos key may not record it, an admin key is needed",
                self.max_purchase
            )));
        }
        Ok(())
    }

    /// Whether a pos key may change a member's points by `delta`.
    pub fn check_adjustment(&self, delta: i64) -> Result<(), ApiError> {
        if delta.unsigned_abs() > self.max_points_adjustment.unsigned_abs() {
            return Err(ApiError::forbidden(format!(
                "a change of {delta} points is beyond this program's pos_max_points_adjustment \
                 ({}); a pos key may not make it, an admin key is needed",
                self.max_points_adjustment
            )));
        }
        Ok(())
    }
}

impl ProgramRules {
    /// A program's rules as a request gives them: the currency's code parsed here, every
    /// problem (the currency's first) reported at once.
    pub fn parse(
        currency: &str,
        points_per_unit: i64,
        tiers: Vec<Tier>,
        welcome_points: i64,
        referral: Option<ReferralRule>,
        lifecycle: Lifecycle,
    ) -> Result<Self, Vec<FieldProblem>> {
        match Currency::parse(currency) {
            Ok(currency) => Self::check(
                currency,
                points_per_unit,
                tiers,
                welcome_points,
                referral,
                lifecycle,
            ),
            Err(e) => {
                let mut problems = vec![FieldProblem::new("/currency", e)];
                problems.extend(Self::problems(
                    points_per_unit,
                    &tiers,
                    welcome_points,
                    referral.as_ref(),
                ));
                problems.extend(lifecycle.problems());
                Err(problems)
            }
        }
    }

    /// The rules of a program in `currency`, checked: tier names trimmed, tiers sorted.
    pub fn check(
        currency: Currency,
        points_per_unit: i64,
        mut tiers: Vec<Tier>,
        welcome_points: i64,
        referral: Option<ReferralRule>,
        lifecycle: Lifecycle,
    ) -> Result<Self, Vec<FieldProblem>> {
        let mut problems =
            Self::problems(points_per_unit, &tiers, welcome_points, referral.as_ref());
        problems.extend(lifecycle.problems());
        if !problems.is_empty() {
            return Err(problems);
        }
        for t in &mut tiers {
            t.name = t.name.trim().to_string();
        }
        tiers.sort_by_key(|t| t.min_points);
        Ok(Self {
            currency,
            points_per_unit,
            tiers,
            welcome_points,
            referral,
            lifecycle: lifecycle.sorted(),
        })
    }

    fn problems(
        points_per_unit: i64,
        tiers: &[Tier],
        welcome_points: i64,
        referral: Option<&ReferralRule>,
    ) -> Vec<FieldProblem> {
        let mut problems = Vec::new();
        problems.extend(ranges::check(
            "/points_per_unit",
            points_per_unit,
            0..=MAX_POINTS_PER_UNIT,
            false,
        ));
        problems.extend(ranges::check(
            "/welcome_points",
            welcome_points,
            0..=MAX_POINTS_CHANGE,
            false,
        ));
        let mut names = std::collections::HashSet::new();
        let mut mins = std::collections::HashSet::new();
        for (i, t) in tiers.iter().enumerate() {
            let name = t.name.trim();
            if name.is_empty() || name.chars().count() > 40 {
                problems.push(FieldProblem::new(
                    format!("/tiers/{i}/name"),
                    "1 to 40 characters",
                ));
            }
            if !names.insert(name.to_lowercase()) {
                problems.push(FieldProblem::new(
                    format!("/tiers/{i}/name"),
                    "tier names must be unique",
                ));
            }
            if let Some(p) = ranges::check(
                &format!("/tiers/{i}/min_points"),
                t.min_points,
                0..=MAX_POINTS,
                false,
            ) {
                problems.push(p);
            } else if !mins.insert(t.min_points) {
                problems.push(FieldProblem::new(
                    format!("/tiers/{i}/min_points"),
                    "two tiers cannot start at the same points",
                ));
            }
            if let Some(m) = t.multiplier {
                if !(m.is_finite() && (0.0..=100.0).contains(&m)) {
                    problems.push(FieldProblem::new(
                        format!("/tiers/{i}/multiplier"),
                        "must be from 0 to 100",
                    ));
                }
            }
        }
        if tiers.len() > 20 {
            problems.push(FieldProblem::new("/tiers", "at most 20 tiers"));
        }
        if let Some(r) = referral {
            for (key, v) in [
                ("referrer_points", r.referrer_points),
                ("referee_points", r.referee_points),
            ] {
                problems.extend(ranges::check(
                    &format!("/referral/{key}"),
                    v,
                    0..=MAX_POINTS_CHANGE,
                    false,
                ));
            }
            if let Some(m) = r.min_purchase {
                problems.extend(ranges::check(
                    "/referral/min_purchase",
                    m,
                    0..=MAX_AMOUNT,
                    false,
                ));
            }
            if let Some(m) = r.monthly_cap {
                problems.extend(ranges::check(
                    "/referral/monthly_cap",
                    m,
                    0..=MAX_MONTHLY_CAP,
                    false,
                ));
            }
        }
        problems
    }

    /// Points for a purchase: `floor(amount / minor units per major unit × points_per_unit ×
    /// tier multiplier)`, with the multiplier of the tier held before the purchase.
    pub fn points_for(&self, amount_minor: i64, tier: Option<&str>) -> i64 {
        let per_major = self.currency.minor_per_major() as i128;
        let base = i128::from(amount_minor) * i128::from(self.points_per_unit);
        let multiplier = tier
            .and_then(|name| self.tiers.iter().find(|t| t.name == name))
            .and_then(|t| t.multiplier)
            .unwrap_or(1.0);
        // Multiplier in thousandths keeps the arithmetic exact for multipliers like 1.5 or 1.25.
        let milli = (multiplier * 1000.0).round() as i128;
        ((base * milli) / (per_major * 1000)).clamp(0, i128::from(MAX_POINTS)) as i64
    }

    /// With a tier window: the better of the tier held and the one `window_points` reach
    /// (a tier is reached at once and lost only when its period is judged).
    pub fn better_tier(&self, held: Option<&str>, window_points: i64) -> Option<String> {
        let rank =
            |name: Option<&str>| name.and_then(|n| self.tiers.iter().position(|t| t.name == n));
        let reached = self.tier_for(window_points).map(|t| t.name.as_str());
        match (rank(held), rank(reached)) {
            (Some(h), Some(r)) if h >= r => held.map(str::to_string),
            (Some(_), None) => held.map(str::to_string),
            _ => reached.map(str::to_string),
        }
    }

    /// A request's currency, which must be the program's (`currency-mismatch` otherwise).
    pub fn same_currency(&self, code: &str) -> Result<Currency, ApiError> {
        let currency = Currency::parse(code)
            .map_err(|e| ApiError::invalid_fields(vec![FieldProblem::new("/currency", e)]))?;
        if currency != self.currency {
            return Err(ApiError::new(
                crate::problem::ProblemKind::CurrencyMismatch,
                format!(
                    "the program counts purchases in {}, not {}",
                    self.currency, currency
                ),
            ));
        }
        Ok(currency)
    }

    /// The tier for a member's lifetime points: the highest one reached. Tiers follow
    /// lifetime points, so spending points never costs a tier.
    pub fn tier_for(&self, lifetime_points: i64) -> Option<&Tier> {
        self.tiers
            .iter()
            .rev()
            .find(|t| t.min_points <= lifetime_points)
    }
}

/// What a referral earned, with a sentence the customer or cashier can be shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReferralResult {
    pub referral_id: uuid::Uuid,
    pub referrer_id: uuid::Uuid,
    pub status: ReferralStatus,
    pub referrer_points: i64,
    pub referee_points: i64,
    pub message: String,
    #[serde(skip)]
    pub changed_passes: Vec<uuid::Uuid>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tier(name: &str, min: i64) -> Tier {
        Tier {
            name: name.into(),
            min_points: min,
            multiplier: None,
        }
    }

    #[test]
    fn tiers_follow_lifetime_points() {
        let rules = ProgramRules::parse(
            "EUR",
            10,
            vec![tier("Gold", 1000), tier("Bronze", 0), tier("Silver", 500)],
            50,
            None,
            Lifecycle::default(),
        )
        .expect("valid rules");
        let tier_at = |points| rules.tier_for(points).map(|t| t.name.as_str());
        assert_eq!(tier_at(0), Some("Bronze"));
        assert_eq!(tier_at(999), Some("Silver"));
        assert_eq!(tier_at(1000), Some("Gold"));
    }

    #[test]
    fn pos_limits_default_and_bound_pos_keys() {
        let limits = PosLimits::parse(None, Some(0)).expect("valid limits");
        assert_eq!(limits.max_purchase, PosLimits::DEFAULT_MAX_PURCHASE);
        assert!(limits
            .check_purchase(PosLimits::DEFAULT_MAX_PURCHASE)
            .is_ok());
        let refused = limits
            .check_purchase(PosLimits::DEFAULT_MAX_PURCHASE + 1)
            .unwrap_err();
        assert_eq!(refused.status.as_u16(), 403);
        assert!(limits.check_adjustment(-1).is_err());
        let limits = PosLimits::parse(None, None).expect("valid limits");
        assert!(limits.check_adjustment(-1000).is_ok());
        assert!(limits.check_adjustment(1001).is_err());
        assert!(limits.check_adjustment(i64::MIN).is_err());
        let problems = PosLimits::parse(Some(-1), Some(MAX_POINTS + 1)).unwrap_err();
        assert_eq!(problems.len(), 2);
    }

    #[test]
    fn bad_rules_list_every_problem() {
        let problems = ProgramRules::parse(
            "EURO",
            -1,
            vec![tier("A", 0), tier("a", 0)],
            -5,
            None,
            Lifecycle::default(),
        )
        .unwrap_err();
        let pointers: Vec<&str> = problems.iter().map(|p| p.pointer.as_str()).collect();
        for p in [
            "/currency",
            "/points_per_unit",
            "/welcome_points",
            "/tiers/1/name",
            "/tiers/1/min_points",
        ] {
            assert!(pointers.contains(&p), "{p} in {pointers:?}");
        }
    }
}
