//! Replies and keywords received from clients: filled by the inbound webhook
//! (`replies`), read by the coach's pages, the API, the notices and the
//! crisis escalation.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::AnyConnection;

use super::dialect::id_list;
use super::scope::Scope;
use super::stored;
use super::time::{from_opt_ts, from_ts, ts};
use crate::domain::words::{Class, Classification, Match};
use crate::domain::{Channel, ReplyAction};

/// A reply as the pages and the API show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReplyView {
    pub id: i64,
    pub client_external_id: Option<String>,
    pub channel: Channel,
    pub from: String,
    pub body: String,
    pub classification: Class,
    /// Every class the reply is, by precedence.
    pub classes: Vec<Class>,
    /// The rules that matched, and the client's words each matched.
    pub matched: Vec<Match>,
    pub received_at: DateTime<Utc>,
    pub needs_reply: bool,
    pub handled_at: Option<DateTime<Utc>>,
    /// The email of who handled it, when a coach did.
    pub handled_by: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// The email of who acknowledged a crisis alert.
    pub acknowledged_by: Option<String>,
    /// An email's subject.
    pub subject: Option<String>,
    /// `auto_reply` or `bounce` for mail no person wrote.
    pub automatic: Option<String>,
    /// Why no client was found for it.
    pub unmatched_reason: Option<String>,
    #[serde(skip)]
    pub client_name: Option<String>,
    #[serde(skip)]
    pub client_coach_id: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct ReplyRow {
    id: i64,
    client_external_id: Option<String>,
    channel: String,
    from_addr: String,
    body: String,
    classification: String,
    classes: String,
    matched: String,
    received_at: i64,
    needs_reply: i64,
    handled_at: Option<i64>,
    handled_by: Option<String>,
    acknowledged_at: Option<i64>,
    acknowledged_by: Option<String>,
    subject: Option<String>,
    automatic: Option<String>,
    unmatched_reason: Option<String>,
    client_name: Option<String>,
    client_coach_id: Option<i64>,
}

impl TryFrom<ReplyRow> for ReplyView {
    type Error = anyhow::Error;

    /// The schema keeps channel and classification valid and `store` below
    /// writes the class list; a row that is not is an error, never a guess.
    fn try_from(r: ReplyRow) -> anyhow::Result<Self> {
        let class = |text: &str| {
            text.parse::<Class>()
                .map_err(|_| anyhow::anyhow!("reply {}: `{text}` is not a class", r.id))
        };
        let classification = class(&r.classification)?;
        let classes = r
            .classes
            .split(',')
            .filter(|c| !c.is_empty())
            .map(class)
            .collect::<anyhow::Result<_>>()?;
        let channel = stored::read("inbound", "channel", &r.channel)?;
        Ok(Self {
            id: r.id,
            client_external_id: r.client_external_id,
            channel,
            from: r.from_addr,
            body: r.body,
            classes,
            classification,
            // Written by `store` below from a serialised list. A row that does
            // not parse still says why it was flagged, in its raw text: one
            // damaged column must not hide a reply, least of all a crisis.
            matched: serde_json::from_str(&r.matched).unwrap_or_else(|e| {
                vec![Match {
                    class: classification,
                    rule: format!("(unreadable: {e})"),
                    text: r.matched,
                }]
            }),
            received_at: from_ts(r.received_at),
            needs_reply: r.needs_reply != 0,
            handled_at: from_opt_ts(r.handled_at),
            handled_by: r.handled_by,
            acknowledged_at: from_opt_ts(r.acknowledged_at),
            acknowledged_by: r.acknowledged_by,
            subject: r.subject,
            automatic: r.automatic,
            unmatched_reason: r.unmatched_reason,
            client_name: r.client_name,
            client_coach_id: r.client_coach_id,
        })
    }
}

