//! Messages: one row from draft to send. Every state change is a single guarded
//! `UPDATE … WHERE status = …`, so two actors racing on one message cannot both win.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::AnyConnection;

use super::dialect::{Placeholders, id_list, is_sqlite};
use super::scope::Scope;
use super::stored;
use super::time::{from_opt_ts, from_ts, ts};
use crate::domain::eligibility::Refusal;
use crate::domain::{Channel, MessageStatus};

/// The statuses of a message that has not settled yet.
pub const OPEN_STATUSES: &str = "('pending', 'approved', 'sending', 'in_doubt')";

pub struct NewDraft<'a> {
    pub client_id: i64,
    pub coach_id: i64,
    pub episode_id: i64,
    pub step: i64,
    pub channel: Channel,
    pub recipient: &'a str,
    pub subject: Option<&'a str>,
    pub body: &'a str,
    pub html: Option<&'a str>,
    pub template: &'a str,
    pub template_hash: &'a str,
    /// The template variant it was drafted from, if the step has variants.
    pub variant: Option<&'a str>,
    pub email_message_id: Option<&'a str>,
    /// The lint's findings, as JSON.
    pub lint: &'a str,
}

/// Stores pending drafts in one statement. A draft whose episode already has
/// one for its step is left out, which keeps detection idempotent even if two
/// runs overlap. Returns how many were stored.
pub async fn insert_drafts(
    conn: &mut AnyConnection,
    drafts: &[NewDraft<'_>],
    now: DateTime<Utc>,
) -> anyhow::Result<u64> {
    if drafts.is_empty() {
        return Ok(0);
    }
    let sql = format!(
        "INSERT INTO messages (client_id, coach_id, episode_id, step, channel, recipient, subject, \
         body, html, template, template_hash, email_message_id, lint, variant, status, \
         created_at) \
         VALUES {} ON CONFLICT (episode_id, step) DO NOTHING",
        Placeholders::for_conn(conn).rows(drafts.len(), 14, &format!("'pending', {}", ts(now)))
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for draft in drafts {
        query = query
            .bind(draft.client_id)
            .bind(draft.coach_id)
            .bind(draft.episode_id)
            .bind(draft.step)
            .bind(draft.channel.as_ref())
            .bind(draft.recipient)
            .bind(draft.subject)
            .bind(draft.body)
            .bind(draft.html)
            .bind(draft.template)
            .bind(draft.template_hash)
            .bind(draft.email_message_id)
            .bind(draft.lint)
            .bind(draft.variant);
    }
    Ok(query.execute(conn).await?.rows_affected())
}

/// A message a coach wrote themselves, approved as they send it.
pub struct NewAnswer<'a> {
    pub client_id: i64,
    /// The client's coach, whose queue and digest it belongs to.
    pub coach_id: i64,
    /// Who wrote (and so approved) it.
    pub author_id: i64,
    pub channel: Channel,
    pub recipient: &'a str,
    pub subject: Option<&'a str>,
    pub body: &'a str,
    pub html: Option<&'a str>,
    pub email_message_id: Option<&'a str>,
    /// The reply it answers, and that reply's Message-ID for an email.
    pub answers_id: Option<i64>,
    pub email_in_reply_to: Option<&'a str>,
    /// The lint's findings, as JSON.
    pub lint: &'a str,
    /// When it may go (now, or when the client's quiet hours end).
    pub due_at: DateTime<Utc>,
}

/// Stores a coach's own message, approved, due at `due_at`. Returns its id.
pub async fn insert_answer(
    conn: &mut AnyConnection,
    answer: &NewAnswer<'_>,
    now: DateTime<Utc>,
) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO messages (client_id, coach_id, author_id, channel, recipient, subject, body, \
           html, template, template_hash, email_message_id, answers_id, email_in_reply_to, lint, \
           status, created_at, approved_at, approved_by, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'coach', '', $9, $10, $11, $12, 'approved', \
           $13, $13, $3, $14) RETURNING id",
    )
    .bind(answer.client_id)
    .bind(answer.coach_id)
    .bind(answer.author_id)
    .bind(answer.channel.as_ref())
    .bind(answer.recipient)
    .bind(answer.subject)
    .bind(answer.body)
    .bind(answer.html)
    .bind(answer.email_message_id)
    .bind(answer.answers_id)
    .bind(answer.email_in_reply_to)
    .bind(answer.lint)
    .bind(ts(now))
    .bind(ts(answer.due_at))
    .fetch_one(conn)
    .await?)
}

