//! The outbox worker. It claims due approved messages with a lease, checks again
//! that each may still go out, sends it through the channel's transport and
//! records the attempt. No transaction is held open across a send: on SQLite that
//! would block every writer for as long as the provider takes.

pub mod window;

use std::fmt;
use std::str::FromStr;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::channels::{Delivery, Outgoing};
use crate::context::AppContext;
use crate::domain::{Channel, ClientStatus, SendOutcome};
use crate::store::messages::{self, ClaimedMessage};
use crate::store::send_log::{self, Finish};
use crate::store::{clients, coaches, from_ts};
use window::{Caps, QuietHours};

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
    /// Claimed but handed back unsent because shutdown began.
    pub released: u64,
    /// Claims of a crashed process found in doubt (an attempt had started).
    pub recovered_in_doubt: u64,
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
        if self.released > 0 {
            write!(f, ", handed back at shutdown {}", self.released)?;
        }
        if self.recovered_in_doubt > 0 {
            write!(
                f,
                ", found in doubt after a crash {}",
                self.recovered_in_doubt
            )?;
        }
        Ok(())
    }
}

/// Sends everything due at `now`, once. Stops claiming when shutdown begins;
/// a send already started is finished and recorded.
pub async fn run_once(ctx: &AppContext, now: DateTime<Utc>) -> anyhow::Result<DispatchSummary> {
    let sending = &ctx.settings.sending;
    let mut summary = DispatchSummary::default();
    {
        let mut tx = ctx.store.begin().await?;
        let (in_doubt, _released) = messages::recover_expired_leases(&mut tx, now).await?;
        tx.commit().await?;
        summary.recovered_in_doubt = in_doubt;
    }
    let lease = Duration::seconds(sending.lease_seconds as i64);
    'claiming: while !ctx.shutdown.is_cancelled() {
        let claimed = {
            let mut conn = ctx.store.conn().await?;
            messages::claim_due(&mut conn, now, now + lease, i64::from(sending.batch_size)).await?
        };
        if claimed.is_empty() {
            break;
        }
        for (i, message) in claimed.iter().enumerate() {
            if ctx.shutdown.is_cancelled() {
                let mut conn = ctx.store.conn().await?;
                for rest in &claimed[i..] {
                    messages::release(&mut conn, rest.id, now).await?;
                    summary.released += 1;
                }
                break 'claiming;
            }
            process(ctx, message, now, &mut summary).await?;
        }
    }
    Ok(summary)
}

/// Why a claimed message must not go out any more, if it must not.
fn ineligible(
    client: &clients::ClientRow,
    message: &ClaimedMessage,
    channel: Channel,
) -> Option<&'static str> {
    match client.status() {
        Some(ClientStatus::Active) => {}
        Some(ClientStatus::Paused) | None => return Some("paused"),
        Some(ClientStatus::Hold) => return Some("hold"),
        Some(ClientStatus::Discharged) => return Some("discharged"),
    }
    if client.opted_out_at(channel).is_some() {
        return Some("opted_out");
    }
    if !client.may_contact_by(channel) {
        return Some("no_consent");
    }
    if client.quiet_since() > from_ts(message.created_at) {
        return Some("re_engaged");
    }
    None
}

async fn process(
    ctx: &AppContext,
    message: &ClaimedMessage,
    now: DateTime<Utc>,
    summary: &mut DispatchSummary,
) -> anyhow::Result<()> {
    let settings = &ctx.settings;
    let channel = Channel::from_str(&message.channel)?;
    let (client, coach) = {
        let mut conn = ctx.store.conn().await?;
        let client = clients::by_id(&mut conn, message.client_id).await?;
        let coach = match &client {
            Some(c) => coaches::by_id(&mut conn, c.coach_id).await?,
            None => None,
        };
        (client, coach)
    };
    let Some(client) = client else {
        anyhow::bail!("message {} has no client", message.id);
    };
    if let Some(reason) = ineligible(&client, message, channel) {
        let mut tx = ctx.store.begin().await?;
        messages::cancel_claimed(&mut tx, message.id, reason, now).await?;
        clients::set_next_detect(&mut tx, client.id, Some(now)).await?;
        tx.commit().await?;
        summary.cancelled += 1;
        return Ok(());
    }

    let tz = Tz::from_str(&client.timezone).unwrap_or(settings.defaults.timezone);
    let quiet = QuietHours {
        start: settings.sending.quiet_start,
        end: settings.sending.quiet_end,
    };
    let open = quiet.next_open(tz, now);
    if open > now {
        let mut conn = ctx.store.conn().await?;
        messages::release(&mut conn, message.id, open).await?;
        summary.deferred_quiet_hours += 1;
        return Ok(());
    }
    let caps = Caps {
        per_day: settings.sending.max_per_client_per_day,
        per_week: settings.sending.max_per_client_per_week,
    };
    let recent = {
        let mut conn = ctx.store.conn().await?;
        messages::recent_send_times(&mut conn, client.id, now - Duration::days(8)).await?
    };
    if let Some(fits) = caps.next_fit(tz, now, &recent) {
        let mut conn = ctx.store.conn().await?;
        messages::release(&mut conn, message.id, quiet.next_open(tz, fits)).await?;
        summary.deferred_cap += 1;
        return Ok(());
    }

    let Some(attempt) = send_log::start_attempt(
        &ctx.store,
        message.id,
        &message.channel,
        &message.recipient,
        now,
    )
    .await?
    else {
        return Ok(());
    };
    let outgoing = Outgoing {
        message_id: message.id,
        channel,
        to: message.recipient.clone(),
        subject: message.subject.clone(),
        body: message.body.clone(),
        html: message.html.clone(),
        email_message_id: message.email_message_id.clone(),
        reply_to: coach.map(|c| c.email),
        attempted_at: now,
    };
    let delivery = ctx.channels.for_channel(channel).deliver(&outgoing).await;
    let (outcome, provider_id, code, error) = match &delivery {
        Delivery::Sent { provider_id } => {
            (SendOutcome::Sent, Some(provider_id.as_str()), None, None)
        }
        Delivery::Retry { code, error } => (
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
    let retry_at = (outcome == SendOutcome::Retry
        && attempt < i64::from(settings.sending.max_attempts))
    .then(|| {
        now + backoff(
            settings.sending.retry_base_seconds,
            settings.sending.retry_cap_seconds,
            attempt,
        )
    });
    let finish = Finish {
        outcome,
        provider_id,
        code,
        error,
        retry_at,
    };
    let status = send_log::finish_attempt(&ctx.store, message.id, attempt, &finish, now).await?;
    tracing::info!(
        message_id = message.id,
        attempt,
        outcome = outcome.as_ref(),
        status,
        "send attempt"
    );
    match (outcome, retry_at) {
        (SendOutcome::Sent, _) => summary.sent += 1,
        (SendOutcome::Retry, Some(_)) => summary.retry += 1,
        (SendOutcome::Retry, None) | (SendOutcome::Failed, _) => summary.failed += 1,
        (SendOutcome::InDoubt, _) => summary.in_doubt += 1,
    }
    Ok(())
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
