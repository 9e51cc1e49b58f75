//! Telling people about replies: the crisis alert (at once), its escalation
//! (until someone says "I'm on it"), the alert that a reply reports a
//! client's death (at once, never escalated), and the "replies waiting"
//! notice. None
//! of them carries a client's words or name: a lock screen may be seen by
//! anyone, and an alert only needs to bring a person to reengage.
//!
//! Who hears: the client's coach; while that coach is away, their backup, or
//! the admins if they have none. Escalations go to the coach's backup and
//! every active admin. A crisis from an address no client has goes to the
//! admins, since it may be a client on a new phone.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::app::channels::{Delivery, Outgoing};
use crate::app::context::AppContext;
use crate::domain::AuditAction;
use crate::domain::Channel;
use crate::domain::client::Client;
use crate::domain::words::Class;
use crate::store::audit::{self, Actor};
use crate::store::clients;
use crate::store::coaches::{self, CoachRow};
use crate::store::{from_ts, inbound};

/// What one run of the follow-up did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct FollowUp {
    /// Crisis alerts that had failed and went out now.
    pub alerts_retried: u64,
    /// Open crisis alerts sent on to the backup and the admins.
    pub escalations: u64,
    /// "Replies waiting" notices sent to coaches.
    pub reply_notices: u64,
}

impl fmt::Display for FollowUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "crisis alerts retried {}, crisis escalations {}, reply notices {}",
            self.alerts_retried, self.escalations, self.reply_notices
        )
    }
}

/// Retries failed crisis alerts, escalates open ones, and sends the notices
/// of replies waiting: the `alerts` job, on the dispatch schedule (and run
/// by the `dispatch` command before it sends).
pub async fn run(ctx: &AppContext, now: DateTime<Utc>) -> anyhow::Result<FollowUp> {
    Ok(FollowUp {
        alerts_retried: retry_alerts(ctx, now).await?,
        escalations: escalate(ctx, now).await?,
        reply_notices: notify_replies(ctx, now).await?,
    })
}

/// Who acts for `coach_id` at `now`: the coach; if away (or inactive), their
/// backup, or the admins if there is none.
pub async fn on_duty(
    conn: &mut sqlx::AnyConnection,
    coach_id: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<CoachRow>> {
    let coach = coaches::by_id(conn, coach_id).await?;
    if let Some(coach) = &coach
        && coach.is_active()
        && !coach.is_away(now)
    {
        return Ok(vec![coach.clone()]);
    }
    if let Some(backup) = active_backup(conn, coach.as_ref()).await? {
        return Ok(vec![backup]);
    }
    let admins = coaches::admins(conn).await?;
    Ok(if admins.is_empty() {
        coach.into_iter().collect()
    } else {
        admins
    })
}

/// The coach's backup, if they have one and the backup is active.
async fn active_backup(
    conn: &mut sqlx::AnyConnection,
    coach: Option<&CoachRow>,
) -> anyhow::Result<Option<CoachRow>> {
    let Some(backup_id) = coach.and_then(|c| c.backup_coach_id) else {
        return Ok(None);
    };
    Ok(coaches::by_id(conn, backup_id)
        .await?
        .filter(|backup| backup.is_active()))
}

/// Who hears an escalation: the coach's backup and every active admin (the
/// coach themselves if there is nobody else).
async fn escalation_list(
    conn: &mut sqlx::AnyConnection,
    client: Option<&Client>,
) -> anyhow::Result<Vec<CoachRow>> {
    let mut list = Vec::new();
    let coach = match client {
        Some(c) => coaches::by_id(conn, c.coach_id).await?,
        None => None,
    };
    list.extend(active_backup(conn, coach.as_ref()).await?);
    for admin in coaches::admins(conn).await? {
        if !list.iter().any(|c: &CoachRow| c.id == admin.id) {
            list.push(admin);
        }
    }
    if list.is_empty() {
        list.extend(coach);
    }
    Ok(list)
}

/// Sends `text` to each person by email (and by SMS where `sms` and they have
/// a phone), through the channels' gate (`Channels::deliver_gated`): a paused
/// channel is a failure, not a silent skip. Returns how many messages went,
/// and what failed.
async fn tell(
    ctx: &AppContext,
    people: &[CoachRow],
    reference: &str,
    subject: &str,
    text: &str,
    sms: bool,
    now: DateTime<Utc>,
) -> (usize, Vec<String>) {
    let mut sent = 0;
    let mut failures = Vec::new();
    for person in people {
        let mut outgoing = vec![(Channel::Email, person.email.clone())];
        if sms && let Some(phone) = person.phone.as_deref().filter(|p| !p.is_empty()) {
            outgoing.push((Channel::Sms, phone.to_owned()));
        }
        for (channel, to) in outgoing {
            let message = Outgoing::note(
                channel,
                format!("{reference}-{}", person.id),
                to,
                (channel == Channel::Email).then(|| subject.to_owned()),
                text.to_owned(),
                &ctx.settings.email.from,
                now,
            );
            match ctx
                .channels
                .deliver_gated(&ctx.clock, channel, &message)
                .await
            {
                Delivery::Sent { .. } => sent += 1,
                Delivery::ChannelDown { error, .. }
                | Delivery::Retry { error, .. }
                | Delivery::Failed { error, .. }
                | Delivery::InDoubt { error, .. } => {
                    failures.push(format!("{channel} to {}: {error}", person.email));
                }
            }
        }
    }
    (sent, failures)
}

fn replies_link(ctx: &AppContext) -> String {
    format!(
        "{}/replies",
        ctx.settings.http.public_url.as_str().trim_end_matches('/')
    )
}

async fn note(
    ctx: &AppContext,
    action: AuditAction,
    client_id: Option<i64>,
    detail: String,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let mut conn = ctx.store.conn().await?;
    audit::record(
        &mut conn,
        audit::Entry {
            actor: Actor::System("reply follow-up"),
            action,
            client_id,
            message_id: None,
            detail: Some(detail),
        },
        now,
    )
    .await
}

fn emails(people: &[CoachRow]) -> String {
    let list: Vec<&str> = people.iter().map(|p| p.email.as_str()).collect();
    list.join(", ")
}

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concern {
    /// A reply that may signal danger.
    Crisis,
    /// A reply that says the client has died.
    Death,
}

impl Concern {
    /// The concern of a stored reply's class, if it is one.
    pub fn of(class: Class) -> Option<Self> {
        match class {
            Class::Crisis => Some(Concern::Crisis),
            Class::Deceased => Some(Concern::Death),
            _ => None,
        }
    }

    fn subject(self) -> &'static str {
        match self {
            Concern::Crisis => "A reply needs you now",
            Concern::Death => "A reply says a client of yours may have died",
        }
    }

    fn text(self, link: &str) -> String {
        match self {
            Concern::Crisis => {
                format!("A reply needs you now. Please look as soon as you can: {link}")
            }
            Concern::Death => format!(
                "A reply says a client of yours may have died. Nothing more goes to them \
                 until you confirm or undo it on their page: {link}"
            ),
        }
    }

    fn audit(self) -> AuditAction {
        match self {
            Concern::Crisis => AuditAction::CrisisAlert,
            Concern::Death => AuditAction::DeceasedAlert,
        }
    }
}

