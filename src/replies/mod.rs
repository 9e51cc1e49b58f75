//! Replies from clients: stored first, then classified and acted on.
//!
//! - A whole-message keyword: opt out of SMS, opt back in, or ask for help.
//! - Crisis language anywhere: the client goes on hold, the coach is alerted at
//!   once (the SMS alert carries none of the reply's words), and, if the agency
//!   turned it on, the client gets the resources message once.
//! - A plain-language opt-out ("please stop texting me"): an opt-out, flagged for
//!   the coach, who can undo it if it was misread.
//! - Anything else: the engagement event `message_reply`.

pub mod classify;

use chrono::{DateTime, Utc};

pub use classify::{Class, Classification, Match, Words};

use crate::channels::{Delivery, Outgoing};
use crate::context::AppContext;
use crate::domain::{Channel, ClientStatus, EventKind};
use crate::import::first_step_after;
use crate::store::audit::{self, Actor};
use crate::store::clients::{self, ClientRow};
use crate::store::episodes::{self, CloseReason};
use crate::store::events::{self, NewEvent};
use crate::store::{coaches, inbound, messages};

/// An inbound SMS as the provider reports it.
pub struct Incoming<'a> {
    pub from: &'a str,
    pub to: Option<&'a str>,
    pub body: &'a str,
    pub provider_id: Option<&'a str>,
}

/// Stores the reply, then acts on it. Returns the text to answer with, if any.
/// A repeated delivery of the same provider message is answered again but acted
/// on only once.
pub async fn receive(
    ctx: &AppContext,
    incoming: &Incoming<'_>,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<String>> {
    let class = ctx.words.classify(incoming.body);
    let client = {
        let mut conn = ctx.store.conn().await?;
        clients::by_phone(&mut conn, incoming.from).await?
    };
    // Stored before anything else, so that no later failure can lose it.
    let stored = {
        let mut conn = ctx.store.conn().await?;
        inbound::store(
            &mut conn,
            &inbound::NewReply {
                channel: Channel::Sms,
                from: incoming.from,
                to: incoming.to,
                body: incoming.body,
                client_id: client.as_ref().map(|c| c.id),
                classification: class.as_ref(),
                provider_id: incoming.provider_id,
            },
            now,
        )
        .await?
    };
    let settings = &ctx.settings;
    let Some(client) = client else {
        tracing::warn!("a reply from a number no client has; stored as unmatched");
        return Ok(answer_for(ctx, class, false));
    };
    let Some(reply_id) = stored else {
        return Ok(answer_for(ctx, class, false));
    };
    let mut tx = ctx.store.begin().await?;
    let actor = Actor::System("client reply");
    let mut resources_first_time = false;
    let action: (&str, Option<String>) = match class {
        Classification::OptOut | Classification::PlainOptOut => {
            clients::record_opt_out(&mut tx, client.id, Channel::Sms, now).await?;
            messages::cancel_unsent(&mut tx, &[client.id], Some(Channel::Sms), "opted_out", now)
                .await?;
            if class == Classification::PlainOptOut {
                (
                    "opt_out",
                    Some("sms, in plain language: check it was meant".into()),
                )
            } else {
                ("opt_out", Some("sms keyword".into()))
            }
        }
        Classification::OptIn => {
            clients::record_opt_in(&mut tx, client.id, Channel::Sms, now).await?;
            ("opt_in", Some("sms keyword".into()))
        }
        Classification::Help => ("help", None),
        Classification::Crisis => {
            clients::set_status(&mut tx, client.id, ClientStatus::Hold, now).await?;
            episodes::close_open(&mut tx, &[client.id], CloseReason::Hold, now).await?;
            messages::cancel_unsent(&mut tx, &[client.id], None, "hold", now).await?;
            resources_first_time =
                settings.crisis.auto_reply && !inbound::resources_sent(&mut tx, client.id).await?;
            if resources_first_time {
                inbound::mark_resources_sent(&mut tx, reply_id).await?;
            }
            (
                "crisis_hold",
                Some("the client is on hold until a coach resumes them".into()),
            )
        }
        Classification::Reply => {
            let event = NewEvent {
                kind: EventKind::MessageReply,
                occurred_at: now,
                source: "sms",
                note: None,
            };
            events::record(
                &mut tx,
                &(&client).into(),
                &event,
                first_step_after(ctx),
                now,
            )
            .await?;
            ("reply", None)
        }
    };
    audit::record(
        &mut tx,
        audit::Entry {
            actor,
            action: action.0,
            client_id: Some(client.id),
            message_id: None,
            detail: action.1,
        },
        now,
    )
    .await?;
    tx.commit().await?;
    if class == Classification::Crisis {
        alert_coach(ctx, &client, reply_id, now).await?;
    }
    Ok(answer_for(ctx, class, resources_first_time))
}

/// The TwiML answer's text for a class of reply. The provider confirms STOP
/// keywords itself unless told otherwise; words of the client's own get one
/// confirmation; resources go out only the first time.
fn answer_for(ctx: &AppContext, class: Classification, first_resources: bool) -> Option<String> {
    let settings = &ctx.settings;
    match class {
        Classification::OptOut if settings.replies.confirm_opt_out => {
            Some(settings.replies.opt_out_confirmation.clone())
        }
        Classification::PlainOptOut => Some(settings.replies.opt_out_confirmation.clone()),
        Classification::Help => Some(settings.replies.help_text.clone()),
        Classification::Crisis if first_resources => {
            Some(settings.crisis.resources_message.clone())
        }
        _ => None,
    }
}