const VIEW_SELECT: &str = "SELECT i.id, c.external_id AS client_external_id, i.channel, i.from_addr, \
       i.body, i.classification, i.classes, i.matched, i.received_at, i.needs_reply, i.handled_at, \
       h.email AS handled_by, i.acknowledged_at, a.email AS acknowledged_by, \
       i.subject, i.automatic, i.unmatched_reason, \
       COALESCE(NULLIF(c.preferred_name, ''), c.first_name) AS client_name, \
       c.coach_id AS client_coach_id \
     FROM inbound i LEFT JOIN clients c ON c.id = i.client_id \
     LEFT JOIN coaches h ON h.id = i.handled_by \
     LEFT JOIN coaches a ON a.id = i.acknowledged_by";

/// What a list of replies is narrowed to.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub needs_reply: Option<bool>,
    pub classification: Option<String>,
}

/// Replies in `scope`, by id after `after`, oldest first.
pub async fn page(
    conn: &mut AnyConnection,
    scope: &Scope,
    filter: &Filter,
    after: i64,
    limit: i64,
) -> anyhow::Result<Vec<ReplyView>> {
    let sql = format!(
        "{VIEW_SELECT} WHERE {} AND ($1 IS NULL OR i.needs_reply = $1) \
           AND ($2 IS NULL OR i.classes LIKE $2) AND i.id > $3 ORDER BY i.id LIMIT $4",
        scope.sql("c.coach_id")
    );
    let rows: Vec<ReplyRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(filter.needs_reply.map(i64::from))
        .bind(filter.classification.as_ref().map(|c| format!("%{c}%")))
        .bind(after)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.into_iter().map(ReplyView::try_from).collect()
}

/// A crisis reply nobody has said they are on, its columns prefixed with `$p`
/// (`""`, or an alias such as `"i."`): the one way every query says "open crisis".
macro_rules! open_crisis {
    ($p:literal) => {
        concat!(
            $p,
            "classification = 'crisis' AND ",
            $p,
            "acknowledged_at IS NULL"
        )
    };
}

/// A reply (as `i`) that waits for a person: it needs an answer, or it is a
/// crisis nobody has said they are on. The queue, the replies list and the
/// digest all count with this.
pub(crate) const WAITING: &str = concat!("(i.needs_reply = 1 OR (", open_crisis!("i."), "))");

/// Which of a coach's replies a page lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// Every reply: open crisis alerts first, then the newest.
    All,
    /// Replies waiting for a person: crisis first, then the oldest.
    Waiting,
}

/// Replies in `scope`, as `listing` says.
pub async fn in_scope(
    conn: &mut AnyConnection,
    scope: &Scope,
    listing: Listing,
    limit: i64,
) -> anyhow::Result<Vec<ReplyView>> {
    let (condition, order) = match listing {
        Listing::All => (
            "1 = 1",
            concat!(
                "CASE WHEN ",
                open_crisis!("i."),
                " THEN 0 ELSE 1 END, i.received_at DESC, i.id DESC"
            ),
        ),
        Listing::Waiting => (
            WAITING,
            "CASE WHEN i.classification = 'crisis' THEN 0 ELSE 1 END, i.received_at, i.id",
        ),
    };
    let sql = format!(
        "{VIEW_SELECT} WHERE {} AND {condition} ORDER BY {order} LIMIT $1",
        scope.sql("c.coach_id")
    );
    let rows: Vec<ReplyRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.into_iter().map(ReplyView::try_from).collect()
}

pub async fn by_id(conn: &mut AnyConnection, id: i64) -> anyhow::Result<Option<ReplyView>> {
    let sql = format!("{VIEW_SELECT} WHERE i.id = $1");
    let row: Option<ReplyRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.map(ReplyView::try_from).transpose()
}

pub struct NewReply<'a> {
    pub channel: Channel,
    pub from: &'a str,
    pub to: Option<&'a str>,
    pub body: &'a str,
    pub client_id: Option<i64>,
    /// What it is: called by its first class, stored with every class (a
    /// comma-separated list) and matched rule (JSON), which `ReplyView` reads
    /// back. Every reply but one bare keyword needs a person.
    pub class: &'a Classification,
    /// The provider's id (an SMS's sid, an email's Message-ID): a repeat is
    /// stored once.
    pub provider_id: Option<&'a str>,
    pub subject: Option<&'a str>,
    /// Mail no person wrote; such a reply is no engagement.
    pub automatic: Option<Automatic>,
    /// Why no client was found for it, for the admins.
    pub unmatched_reason: Option<&'a str>,
}

