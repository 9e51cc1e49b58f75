//! Replies and keywords received from clients: filled by the inbound webhook
//! (`replies`), read by the coach's replies page and the digest.

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use super::{from_opt_ts, from_ts, ts};
use crate::domain::Channel;

#[derive(Debug, Clone)]
pub struct Reply {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub channel: String,
    pub from_addr: String,
    pub body: String,
    pub classification: String,
    pub client_external_id: Option<String>,
    pub client_name: Option<String>,
    pub handled_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct ReplyRow {
    id: i64,
    received_at: i64,
    channel: String,
    from_addr: String,
    body: String,
    classification: String,
    client_external_id: Option<String>,
    client_name: Option<String>,
    handled_at: Option<i64>,
}

/// Replies for one coach's clients (or all, plus unmatched ones, for an admin):
/// crisis first, then the newest.
pub async fn for_coach(
    conn: &mut AnyConnection,
    coach_id: Option<i64>,
    limit: i64,
) -> anyhow::Result<Vec<Reply>> {
    let rows: Vec<ReplyRow> = sqlx::query_as(
        "SELECT i.id, i.received_at, i.channel, i.from_addr, i.body, i.classification, \
           c.external_id AS client_external_id, \
           COALESCE(NULLIF(c.preferred_name, ''), c.first_name) AS client_name, i.handled_at \
         FROM inbound i LEFT JOIN clients c ON c.id = i.client_id \
         WHERE ($1 IS NULL OR c.coach_id = $1) \
         ORDER BY CASE WHEN i.classification = 'crisis' THEN 0 ELSE 1 END, i.received_at DESC \
         LIMIT $2",
    )
    .bind(coach_id)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Reply {
            id: r.id,
            received_at: from_ts(r.received_at),
            channel: r.channel,
            from_addr: r.from_addr,
            body: r.body,
            classification: r.classification,
            client_external_id: r.client_external_id,
            client_name: r.client_name,
            handled_at: from_opt_ts(r.handled_at),
        })
        .collect())
}

/// Replies not yet handled, for the queue's reminder.
pub async fn needing_attention(
    conn: &mut AnyConnection,
    coach_id: Option<i64>,
) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM inbound i LEFT JOIN clients c ON c.id = i.client_id \
         WHERE i.handled_at IS NULL AND i.classification IN ('reply', 'crisis', 'help') \
           AND ($1 IS NULL OR c.coach_id = $1)",
    )
    .bind(coach_id)
    .fetch_one(conn)
    .await?)
}

pub struct NewReply<'a> {
    pub channel: Channel,
    pub from: &'a str,
    pub to: Option<&'a str>,
    pub body: &'a str,
    pub client_id: Option<i64>,
    pub classification: &'a str,
    pub provider_id: Option<&'a str>,
}

/// Stores a reply. Returns its id, or `None` if the provider delivered the same
/// message before (its id is unique).
pub async fn store(
    conn: &mut AnyConnection,
    reply: &NewReply<'_>,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "INSERT INTO inbound (received_at, channel, from_addr, to_addr, body, client_id, classification, provider_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (provider_id) DO NOTHING RETURNING id",
    )
    .bind(ts(now))
    .bind(reply.channel.as_ref())
    .bind(reply.from)
    .bind(reply.to)
    .bind(reply.body)
    .bind(reply.client_id)
    .bind(reply.classification)
    .bind(reply.provider_id)
    .fetch_optional(conn)
    .await?)
}

/// Whether the client was sent the crisis resources before.
pub async fn resources_sent(conn: &mut AnyConnection, client_id: i64) -> anyhow::Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM inbound WHERE client_id = $1 AND resources_sent = 1",
    )
    .bind(client_id)
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}

pub async fn mark_resources_sent(conn: &mut AnyConnection, reply_id: i64) -> anyhow::Result<()> {
    sqlx::query("UPDATE inbound SET resources_sent = 1 WHERE id = $1")
        .bind(reply_id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn alert_sent(
    conn: &mut AnyConnection,
    reply_id: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE inbound SET alerted_at = $2, alert_error = NULL WHERE id = $1")
        .bind(reply_id)
        .bind(ts(now))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn alert_failed(
    conn: &mut AnyConnection,
    reply_id: i64,
    error: &str,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE inbound SET alert_error = $2 WHERE id = $1")
        .bind(reply_id)
        .bind(error)
        .execute(conn)
        .await?;
    Ok(())
}

const ALERT_PENDING: &str =
    "classification = 'crisis' AND alerted_at IS NULL AND client_id IS NOT NULL";

/// How many crisis alerts have not gone out.
pub async fn count_alerts_pending(conn: &mut AnyConnection) -> anyhow::Result<i64> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM inbound WHERE {ALERT_PENDING}"
    ));
    Ok(sqlx::query_scalar(sql).fetch_one(conn).await?)
}

/// Crisis replies whose coach alert has not gone out: (reply, client).
pub async fn alerts_pending(conn: &mut AnyConnection) -> anyhow::Result<Vec<(i64, i64)>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT id, client_id FROM inbound WHERE {ALERT_PENDING} ORDER BY id"
    ));
    Ok(sqlx::query_as(sql).fetch_all(conn).await?)
}