/// The subject of the last email we sent (or will send) the client.
pub async fn last_email_subject(
    conn: &mut AnyConnection,
    client_id: i64,
) -> anyhow::Result<Option<String>> {
    let found: Option<Option<String>> = sqlx::query_scalar(
        "SELECT subject FROM messages WHERE client_id = $1 AND channel = 'email' \
         AND status IN ('approved', 'sending', 'sent', 'in_doubt') ORDER BY id DESC LIMIT 1",
    )
    .bind(client_id)
    .fetch_optional(conn)
    .await?;
    Ok(found.flatten())
}

/// A message as people and scripts see it (the message JSON of docs/architecture.md).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MessageView {
    pub id: i64,
    pub client_external_id: String,
    pub client_id: i64,
    #[serde(skip)]
    pub client_coach_id: i64,
    pub coach_email: String,
    pub channel: Channel,
    pub to: String,
    pub subject: Option<String>,
    pub body: String,
    /// The cadence step; `None` for a message a coach wrote.
    pub step: Option<i64>,
    pub template: String,
    pub status: MessageStatus,
    /// The coach who wrote it, for a message not drafted from a template.
    pub author: Option<String>,
    /// The template variant it was drafted from, if its step has variants.
    pub variant: Option<String>,
    pub lint: Vec<crate::domain::compose::lint::Finding>,
    pub edited: bool,
    pub created_at: DateTime<Utc>,
    pub approved_at: Option<DateTime<Utc>>,
    pub approved_by: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub provider_message_id: Option<String>,
    pub delivery_status: Option<String>,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub snoozed_until: Option<DateTime<Utc>>,
    pub original_subject: Option<String>,
    pub original_body: Option<String>,
    /// The name the client is greeted by.
    pub client_name: String,
    /// Since when the client has been quiet.
    pub quiet_since: DateTime<Utc>,
    pub client_timezone: String,
}

#[derive(sqlx::FromRow)]
struct MessageViewRow {
    id: i64,
    client_external_id: String,
    client_id: i64,
    client_coach_id: i64,
    coach_email: String,
    channel: String,
    recipient: String,
    subject: Option<String>,
    body: String,
    step: Option<i64>,
    template: String,
    status: String,
    author: Option<String>,
    variant: Option<String>,
    lint: String,
    edited: i64,
    created_at: i64,
    approved_at: Option<i64>,
    approved_by: Option<String>,
    sent_at: Option<i64>,
    provider_message_id: Option<String>,
    delivery_status: Option<String>,
    attempts: i64,
    last_error: Option<String>,
    snoozed_until: Option<i64>,
    original_subject: Option<String>,
    original_body: Option<String>,
    client_name: String,
    quiet_since: i64,
    client_timezone: String,
}

impl TryFrom<MessageViewRow> for MessageView {
    type Error = anyhow::Error;

    /// The schema's CHECK constraints keep channel and status valid; a row
    /// that is not is an error, never a guess.
    fn try_from(r: MessageViewRow) -> anyhow::Result<Self> {
        let channel = stored::read("messages", "channel", &r.channel)?;
        let status = stored::read("messages", "status", &r.status)?;
        Ok(Self {
            id: r.id,
            client_external_id: r.client_external_id,
            client_id: r.client_id,
            client_coach_id: r.client_coach_id,
            coach_email: r.coach_email,
            channel,
            to: r.recipient,
            subject: r.subject,
            body: r.body,
            step: r.step,
            template: r.template,
            status,
            author: r.author,
            variant: r.variant,
            lint: crate::domain::compose::lint::Finding::read_stored(&r.lint),
            edited: r.edited != 0,
            created_at: from_ts(r.created_at),
            approved_at: from_opt_ts(r.approved_at),
            approved_by: r.approved_by,
            sent_at: from_opt_ts(r.sent_at),
            provider_message_id: r.provider_message_id,
            delivery_status: r.delivery_status,
            attempts: r.attempts,
            last_error: r.last_error,
            snoozed_until: from_opt_ts(r.snoozed_until),
            original_subject: r.original_subject,
            original_body: r.original_body,
            client_name: r.client_name,
            quiet_since: from_ts(r.quiet_since),
            client_timezone: r.client_timezone,
        })
    }
}

