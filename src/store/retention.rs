//! The retention job's SQL.

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use super::time::ts;

/// Replaces the words of messages settled before `before` with `marker`.
pub async fn clear_settled_bodies(
    conn: &mut AnyConnection,
    before: DateTime<Utc>,
    marker: &str,
) -> anyhow::Result<u64> {
    let done = sqlx::query(
        "UPDATE messages SET body = $2, html = NULL, original_body = NULL, original_subject = NULL, \
           subject = CASE WHEN subject IS NULL THEN NULL ELSE $2 END \
         WHERE status IN ('sent', 'delivered', 'undelivered', 'failed', 'rejected', 'expired', 'cancelled') \
           AND COALESCE(settled_at, created_at) < $1 AND body <> $2",
    )
    .bind(ts(before))
    .bind(marker)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Deletes send-log rows of attempts started before `before`.
pub async fn delete_send_log_before(
    conn: &mut AnyConnection,
    before: DateTime<Utc>,
) -> anyhow::Result<u64> {
    let done = sqlx::query("DELETE FROM send_log WHERE started_at < $1")
        .bind(ts(before))
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}
