//! Timestamps as the database holds them: Unix seconds (the rule lives in
//! `domain`, where a client's times are read too).

pub use crate::domain::timestamp::{from_opt_ts, from_ts, ts};
