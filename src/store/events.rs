//! Engagement events, and what an engagement does to a quiet spell.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use sqlx::AnyConnection;

use super::clients::ClientRow;
use super::episodes::{self, CloseReason};
use super::{Placeholders, int_rows, messages, ts};
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

/// Records an event for `client` and applies it; see [`record_many`].
pub async fn record(
    conn: &mut AnyConnection,
    client: &ClientRow,
    event: &NewEvent<'_>,
    first_step_after: Duration,
    now: DateTime<Utc>,
) -> anyhow::Result<EventOutcome> {
    let outcomes = record_many(conn, &[(client, event)], first_step_after, now).await?;
    Ok(outcomes[0])
}

/// Records events and applies them, a few statements for the whole batch, and
/// returns each event's outcome in order. An engagement newer than what was known
/// moves the client's `last_engaged_at`; if it is also newer than the start of
/// the quiet spell, the client is back: the open episode closes (`re_engaged`),
/// the outreach task ends and pending and approved messages are cancelled.
/// Re-recording the same event changes nothing. `clients` are as they were
/// before the batch.
pub async fn record_many(
    conn: &mut AnyConnection,
    batch: &[(&ClientRow, &NewEvent<'_>)],
    first_step_after: Duration,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<EventOutcome>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "INSERT INTO engagement_events (client_id, kind, occurred_at, source, note, recorded_at) \
         VALUES {} ON CONFLICT (client_id, kind, occurred_at) DO NOTHING \
         RETURNING client_id, kind, occurred_at",
        Placeholders::for_conn(conn).rows(batch.len(), 5, &ts(now).to_string())
    );
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
    for (client, event) in batch {
        query = query
            .bind(client.id)
            .bind(event.kind.as_ref())
            .bind(ts(event.occurred_at))
            .bind(event.source)
            .bind(event.note);
    }
    let inserted: Vec<(i64, String, i64)> = query.fetch_all(&mut *conn).await?;
    let mut inserted: HashSet<(i64, String, i64)> = inserted.into_iter().collect();

    // Each event is new at most once, even if the batch repeats it.
    let mut outcomes: Vec<EventOutcome> = batch
        .iter()
        .map(|(client, event)| {
            let key = (
                client.id,
                event.kind.as_ref().to_owned(),
                ts(event.occurred_at),
            );
            if inserted.remove(&key) {
                EventOutcome::Recorded
            } else {
                EventOutcome::Duplicate
            }
        })
        .collect();

    // The newest new engagement of each client.
    let mut newest: HashMap<i64, (usize, i64)> = HashMap::new();
    for (i, ((client, event), outcome)) in batch.iter().zip(&outcomes).enumerate() {
        if *outcome == EventOutcome::Recorded && event.kind.is_engagement() {
            let at = ts(event.occurred_at);
            let entry = newest.entry(client.id).or_insert((i, at));
            if at > entry.1 {
                *entry = (i, at);
            }
        }
    }
    if newest.is_empty() {
        return Ok(outcomes);
    }
    // Guarded so that an older event never moves the engagement time back.
    let sql = format!(
        "UPDATE clients SET last_engaged_at = v.column2, next_detect_at = v.column2 + {}, \
           updated_at = {} FROM (VALUES {}) AS v \
         WHERE clients.id = v.column1 \
           AND (clients.last_engaged_at IS NULL OR clients.last_engaged_at < v.column2) \
         RETURNING clients.id",
        first_step_after.num_seconds(),
        ts(now),
        int_rows(
            newest
                .iter()
                .map(|(client, (_, at))| [Some(*client), Some(*at)])
        )
    );
    let moved: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await?;

    // Engagement after the moment we believed the quiet spell began means the
    // client is back: whatever was drafted for the spell no longer fits.
    let mut back = Vec::new();
    for client_id in moved {
        let (i, _) = newest[&client_id];
        let (client, event) = batch[i];
        if event.occurred_at > client.quiet_since() {
            outcomes[i] = EventOutcome::ReEngaged;
            back.push(client_id);
        }
    }
    episodes::close_open(conn, &back, CloseReason::ReEngaged, now).await?;
    episodes::finish_outreach(conn, &back, now).await?;
    messages::cancel_unsent(conn, &back, None, "re_engaged", now).await?;
    Ok(outcomes)
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
