//! When a message may go out: quiet hours in the client's local time, and the
//! caps of docs/domain.md (at most N a local calendar day and M a rolling week).
//! Pure functions of `now`, so DST nights can be tested directly.

use chrono::{DateTime, Duration, NaiveTime, Utc};
use chrono_tz::Tz;

use crate::domain::local_time::local_to_utc;

#[derive(Debug, Clone, Copy)]
pub struct QuietHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl QuietHours {
    fn contains(&self, t: NaiveTime) -> bool {
        if self.start == self.end {
            false
        } else if self.start > self.end {
            // Across midnight, e.g. 21:00–09:00.
            t >= self.start || t < self.end
        } else {
            t >= self.start && t < self.end
        }
    }

    /// The first instant at or after `at` outside quiet hours for a client in `tz`.
    pub fn next_open(&self, tz: Tz, at: DateTime<Utc>) -> DateTime<Utc> {
        let local = at.with_timezone(&tz).naive_local();
        if !self.contains(local.time()) {
            return at;
        }
        let day = if local.time() < self.end {
            local.date()
        } else {
            local.date() + Duration::days(1)
        };
        local_to_utc(tz, day.and_time(self.end))
    }

    /// When a coach's own message may go, at `at`: at once while the client
    /// is writing (their last message came within `window`), else when their
    /// quiet hours allow.
    pub fn conversation_due(
        &self,
        tz: Tz,
        at: DateTime<Utc>,
        client_wrote: Option<DateTime<Utc>>,
        window: Duration,
    ) -> DateTime<Utc> {
        if client_wrote.is_some_and(|wrote| at - wrote <= window) {
            at
        } else {
            self.next_open(tz, at)
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Caps {
    pub per_day: u32,
    pub per_week: u32,
}

impl Caps {
    /// When one more message would fit under both caps, if it does not fit at
    /// `now`. `sent` holds the start times of the client's recent attempts that
    /// went out (or may have), oldest first, covering at least the last 7 days.
    pub fn next_fit(
        &self,
        tz: Tz,
        now: DateTime<Utc>,
        sent: &[DateTime<Utc>],
    ) -> Option<DateTime<Utc>> {
        let today = now.with_timezone(&tz).date_naive();
        let sent_today = sent
            .iter()
            .filter(|s| s.with_timezone(&tz).date_naive() == today)
            .count();
        let day_fit = (sent_today >= self.per_day as usize).then(|| {
            let tomorrow = today + Duration::days(1);
            local_to_utc(tz, tomorrow.and_time(NaiveTime::MIN))
        });
        let week: Vec<&DateTime<Utc>> = sent
            .iter()
            .filter(|s| **s > now - Duration::days(7))
            .collect();
        let week_fit = (week.len() >= self.per_week as usize).then(|| {
            // The moment enough of the week's messages have aged out.
            *week[week.len() - self.per_week as usize] + Duration::days(7)
        });
        day_fit.max(week_fit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet() -> QuietHours {
        QuietHours {
            start: NaiveTime::from_hms_opt(21, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn inside_the_window_a_message_goes_now() {
        let now = at("2026-06-01T16:00:00Z"); // 12:00 in New York
        assert_eq!(quiet().next_open(chrono_tz::America::New_York, now), now);
    }

    #[test]
    fn early_morning_waits_for_nine_the_same_day() {
        let now = at("2026-06-01T10:00:00Z"); // 06:00 EDT
        assert_eq!(
            quiet().next_open(chrono_tz::America::New_York, now),
            at("2026-06-01T13:00:00Z")
        );
    }

    #[test]
    fn the_week_cap_waits_for_the_oldest_send_to_age_out() {
        let caps = Caps {
            per_day: 1,
            per_week: 3,
        };
        let tz = chrono_tz::UTC;
        let now = at("2026-06-07T12:00:00Z");
        let sent = [
            at("2026-06-01T12:00:00Z"),
            at("2026-06-03T12:00:00Z"),
            at("2026-06-05T12:00:00Z"),
        ];
        assert_eq!(
            caps.next_fit(tz, now, &sent),
            Some(at("2026-06-08T12:00:00Z"))
        );
        assert_eq!(caps.next_fit(tz, now, &sent[1..]), None);
    }
}