/// Tells the client's coach at once, by email and (if they have a phone) SMS.
/// Neither carries the reply's words. A failure is recorded, shown on
/// `/healthz`, and retried by the next dispatch run.
pub async fn alert_coach(
    ctx: &AppContext,
    client: &ClientRow,
    reply_id: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let coach = {
        let mut conn = ctx.store.conn().await?;
        coaches::by_id(&mut conn, client.coach_id).await?
    };
    let Some(coach) = coach else {
        anyhow::bail!("client {} has no coach", client.id);
    };
    let link = format!(
        "{}/replies",
        ctx.settings.http.public_url.as_str().trim_end_matches('/')
    );
    let text = format!("A reply needs you now. Please look as soon as you can: {link}");
    let mut outcomes = vec![(
        Channel::Email,
        ctx.channels
            .email
            .deliver(&Outgoing::to_coach(
                Channel::Email,
                format!("alert-{reply_id}"),
                coach.email.clone(),
                Some("A reply needs you now".into()),
                text.clone(),
                &ctx.settings.email.from,
                now,
            ))
            .await,
    )];
    if let Some(phone) = coach.phone.as_deref().filter(|p| !p.is_empty()) {
        let delivery = ctx
            .channels
            .sms
            .deliver(&Outgoing::to_coach(
                Channel::Sms,
                format!("alert-{reply_id}"),
                phone.to_owned(),
                None,
                text,
                &ctx.settings.email.from,
                now,
            ))
            .await;
        outcomes.push((Channel::Sms, delivery));
    }
    let failures: Vec<String> = outcomes
        .iter()
        .filter_map(|(channel, d)| match d {
            Delivery::Sent { .. } => None,
            Delivery::Retry { error, .. }
            | Delivery::Failed { error, .. }
            | Delivery::InDoubt { error, .. }
            | Delivery::ChannelDown { error, .. } => Some(format!("{channel}: {error}")),
        })
        .collect();
    let mut conn = ctx.store.conn().await?;
    if failures.is_empty() {
        inbound::alert_sent(&mut conn, reply_id, now).await?;
        audit::record(
            &mut conn,
            audit::Entry {
                actor: Actor::System("crisis alert"),
                action: "crisis_alert",
                client_id: Some(client.id),
                message_id: None,
                detail: Some(format!("to {}", coach.email)),
            },
            now,
        )
        .await?;
        Ok(true)
    } else {
        let error = failures.join("; ");
        tracing::error!(reply = reply_id, "crisis alert not delivered: {error}");
        inbound::alert_failed(&mut conn, reply_id, &error).await?;
        Ok(false)
    }
}

/// Tries again every crisis alert that has not gone out. Returns how many went.
pub async fn retry_alerts(ctx: &AppContext, now: DateTime<Utc>) -> anyhow::Result<u64> {
    let pending = {
        let mut conn = ctx.store.conn().await?;
        inbound::alerts_pending(&mut conn).await?
    };
    let mut sent = 0;
    for (reply_id, client_id) in pending {
        let client = {
            let mut conn = ctx.store.conn().await?;
            clients::by_id(&mut conn, client_id).await?
        };
        if let Some(client) = client
            && alert_coach(ctx, &client, reply_id, now).await?
        {
            sent += 1;
        }
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words() -> Words {
        Words::load(Path::new("")).unwrap()
    }

    #[test]
    fn keywords_are_whole_messages_and_phrases_match_on_word_boundaries() {
        let w = words();
        for (text, class) in [
            ("STOP", Classification::OptOut),
            (" Stop. ", Classification::OptOut),
            ("stop it, that's funny", Classification::Reply),
            ("Start", Classification::OptIn),
            ("INFO", Classification::Help),
            ("Please stop texting me", Classification::PlainOptOut),
            ("dont text me again", Classification::PlainOptOut),
            ("I feel like I can’t go on", Classification::Crisis),
            ("took 30mg", Classification::Crisis),
            ("almost OD'd last night", Classification::Crisis),
            ("I might OD", Classification::Crisis),
            ("good to hear from you", Classification::Reply),
            ("the pills aren't helping", Classification::Crisis),
            ("see you at the meeting", Classification::Reply),
        ] {
            assert_eq!(w.classify(text), class, "{text}");
        }
    }

    #[test]
    fn an_agency_file_extends_the_lists() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("words.toml");
        std::fs::write(
            &file,
            "crisis = [\"no way out\"]\nplain_opt_out = [\"wrong number\"]\n",
        )
        .unwrap();
        let w = Words::load(&file).unwrap();
        assert_eq!(w.classify("there's no way out"), Classification::Crisis);
        assert_eq!(w.classify("wrong number"), Classification::PlainOptOut);
        assert_eq!(w.classify("STOP"), Classification::OptOut);
        std::fs::write(&file, "crisiss = [\"typo\"]\n").unwrap();
        assert!(Words::load(&file).is_err());
    }
}
