//! The `app_state` key-value table, and the counts that metrics and
//! `/healthz` report.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use secrecy::SecretString;

use super::inbound;
use super::pool::Store;
use super::time::{from_ts, ts};

impl Store {
    /// The signing key kept in the database, made on first use. Every instance
    /// on the same database shares it, and it survives restarts.
    pub async fn stored_secret_key(&self) -> anyhow::Result<SecretString> {
        let mut conn = self.conn().await?;
        let fresh = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        sqlx::query("INSERT INTO app_state (key, value) VALUES ('secret_key', $1) ON CONFLICT (key) DO NOTHING")
            .bind(&fresh)
            .execute(&mut *conn)
            .await?;
        let key: String =
            sqlx::query_scalar("SELECT value FROM app_state WHERE key = 'secret_key'")
                .fetch_one(&mut *conn)
                .await?;
        Ok(SecretString::from(key))
    }

    /// Keeps `clients.next_detect_at` honest when the cadence changes: those times
    /// were computed from the cadence, so a changed cadence makes every active client
    /// due for one fresh look. The first fingerprint is simply recorded.
    pub async fn sync_cadence(&self, fingerprint: &str, now: DateTime<Utc>) -> anyhow::Result<()> {
        let mut tx = self.begin().await?;
        let stored: Option<String> =
            sqlx::query_scalar("SELECT value FROM app_state WHERE key = 'cadence'")
                .fetch_optional(&mut *tx)
                .await?;
        match stored {
            Some(ref s) if s == fingerprint => return Ok(()),
            Some(_) => {
                sqlx::query("UPDATE clients SET next_detect_at = $1 WHERE status = 'active'")
                    .bind(ts(now))
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE app_state SET value = $1 WHERE key = 'cadence'")
                    .bind(fingerprint)
                    .execute(&mut *tx)
                    .await?;
            }
            None => {
                sqlx::query("INSERT INTO app_state (key, value) VALUES ('cadence', $1)")
                    .bind(fingerprint)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await.context("Failed to record the cadence")
    }
}

/// Message counts by status, and attempt counts by channel and outcome, for metrics.
pub async fn counts(
    conn: &mut sqlx::AnyConnection,
) -> anyhow::Result<(Vec<(String, i64)>, Vec<(String, String, i64)>)> {
    let by_status = sqlx::query_as("SELECT status, COUNT(*) FROM messages GROUP BY status")
        .fetch_all(&mut *conn)
        .await?;
    let by_outcome = sqlx::query_as(
        "SELECT channel, outcome, COUNT(*) FROM send_log \
         WHERE event = 'attempt' AND outcome IS NOT NULL GROUP BY channel, outcome",
    )
    .fetch_all(conn)
    .await?;
    Ok((by_status, by_outcome))
}

/// Crisis alerts nobody has acknowledged: how many, and the oldest's arrival.
pub async fn open_crisis_alerts(store: &Store) -> anyhow::Result<(i64, Option<DateTime<Utc>>)> {
    let mut conn = store.conn().await?;
    inbound::open_crisis(&mut conn).await
}

/// How many alerts (of a crisis or a reported death) have not gone out, for
/// `/healthz`.
pub async fn inbound_alerts_pending(store: &Store) -> anyhow::Result<i64> {
    let mut conn = store.conn().await?;
    inbound::count_alerts_pending(&mut conn).await
}

/// When the oldest draft still waiting for a coach was made.
pub async fn oldest_pending_draft(
    conn: &mut sqlx::AnyConnection,
) -> anyhow::Result<Option<DateTime<Utc>>> {
    let oldest: Option<i64> =
        sqlx::query_scalar("SELECT MIN(created_at) FROM messages WHERE status = 'pending'")
            .fetch_one(conn)
            .await?;
    Ok(oldest.map(from_ts))
}
