//! The send log: one row per attempt, written as the attempt starts and completed
//! once with its outcome. The app never changes a completed row. Attempts are
//! started and finished a wave at a time, so a busy dispatch run pays for a few
//! statements per message, not a transaction each.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::AnyConnection;

use super::dialect::id_list;
use super::pool::Store;
use super::scope::Scope;
use super::stored;
use super::time::{from_opt_ts, from_ts, ts};
use crate::domain::{Channel, LogEvent, MessageStatus, SendOutcome};

/// Writes the `started` row of one attempt for each message still claimed, in
/// one statement, each numbered one past the message's settled attempts (the
/// message's count catches up when the attempt finishes, or when a crashed
/// attempt is recovered). Returns `(message, attempt)` for the rows written; a
/// message no longer claimed, or whose attempt row exists already, is left out.
pub async fn start_attempts(
    conn: &mut AnyConnection,
    message_ids: &[i64],
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<(i64, i64)>> {
    if message_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "INSERT INTO send_log (message_id, attempt, channel, recipient, started_at) \
         SELECT id, attempts + 1, channel, recipient, $1 FROM messages \
         WHERE status = 'sending' AND id IN {} \
         ON CONFLICT (message_id, attempt) WHERE event = 'attempt' DO NOTHING \
         RETURNING message_id, attempt",
        id_list(message_ids.iter().copied())
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(ts(now))
        .fetch_all(conn)
        .await?)
}

/// How an attempt ended, and what the message becomes.
pub struct Finish<'a> {
    pub message_id: i64,
    pub client_id: i64,
    pub attempt: i64,
    pub outcome: SendOutcome,
    pub provider_id: Option<&'a str>,
    pub code: Option<&'a str>,
    pub error: Option<&'a str>,
    /// For a retry: when to try again. For a retry out of attempts, `None`
    /// (the message fails).
    pub retry_at: Option<DateTime<Utc>>,
    /// The attempt was not the message's fault (the channel is down): it does
    /// not count against `max_attempts`.
    pub refund_attempt: bool,
}

impl Finish<'_> {
    /// The message's status after this attempt: a `retry` with no `retry_at`
    /// left becomes `failed`.
    pub fn status(&self) -> MessageStatus {
        match (self.outcome, self.retry_at) {
            (SendOutcome::Sent, _) => MessageStatus::Sent,
            (SendOutcome::Retry, Some(_)) => MessageStatus::Approved,
            (SendOutcome::Retry, None) | (SendOutcome::Failed, _) => MessageStatus::Failed,
            (SendOutcome::InDoubt, _) => MessageStatus::InDoubt,
        }
    }

    fn settles(&self) -> bool {
        matches!(self.status(), MessageStatus::Sent | MessageStatus::Failed)
    }
}

