//! What the outcome reports read: episodes with their messages, and the
//! clients' replies, returns, contacts and opt-outs, for the clients in a
//! scope.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use super::dialect::{packed, unpack};
use super::scope::Scope;
use super::stored;
use super::time::ts;
use crate::domain::eligibility::Refusal;
use crate::domain::outcomes::{Episode, Fate, Outcome, Sent};
use crate::domain::{Channel, MessageStatus};

/// One message of an episode (or an episode with none yet).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(try_from = "EpisodeRecord")]
pub struct EpisodeMessage {
    pub episode_id: i64,
    pub client_id: i64,
    pub started_at: i64,
    pub language: String,
    pub coach: String,
    pub step: Option<i64>,
    pub channel: Option<Channel>,
    pub template: Option<String>,
    pub variant: Option<String>,
    pub edited: Option<i64>,
    pub status: Option<MessageStatus>,
    pub created_at: Option<i64>,
    pub approved_at: Option<i64>,
    pub rejected_at: Option<i64>,
    pub sent_at: Option<i64>,
    pub delivery_status: Option<String>,
    pub cancel_reason: Option<Refusal>,
    /// The client's opt-outs, read with the episode (not by scanning every
    /// client for them).
    pub opted_out_email_at: Option<i64>,
    pub opted_out_sms_at: Option<i64>,
}

impl EpisodeMessage {
    /// What became of the message, if it was sent.
    pub fn fate(&self) -> Option<Fate> {
        Fate::of(self.status?, self.channel?, self.delivery_status.as_deref())
    }
}

/// [`EpisodeMessage`] as the database holds it.
#[derive(serde::Deserialize)]
struct EpisodeRecord {
    episode_id: i64,
    client_id: i64,
    started_at: i64,
    language: String,
    coach: String,
    step: Option<i64>,
    channel: Option<String>,
    template: Option<String>,
    variant: Option<String>,
    edited: Option<i64>,
    status: Option<String>,
    created_at: Option<i64>,
    approved_at: Option<i64>,
    rejected_at: Option<i64>,
    sent_at: Option<i64>,
    delivery_status: Option<String>,
    cancel_reason: Option<String>,
    opted_out_email_at: Option<i64>,
    opted_out_sms_at: Option<i64>,
}

impl TryFrom<EpisodeRecord> for EpisodeMessage {
    type Error = stored::Unknown;

    fn try_from(r: EpisodeRecord) -> Result<Self, stored::Unknown> {
        Ok(Self {
            episode_id: r.episode_id,
            client_id: r.client_id,
            started_at: r.started_at,
            language: r.language,
            coach: r.coach,
            step: r.step,
            channel: stored::read_opt("messages", "channel", r.channel.as_deref())?,
            template: r.template,
            variant: r.variant,
            edited: r.edited,
            status: stored::read_opt("messages", "status", r.status.as_deref())?,
            created_at: r.created_at,
            approved_at: r.approved_at,
            rejected_at: r.rejected_at,
            sent_at: r.sent_at,
            delivery_status: r.delivery_status,
            cancel_reason: stored::read_opt(
                "messages",
                "cancel_reason",
                r.cancel_reason.as_deref(),
            )?,
            opted_out_email_at: r.opted_out_email_at,
            opted_out_sms_at: r.opted_out_sms_at,
        })
    }
}

