use chrono::{Datelike, NaiveDate};
use std::fmt;
use std::str::FromStr;

/// A member's birth date: month and day always, the year when the member gave it. Written
/// `YYYY-MM-DD`, or `--MM-DD` (ISO 8601's date without a year; `MM-DD` is read too).
/// February 29 is a birthday like any other (kept on February 28 in other years).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BirthDate {
    month: u32,
    day: u32,
    year: Option<i32>,
}

/// The years a stored birth year may take (the column's check).
const YEARS: std::ops::RangeInclusive<i32> = 1900..=2100;

const EXPECTED: &str = "a date as YYYY-MM-DD, or month and day as --MM-DD";

fn number(text: &str, digits: usize) -> Option<u32> {
    (text.len() == digits && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

impl BirthDate {
    /// From the stored columns; `None` when they hold no whole date.
    pub fn from_parts(month: Option<i16>, day: Option<i16>, year: Option<i16>) -> Option<Self> {
        let (month, day) = (u32::try_from(month?).ok()?, u32::try_from(day?).ok()?);
        Self::new(month, day, year.map(i32::from)).ok()
    }

    fn new(month: u32, day: u32, year: Option<i32>) -> Result<Self, String> {
        if let Some(y) = year {
            if !YEARS.contains(&y) {
                return Err("the year must be from 1900 to 2100".into());
            }
            if NaiveDate::from_ymd_opt(y, month, day).is_none() {
                return Err(format!("there is no such day in {y}"));
            }
        } else if NaiveDate::from_ymd_opt(2000, month, day).is_none() {
            // 2000 was a leap year: February 29 passes, April 31 does not.
            return Err("there is no such day".into());
        }
        Ok(Self { month, day, year })
    }

    pub fn month(&self) -> u32 {
        self.month
    }

    pub fn day(&self) -> u32 {
        self.day
    }

    pub fn year(&self) -> Option<i32> {
        self.year
    }

    /// The day the birthday is kept in `year`: February 29 falls on February 28 in a year
    /// without one.
    pub fn in_year(&self, year: i32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(year, self.month, self.day)
            .or_else(|| NaiveDate::from_ymd_opt(year, self.month, self.day - 1))
    }

    /// Whether `date` is the day this birthday is kept in `date`'s year.
    pub fn is_kept_on(&self, date: NaiveDate) -> bool {
        self.in_year(date.year()) == Some(date)
    }

    /// The columns: `(birth_month, birth_day, birth_year)`.
    pub fn parts(&self) -> (i16, i16, Option<i16>) {
        (
            self.month as i16,
            self.day as i16,
            self.year.map(|y| y as i16),
        )
    }
}

impl FromStr for BirthDate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (year, rest) = match text.strip_prefix("--") {
            Some(rest) => (None, rest),
            None => match text.split_once('-') {
                Some((y, rest)) if y.len() == 4 => {
                    (Some(number(y, 4).ok_or(EXPECTED)? as i32), rest)
                }
                _ => (None, text),
            },
        };
        let (month, day) = rest.split_once('-').ok_or(EXPECTED)?;
        let (month, day) = (
            number(month, 2).ok_or(EXPECTED)?,
            number(day, 2).ok_or(EXPECTED)?,
        );
        Self::new(month, day, year)
    }
}

impl fmt::Display for BirthDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.year {
            Some(y) => write!(f, "{y:04}-{:02}-{:02}", self.month, self.day),
            None => write!(f, "--{:02}-{:02}", self.month, self.day),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<String, String> {
        text.parse::<BirthDate>().map(|d| d.to_string())
    }

    #[test]
    fn reads_full_dates_and_month_days() {
        assert_eq!(parse("1990-05-17"), Ok("1990-05-17".into()));
        assert_eq!(parse("--05-17"), Ok("--05-17".into()));
        assert_eq!(parse("05-17"), Ok("--05-17".into()));
        assert_eq!(parse("--02-29"), Ok("--02-29".into()));
        assert_eq!(parse("2000-02-29"), Ok("2000-02-29".into()));
    }

    #[test]
    fn refuses_what_is_not_a_day() {
        for bad in [
            "",
            "1990-5-17",
            "1990-13-01",
            "--04-31",
            "1990-02-29",
            "1899-01-01",
            "17.05.1990",
            "--00-10",
            "05-1７",
            "+1990-05-17",
            "1990-05-17T00:00",
            "--05-17-",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn february_29_is_kept_on_the_28th_in_common_years() {
        let leapling: BirthDate = "--02-29".parse().unwrap();
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(leapling.in_year(2027), Some(day(2027, 2, 28)));
        assert_eq!(leapling.in_year(2028), Some(day(2028, 2, 29)));
        assert!(leapling.is_kept_on(day(2027, 2, 28)));
        assert!(!leapling.is_kept_on(day(2028, 2, 28)));
        let may: BirthDate = "1990-05-17".parse().unwrap();
        assert!(may.is_kept_on(day(2026, 5, 17)));
        assert_eq!(
            BirthDate::from_parts(Some(5), Some(17), Some(1990)),
            Some(may)
        );
        assert_eq!(BirthDate::from_parts(Some(5), None, None), None);
    }
}
