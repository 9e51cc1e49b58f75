//! Engagement events, and what an engagement does to a quiet spell.

use chrono::{DateTime, Duration, Utc};
use sqlx::AnyConnection;

use super::clients::ClientRow;
use super::episodes::{self, CloseReason};
use super::{messages, ts};
use crate::domain::EventKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    /// The same client, kind and time was recorded before: nothing changed.
    Duplicate,
    /// Recorded; the client's quiet spell is unchanged (a missed session, or an
    /// engagement older than one already known).
    Recorded,
    /// Recorded, and it shows the client is back: the open episode closed and
    /// unsent messages were cancelled.
    ReEngaged,
}

pub struct NewEvent<'a> {
    pub kind: EventKind,
    pub occurred_at: DateTime<Utc>,
    pub source: &'a str,
    pub note: Option<&'a str>,
}

/// Records an event for `client` and applies it. An engagement newer than what was
/// known moves `last_engaged_at`, closes the open episode (`re_engaged`) and cancels
/// pending and approved messages. Re-recording the same event changes nothing.
pub async fn record(
    conn: &mut AnyConnection,
    client: &ClientRow,
    event: &NewEvent<'_>,
    first_step_after: Duration,
    now: DateTime<Utc>,
) -> anyhow::Result<EventOutcome> {
    let inserted = sqlx::query(
        "INSERT INTO engagement_events (client_id, kind, occurred_at, source, note, recorded_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (client_id, kind, occurred_at) DO NOTHING",
    )
    .bind(client.id)
    .bind(event.kind.as_ref())
    .bind(ts(event.occurred_at))
    .bind(event.source)
    .bind(event.note)
    .bind(ts(now))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(EventOutcome::Duplicate);
    }
    if !event.kind.is_engagement() {
        return Ok(EventOutcome::Recorded);
    }
    let at = ts(event.occurred_at);
    // Guarded so that an older event never moves the engagement time back.
    let moved = sqlx::query(
        "UPDATE clients SET last_engaged_at = $2, next_detect_at = $3, updated_at = $4 \
         WHERE id = $1 AND (last_engaged_at IS NULL OR last_engaged_at < $2)",
    )
    .bind(client.id)
    .bind(at)
    .bind(ts(event.occurred_at + first_step_after))
    .bind(ts(now))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    // Engagement after the moment we believed the quiet spell began means the
    // client is back: whatever was drafted for the spell no longer fits.
    if moved == 0 || event.occurred_at <= client.quiet_since() {
        return Ok(EventOutcome::Recorded);
    }
    episodes::close_open(conn, client.id, CloseReason::ReEngaged, now).await?;
    episodes::finish_outreach(conn, client.id, now).await?;
    messages::cancel_unsent(conn, client.id, None, "re_engaged", now).await?;
    Ok(EventOutcome::ReEngaged)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub kind: String,
    pub occurred_at: i64,
    pub source: String,
    pub note: Option<String>,
}

/// The client's latest events, newest first.
pub async fn recent(
    conn: &mut AnyConnection,
    client_id: i64,
    limit: i64,
) -> anyhow::Result<Vec<EventRow>> {
    Ok(sqlx::query_as(
        "SELECT kind, occurred_at, source, note FROM engagement_events WHERE client_id = $1 \
         ORDER BY occurred_at DESC LIMIT $2",
    )
    .bind(client_id)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}