/// The episodes of clients in `scope` that started before `until` and were
/// still open at `since` (so every episode opened or reached in the period),
/// each with every message drafted in it, ordered by episode and send time.
pub async fn episode_messages(
    conn: &mut AnyConnection,
    scope: &Scope,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> anyhow::Result<Vec<EpisodeMessage>> {
    // Read as one packed row: tens of thousands of rows, each cheap to read
    // as JSON and dear to hand over one by one (see `packed`).
    let inner = format!(
        "SELECT e.id AS episode_id, e.client_id, e.started_at, c.language, co.email AS coach, \
           m.step, m.channel, m.template, m.variant, m.edited, m.status, \
           m.created_at, m.approved_at, m.rejected_at, \
           m.sent_at, m.delivery_status, m.cancel_reason, c.opted_out_email_at, c.opted_out_sms_at \
         FROM episodes e JOIN clients c ON c.id = e.client_id \
         JOIN coaches co ON co.id = c.coach_id \
         LEFT JOIN messages m ON m.episode_id = e.id \
         WHERE {} AND e.started_at < $1 AND (e.closed_at IS NULL OR e.closed_at >= $2)",
        scope.sql("c.coach_id")
    );
    let sql = packed(
        conn,
        &inner,
        "episode_id, client_id, started_at, language, coach, step, channel, template, variant, \
         edited, status, created_at, approved_at, rejected_at, sent_at, delivery_status, \
         cancel_reason, opted_out_email_at, opted_out_sms_at",
    );
    let json: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(ts(until))
        .bind(ts(since))
        .fetch_one(conn)
        .await?;
    let mut rows: Vec<EpisodeMessage> = unpack(&json)?;
    rows.sort_by_key(|m| (m.episode_id, m.sent_at, m.created_at));
    Ok(rows)
}

/// Something a client did that a report counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub enum Happening {
    /// A reply written by a person, not one bare keyword.
    Reply,
    /// A check-in or an attended session: the client came back.
    Return,
    /// A coach reached them personally.
    Contact,
}

#[derive(sqlx::FromRow)]
struct HappeningRow {
    client_id: i64,
    what: String,
    at: i64,
}

/// What the clients in `scope` did from `since` on (opt-outs come with the
/// episodes), once an episode of theirs
/// had begun (nothing before can be an outcome): `(client, what, when)`.
/// Read from the episodes, so that a million quiet-free clients cost nothing.
pub async fn happenings(
    conn: &mut AnyConnection,
    scope: &Scope,
    since: DateTime<Utc>,
) -> anyhow::Result<Vec<(i64, Happening, i64)>> {
    // Every client needs no join: PostgreSQL would scan them all for it.
    let in_scope = match scope {
        Scope::All => String::new(),
        Scope::Coaches(_) => format!(
            "AND e.client_id IN (SELECT c.id FROM clients c WHERE {})",
            scope.sql("c.coach_id")
        ),
    };
    let sql = format!(
        "WITH began AS ( \
           SELECT e.client_id, MIN(e.started_at) AS at FROM episodes e \
           WHERE (e.closed_at IS NULL OR e.closed_at >= $1) {in_scope} GROUP BY e.client_id) \
         SELECT ev.client_id, CASE ev.kind WHEN 'coach_contact' THEN 'contact' \
             WHEN 'message_reply' THEN 'reply' ELSE 'return' END AS what, ev.occurred_at AS at \
           FROM began b JOIN engagement_events ev ON ev.client_id = b.client_id \
           WHERE ev.occurred_at >= b.at AND ev.occurred_at >= $1 \
             AND ev.kind IN ('check_in', 'session_attended', 'coach_contact', 'message_reply') \
         UNION ALL \
         SELECT i.client_id, 'reply', i.received_at FROM began b \
           JOIN inbound i ON i.client_id = b.client_id \
           WHERE i.received_at >= b.at AND i.received_at >= $1 \
             AND i.automatic IS NULL AND i.keyword = 0"
    );
    let rows: Vec<HappeningRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(ts(since))
        .fetch_all(conn)
        .await?;
    rows.into_iter()
        .map(|r| {
            let what = r
                .what
                .parse()
                .map_err(|_| anyhow::anyhow!("`{}` is not something a report counts", r.what))?;
            Ok((r.client_id, what, r.at))
        })
        .collect()
}

/// Each episode of `rows` (as [`episode_messages`] reads them), with what is
/// known of it ([`episode`]). What a client did counts for one episode only:
/// the one under way when they did it.
pub fn episodes(
    rows: &[EpisodeMessage],
    happenings: Vec<(i64, Happening, i64)>,
) -> Vec<(&[EpisodeMessage], Episode)> {
    let mut done: HashMap<i64, Vec<(Happening, i64)>> = HashMap::new();
    for (client, what, at) in happenings {
        done.entry(client).or_default().push((what, at));
    }
    let groups: Vec<&[EpisodeMessage]> =
        rows.chunk_by(|a, b| a.episode_id == b.episode_id).collect();
    let mut starts: HashMap<i64, Vec<i64>> = HashMap::new();
    for group in &groups {
        starts
            .entry(group[0].client_id)
            .or_default()
            .push(group[0].started_at);
    }
    groups
        .into_iter()
        .map(|group| {
            let first = &group[0];
            let next = starts[&first.client_id]
                .iter()
                .copied()
                .filter(|at| *at > first.started_at)
                .min();
            let doings = done.get(&first.client_id).map_or(&[][..], Vec::as_slice);
            (group, episode(group, doings, next))
        })
        .collect()
}

