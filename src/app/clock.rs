//! The one source of "now". Jobs take `now` as an argument; the CLI's `--now`
//! and the tests choose it, everything else asks the clock.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, Default)]
pub enum Clock {
    #[default]
    System,
    Fixed(DateTime<Utc>),
}

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Fixed(at) => *at,
        }
    }

    /// Waits until `at` on this clock. A fixed clock never moves, so there is
    /// nothing to wait for: tests see the schedule without sleeping.
    pub async fn sleep_until(&self, at: DateTime<Utc>) {
        if let (Clock::System, Ok(wait)) = (self, (at - Utc::now()).to_std()) {
            tokio::time::sleep(wait).await;
        }
    }
}

/// The instant a local wall-clock time names in `tz`. In the autumn overlap the
/// earlier instant is taken; a time that a spring-forward gap skips moves to the
/// first minute after the gap, as a person would read it.
pub fn local_to_utc(tz: chrono_tz::Tz, local: chrono::NaiveDateTime) -> DateTime<Utc> {
    use chrono::TimeZone;
    let mut candidate = local;
    for _ in 0..=180 {
        if let Some(at) = tz.from_local_datetime(&candidate).earliest() {
            return at.with_timezone(&Utc);
        }
        candidate += chrono::Duration::minutes(1);
    }
    // No real timezone has a gap over three hours; fall back to reading it as UTC.
    Utc.from_utc_datetime(&local)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn a_time_in_the_spring_gap_moves_past_it() {
        let tz = chrono_tz::America::New_York;
        let local = NaiveDate::from_ymd_opt(2026, 3, 8)
            .unwrap()
            .and_hms_opt(2, 30, 0)
            .unwrap();
        // 02:30 does not exist that night; 03:00 EDT is 07:00 UTC.
        assert_eq!(
            local_to_utc(tz, local).to_rfc3339(),
            "2026-03-08T07:00:00+00:00"
        );
    }
}
