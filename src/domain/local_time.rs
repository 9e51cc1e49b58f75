//! Local wall-clock time: what an instant a person names in their own
//! timezone is. Pure arithmetic on `chrono_tz`; "now" comes from the caller.

use chrono::{DateTime, Utc};

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
