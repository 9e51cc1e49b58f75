//! The retention job: what reengage keeps, and for how long.
//! - The words of settled messages are replaced with a marker after
//!   `retention.message_body_days`; pending and approved drafts are never touched.
//! - Send-log rows go after `retention.send_log_years` (at least 6).
//! - Ended sessions and spent login-throttle rows go at once.
//! - The audit log and opt-out and consent evidence are never deleted.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::app::context::AppContext;
use crate::store::{retention, sessions};

/// What a message's words become when their time is up.
pub const REMOVED: &str = "[removed under the retention policy]";

#[derive(Debug, Default, Clone, Serialize)]
pub struct HousekeepingSummary {
    pub bodies_cleared: u64,
    pub send_log_rows_deleted: u64,
    pub sessions_deleted: u64,
    pub throttle_rows_deleted: u64,
}

impl std::fmt::Display for HousekeepingSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "message bodies cleared {}, send-log rows deleted {}, ended sessions deleted {}, \
             login-throttle rows deleted {}",
            self.bodies_cleared,
            self.send_log_rows_deleted,
            self.sessions_deleted,
            self.throttle_rows_deleted
        )
    }
}

pub async fn run(ctx: &AppContext, now: DateTime<Utc>) -> anyhow::Result<HousekeepingSummary> {
    let settings = &ctx.settings.retention;
    let bodies_before = now - Duration::days(i64::from(settings.message_body_days));
    let log_before = now - Duration::days(365 * i64::from(settings.send_log_years));
    let mut tx = ctx.store.begin().await?;
    let bodies_cleared = retention::clear_settled_bodies(&mut tx, bodies_before, REMOVED).await?;
    let send_log_rows_deleted = retention::delete_send_log_before(&mut tx, log_before).await?;
    let (sessions_deleted, throttle_rows_deleted) = sessions::purge_ended(&mut tx, now).await?;
    tx.commit().await?;
    Ok(HousekeepingSummary {
        bodies_cleared,
        send_log_rows_deleted,
        sessions_deleted,
        throttle_rows_deleted,
    })
}
