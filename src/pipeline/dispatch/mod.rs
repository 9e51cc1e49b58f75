//! The outbox worker. It claims due approved messages with a lease, checks again
//! that each may still go out, sends it through the channel's transport at the
//! provider's pace and records the attempt. No transaction is held open across a
//! send: on SQLite that would block every writer for as long as the provider takes.
//!
//! A message is never sent twice by reengage on its own. An attempt whose outcome
//! is unknown becomes `in_doubt`: an SMS is reconciled by asking the provider, an
//! email waits for a coach to resend or resolve it.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::app::channels::{Delivery, Outgoing, Reconciliation};
use crate::app::context::AppContext;
use crate::domain::AuditAction;
use crate::domain::client::Client;
use crate::domain::eligibility::{Purpose, Refusal, eligibility};
use crate::domain::window::Caps;
use crate::domain::{Channel, EmailProblem, LogEvent, MessageStatus, SendOutcome};
use crate::store::audit::{self, Actor};
use crate::store::clients::{self, DispatchTarget};
use crate::store::from_ts;
use crate::store::messages::{self, ClaimedMessage};
use crate::store::send_log::{self, Finish, Note};

/// How far back the caps look: the rolling week, plus a day for timezones.
const CAP_WINDOW: Duration = Duration::days(8);

/// Twilio's error for a recipient who replied STOP.
const RECIPIENT_OPTED_OUT: &str = "21610";

#[derive(Debug, Default, Clone, Serialize)]
pub struct DispatchSummary {
    pub sent: u64,
    pub retry: u64,
    pub failed: u64,
    pub in_doubt: u64,
    /// Waiting for the client's quiet hours to end.
    pub deferred_quiet_hours: u64,
    /// Waiting for the client's daily or weekly cap.
    pub deferred_cap: u64,
    /// No longer eligible: re-engaged, opted out, paused, on hold or discharged.
    pub cancelled: u64,
    /// Claimed but handed back unsent: shutdown began, or the channel is paused.
    pub released: u64,
    /// Claims of a crashed process found in doubt (an attempt had started).
    pub recovered_in_doubt: u64,
    /// In-doubt SMS the provider turned out to have.
    pub reconciled_sent: u64,
    /// In-doubt SMS the provider does not have: due again.
    pub reconciled_retry: u64,
}

impl fmt::Display for DispatchSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sent {}, retry {}, failed {}, in doubt {}, deferred for quiet hours {}, \
             deferred for caps {}, cancelled {}",
            self.sent,
            self.retry,
            self.failed,
            self.in_doubt,
            self.deferred_quiet_hours,
            self.deferred_cap,
            self.cancelled
        )?;
        for (label, n) in [
            ("handed back unsent", self.released),
            ("found in doubt after a crash", self.recovered_in_doubt),
            ("in doubt, found at the provider", self.reconciled_sent),
            (
                "in doubt, not at the provider (due again)",
                self.reconciled_retry,
            ),
        ] {
            if n > 0 {
                write!(f, ", {label} {n}")?;
            }
        }
        Ok(())
    }
}

/// What became of one claimed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Sent,
    Retry,
    Failed,
    InDoubt,
    DeferredQuiet,
    DeferredCap,
    Cancelled,
    Released,
}

impl DispatchSummary {
    fn count(&mut self, step: Step) {
        let n = match step {
            Step::Sent => &mut self.sent,
            Step::Retry => &mut self.retry,
            Step::Failed => &mut self.failed,
            Step::InDoubt => &mut self.in_doubt,
            Step::DeferredQuiet => &mut self.deferred_quiet_hours,
            Step::DeferredCap => &mut self.deferred_cap,
            Step::Cancelled => &mut self.cancelled,
            Step::Released => &mut self.released,
        };
        *n += 1;
    }
}