const VIEW_SELECT: &str = "SELECT m.id, c.external_id AS client_external_id, c.id AS client_id, \
    c.coach_id AS client_coach_id, co.email AS coach_email, m.channel, m.recipient, m.subject, \
    m.body, m.step, m.template, m.status, au.email AS author, m.variant, m.lint, m.edited, m.created_at, m.approved_at, \
    ap.email AS approved_by, m.sent_at, m.provider_message_id, m.delivery_status, m.attempts, \
    m.last_error, m.snoozed_until, m.original_subject, m.original_body, \
    COALESCE(NULLIF(c.preferred_name, ''), c.first_name) AS client_name, \
    COALESCE(c.last_engaged_at, c.created_at) AS quiet_since, c.timezone AS client_timezone \
    FROM messages m \
    JOIN clients c ON c.id = m.client_id \
    JOIN coaches co ON co.id = c.coach_id \
    LEFT JOIN coaches ap ON ap.id = m.approved_by \
    LEFT JOIN coaches au ON au.id = m.author_id";

/// Messages, oldest first, optionally only one status, of the clients in `scope`.
pub async fn list(
    conn: &mut AnyConnection,
    status: Option<MessageStatus>,
    scope: &Scope,
) -> anyhow::Result<Vec<MessageView>> {
    page(conn, status, scope, 0, i64::MAX).await
}

/// One page of messages after id `after`, oldest first: keyset paging, so every
/// page costs the same however deep it is.
pub async fn page(
    conn: &mut AnyConnection,
    status: Option<MessageStatus>,
    scope: &Scope,
    after: i64,
    limit: i64,
) -> anyhow::Result<Vec<MessageView>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "{VIEW_SELECT} WHERE ($1 IS NULL OR m.status = $1) AND {} \
         AND m.id > $2 ORDER BY m.id LIMIT $3",
        scope.sql("c.coach_id")
    ));
    let rows: Vec<MessageViewRow> = sqlx::query_as(sql)
        .bind(status.map(|s| s.as_ref().to_owned()))
        .bind(after)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.into_iter().map(MessageView::try_from).collect()
}

/// A coach's queue: pending drafts not snoozed past `now`, oldest first, after
/// id `after`.
pub async fn queue(
    conn: &mut AnyConnection,
    scope: &Scope,
    now: DateTime<Utc>,
    after: i64,
    limit: i64,
) -> anyhow::Result<Vec<MessageView>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "{VIEW_SELECT} WHERE m.status = 'pending' AND {} \
         AND (m.snoozed_until IS NULL OR m.snoozed_until <= $1) AND m.id > $2 \
         ORDER BY m.id LIMIT $3",
        scope.sql("c.coach_id")
    ));
    let rows: Vec<MessageViewRow> = sqlx::query_as(sql)
        .bind(ts(now))
        .bind(after)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.into_iter().map(MessageView::try_from).collect()
}

/// The latest messages with this status, newest first (the admin's view of
/// expired drafts).
pub async fn recent_with_status(
    conn: &mut AnyConnection,
    status: MessageStatus,
    limit: i64,
) -> anyhow::Result<Vec<MessageView>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "{VIEW_SELECT} WHERE m.status = $1 ORDER BY m.id DESC LIMIT $2"
    ));
    let rows: Vec<MessageViewRow> = sqlx::query_as(sql)
        .bind(status.as_ref())
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.into_iter().map(MessageView::try_from).collect()
}

