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

/// Deserializes an integer field from any JSON number that is a whole number: `1050` and
/// `1050.0` alike (JSON Schema counts both as integers), but not `1.5`, nor a float beyond
/// 2^53 (it would have been rounded on the way in), nor anything beyond 64 bits.
pub fn whole<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    d.deserialize_any(WholeVisitor)
}

/// [`whole`] for an optional field (with `#[serde(default)]`).
pub fn whole_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct Opt;
    impl<'de> serde::de::Visitor<'de> for Opt {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a whole number or null")
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            whole(d).map(Some)
        }
    }
    d.deserialize_option(Opt)
}

struct WholeVisitor;

impl serde::de::Visitor<'_> for WholeVisitor {
    type Value = i64;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a whole number within 64 bits")
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::custom(format!("{v} is beyond 64 bits")))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<i64, E> {
        // 2^53: the largest magnitude below which every whole f64 is exact.
        const EXACT: f64 = 9_007_199_254_740_992.0;
        if v.is_finite() && v.fract() == 0.0 && v.abs() <= EXACT {
            Ok(v as i64)
        } else {
            Err(E::custom(format!("{v} is not a whole number within range")))
        }
    }
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

    #[test]
    fn whole_numbers_are_read_in_either_spelling_and_fractions_are_not() {
        #[derive(serde::Deserialize)]
        struct T {
            #[serde(deserialize_with = "whole")]
            n: i64,
            #[serde(default, deserialize_with = "whole_opt")]
            o: Option<i64>,
        }
        let read = |text: &str| serde_json::from_str::<T>(text).map(|t| (t.n, t.o));
        assert_eq!(read(r#"{"n": 1050}"#).ok(), Some((1050, None)));
        assert_eq!(
            read(r#"{"n": 1050.0, "o": -7.0}"#).ok(),
            Some((1050, Some(-7)))
        );
        assert_eq!(read(r#"{"n": 1, "o": null}"#).ok(), Some((1, None)));
        for bad in [
            "1.5",
            "1e30",
            "18446744073709551616",
            "9223372036854775808",
            "\"1\"",
            "true",
        ] {
            assert!(read(&format!(r#"{{"n": {bad}}}"#)).is_err(), "{bad}");
        }
        assert_eq!(
            read(r#"{"n": -9223372036854775808}"#).ok(),
            Some((i64::MIN, None))
        );
    }
}