/// Tells whoever is on duty for the client, at once, by email and SMS. A
/// failure is recorded, shown on `/healthz`, and retried by the next
/// dispatch run. Returns whether the alert went out.
pub async fn alert(
    ctx: &AppContext,
    concern: Concern,
    reply_id: i64,
    client: Option<&Client>,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let people = {
        let mut conn = ctx.store.conn().await?;
        match client {
            Some(c) => on_duty(&mut conn, c.coach_id, now).await?,
            None => coaches::admins(&mut conn).await?,
        }
    };
    let text = concern.text(&replies_link(ctx));
    let (sent, failures) = tell(
        ctx,
        &people,
        &format!("alert-{reply_id}"),
        concern.subject(),
        &text,
        true,
        now,
    )
    .await;
    let mut conn = ctx.store.conn().await?;
    if sent > 0 {
        inbound::alert_sent(&mut conn, reply_id, now).await?;
        drop(conn);
        let mut detail = format!("reply {reply_id}: alert to {}", emails(&people));
        if !failures.is_empty() {
            detail.push_str(&format!(" (not delivered: {})", failures.join("; ")));
        }
        note(ctx, concern.audit(), client.map(|c| c.id), detail, now).await?;
        Ok(true)
    } else {
        let error = if failures.is_empty() {
            "nobody to tell: no coach and no active admin".to_owned()
        } else {
            failures.join("; ")
        };
        tracing::error!(reply = reply_id, ?concern, "alert not delivered: {error}");
        inbound::alert_failed(&mut conn, reply_id, &error).await?;
        Ok(false)
    }
}

/// Tries again every alert (of a crisis or a death) that has not gone out.
/// Returns how many went.
pub async fn retry_alerts(ctx: &AppContext, now: DateTime<Utc>) -> anyhow::Result<u64> {
    let pending = {
        let mut conn = ctx.store.conn().await?;
        inbound::alerts_pending(&mut conn).await?
    };
    let mut sent = 0;
    for (reply_id, client_id, class) in pending {
        let Some(concern) = Concern::of(class) else {
            continue;
        };
        let client = match client_id {
            Some(id) => {
                let mut conn = ctx.store.conn().await?;
                clients::by_id(&mut conn, id).await?
            }
            None => None,
        };
        if alert(ctx, concern, reply_id, client.as_ref(), now).await? {
            sent += 1;
        }
    }
    Ok(sent)
}