/// The client's latest messages, newest first.
pub async fn for_client(
    conn: &mut AnyConnection,
    client_id: i64,
    limit: i64,
) -> anyhow::Result<Vec<MessageView>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "{VIEW_SELECT} WHERE m.client_id = $1 ORDER BY m.id DESC LIMIT $2"
    ));
    let rows: Vec<MessageViewRow> = sqlx::query_as(sql)
        .bind(client_id)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.into_iter().map(MessageView::try_from).collect()
}

pub async fn view(conn: &mut AnyConnection, id: i64) -> anyhow::Result<Option<MessageView>> {
    let sql = sqlx::AssertSqlSafe(format!("{VIEW_SELECT} WHERE m.id = $1"));
    let row: Option<MessageViewRow> = sqlx::query_as(sql).bind(id).fetch_optional(conn).await?;
    row.map(MessageView::try_from).transpose()
}

/// Replaces a pending draft's subject and body. The first edit keeps the
/// original text; later edits keep that same original. `false` if not pending.
pub async fn edit(
    conn: &mut AnyConnection,
    id: i64,
    subject: Option<&str>,
    body: &str,
    html: Option<&str>,
    lint: &str,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE messages SET \
           original_subject = CASE WHEN edited = 0 THEN subject ELSE original_subject END, \
           original_body = CASE WHEN edited = 0 THEN body ELSE original_body END, \
           subject = $2, body = $3, html = $5, edited = 1, lint = $4 \
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(subject)
    .bind(body)
    .bind(lint)
    .bind(html)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Keeps a pending draft out of the queue until `until`. `false` if not pending.
pub async fn snooze(
    conn: &mut AnyConnection,
    id: i64,
    until: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let done =
        sqlx::query("UPDATE messages SET snoozed_until = $2 WHERE id = $1 AND status = 'pending'")
            .bind(id)
            .bind(ts(until))
            .execute(conn)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// pending → approved, due at once. `false` if the message was not pending.
pub async fn approve(
    conn: &mut AnyConnection,
    id: i64,
    coach_id: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE messages SET status = 'approved', approved_at = $2, approved_by = $3, \
         next_attempt_at = $2 WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(ts(now))
    .bind(coach_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// pending → rejected; the step counts as settled. `false` if it was not pending.
pub async fn reject(
    conn: &mut AnyConnection,
    id: i64,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE messages SET status = 'rejected', rejected_at = $2, settled_at = $2, \
         reject_reason = $3 WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(ts(now))
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// pending drafts created at or before `cutoff` → expired. Returns their clients.
pub async fn expire_pending(
    conn: &mut AnyConnection,
    cutoff: DateTime<Utc>,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<i64>> {
    Ok(sqlx::query_scalar(
        "UPDATE messages SET status = 'expired', settled_at = $2 \
         WHERE status = 'pending' AND COALESCE(snoozed_until, created_at) <= $1 \
         RETURNING client_id",
    )
    .bind(ts(cutoff))
    .bind(ts(now))
    .fetch_all(conn)
    .await?)
}

/// Counts the pending drafts that `expire_pending` would expire.
pub async fn count_expirable(
    conn: &mut AnyConnection,
    cutoff: DateTime<Utc>,
) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM messages \
         WHERE status = 'pending' AND COALESCE(snoozed_until, created_at) <= $1",
    )
    .bind(ts(cutoff))
    .fetch_one(conn)
    .await?)
}

/// The client of the newest of our emails among these Message-IDs (`<id>`),
/// if any is ours: what an email reply answers says who wrote it.
pub async fn client_of_email_ids(
    conn: &mut AnyConnection,
    message_ids: &[String],
) -> anyhow::Result<Option<i64>> {
    if message_ids.is_empty() {
        return Ok(None);
    }
    let sql = format!(
        "SELECT client_id FROM messages WHERE email_message_id IN ({}) ORDER BY id DESC LIMIT 1",
        Placeholders::for_conn(conn).list(message_ids.len())
    );
    let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql));
    for id in message_ids {
        query = query.bind(id.as_str());
    }
    Ok(query.fetch_optional(conn).await?)
}

/// Which unsent messages a cancellation takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsent {
    /// Every one on this channel, a coach's own too: the channel is closed.
    On(Channel),
    /// The cadence's drafts, on any channel: the quiet spell is over. A
    /// coach's own message is a conversation, and still goes.
    Drafted,
}

