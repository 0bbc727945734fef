//! Numbers, money and times as the staff member reads them: "1,234.50 EUR" in English,
//! "1 234,50 EUR" in Russian (with no-break spaces, so an amount never wraps).

use crate::domain::{Currency, Language};
use chrono::{DateTime, Utc};

const NBSP: char = '\u{a0}';

fn group(digits: &str, sep: char) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

/// A whole number with the language's thousands separator.
pub fn number(lang: Language, n: i64) -> String {
    let sign = if n < 0 { "-" } else { "" };
    let sep = match lang {
        Language::En => ',',
        Language::Ru => NBSP,
    };
    format!("{sign}{}", group(&n.unsigned_abs().to_string(), sep))
}

/// A signed change: "+120", "-40".
pub fn delta(lang: Language, n: i64) -> String {
    if n > 0 {
        format!("+{}", number(lang, n))
    } else {
        number(lang, n)
    }
}

/// An amount in minor units with its currency's decimals and code.
pub fn money(lang: Language, minor: i64, currency: Currency) -> String {
    let (group_sep, decimal) = match lang {
        Language::En => (',', '.'),
        Language::Ru => (NBSP, ','),
    };
    let sign = if minor < 0 { "-" } else { "" };
    let per = currency.minor_per_major().unsigned_abs();
    let abs = minor.unsigned_abs();
    let major = group(&(abs / per).to_string(), group_sep);
    let digits = usize::from(currency.exponent());
    let amount = if digits == 0 {
        major
    } else {
        format!("{major}{decimal}{:0digits$}", abs % per)
    };
    format!("{sign}{amount}{NBSP}{}", currency.code())
}

/// A fraction of a whole number with `digits` decimals, in the language's way: "1,234.5"
/// or "1 234,5"; "—" for what is not a number (a rate over nobody).
pub fn decimal(lang: Language, x: f64, digits: usize) -> String {
    if !x.is_finite() {
        return "—".into();
    }
    let text = format!("{:.digits$}", x.abs());
    let (whole, fraction) = text.split_once('.').unwrap_or((text.as_str(), ""));
    let (group_sep, point) = match lang {
        Language::En => (',', '.'),
        Language::Ru => (NBSP, ','),
    };
    // "-0.0" is zero.
    let negative = x < 0.0 && text.chars().any(|c| c.is_ascii_digit() && c != '0');
    let sign = if negative { "-" } else { "" };
    let whole = group(whole, group_sep);
    if fraction.is_empty() {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}{point}{fraction}")
    }
}

/// A share given as a fraction (0.125) in percent: "12.5%" / "12,5%".
pub fn percent_of(lang: Language, fraction: f64, digits: usize) -> String {
    match fraction.is_finite() {
        true => format!("{}%", decimal(lang, fraction * 100.0, digits)),
        false => "—".into(),
    }
}

/// A moment in UTC, to the minute.
pub fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_in_both_languages() {
        let eur = Currency::parse("EUR").unwrap();
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(money(Language::En, 123450, eur), "1,234.50\u{a0}EUR");
        assert_eq!(money(Language::Ru, 123405, eur), "1\u{a0}234,05\u{a0}EUR");
        assert_eq!(money(Language::En, -5, eur), "-0.05\u{a0}EUR");
        assert_eq!(money(Language::En, 1000, jpy), "1,000\u{a0}JPY");
        assert_eq!(number(Language::En, 1234567), "1,234,567");
        assert_eq!(number(Language::En, i64::MIN), "-9,223,372,036,854,775,808");
        assert_eq!(delta(Language::En, 5), "+5");
        assert_eq!(decimal(Language::En, 1234.56, 1), "1,234.6");
        assert_eq!(decimal(Language::Ru, -1234.5, 2), "-1\u{a0}234,50");
        assert_eq!(decimal(Language::En, -0.001, 1), "0.0");
        assert_eq!(decimal(Language::En, f64::NAN, 1), "—");
        assert_eq!(
            decimal(Language::En, 1e20, 0),
            "100,000,000,000,000,000,000"
        );
        assert_eq!(percent_of(Language::Ru, 0.125, 1), "12,5%");
    }
}
