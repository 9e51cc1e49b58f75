//! Episodes: one per quiet spell of a client.

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use super::ts;

/// Why an episode ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::AsRefStr, strum::Display)]
#[strum(serialize_all = "snake_case")]
pub enum CloseReason {
    ReEngaged,
    MaxSteps,
    OptedOut,
    Paused,
    Hold,
    Discharged,
}

/// Opens the client's episode at step 0 and returns its id.
pub async fn open(
    conn: &mut AnyConnection,
    client_id: i64,
    started_at: DateTime<Utc>,
) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO episodes (client_id, started_at, step) VALUES ($1, $2, 0) RETURNING id",
    )
    .bind(client_id)
    .bind(ts(started_at))
    .fetch_one(conn)
    .await?)
}

/// Records that `step` has been drafted in the episode.
pub async fn advance(conn: &mut AnyConnection, episode_id: i64, step: i64) -> anyhow::Result<()> {
    sqlx::query("UPDATE episodes SET step = $2 WHERE id = $1 AND step < $2")
        .bind(episode_id)
        .bind(step)
        .execute(conn)
        .await?;
    Ok(())
}

/// Closes the client's open episode, if any. Returns whether one was open.
pub async fn close_open(
    conn: &mut AnyConnection,
    client_id: i64,
    reason: CloseReason,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE episodes SET closed_at = $2, close_reason = $3 \
         WHERE client_id = $1 AND closed_at IS NULL",
    )
    .bind(client_id)
    .bind(ts(now))
    .bind(reason.as_ref())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// A "reach out personally" task: the cadence has run out for this client.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutreachTask {
    pub external_id: String,
    pub client_name: String,
    pub quiet_since: i64,
}

/// Open tasks for one coach's clients (or all), oldest spell first.
pub async fn outreach_tasks(
    conn: &mut AnyConnection,
    coach_id: Option<i64>,
) -> anyhow::Result<Vec<OutreachTask>> {
    Ok(sqlx::query_as(
        "SELECT c.external_id, COALESCE(NULLIF(c.preferred_name, ''), c.first_name) AS client_name, \
           COALESCE(c.last_engaged_at, c.created_at) AS quiet_since \
         FROM episodes e JOIN clients c ON c.id = e.client_id \
         WHERE e.close_reason = 'max_steps' AND e.outreach_done_at IS NULL \
           AND ($1 IS NULL OR c.coach_id = $1) ORDER BY e.started_at LIMIT 100",
    )
    .bind(coach_id)
    .fetch_all(conn)
    .await?)
}

/// Ends the client's open outreach task, if any.
pub async fn finish_outreach(
    conn: &mut AnyConnection,
    client_id: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE episodes SET outreach_done_at = $2 \
         WHERE client_id = $1 AND close_reason = 'max_steps' AND outreach_done_at IS NULL",
    )
    .bind(client_id)
    .bind(ts(now))
    .execute(conn)
    .await?;
    Ok(())
}