/// Completes each attempt's row and moves its message on, all in one
/// transaction. Clients whose step settled are handed back to detection.
pub async fn finish_attempts(
    store: &Store,
    finished: &[Finish<'_>],
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    if finished.is_empty() {
        return Ok(());
    }
    let mut tx = store.begin().await?;
    for finish in finished {
        sqlx::query(
            "UPDATE send_log SET finished_at = $3, outcome = $4, provider_id = $5, code = $6, \
             error = $7 WHERE message_id = $1 AND attempt = $2 AND event = 'attempt' \
             AND outcome IS NULL",
        )
        .bind(finish.message_id)
        .bind(finish.attempt)
        .bind(ts(now))
        .bind(finish.outcome.as_ref())
        .bind(finish.provider_id)
        .bind(finish.code)
        .bind(finish.error)
        .execute(&mut *tx)
        .await?;
        let settled = finish.settles().then_some(ts(now));
        sqlx::query(
            "UPDATE messages SET status = $2, lease_until = NULL, settled_at = $3, sent_at = $4, \
             next_attempt_at = $5, provider_message_id = COALESCE($6, provider_message_id), \
             last_error = $7, attempts = $8 WHERE id = $1",
        )
        .bind(finish.message_id)
        .bind(finish.status().as_ref())
        .bind(settled)
        .bind((finish.outcome == SendOutcome::Sent).then_some(ts(now)))
        .bind(finish.retry_at.map(ts))
        .bind(finish.provider_id)
        .bind(finish.error)
        .bind(finish.attempt - i64::from(finish.refund_attempt))
        .execute(&mut *tx)
        .await?;
    }
    // A settled step: let detection work out when the next one is due.
    let settled: Vec<i64> = finished
        .iter()
        .filter(|f| f.settles())
        .map(|f| f.client_id)
        .collect();
    if !settled.is_empty() {
        let sql = format!(
            "UPDATE clients SET next_detect_at = $1 WHERE id IN {}",
            id_list(settled)
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ts(now))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A row that is not an attempt: what a provider said afterwards.
pub struct Note<'a> {
    pub message_id: i64,
    pub event: LogEvent,
    pub attempt: i64,
    pub channel: Channel,
    pub recipient: &'a str,
    pub outcome: Option<SendOutcome>,
    pub provider_id: Option<&'a str>,
    pub delivery_status: Option<&'a str>,
    pub code: Option<&'a str>,
    pub error: Option<&'a str>,
}

pub async fn append(
    conn: &mut AnyConnection,
    note: &Note<'_>,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO send_log (message_id, event, attempt, channel, recipient, started_at, \
         finished_at, outcome, provider_id, delivery_status, code, error) \
         VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9, $10, $11)",
    )
    .bind(note.message_id)
    .bind(note.event.as_ref())
    .bind(note.attempt)
    .bind(note.channel.as_ref())
    .bind(note.recipient)
    .bind(ts(at))
    .bind(note.outcome.as_ref().map(AsRef::<str>::as_ref))
    .bind(note.provider_id)
    .bind(note.delivery_status)
    .bind(note.code)
    .bind(note.error)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SendLogEntry {
    pub id: i64,
    pub message_id: i64,
    pub event: LogEvent,
    pub attempt: i64,
    pub channel: Channel,
    pub recipient: String,
    pub client_external_id: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `None` while the attempt is under way, and on a callback row.
    pub outcome: Option<SendOutcome>,
    pub provider_id: Option<String>,
    pub delivery_status: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
}

#[derive(sqlx::FromRow)]
struct SendLogRow {
    id: i64,
    message_id: i64,
    event: String,
    attempt: i64,
    channel: String,
    recipient: String,
    client_external_id: String,
    started_at: i64,
    finished_at: Option<i64>,
    outcome: Option<String>,
    provider_id: Option<String>,
    delivery_status: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

/// Which rows of the send log to show.
#[derive(Debug, Clone)]
pub struct Filter {
    /// Only the clients in this scope.
    pub scope: Scope,
    pub outcome: Option<String>,
    pub channel: Option<String>,
    /// Only rows started at or after this time.
    pub since: Option<DateTime<Utc>>,
}

impl Filter {
    pub fn scope(scope: Scope) -> Self {
        Self {
            scope,
            outcome: None,
            channel: None,
            since: None,
        }
    }
}

/// The send log in order after row `after`, at most `limit` rows.
pub async fn list(
    conn: &mut AnyConnection,
    filter: &Filter,
    after: i64,
    limit: i64,
) -> anyhow::Result<Vec<SendLogEntry>> {
    let rows: Vec<SendLogRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT l.id, l.message_id, l.event, l.attempt, l.channel, l.recipient, \
           c.external_id AS client_external_id, l.started_at, l.finished_at, l.outcome, \
           l.provider_id, l.delivery_status, l.code, l.error \
         FROM send_log l JOIN messages m ON m.id = l.message_id \
         JOIN clients c ON c.id = m.client_id \
         WHERE {} AND l.id > $1 \
           AND ($3 IS NULL OR l.outcome = $3) AND ($4 IS NULL OR l.channel = $4) \
           AND ($5 IS NULL OR l.started_at >= $5) \
         ORDER BY l.id LIMIT $2",
        filter.scope.sql("c.coach_id")
    )))
    .bind(after)
    .bind(limit)
    .bind(filter.outcome.as_deref())
    .bind(filter.channel.as_deref())
    .bind(filter.since.map(ts))
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(SendLogEntry::try_from)
        .collect::<Result<_, _>>()?)
}

impl TryFrom<SendLogRow> for SendLogEntry {
    type Error = stored::Unknown;

    /// The schema's CHECK constraints keep event, channel and outcome valid; a
    /// row that is not is an error, never a guess.
    fn try_from(r: SendLogRow) -> Result<Self, stored::Unknown> {
        let event = stored::read("send_log", "event", &r.event)?;
        let channel = stored::read("send_log", "channel", &r.channel)?;
        let outcome = stored::read_opt("send_log", "outcome", r.outcome.as_deref())?;
        Ok(SendLogEntry {
            id: r.id,
            message_id: r.message_id,
            event,
            attempt: r.attempt,
            channel,
            recipient: r.recipient,
            client_external_id: r.client_external_id,
            started_at: from_ts(r.started_at),
            finished_at: from_opt_ts(r.finished_at),
            outcome,
            provider_id: r.provider_id,
            delivery_status: r.delivery_status,
            code: r.code,
            error: r.error,
        })
    }
}