/// Sends everything due at `now`, once. First it recovers claims whose process
/// died and asks the SMS provider about attempts in doubt. Stops claiming when
/// shutdown begins; a send already started is finished and recorded.
pub async fn run_once(ctx: &AppContext, now: DateTime<Utc>) -> anyhow::Result<DispatchSummary> {
    let sending = &ctx.settings.sending;
    let mut summary = DispatchSummary::default();
    {
        let mut tx = ctx.store.begin().await?;
        let (in_doubt, _released) = messages::recover_expired_leases(&mut tx, now).await?;
        tx.commit().await?;
        summary.recovered_in_doubt = in_doubt;
    }
    reconcile_in_doubt(ctx, now, &mut summary).await?;

    let run = Run {
        ctx,
        now,
        origin: ctx.clock.now(),
    };
    let lease = Duration::seconds(sending.lease_seconds as i64);
    while !ctx.shutdown.is_cancelled() {
        let channels: Vec<Channel> = [Channel::Email, Channel::Sms]
            .into_iter()
            .filter(|c| !ctx.channels.is_paused(*c))
            .collect();
        if channels.is_empty() {
            break;
        }
        let claimed = {
            let mut conn = ctx.store.conn().await?;
            messages::claim_due(
                &mut conn,
                now,
                now + lease,
                i64::from(sending.batch_size),
                &channels,
            )
            .await?
        };
        if claimed.is_empty() {
            break;
        }
        for step in run.batch(&claimed).await? {
            summary.count(step);
        }
    }
    Ok(summary)
}

/// One dispatch run's shared state.
struct Run<'a> {
    ctx: &'a AppContext,
    /// The run's idea of now, for every decision.
    now: DateTime<Utc>,
    /// The clock's reading when the run began; pacing waits on the clock.
    origin: DateTime<Utc>,
}

/// A claimed message cleared to go, with its client.
type Ready<'m> = (&'m ClaimedMessage, &'m DispatchTarget);