/// Cancels these clients' messages that no one has started sending (pending and
/// approved), as `which` says. Messages in flight or in doubt are left to
/// dispatch.
pub async fn cancel_unsent(
    conn: &mut AnyConnection,
    client_ids: &[i64],
    which: Unsent,
    reason: Refusal,
    now: DateTime<Utc>,
) -> anyhow::Result<u64> {
    let (channel, drafted_only) = match which {
        Unsent::On(channel) => (Some(channel), false),
        Unsent::Drafted => (None, true),
    };
    if client_ids.is_empty() {
        return Ok(0);
    }
    let sql = format!(
        "UPDATE messages SET status = 'cancelled', cancel_reason = $1, settled_at = $2 \
         WHERE ($3 IS NULL OR channel = $3) AND ($4 = 0 OR author_id IS NULL) \
           AND status IN ('pending', 'approved') AND client_id IN {}",
        id_list(client_ids.iter().copied())
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(reason.as_ref())
        .bind(ts(now))
        .bind(channel.map(|c| c.as_ref().to_owned()))
        .bind(i64::from(drafted_only))
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

/// What dispatch needs of a claimed message.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedMessage {
    pub id: i64,
    pub client_id: i64,
    pub coach_id: i64,
    #[sqlx(try_from = "String")]
    pub channel: Channel,
    pub recipient: String,
    pub subject: Option<String>,
    pub body: String,
    pub html: Option<String>,
    pub email_message_id: Option<String>,
    pub attempts: i64,
    pub created_at: i64,
    /// Set for a message a coach wrote: it keeps to the rules of a
    /// conversation, not of the cadence.
    pub author_id: Option<i64>,
    pub email_in_reply_to: Option<String>,
}

/// Claims up to `limit` due approved messages on the channels asked for, for
/// this dispatcher until `lease_until`. The outer `status = 'approved'` is checked
/// again by PostgreSQL after it waits on a row lock, and SQLite runs one writer
/// at a time, so two dispatchers never claim the same message.
pub async fn claim_due(
    conn: &mut AnyConnection,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
    channels: &[Channel],
) -> anyhow::Result<Vec<ClaimedMessage>> {
    let wants = |c: Channel| i64::from(channels.contains(&c));
    // PostgreSQL: two dispatchers at once each lock the rows they pick, and
    // skip those the other holds; without it, each could wait on a row the
    // other locked first (a deadlock). SQLite has one writer at a time.
    let lock = if is_sqlite(conn) {
        ""
    } else {
        " FOR UPDATE SKIP LOCKED"
    };
    let sql = format!(
        "UPDATE messages SET status = 'sending', lease_until = $2 \
         WHERE status = 'approved' AND id IN ( \
           SELECT id FROM messages WHERE status = 'approved' AND next_attempt_at <= $1 \
             AND ((channel = 'email' AND $4 = 1) OR (channel = 'sms' AND $5 = 1)) \
           ORDER BY next_attempt_at, id LIMIT $3{lock}) \
         RETURNING id, client_id, coach_id, channel, recipient, subject, body, html, \
           email_message_id, attempts, created_at, author_id, email_in_reply_to"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(ts(now))
        .bind(ts(lease_until))
        .bind(limit)
        .bind(wants(Channel::Email))
        .bind(wants(Channel::Sms))
        .fetch_all(conn)
        .await?)
}

/// An SMS whose last attempt is in doubt, with when that attempt began.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InDoubtMessage {
    #[sqlx(flatten)]
    pub message: ClaimedMessage,
    pub last_attempt_at: Option<i64>,
}