/// Mail no person wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::AsRefStr)]
#[strum(serialize_all = "snake_case")]
pub enum Automatic {
    /// An out-of-office or other auto-responder: nobody needs to answer it.
    AutoReply,
    /// A delivery failure; a hard one needs a person to find a new address.
    Bounce { hard: bool },
}

/// Stores a reply. Returns its id, or `None` if the provider delivered the same
/// message before (its id is unique).
pub async fn store(
    conn: &mut AnyConnection,
    reply: &NewReply<'_>,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<i64>> {
    let classes: Vec<&str> = reply.class.classes.iter().map(|c| c.as_ref()).collect();
    let matched = serde_json::to_string(&reply.class.matched)?;
    let needs_reply = match reply.automatic {
        None => !reply.class.keyword,
        Some(Automatic::AutoReply) => false,
        Some(Automatic::Bounce { hard }) => hard,
    };
    Ok(sqlx::query_scalar(
        "INSERT INTO inbound (received_at, channel, from_addr, to_addr, body, client_id, \
           classification, classes, matched, needs_reply, provider_id, subject, automatic, \
           unmatched_reason, keyword) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         ON CONFLICT (provider_id) DO NOTHING RETURNING id",
    )
    .bind(ts(now))
    .bind(reply.channel.as_ref())
    .bind(reply.from)
    .bind(reply.to)
    .bind(reply.body)
    .bind(reply.client_id)
    .bind(reply.class.primary().as_ref())
    .bind(classes.join(","))
    .bind(matched)
    .bind(i64::from(needs_reply))
    .bind(reply.provider_id)
    .bind(reply.subject)
    .bind(reply.automatic.map(|a| a.as_ref().to_owned()))
    .bind(reply.unmatched_reason)
    .bind(i64::from(reply.class.keyword))
    .fetch_optional(conn)
    .await?)
}

/// Records what reengage answered the sender with.
pub async fn set_answer(conn: &mut AnyConnection, id: i64, answer: &str) -> anyhow::Result<()> {
    sqlx::query("UPDATE inbound SET answer = $2 WHERE id = $1")
        .bind(id)
        .bind(answer)
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether this address was answered for a wrong number before.
pub async fn wrong_number_answered(conn: &mut AnyConnection, from: &str) -> anyhow::Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM inbound WHERE from_addr = $1 AND answer IS NOT NULL \
           AND classes LIKE '%wrong_number%'",
    )
    .bind(from)
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}

/// The client's latest reply written by a person.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Latest {
    pub id: i64,
    #[sqlx(try_from = "String")]
    pub channel: Channel,
    pub subject: Option<String>,
    /// An email's Message-ID, an SMS's sid.
    pub provider_id: Option<String>,
    pub received_at: i64,
}

pub async fn last_from_client(
    conn: &mut AnyConnection,
    client_id: i64,
) -> anyhow::Result<Option<Latest>> {
    Ok(sqlx::query_as(
        "SELECT id, channel, subject, provider_id, received_at FROM inbound \
         WHERE client_id = $1 AND automatic IS NULL ORDER BY received_at DESC, id DESC LIMIT 1",
    )
    .bind(client_id)
    .fetch_optional(conn)
    .await?)
}

