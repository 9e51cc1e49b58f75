//! The provider's pace: at most N sends start per second, across a whole
//! dispatch run and from one run to the next.

use chrono::{DateTime, Duration, Utc};

#[derive(Debug)]
pub struct Pace {
    interval: Option<Duration>,
    next: Option<DateTime<Utc>>,
}

impl Pace {
    /// `0` means no limit.
    pub fn per_second(limit: u32) -> Self {
        Self {
            interval: (limit > 0).then(|| Duration::microseconds(1_000_000 / i64::from(limit))),
            next: None,
        }
    }

    pub fn is_limited(&self) -> bool {
        self.interval.is_some()
    }

    /// The time the next send may start: `earliest`, or later if the previous
    /// send started less than one interval before it. Claims that slot.
    pub fn slot(&mut self, earliest: DateTime<Utc>) -> DateTime<Utc> {
        let Some(interval) = self.interval else {
            return earliest;
        };
        let slot = self.next.map_or(earliest, |next| next.max(earliest));
        self.next = Some(slot + interval);
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_per_second_spaces_fifty_sends_200_ms_apart() {
        let mut pace = Pace::per_second(5);
        let start = Utc::now();
        let slots: Vec<_> = (0..50).map(|_| pace.slot(start)).collect();
        assert_eq!(slots[0], start);
        for pair in slots.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::milliseconds(200));
        }
        // A later caller is not held back by a slot long past.
        let later = start + Duration::seconds(60);
        assert_eq!(pace.slot(later), later);
    }

    #[test]
    fn no_limit_means_no_waiting() {
        let mut pace = Pace::per_second(0);
        let now = Utc::now();
        assert_eq!(pace.slot(now), now);
        assert_eq!(pace.slot(now), now);
    }
}