/// SMS messages in doubt, oldest first: the ones a provider can be asked about.
/// Email in doubt is never resent on its own; a coach decides.
pub async fn in_doubt_sms(
    conn: &mut AnyConnection,
    limit: i64,
) -> anyhow::Result<Vec<InDoubtMessage>> {
    Ok(sqlx::query_as(
        "SELECT m.id, m.client_id, m.coach_id, m.channel, m.recipient, m.subject, m.body, m.html, \
           m.email_message_id, m.attempts, m.created_at, m.author_id, m.email_in_reply_to, \
           (SELECT MAX(l.started_at) FROM send_log l WHERE l.message_id = m.id \
              AND l.event = 'attempt') AS last_attempt_at \
         FROM messages m WHERE m.status = 'in_doubt' AND m.channel = 'sms' \
         ORDER BY m.id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// in_doubt → sent: the provider has it (or a coach says it went). The step is
/// settled, so detection looks at the client again.
pub async fn resolve_in_doubt_as_sent(
    conn: &mut AnyConnection,
    id: i64,
    provider_id: Option<&str>,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE messages SET status = 'sent', sent_at = $2, settled_at = $2, \
         provider_message_id = COALESCE($3, provider_message_id), lease_until = NULL \
         WHERE id = $1 AND status = 'in_doubt'",
    )
    .bind(id)
    .bind(ts(now))
    .bind(provider_id)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 1 {
        sqlx::query(
            "UPDATE clients SET next_detect_at = $2 \
             WHERE id = (SELECT client_id FROM messages WHERE id = $1)",
        )
        .bind(id)
        .bind(ts(now))
        .execute(conn)
        .await?;
    }
    Ok(done.rows_affected() == 1)
}

/// in_doubt → approved, due now: the provider does not have it (or a coach asks
/// for it to be sent again).
pub async fn retry_in_doubt(
    conn: &mut AnyConnection,
    id: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE messages SET status = 'approved', next_attempt_at = $2, lease_until = NULL \
         WHERE id = $1 AND status = 'in_doubt'",
    )
    .bind(id)
    .bind(ts(now))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// How far along a provider's delivery report is; a report never moves a
/// message backwards, so late or reordered callbacks are harmless.
pub fn delivery_rank(status: &str) -> u8 {
    match status {
        "queued" | "accepted" | "scheduled" => 1,
        "sending" => 2,
        "sent" => 3,
        "delivered" | "undelivered" | "failed" | "canceled" => 4,
        "read" => 5,
        _ => 0,
    }
}

/// The message a provider's delivery report is about.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryTarget {
    pub id: i64,
    #[sqlx(try_from = "String")]
    pub channel: Channel,
    pub recipient: String,
    #[sqlx(try_from = "String")]
    pub status: MessageStatus,
    pub attempts: i64,
    pub delivery_status: Option<String>,
}

pub async fn by_provider_id(
    conn: &mut AnyConnection,
    provider_id: &str,
) -> anyhow::Result<Option<DeliveryTarget>> {
    Ok(sqlx::query_as(
        "SELECT id, channel, recipient, status, attempts, delivery_status FROM messages \
         WHERE provider_message_id = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(provider_id)
    .fetch_optional(conn)
    .await?)
}

/// Records a delivery report on the message if it moves it forward. `delivered`
/// makes the message `delivered`; `undelivered` and `failed` make it `undelivered`.
/// Returns whether anything changed.
pub async fn record_delivery(
    conn: &mut AnyConnection,
    target: &DeliveryTarget,
    delivery_status: &str,
    error_code: Option<&str>,
) -> anyhow::Result<bool> {
    let current = target.delivery_status.as_deref().map_or(0, delivery_rank);
    if delivery_rank(delivery_status) <= current {
        return Ok(false);
    }
    use MessageStatus::{Delivered, Sent, Undelivered};
    let status = match (target.status, delivery_status) {
        (Sent | Delivered | Undelivered, "delivered") => Delivered,
        (Sent | Delivered | Undelivered, "undelivered" | "failed") => Undelivered,
        (current, _) => current,
    };
    sqlx::query(
        "UPDATE messages SET delivery_status = $2, delivery_error = COALESCE($3, delivery_error), \
         status = $4 WHERE id = $1",
    )
    .bind(target.id)
    .bind(delivery_status)
    .bind(error_code)
    .bind(status.as_ref())
    .execute(conn)
    .await?;
    Ok(true)
}

/// Finds claims whose lease ran out (a dispatcher died). An attempt that had
/// started may have reached the provider, so that message becomes `in_doubt`;
/// one that never started goes back to `approved`.
pub async fn recover_expired_leases(
    conn: &mut AnyConnection,
    now: DateTime<Utc>,
) -> anyhow::Result<(u64, u64)> {
    sqlx::query(
        "UPDATE send_log SET outcome = 'in_doubt', finished_at = $1, \
         error = 'the sending process stopped during this attempt' \
         WHERE outcome IS NULL AND event = 'attempt' AND message_id IN ( \
           SELECT id FROM messages WHERE status = 'sending' AND lease_until < $1)",
    )
    .bind(ts(now))
    .execute(&mut *conn)
    .await?;
    // An attempt row numbered past the message's count never finished.
    let in_doubt = sqlx::query(
        "UPDATE messages SET status = 'in_doubt', lease_until = NULL, \
         last_error = 'the sending process stopped during an attempt', \
         attempts = (SELECT MAX(l.attempt) FROM send_log l \
                     WHERE l.message_id = messages.id AND l.event = 'attempt') \
         WHERE status = 'sending' AND lease_until < $1 AND EXISTS ( \
           SELECT 1 FROM send_log l WHERE l.message_id = messages.id AND l.event = 'attempt' \
             AND l.attempt > messages.attempts)",
    )
    .bind(ts(now))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let released = sqlx::query(
        "UPDATE messages SET status = 'approved', lease_until = NULL \
         WHERE status = 'sending' AND lease_until < $1",
    )
    .bind(ts(now))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok((in_doubt, released))
}

/// sending → approved, due at `at` (quiet hours, caps, or shutdown).
pub async fn release(conn: &mut AnyConnection, id: i64, at: DateTime<Utc>) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE messages SET status = 'approved', lease_until = NULL, next_attempt_at = $2 \
         WHERE id = $1 AND status = 'sending'",
    )
    .bind(id)
    .bind(ts(at))
    .execute(conn)
    .await?;
    Ok(())
}