/// A coach wrote to the client: the replies waiting for a person are
/// answered, by that coach. Returns how many.
pub async fn answered(
    conn: &mut AnyConnection,
    client_id: i64,
    coach_id: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<u64> {
    let sql = "UPDATE inbound SET needs_reply = 0, handled_at = $3, handled_by = $2 \
         WHERE client_id = $1 AND needs_reply = 1 AND received_at <= $3";
    by_coach(conn, sql, client_id, coach_id, now).await
}

/// Whether a reply with this provider id (an email's Message-ID) is stored.
pub async fn provider_id_known(
    conn: &mut AnyConnection,
    provider_id: &str,
) -> anyhow::Result<bool> {
    let found: Option<i64> = sqlx::query_scalar("SELECT id FROM inbound WHERE provider_id = $1")
        .bind(provider_id)
        .fetch_optional(conn)
        .await?;
    Ok(found.is_some())
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

/// An alert (of an open crisis, or of a reported death) that has not gone out.
const ALERT_PENDING: &str = concat!(
    "((",
    open_crisis!(""),
    ") OR classification = 'deceased') AND alerted_at IS NULL"
);

/// How many alerts (of a crisis or a death) have not gone out.
pub async fn count_alerts_pending(conn: &mut AnyConnection) -> anyhow::Result<i64> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM inbound WHERE {ALERT_PENDING}"
    ));
    Ok(sqlx::query_scalar(sql).fetch_one(conn).await?)
}

/// Replies whose first alert has not gone out: (reply, client, class).
pub async fn alerts_pending(
    conn: &mut AnyConnection,
) -> anyhow::Result<Vec<(i64, Option<i64>, Class)>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT id, client_id, classification FROM inbound WHERE {ALERT_PENDING} ORDER BY id"
    ));
    let rows: Vec<(i64, Option<i64>, String)> = sqlx::query_as(sql).fetch_all(conn).await?;
    rows.into_iter()
        .map(|(id, client, class)| {
            let class = stored::read("inbound", "classification", &class)?;
            Ok((id, client, class))
        })
        .collect()
}

/// Open crisis alerts (nobody has said "I'm on it"): how many, and when the
/// oldest came in.
pub async fn open_crisis(conn: &mut AnyConnection) -> anyhow::Result<(i64, Option<DateTime<Utc>>)> {
    let (count, oldest): (i64, Option<i64>) = sqlx::query_as(concat!(
        "SELECT COUNT(*), MIN(received_at) FROM inbound WHERE ",
        open_crisis!("")
    ))
    .fetch_one(conn)
    .await?;
    Ok((count, from_opt_ts(oldest)))
}

/// Open crisis alerts whose last alert or escalation is older than `cutoff`:
/// (reply, client, escalations so far).
pub async fn escalations_due(
    conn: &mut AnyConnection,
    cutoff: DateTime<Utc>,
) -> anyhow::Result<Vec<(i64, Option<i64>, i64)>> {
    Ok(sqlx::query_as(concat!(
        "SELECT id, client_id, escalations FROM inbound WHERE ",
        open_crisis!(""),
        " AND COALESCE(escalated_at, alerted_at, received_at) <= $1 ORDER BY id"
    ))
    .bind(ts(cutoff))
    .fetch_all(conn)
    .await?)
}

pub async fn mark_escalated(
    conn: &mut AnyConnection,
    reply_id: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE inbound SET escalated_at = $2, escalations = escalations + 1 WHERE id = $1",
    )
    .bind(reply_id)
    .bind(ts(now))
    .execute(conn)
    .await?;
    Ok(())
}

/// Runs `sql` (parameters: reply or client, coach, now); returns how many
/// replies it changed.
async fn by_coach(
    conn: &mut AnyConnection,
    sql: &'static str,
    id: i64,
    coach_id: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<u64> {
    Ok(sqlx::query(sql)
        .bind(id)
        .bind(coach_id)
        .bind(ts(now))
        .execute(conn)
        .await?
        .rows_affected())
}

/// Applies a coach's `action` to a reply. Returns whether it applied: a
/// reply can be handled while it waits (a crisis alert still open is
/// acknowledged with it), and acknowledged ("I'm on it") while its crisis
/// alert is open.
pub async fn act(
    conn: &mut AnyConnection,
    reply_id: i64,
    action: ReplyAction,
    coach_id: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let sql = match action {
        ReplyAction::Acknowledge => concat!(
            "UPDATE inbound SET acknowledged_at = $3, acknowledged_by = $2 WHERE id = $1 AND ",
            open_crisis!("")
        ),
        ReplyAction::Handled => concat!(
            "UPDATE inbound SET needs_reply = 0, handled_at = $3, handled_by = $2, \
               acknowledged_at = CASE WHEN classification = 'crisis' \
                 THEN COALESCE(acknowledged_at, $3) ELSE acknowledged_at END, \
               acknowledged_by = CASE WHEN classification = 'crisis' \
                 THEN COALESCE(acknowledged_by, $2) ELSE acknowledged_by END \
             WHERE id = $1 AND (needs_reply = 1 OR (",
            open_crisis!(""),
            "))"
        ),
    };
    Ok(by_coach(conn, sql, reply_id, coach_id, now).await? > 0)
}

/// A reply waiting for its coach's notice.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Unnoticed {
    pub id: i64,
    pub client_id: i64,
    pub coach_id: i64,
    pub received_at: i64,
}

