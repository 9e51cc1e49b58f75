//! Timestamps: Unix seconds in the database (and in a row's domain types),
//! `DateTime<Utc>` everywhere else.

use chrono::{DateTime, Utc};

/// Unix seconds, the one timestamp representation in the database.
pub fn ts(at: DateTime<Utc>) -> i64 {
    at.timestamp()
}

pub fn from_ts(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

pub fn from_opt_ts(secs: Option<i64>) -> Option<DateTime<Utc>> {
    secs.map(from_ts)
}
