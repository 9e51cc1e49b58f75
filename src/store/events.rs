//! Engagement events, and what an engagement does to a quiet spell.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use sqlx::AnyConnection;

use super::clients::EventTarget;
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
    client: &EventTarget,
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
/// Re-recording the same event changes nothing. The targets are as read in
/// this transaction, before the batch.
///
/// No statement here returns a row per event: with SQLite each row read costs
/// more than the row written. Events already stored are found first (few, as
/// a rule), and what moves is worked out from the targets; the guarded update
/// agrees with that, since `last_engaged_at` only ever grows.
pub async fn record_many(
    conn: &mut AnyConnection,
    batch: &[(&EventTarget, &NewEvent<'_>)],
    first_step_after: Duration,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<EventOutcome>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let key = |(client, event): &(&EventTarget, &NewEvent<'_>)| {
        (
            client.id,
            event.kind.as_ref().to_owned(),
            ts(event.occurred_at),
        )
    };
    let sql = format!(
        "SELECT e.client_id, e.kind, e.occurred_at FROM (VALUES {}) AS v \
         JOIN engagement_events e \
           ON e.client_id = v.column1 AND e.kind = v.column2 AND e.occurred_at = v.column3",
        Placeholders::for_conn(conn).rows(batch.len(), 3, "")
    );
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
    for (client, event) in batch {
        query = query
            .bind(client.id)
            .bind(event.kind.as_ref())
            .bind(ts(event.occurred_at));
    }
    let mut known: HashSet<(i64, String, i64)> =
        query.fetch_all(&mut *conn).await?.into_iter().collect();
    // Each event is new at most once, even if the batch repeats it.
    let outcomes: Vec<EventOutcome> = batch
        .iter()
        .map(|item| {
            if known.insert(key(item)) {
                EventOutcome::Recorded
            } else {
                EventOutcome::Duplicate
            }
        })
        .collect();
    let new: Vec<_> = batch
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| **o == EventOutcome::Recorded)
        .map(|(item, _)| item)
        .collect();
    if new.is_empty() {
        return Ok(outcomes);
    }
    // ON CONFLICT still guards against an insert by another transaction since.
    let sql = format!(
        "INSERT INTO engagement_events (client_id, kind, occurred_at, source, note, recorded_at) \
         VALUES {} ON CONFLICT (client_id, kind, occurred_at) DO NOTHING",
        Placeholders::for_conn(conn).rows(new.len(), 5, &ts(now).to_string())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (client, event) in &new {
        query = query
            .bind(client.id)
            .bind(event.kind.as_ref())
            .bind(ts(event.occurred_at))
            .bind(event.source)
            .bind(event.note);
    }
    query.execute(&mut *conn).await?;
    apply_engagements(conn, batch, outcomes, first_step_after, now).await
}

/// Moves `last_engaged_at` for the new engagements among `batch`, and winds
/// down the quiet spells of the clients who are back.
async fn apply_engagements(
    conn: &mut AnyConnection,
    batch: &[(&EventTarget, &NewEvent<'_>)],
    mut outcomes: Vec<EventOutcome>,
    first_step_after: Duration,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<EventOutcome>> {
    // The newest new engagement of each client that moves its engagement time.
    let mut newest: HashMap<i64, usize> = HashMap::new();
    for (i, ((client, event), outcome)) in batch.iter().zip(&outcomes).enumerate() {
        let at = ts(event.occurred_at);
        let moves = client.last_engaged_at.is_none_or(|known| known < at);
        if *outcome == EventOutcome::Recorded && event.kind.is_engagement() && moves {
            let entry = newest.entry(client.id).or_insert(i);
            if event.occurred_at > batch[*entry].1.occurred_at {
                *entry = i;
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
           AND (clients.last_engaged_at IS NULL OR clients.last_engaged_at < v.column2)",
        first_step_after.num_seconds(),
        ts(now),
        int_rows(
            newest
                .iter()
                .map(|(client, i)| [Some(*client), Some(ts(batch[*i].1.occurred_at))])
        )
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut *conn)
        .await?;

    // Engagement after the moment we believed the quiet spell began means the
    // client is back: whatever was drafted for the spell no longer fits.
    let mut back = Vec::new();
    for (client_id, i) in newest {
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