/// Replies that need a person and have not been in a notice yet. Crisis
/// replies have alerts of their own.
pub async fn unnoticed(conn: &mut AnyConnection) -> anyhow::Result<Vec<Unnoticed>> {
    Ok(sqlx::query_as(
        "SELECT i.id, i.client_id, c.coach_id, i.received_at FROM inbound i \
         JOIN clients c ON c.id = i.client_id \
         WHERE i.needs_reply = 1 AND i.notified_at IS NULL \
           AND i.classification NOT IN ('crisis', 'deceased') \
         ORDER BY i.received_at",
    )
    .fetch_all(conn)
    .await?)
}

pub async fn mark_notified(
    conn: &mut AnyConnection,
    ids: &[i64],
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "UPDATE inbound SET notified_at = $1 WHERE id IN {}",
        id_list(ids.iter().copied())
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(ts(now))
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(classification: &str, classes: &str) -> ReplyRow {
        ReplyRow {
            id: 7,
            client_external_id: Some("C-1".into()),
            channel: "sms".into(),
            from_addr: "+15555550100".into(),
            body: "stop".into(),
            classification: classification.into(),
            classes: classes.into(),
            matched: "[]".into(),
            received_at: 0,
            needs_reply: 1,
            handled_at: None,
            handled_by: None,
            acknowledged_at: None,
            acknowledged_by: None,
            subject: None,
            automatic: None,
            unmatched_reason: None,
            client_name: None,
            client_coach_id: None,
        }
    }

    #[test]
    fn a_stored_reply_reads_back_as_typed_classes() {
        let view = ReplyView::try_from(row("crisis", "crisis,opt_out")).unwrap();
        assert_eq!(view.channel, Channel::Sms);
        assert_eq!(view.classification, Class::Crisis);
        assert_eq!(view.classes, [Class::Crisis, Class::OptOut]);
        assert!(view.needs_reply);
    }

    #[test]
    fn matched_rules_read_back_typed_and_a_damaged_list_still_says_why() {
        let mut stored = row("crisis", "crisis");
        stored.matched = r#"[{"class":"crisis","rule":"end it all","text":"end it all"}]"#.into();
        let view = ReplyView::try_from(stored).unwrap();
        assert_eq!(
            view.matched,
            [Match {
                class: Class::Crisis,
                rule: "end it all".into(),
                text: "end it all".into()
            }]
        );
        let mut damaged = row("crisis", "crisis");
        damaged.matched = "[{\"class\":".into();
        let view = ReplyView::try_from(damaged).unwrap();
        assert_eq!(view.matched.len(), 1);
        assert_eq!(view.matched[0].class, Class::Crisis);
        assert!(
            view.matched[0].rule.starts_with("(unreadable: "),
            "{:?}",
            view.matched
        );
        assert_eq!(view.matched[0].text, "[{\"class\":");
    }

    #[test]
    fn a_class_the_classifier_never_writes_is_an_error_naming_the_reply() {
        let err = ReplyView::try_from(row("reply", "reply,maybe")).unwrap_err();
        assert_eq!(err.to_string(), "reply 7: `maybe` is not a class");
        let err = ReplyView::try_from(row("urgent", "reply")).unwrap_err();
        assert_eq!(err.to_string(), "reply 7: `urgent` is not a class");
    }
}
