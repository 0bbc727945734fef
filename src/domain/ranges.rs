//! The ranges of the integers the API takes. Each is also declared on its schema in the
//! OpenAPI document (`minimum`/`maximum`; tests/api/openapi.rs checks they agree), and a
//! value outside is refused with a 422 naming the field, before it reaches the database.

use crate::problem::FieldProblem;
use std::ops::RangeInclusive;

/// Any one money amount, in minor units: 10^12 (ten billion euros) is far above any gift
/// card or purchase, and sums of a few of them stay far from `i64::MAX`. Gift-card balances
/// are further capped by `PASSFOLD_GIFT_CARD_MAX_BALANCE`.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;

/// Points moved by one change (an adjustment, a welcome gift, a referral reward).
pub const MAX_POINTS_CHANGE: i64 = 1_000_000_000;

/// Points thresholds (tier `min_points`) and the most one purchase earns.
pub const MAX_POINTS: i64 = 1_000_000_000_000;

/// Points per major unit of the currency.
pub const MAX_POINTS_PER_UNIT: i64 = 100_000;

/// Referral rewards one referrer earns per month.
pub const MAX_MONTHLY_CAP: i64 = 1_000_000;

/// A problem at `pointer` unless `value` lies in `range` (and, with `non_zero`, is not 0).
pub fn check(
    pointer: &str,
    value: i64,
    range: RangeInclusive<i64>,
    non_zero: bool,
) -> Option<FieldProblem> {
    if range.contains(&value) && !(non_zero && value == 0) {
        return None;
    }
    let zero = if non_zero && range.contains(&0) {
        ", not 0"
    } else {
        ""
    };
    Some(FieldProblem::new(
        pointer,
        format!(
            "a whole number from {} to {}{zero}",
            range.start(),
            range.end()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extremes_of_i64_are_refused_without_overflow() {
        let r = -MAX_POINTS_CHANGE..=MAX_POINTS_CHANGE;
        for v in [i64::MIN, i64::MIN + 1, i64::MAX, 0] {
            let p = check("/delta", v, r.clone(), true).expect("refused");
            assert_eq!(p.pointer, "/delta");
        }
        assert!(check("/delta", -MAX_POINTS_CHANGE, r.clone(), true).is_none());
        assert!(check("/delta", MAX_POINTS_CHANGE, r, true).is_none());
        assert!(check("/amount", 0, 0..=MAX_AMOUNT, false).is_none());
    }
}