/// sending → cancelled, when the client is no longer one to message.
pub async fn cancel_claimed(
    conn: &mut AnyConnection,
    id: i64,
    reason: Refusal,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE messages SET status = 'cancelled', cancel_reason = $2, settled_at = $3, \
         lease_until = NULL WHERE id = $1 AND status = 'sending'",
    )
    .bind(id)
    .bind(reason.as_ref())
    .bind(ts(now))
    .execute(conn)
    .await?;
    Ok(())
}

/// When each of the client's other messages went out (or may have), for the
/// caps: the first attempt's start time per message since `since`, oldest first.
/// The message being sent is left out; its own retries are not extra messages.
pub async fn recent_send_times(
    conn: &mut AnyConnection,
    client_id: i64,
    except_message: i64,
    since: DateTime<Utc>,
) -> anyhow::Result<Vec<DateTime<Utc>>> {
    let times: Vec<i64> = sqlx::query_scalar(
        "SELECT MIN(l.started_at) AS first_started FROM send_log l \
         JOIN messages m ON m.id = l.message_id \
         WHERE m.client_id = $1 AND l.message_id <> $2 AND l.started_at >= $3 \
           AND l.event = 'attempt' AND l.outcome IN ('sent', 'in_doubt') \
         GROUP BY l.message_id ORDER BY first_started",
    )
    .bind(client_id)
    .bind(except_message)
    .bind(ts(since))
    .fetch_all(conn)
    .await?;
    Ok(times.into_iter().map(from_ts).collect())
}