impl Run<'_> {
    /// The run's time for a moment on the clock.
    fn run_time(&self, clock_time: DateTime<Utc>) -> DateTime<Utc> {
        self.now + (clock_time - self.origin)
    }

    /// Checks every claimed message, then sends those cleared to go, email and
    /// SMS side by side.
    async fn batch(&self, claimed: &[ClaimedMessage]) -> anyhow::Result<Vec<Step>> {
        let ctx = self.ctx;
        let targets: HashMap<i64, DispatchTarget> = {
            let mut client_ids: Vec<i64> = claimed.iter().map(|m| m.client_id).collect();
            client_ids.sort_unstable();
            client_ids.dedup();
            let mut conn = ctx.store.conn().await?;
            clients::for_dispatch(&mut conn, &client_ids, self.now - CAP_WINDOW)
                .await?
                .into_iter()
                .map(|t| (t.client.id, t))
                .collect()
        };
        let mut steps = Vec::new();
        let mut ready: HashMap<Channel, Vec<Ready<'_>>> = HashMap::new();
        let mut clients_seen = HashSet::new();
        for message in claimed {
            let channel = message.channel;
            let target = targets
                .get(&message.client_id)
                .ok_or_else(|| anyhow::anyhow!("message {} has no client", message.id))?;
            // One message per client per batch, so that the caps see the first
            // before the second is weighed; the second is claimed again at once.
            let wait = if !clients_seen.insert(message.client_id) {
                Some((self.now, Step::Released))
            } else if let Some(reason) = ineligible(&target.client, message, channel) {
                let mut tx = ctx.store.begin().await?;
                messages::cancel_claimed(&mut tx, message.id, reason, self.now).await?;
                clients::set_next_detect(&mut tx, &[(message.client_id, Some(self.now))]).await?;
                tx.commit().await?;
                steps.push(Step::Cancelled);
                continue;
            } else {
                self.must_wait(target, message).await?
            };
            match wait {
                Some((until, step)) => {
                    let mut conn = ctx.store.conn().await?;
                    messages::release(&mut conn, message.id, until).await?;
                    steps.push(step);
                }
                None => ready.entry(channel).or_default().push((message, target)),
            }
        }
        let email = ready.remove(&Channel::Email).unwrap_or_default();
        let sms = ready.remove(&Channel::Sms).unwrap_or_default();
        let (email, sms) = futures::join!(
            self.send(Channel::Email, &email),
            self.send(Channel::Sms, &sms)
        );
        steps.extend(email?);
        steps.extend(sms?);
        Ok(steps)
    }

    /// Sends in waves as wide as the channel's concurrency, or one by one at the
    /// provider's pace.
    async fn send(&self, channel: Channel, ready: &[Ready<'_>]) -> anyhow::Result<Vec<Step>> {
        let settings = &self.ctx.settings;
        let width = if self.ctx.channels.is_paced(channel) {
            1
        } else {
            match channel {
                Channel::Email => settings.email.concurrency,
                Channel::Sms => settings.sms.concurrency,
            }
            .max(1) as usize
        };
        let mut steps = Vec::with_capacity(ready.len());
        for wave in ready.chunks(width) {
            steps.extend(self.wave(channel, wave).await?);
        }
        Ok(steps)
    }

    /// One wave: its attempts are started in one statement, sent at once, and
    /// finished in one transaction.
    async fn wave(&self, channel: Channel, wave: &[Ready<'_>]) -> anyhow::Result<Vec<Step>> {
        let ctx = self.ctx;
        // Looked at again: the channel may have paused while this waited its turn.
        if ctx.shutdown.is_cancelled() || ctx.channels.is_paused(channel) {
            let mut conn = ctx.store.conn().await?;
            for (message, _) in wave {
                messages::release(&mut conn, message.id, self.now).await?;
            }
            return Ok(vec![Step::Released; wave.len()]);
        }
        let attempted_at = match ctx.channels.pace_slot(channel, ctx.clock.now()) {
            Some(slot) => {
                ctx.clock.sleep_until(slot).await;
                self.run_time(slot)
            }
            None => self.now,
        };
        let ids: Vec<i64> = wave.iter().map(|(m, _)| m.id).collect();
        let started: HashMap<i64, i64> = {
            let mut conn = ctx.store.conn().await?;
            send_log::start_attempts(&mut conn, &ids, attempted_at)
                .await?
                .into_iter()
                .collect()
        };
        let going: Vec<(&ClaimedMessage, &DispatchTarget, i64)> = wave
            .iter()
            .filter_map(|(m, t)| started.get(&m.id).map(|attempt| (*m, *t, *attempt)))
            .collect();
        let transport = ctx.channels.for_channel(channel);
        let deliveries = futures::future::join_all(going.iter().map(|(message, target, _)| {
            let outgoing = outgoing(ctx, message, channel, target, attempted_at);
            async move { transport.deliver(&outgoing).await }
        }))
        .await;
        let finished_at = self.run_time(ctx.clock.now()).max(attempted_at);
        let finishes: Vec<Finish<'_>> = going
            .iter()
            .zip(&deliveries)
            .map(|((message, _, attempt), delivery)| {
                self.finish(message, *attempt, delivery, finished_at)
            })
            .collect();
        send_log::finish_attempts(&ctx.store, &finishes, finished_at).await?;
        for finish in &finishes {
            ctx.metrics
                .send_attempt(channel.as_ref(), finish.outcome.as_ref());
        }

        let mut steps = vec![Step::Released; wave.len() - going.len()];
        for (((message, target, attempt), delivery), finish) in
            going.iter().zip(&deliveries).zip(&finishes)
        {
            tracing::debug!(
                message_id = message.id,
                attempt,
                outcome = finish.outcome.as_ref(),
                status = finish.status().as_ref(),
                "send attempt"
            );
            steps.push(
                self.after(
                    message,
                    &target.client,
                    channel,
                    delivery,
                    finish,
                    finished_at,
                )
                .await?,
            );
        }
        Ok(steps)
    }

    /// How the send log and the message record an attempt's delivery.
    fn finish<'d>(
        &self,
        message: &ClaimedMessage,
        attempt: i64,
        delivery: &'d Delivery,
        finished_at: DateTime<Utc>,
    ) -> Finish<'d> {
        let sending = &self.ctx.settings.sending;
        let (outcome, provider_id, code, error) = match delivery {
            Delivery::Sent { provider_id } => {
                (SendOutcome::Sent, Some(provider_id.as_str()), None, None)
            }
            Delivery::Retry { code, error } | Delivery::ChannelDown { code, error } => (
                SendOutcome::Retry,
                None,
                code.as_deref(),
                Some(error.as_str()),
            ),
            Delivery::Failed { code, error } => (
                SendOutcome::Failed,
                None,
                code.as_deref(),
                Some(error.as_str()),
            ),
            Delivery::InDoubt { code, error } => (
                SendOutcome::InDoubt,
                None,
                code.as_deref(),
                Some(error.as_str()),
            ),
        };
        let channel_down = matches!(delivery, Delivery::ChannelDown { .. });
        let retry_at = if channel_down {
            // Not the message's fault: it waits for the channel, attempts intact.
            Some(self.now)
        } else {
            (outcome == SendOutcome::Retry && attempt < i64::from(sending.max_attempts)).then(
                || {
                    finished_at
                        + backoff(
                            sending.retry_base_seconds,
                            sending.retry_cap_seconds,
                            attempt,
                        )
                },
            )
        };
        Finish {
            message_id: message.id,
            client_id: message.client_id,
            attempt,
            outcome,
            provider_id,
            code,
            error,
            retry_at,
            refund_attempt: channel_down,
        }
    }

    /// What follows from an attempt beyond its own record: a paused channel, or
    /// an opt-out the provider reported.
    async fn after(
        &self,
        message: &ClaimedMessage,
        client: &Client,
        channel: Channel,
        delivery: &Delivery,
        finish: &Finish<'_>,
        finished_at: DateTime<Utc>,
    ) -> anyhow::Result<Step> {
        let ctx = self.ctx;
        if let Delivery::ChannelDown { error, .. } = delivery {
            tracing::error!(channel = channel.as_ref(), "{error}");
            ctx.channels.pause(channel, error.clone());
            return Ok(Step::Released);
        }
        if channel == Channel::Sms && finish.code == Some(RECIPIENT_OPTED_OUT) {
            let mut tx = ctx.store.begin().await?;
            // The client's other unsent SMS are cancelled with it.
            clients::opt_out(&mut tx, client.id, Channel::Sms, finished_at).await?;
            audit::record(
                &mut tx,
                audit::Entry {
                    actor: Actor::System("sms provider"),
                    action: AuditAction::OptOut,
                    client_id: Some(client.id),
                    message_id: Some(message.id),
                    detail: Some(
                        "sms: the provider reports the recipient replied STOP (21610)".into(),
                    ),
                },
                finished_at,
            )
            .await?;
            tx.commit().await?;
        }
        let rejected = match delivery {
            Delivery::Failed { error, .. } => crate::domain::mail::address_rejected(error),
            _ => false,
        };
        if channel == Channel::Email && rejected {
            let mut tx = ctx.store.begin().await?;
            // No email goes to the address again until it changes.
            clients::set_email_bad(&mut tx, client.id, EmailProblem::Bounced, finished_at).await?;
            audit::record(
                &mut tx,
                audit::Entry {
                    actor: Actor::System("email server"),
                    action: AuditAction::EmailBounced,
                    client_id: Some(client.id),
                    message_id: Some(message.id),
                    detail: finish.error.map(str::to_owned),
                },
                finished_at,
            )
            .await?;
            tx.commit().await?;
        }
        Ok(match finish.status() {
            MessageStatus::Sent => Step::Sent,
            MessageStatus::Approved => Step::Retry,
            MessageStatus::InDoubt => Step::InDoubt,
            _ => Step::Failed,
        })
    }

    /// Whether the message must wait: quiet hours first, then the caps. A
    /// coach's own message is a conversation: it goes at once while the client
    /// is writing (within `replies.conversation_window_minutes` of their last
    /// message), otherwise when their quiet hours end, and never waits for the
    /// caps (though it counts toward them for the cadence's steps).
    async fn must_wait(
        &self,
        target: &DispatchTarget,
        message: &ClaimedMessage,
    ) -> anyhow::Result<Option<(DateTime<Utc>, Step)>> {
        let message_id = message.id;
        let client = &target.client;
        let settings = &self.ctx.settings;
        let now = self.now;
        let tz = Tz::from_str(&client.timezone).unwrap_or(settings.defaults.timezone);
        let quiet = settings.quiet_hours();
        if message.author_id.is_some() {
            let due = quiet.conversation_due(
                tz,
                now,
                target.last_reply_at.map(from_ts),
                settings.conversation_window(),
            );
            return Ok((due > now).then_some((due, Step::DeferredQuiet)));
        }
        let open = quiet.next_open(tz, now);
        if open > now {
            return Ok(Some((open, Step::DeferredQuiet)));
        }
        if target.recent_sends == 0 {
            return Ok(None);
        }
        let caps = Caps {
            per_day: settings.sending.max_per_client_per_day,
            per_week: settings.sending.max_per_client_per_week,
        };
        let recent = {
            let mut conn = self.ctx.store.conn().await?;
            messages::recent_send_times(&mut conn, client.id, message_id, now - CAP_WINDOW).await?
        };
        Ok(caps
            .next_fit(tz, now, &recent)
            .map(|fits| (quiet.next_open(tz, fits), Step::DeferredCap)))
    }
}