/// Sends every open crisis alert whose last alert or escalation is at least
/// `crisis.escalate_after_minutes` old to the escalation list, and starts
/// the wait again. Returns how many escalated.
pub async fn escalate(ctx: &AppContext, now: DateTime<Utc>) -> anyhow::Result<u64> {
    let minutes = ctx.settings.crisis.escalate_after_minutes;
    if minutes == 0 {
        return Ok(0);
    }
    let due = {
        let mut conn = ctx.store.conn().await?;
        inbound::escalations_due(&mut conn, now - Duration::minutes(i64::from(minutes))).await?
    };
    let mut escalated = 0;
    for (reply_id, client_id, before) in due {
        let (client, people, received) = {
            let mut conn = ctx.store.conn().await?;
            let client = match client_id {
                Some(id) => clients::by_id(&mut conn, id).await?,
                None => None,
            };
            let people = escalation_list(&mut conn, client.as_ref()).await?;
            let received = inbound::by_id(&mut conn, reply_id)
                .await?
                .map_or(now, |r| r.received_at);
            (client, people, received)
        };
        let waited = (now - received).num_minutes().max(0);
        let text = format!(
            "A crisis reply has waited {waited} minutes with nobody on it. Please look now \
             and press \"I'm on it\": {}",
            replies_link(ctx)
        );
        let (sent, failures) = tell(
            ctx,
            &people,
            &format!("escalation-{reply_id}-{}", before + 1),
            "A crisis reply is waiting for someone",
            &text,
            true,
            now,
        )
        .await;
        if sent == 0 {
            tracing::error!(
                reply = reply_id,
                "crisis escalation not delivered: {}",
                failures.join("; ")
            );
            continue;
        }
        {
            let mut conn = ctx.store.conn().await?;
            inbound::mark_escalated(&mut conn, reply_id, now).await?;
        }
        let mut detail = format!(
            "reply {reply_id}: escalation {} after {waited} minutes, to {}",
            before + 1,
            emails(&people)
        );
        if !failures.is_empty() {
            detail.push_str(&format!(" (not delivered: {})", failures.join("; ")));
        }
        note(
            ctx,
            AuditAction::CrisisEscalation,
            client.map(|c| c.id),
            detail,
            now,
        )
        .await?;
        escalated += 1;
    }
    Ok(escalated)
}

/// The replies waiting for one set of people on duty.
struct NoticeGroup {
    people: Vec<CoachRow>,
    replies: Vec<i64>,
    clients: Vec<i64>,
    oldest: DateTime<Utc>,
}

/// Sends each person on duty one notice for the replies that came in since
/// their last one, once the oldest is `replies.notify_after_minutes` old: a
/// count and a link. Returns how many notices went.
pub async fn notify_replies(ctx: &AppContext, now: DateTime<Utc>) -> anyhow::Result<u64> {
    let cutoff = now - Duration::minutes(i64::from(ctx.settings.replies.notify_after_minutes));
    let mut groups: Vec<NoticeGroup> = Vec::new();
    {
        let mut conn = ctx.store.conn().await?;
        // Who is on duty for each coach, looked up once per run.
        let mut duty: HashMap<i64, Vec<CoachRow>> = HashMap::new();
        for reply in inbound::unnoticed(&mut conn).await? {
            let people = match duty.get(&reply.coach_id) {
                Some(people) => people.clone(),
                None => {
                    let people = on_duty(&mut conn, reply.coach_id, now).await?;
                    duty.insert(reply.coach_id, people.clone());
                    people
                }
            };
            let received = from_ts(reply.received_at);
            let same = |g: &&mut NoticeGroup| {
                g.people
                    .iter()
                    .map(|c| c.id)
                    .eq(people.iter().map(|c| c.id))
            };
            match groups.iter_mut().find(same) {
                Some(group) => {
                    group.replies.push(reply.id);
                    if !group.clients.contains(&reply.client_id) {
                        group.clients.push(reply.client_id);
                    }
                    group.oldest = group.oldest.min(received);
                }
                None => groups.push(NoticeGroup {
                    people,
                    replies: vec![reply.id],
                    clients: vec![reply.client_id],
                    oldest: received,
                }),
            }
        }
    }
    let mut notices = 0;
    for NoticeGroup {
        people,
        replies: ids,
        clients,
        oldest,
    } in groups
    {
        if oldest > cutoff || people.is_empty() {
            continue;
        }
        let n = clients.len();
        let text = format!(
            "{n} {} replied: open reengage {}",
            if n == 1 { "client" } else { "clients" },
            replies_link(ctx)
        );
        let reference = format!("notice-{}", ids.iter().max().copied().unwrap_or_default());
        let (sent, failures) = tell(
            ctx,
            &people,
            &reference,
            "Replies are waiting for you",
            &text,
            ctx.settings.replies.notify_by_sms,
            now,
        )
        .await;
        if sent == 0 {
            tracing::error!("reply notice not delivered: {}", failures.join("; "));
            continue;
        }
        {
            let mut conn = ctx.store.conn().await?;
            inbound::mark_notified(&mut conn, &ids, now).await?;
        }
        note(
            ctx,
            AuditAction::ReplyNotice,
            None,
            format!(
                "{} repl(ies) of {n} client(s), to {}",
                ids.len(),
                emails(&people)
            ),
            now,
        )
        .await?;
        notices += 1;
    }
    Ok(notices)
}