/// What is known of one episode, from its messages and its client's doings
/// from its start until `next` (their next episode's start, if any).
pub fn episode(
    messages: &[EpisodeMessage],
    done: &[(Happening, i64)],
    next: Option<i64>,
) -> Episode {
    let first = &messages[0];
    let before_next = |at: &i64| *at >= first.started_at && next.is_none_or(|next| *at < next);
    let times = |kind: Happening| {
        done.iter()
            .filter(|(what, at)| *what == kind && before_next(at))
            .map(|(_, at)| *at)
            .collect::<Vec<_>>()
    };
    let mut sent: Vec<Sent> = messages
        .iter()
        .filter_map(|m| {
            let at = m.sent_at?;
            Some(Sent {
                at,
                step: m.step,
                channel: m.channel?,
                template: m.template.clone().unwrap_or_default(),
                variant: m.variant.clone(),
                edited: m.edited.unwrap_or(0) != 0,
                delivered: m.fate() == Some(Fate::Delivered),
            })
        })
        .collect();
    sent.sort_by_key(|s| s.at);
    Episode {
        language: first.language.clone(),
        coach: first.coach.clone(),
        sent,
        replies: times(Happening::Reply),
        returns: times(Happening::Return),
        contacts: times(Happening::Contact),
        opt_outs: [first.opted_out_email_at, first.opted_out_sms_at]
            .into_iter()
            .flatten()
            .filter(before_next)
            .collect(),
    }
}

/// Every reached episode of every client, by its outcome (the first of
/// returned, replied, reached personally, opted out; else none), within
/// `window_seconds` of its first send: for the metrics.
pub async fn outcome_counts(
    conn: &mut AnyConnection,
    window_seconds: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<std::collections::BTreeMap<Outcome, u64>> {
    let rows = episode_messages(conn, &Scope::All, DateTime::UNIX_EPOCH, now).await?;
    let happenings = happenings(conn, &Scope::All, DateTime::UNIX_EPOCH).await?;
    let mut counts = std::collections::BTreeMap::new();
    for (_, episode) in episodes(&rows, happenings) {
        if let Some(outcome) = episode.outcome(window_seconds) {
            *counts.entry(outcome).or_default() += 1;
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_client_does_counts_for_one_episode_only() {
        const DAY: i64 = 86_400;
        let sent = |episode_id, started_at, sent_at| EpisodeMessage {
            episode_id,
            client_id: 7,
            started_at,
            step: Some(1),
            channel: Some(Channel::Sms),
            status: Some(MessageStatus::Sent),
            sent_at: Some(sent_at),
            ..Default::default()
        };
        // Episode 1 opens on day 0; the client comes back, goes quiet again,
        // and episode 2 opens on day 10, both within one 30-day window.
        let rows = [sent(1, 0, 3_600), sent(2, 10 * DAY, 10 * DAY + 3_600)];
        let happenings = vec![
            (7, Happening::Return, DAY),
            (7, Happening::Reply, 10 * DAY + 7_200),
        ];
        let episodes = episodes(&rows, happenings);
        let (first, second) = (&episodes[0].1, &episodes[1].1);
        assert_eq!(
            (first.returns.clone(), first.replies.clone()),
            (vec![DAY], vec![])
        );
        assert_eq!(second.replies, vec![10 * DAY + 7_200]);
        assert!(
            second.returns.is_empty(),
            "the return was the first episode's"
        );
        assert_eq!(first.outcome(30 * DAY), Some(Outcome::Returned));
        assert_eq!(second.outcome(30 * DAY), Some(Outcome::Replied));
    }
}
