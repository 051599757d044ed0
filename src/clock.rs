//! Leaf: the one clock. Only the commands make a [`Clock`] (from the system clock, or from
//! `DIGESTIF_NOW`); every room below is handed it, so a pretended instant
//! reaches everything that is dated: a message's `Date:`, a request's record, a run's name.

use std::time::Instant;

use chrono::{DateTime, Utc};

/// Wall-clock time that starts at a chosen instant and then runs as the real one does.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: DateTime<Utc>,
    started: Instant,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::starting_at(Utc::now())
    }

    /// A clock that reads `origin` now, and runs on from there.
    pub fn starting_at(origin: DateTime<Utc>) -> Clock {
        Clock {
            origin,
            started: Instant::now(),
        }
    }

    /// The instant the command started at (what `DIGESTIF_NOW` says, when set).
    pub fn start(&self) -> DateTime<Utc> {
        self.origin
    }

    /// The current instant on this clock.
    pub fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::Duration::from_std(self.started.elapsed()).unwrap_or_default();
        self.origin + elapsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_pretended_instant_runs_on_from_where_it_starts() {
        let origin = Utc.with_ymd_and_hms(2011, 12, 30, 23, 59, 0).unwrap();
        let clock = Clock::starting_at(origin);
        assert_eq!(clock.start(), origin);
        let later = clock.now();
        assert!(later >= origin && later - origin < chrono::Duration::seconds(60));
    }
}
