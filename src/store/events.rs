//! Engagement events, and what an engagement does to a quiet spell.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use sqlx::AnyConnection;

use super::clients::EventTarget;
use super::dialect::Placeholders;
use super::episodes;
use super::time::ts;
use crate::domain::EventKind;
use crate::domain::eligibility::Refusal;

/// What recording a batch of events did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// Events stored now; the rest (the same client, kind and time) were
    /// stored before, and changed nothing.
    pub new: u64,
    /// Clients the events show are back: their open episode closed and
    /// unsent messages were cancelled.
    pub back: u64,
}

pub struct NewEvent<'a> {
    pub kind: EventKind,
    pub occurred_at: DateTime<Utc>,
    pub source: &'a str,
    pub note: Option<&'a str>,
    /// The coach who recorded it, when one did: the replies a contact answers
    /// are handled by them.
    pub by: Option<i64>,
}

/// Records an event for `client` and applies it; see [`record_many`].
pub async fn record(
    conn: &mut AnyConnection,
    client: &EventTarget,
    event: &NewEvent<'_>,
    first_step_after: Duration,
    now: DateTime<Utc>,
) -> anyhow::Result<Recorded> {
    record_many(conn, &[(client, event)], first_step_after, now).await
}

/// Records events and applies them, two statements for the whole batch (more
/// for clients who are back). An engagement newer than what was known moves
/// the client's `last_engaged_at`; if it is also newer than the start of the
/// quiet spell, the client is back: the open episode closes (`re_engaged`), the
/// outreach task ends and pending and approved messages are cancelled.
/// Recording the same event again changes nothing.
///
/// The targets are as read in this transaction, before the batch, and what
/// moves is worked out from them: no statement returns a row per event, since
/// with SQLite each row read costs more than the row written. An event stored
/// before is older than or as old as its client's `last_engaged_at`, so it
/// moves nothing here either; and the guarded update agrees with the targets,
/// since `last_engaged_at` only ever grows.
pub async fn record_many(
    conn: &mut AnyConnection,
    batch: &[(&EventTarget, &NewEvent<'_>)],
    first_step_after: Duration,
    now: DateTime<Utc>,
) -> anyhow::Result<Recorded> {
    if batch.is_empty() {
        return Ok(Recorded::default());
    }
    let sql = format!(
        "INSERT INTO engagement_events (client_id, kind, occurred_at, source, note, recorded_at) \
         VALUES {} ON CONFLICT (client_id, kind, occurred_at) DO NOTHING",
        Placeholders::for_conn(conn).rows(batch.len(), 5, &ts(now).to_string())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (client, event) in batch {
        query = query
            .bind(client.id)
            .bind(event.kind.as_ref())
            .bind(ts(event.occurred_at))
            .bind(event.source)
            .bind(event.note);
    }
    let new = query.execute(&mut *conn).await?.rows_affected();
    contacts_handle_replies(conn, batch, now).await?;
    let back = apply_engagements(conn, batch, first_step_after, now).await?;
    Ok(Recorded { new, back })
}

/// A coach's contact with a client answers the replies they sent before it:
/// those stop waiting for a person, handled by the coach who recorded it. One
/// statement for the batch. The one home of this rule: a contact from a CSV,
/// the API or the UI all come here.
async fn contacts_handle_replies(
    conn: &mut AnyConnection,
    batch: &[(&EventTarget, &NewEvent<'_>)],
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let contacts: Vec<(i64, i64, Option<i64>)> = batch
        .iter()
        .filter(|(_, e)| e.kind == EventKind::CoachContact)
        .map(|(c, e)| (c.id, ts(e.occurred_at), e.by))
        .collect();
    if contacts.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "UPDATE inbound SET needs_reply = 0, handled_at = {}, handled_by = v.column3 \
         FROM (VALUES {}) AS v \
         WHERE inbound.client_id = v.column1 AND inbound.needs_reply = 1 \
           AND inbound.received_at <= v.column2",
        ts(now),
        Placeholders::for_conn(conn).rows(contacts.len(), 3, "")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (client, at, by) in contacts {
        query = query.bind(client).bind(at).bind(by);
    }
    query.execute(conn).await?;
    Ok(())
}

/// Moves `last_engaged_at` for the engagements among `batch` newer than what
/// was known, and winds down the quiet spells of the clients who are back.
/// Returns how many are back.
async fn apply_engagements(
    conn: &mut AnyConnection,
    batch: &[(&EventTarget, &NewEvent<'_>)],
    first_step_after: Duration,
    now: DateTime<Utc>,
) -> anyhow::Result<u64> {
    // The newest engagement of each client that moves its engagement time.
    let mut newest: HashMap<i64, (&EventTarget, DateTime<Utc>)> = HashMap::new();
    for (client, event) in batch {
        let moves = client
            .last_engaged_at
            .is_none_or(|known| known < ts(event.occurred_at));
        if event.kind.is_engagement() && moves {
            let entry = newest
                .entry(client.id)
                .or_insert((client, event.occurred_at));
            entry.1 = entry.1.max(event.occurred_at);
        }
    }
    if newest.is_empty() {
        return Ok(0);
    }
    // Guarded so that an older event never moves the engagement time back.
    let sql = format!(
        "UPDATE clients SET last_engaged_at = v.column2, next_detect_at = v.column2 + {}, \
           updated_at = {} FROM (VALUES {}) AS v \
         WHERE clients.id = v.column1 \
           AND (clients.last_engaged_at IS NULL OR clients.last_engaged_at < v.column2)",
        first_step_after.num_seconds(),
        ts(now),
        Placeholders::for_conn(conn).rows(newest.len(), 2, "")
    );
    // Planned afresh each time: the generic plan PostgreSQL adopts for a
    // prepared statement after five runs scanned every client for the list
    // (18 ms a batch of 500 on a freshly imported table, against 8 ms).
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
    for (id, (_, at)) in &newest {
        query = query.bind(*id).bind(ts(*at));
    }
    query.execute(&mut *conn).await?;

    // Engagement after the moment we believed the quiet spell began means the
    // client is back: whatever was drafted for the spell no longer fits.
    let back: Vec<i64> = newest
        .into_iter()
        .filter(|(_, (client, at))| *at > client.quiet_since())
        .map(|(id, _)| id)
        .collect();
    episodes::wind_down(conn, &back, Refusal::ReEngaged, now).await?;
    Ok(back.len() as u64)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    #[sqlx(try_from = "String")]
    pub kind: EventKind,
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
