//! The service's idea of "now". Production reads the system clock; tests (and a worker run
//! `--at` an instant) hold a clock that stays where it is put and moves only when told, so
//! a time rule (a session's idle expiry, a throttling window, later points expiry) is tested
//! by moving the clock instead of sleeping.
//!
//! Every time decision of the application takes `now` from the `Clock` in `AppState`, never
//! from `Utc::now()` or the database's `now()`, so that a test's moved clock is the one all
//! of them see.

use chrono::{DateTime, Duration, Utc};
use std::sync::{Arc, Mutex};

/// Cheap to clone: clones share one instant, so moving a test's clock moves the
/// application's.
#[derive(Clone, Debug)]
pub struct Clock(Arc<Source>);

#[derive(Debug)]
enum Source {
    System,
    Manual(Mutex<DateTime<Utc>>),
}

impl Clock {
    /// Real time.
    pub fn system() -> Self {
        Clock(Arc::new(Source::System))
    }

    /// A clock standing at `at` until it is set or advanced.
    pub fn manual(at: DateTime<Utc>) -> Self {
        Clock(Arc::new(Source::Manual(Mutex::new(at))))
    }

    pub fn now(&self) -> DateTime<Utc> {
        match &*self.0 {
            Source::System => Utc::now(),
            Source::Manual(at) => *at.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// Puts a manual clock at `at`. Real time cannot be set: false, and nothing changes.
    pub fn set(&self, at: DateTime<Utc>) -> bool {
        match &*self.0 {
            Source::System => false,
            Source::Manual(now) => {
                *now.lock().unwrap_or_else(|e| e.into_inner()) = at;
                true
            }
        }
    }

    /// Moves a manual clock by `by` (forward or back). Real time: false, nothing changes.
    pub fn advance(&self, by: Duration) -> bool {
        match &*self.0 {
            Source::System => false,
            Source::Manual(now) => {
                let mut now = now.lock().unwrap_or_else(|e| e.into_inner());
                *now += by;
                true
            }
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let start = Utc::now() - Duration::days(3);
        let clock = Clock::manual(start);
        let seen_by_app = clock.clone();
        assert_eq!(seen_by_app.now(), start);
        assert!(clock.advance(Duration::minutes(31)));
        assert_eq!(seen_by_app.now(), start + Duration::minutes(31));
        assert!(clock.set(start));
        assert_eq!(seen_by_app.now(), start);
    }

    #[test]
    fn real_time_cannot_be_moved() {
        let clock = Clock::system();
        assert!(!clock.advance(Duration::days(1)));
        let diff = (clock.now() - Utc::now()).num_seconds().abs();
        assert!(diff < 5);
    }
}
