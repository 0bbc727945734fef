//! When the program may speak to its members unasked: between 09:00 and 21:00 in the
//! program's time zone. Expiry reminders wait for these hours, and a campaign's send time
//! outside them moves to the next 09:00.

use chrono::{DateTime, Duration, TimeZone, Timelike, Utc};

/// Local hours in which messages go out: from 09:00 to 21:00.
pub const SEND_FROM_HOUR: u32 = 9;
pub const SEND_UNTIL_HOUR: u32 = 21;

/// Whether `now` is within sending hours in `tz`.
pub fn sending_hours(now: DateTime<Utc>, tz: chrono_tz::Tz) -> bool {
    let hour = now.with_timezone(&tz).hour();
    (SEND_FROM_HOUR..SEND_UNTIL_HOUR).contains(&hour)
}

/// `at` itself within sending hours, else the next 09:00 in `tz` (the first instant of
/// that hour, or a later one on a day whose 09:00 a clock change skipped).
pub fn next_sending_instant(at: DateTime<Utc>, tz: chrono_tz::Tz) -> DateTime<Utc> {
    if sending_hours(at, tz) {
        return at;
    }
    let local = at.with_timezone(&tz);
    let day = if local.hour() < SEND_FROM_HOUR {
        local.date_naive()
    } else {
        local.date_naive() + Duration::days(1)
    };
    (SEND_FROM_HOUR..SEND_UNTIL_HOUR)
        .find_map(|h| {
            tz.from_local_datetime(&day.and_hms_opt(h, 0, 0)?)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
        })
        // No zone skips twelve hours; should one, a day later still keeps the night quiet.
        .unwrap_or(at + Duration::days(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sending_hours_are_local() {
        let at: DateTime<Utc> = "2026-12-01T07:00:00Z".parse().unwrap();
        // 07:00 UTC is 10:00 in Moscow: sent there, not in London.
        assert!(sending_hours(at, chrono_tz::Europe::Moscow));
        assert!(!sending_hours(at, chrono_tz::Europe::London));
        let late: DateTime<Utc> = "2026-12-01T18:30:00Z".parse().unwrap();
        assert!(!sending_hours(late, chrono_tz::Europe::Moscow));
        assert!(sending_hours(late, chrono_tz::UTC));
    }

    #[test]
    fn a_night_moves_to_the_next_morning() {
        let moscow = chrono_tz::Europe::Moscow;
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        // 23:30 Moscow -> 09:00 Moscow the next day (06:00 UTC).
        assert_eq!(
            next_sending_instant(t("2026-12-01T20:30:00Z"), moscow),
            t("2026-12-02T06:00:00Z")
        );
        // 03:00 Moscow -> 09:00 the same day.
        assert_eq!(
            next_sending_instant(t("2026-12-02T00:00:00Z"), moscow),
            t("2026-12-02T06:00:00Z")
        );
        // 21:00 sharp is night already; 20:59 is not.
        assert_eq!(
            next_sending_instant(t("2026-12-01T18:00:00Z"), moscow),
            t("2026-12-02T06:00:00Z")
        );
        let evening = t("2026-12-01T17:59:00Z");
        assert_eq!(next_sending_instant(evening, moscow), evening);
    }
}