fn outgoing(
    ctx: &AppContext,
    message: &ClaimedMessage,
    channel: Channel,
    target: &DispatchTarget,
    attempted_at: DateTime<Utc>,
) -> Outgoing {
    let client = &target.client;
    Outgoing {
        message_id: message.id,
        reference: message.id.to_string(),
        channel,
        to: message.recipient.clone(),
        subject: message.subject.clone(),
        body: message.body.clone(),
        html: message.html.clone(),
        email_message_id: message.email_message_id.clone(),
        in_reply_to: message.email_in_reply_to.clone(),
        reply_to: Some(if ctx.settings.email.inbound.is_on() {
            ctx.settings.email.inbound.address.clone()
        } else {
            target.coach_email.clone()
        }),
        discreet: client.discreet,
        unsubscribe_url: (channel == Channel::Email).then(|| ctx.unsubscribe.url(client.id)),
        attempted_at,
    }
}

/// Asks the provider about each SMS in doubt: found means sent, not found means
/// it may go again. Email in doubt is left for a coach.
async fn reconcile_in_doubt(
    ctx: &AppContext,
    now: DateTime<Utc>,
    summary: &mut DispatchSummary,
) -> anyhow::Result<()> {
    if ctx.channels.is_paused(Channel::Sms) {
        return Ok(());
    }
    let in_doubt = {
        let mut conn = ctx.store.conn().await?;
        messages::in_doubt_sms(&mut conn, 500).await?
    };
    for row in in_doubt {
        if ctx.shutdown.is_cancelled() {
            break;
        }
        let message = &row.message;
        let since = row
            .last_attempt_at
            .map_or(from_ts(message.created_at), from_ts);
        let probe = Outgoing {
            message_id: message.id,
            reference: message.id.to_string(),
            channel: Channel::Sms,
            to: message.recipient.clone(),
            subject: None,
            body: message.body.clone(),
            html: None,
            email_message_id: None,
            in_reply_to: None,
            reply_to: None,
            discreet: false,
            unsubscribe_url: None,
            attempted_at: since,
        };
        let answer = ctx.channels.sms.reconcile(&probe, since).await;
        let (outcome, provider_id, note) = match &answer {
            Reconciliation::Found(sid) => (
                Some(SendOutcome::Sent),
                Some(sid.as_str()),
                "the provider has this message",
            ),
            Reconciliation::NotFound => (
                None,
                None,
                "the provider does not have this message; due again",
            ),
            Reconciliation::Unknown => continue,
        };
        let mut tx = ctx.store.begin().await?;
        let changed = match answer {
            Reconciliation::Found(ref sid) => {
                messages::resolve_in_doubt_as_sent(&mut tx, message.id, Some(sid), now).await?
            }
            _ => messages::retry_in_doubt(&mut tx, message.id, now).await?,
        };
        if changed {
            send_log::append(
                &mut tx,
                &Note {
                    message_id: message.id,
                    event: LogEvent::Reconcile,
                    attempt: message.attempts,
                    channel: message.channel,
                    recipient: &message.recipient,
                    outcome,
                    provider_id,
                    delivery_status: None,
                    code: None,
                    error: Some(note),
                },
                now,
            )
            .await?;
            if outcome.is_some() {
                summary.reconciled_sent += 1;
            } else {
                summary.reconciled_retry += 1;
            }
        }
        tx.commit().await?;
    }
    Ok(())
}

/// Why `message` may no longer go to `client` on `channel`, if it may not.
fn ineligible(client: &Client, message: &ClaimedMessage, channel: Channel) -> Option<Refusal> {
    let purpose = match message.author_id {
        Some(_) => Purpose::CoachMessage,
        None => Purpose::Cadence {
            drafted_at: Some(from_ts(message.created_at)),
        },
    };
    eligibility(client, channel, purpose).err()
}

/// Exponential backoff with up to 20% jitter: base · 2^(attempt−1), capped.
fn backoff(base_seconds: u64, cap_seconds: u64, attempt: i64) -> Duration {
    let exponent = u32::try_from(attempt.saturating_sub(1))
        .unwrap_or(u32::MAX)
        .min(30);
    let delay = base_seconds
        .saturating_mul(1u64 << exponent)
        .min(cap_seconds);
    let jitter = fastrand::u64(0..=delay / 5);
    Duration::from_std(StdDuration::from_secs(delay + jitter)).unwrap_or(Duration::hours(1))
}
