//! The daily digest: one email to each coach with something waiting, counting
//! the pending drafts, the replies waiting, any crisis flags and the reach-out
//! tasks, with a link. It names no client beyond a first name.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::app::channels::{Delivery, Outgoing};
use crate::app::context::AppContext;
use crate::domain::Channel;
use crate::store::{coaches, digest as counts};

#[derive(Debug, Default, Clone, Serialize)]
pub struct DigestSummary {
    pub sent: u64,
    pub nothing_waiting: u64,
    pub already_sent_today: u64,
    pub failed: u64,
}

impl std::fmt::Display for DigestSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "digests sent {}, nothing waiting {}, already sent today {}, failed {}",
            self.sent, self.nothing_waiting, self.already_sent_today, self.failed
        )
    }
}

/// Sends today's digests (the day in `defaults.timezone`); a coach gets at
/// most one a day, however often this runs.
pub async fn run(ctx: &AppContext, now: DateTime<Utc>) -> anyhow::Result<DigestSummary> {
    let mut summary = DigestSummary::default();
    let day = now
        .with_timezone(&ctx.settings.defaults.timezone)
        .date_naive();
    let all = {
        let mut conn = ctx.store.conn().await?;
        coaches::all_active(&mut conn).await?
    };
    let link = ctx
        .settings
        .http
        .public_url
        .as_str()
        .trim_end_matches('/')
        .to_owned();
    for coach in all {
        let (waiting, first_names) = {
            let mut conn = ctx.store.conn().await?;
            if counts::sent_on(&mut conn, coach.id, day).await? {
                summary.already_sent_today += 1;
                continue;
            }
            let scope = coaches::scope_for(&mut conn, &coach, now).await?;
            (
                counts::waiting(&mut conn, &scope).await?,
                counts::outreach_first_names(&mut conn, &scope).await?,
            )
        };
        if waiting.is_empty() && first_names.is_empty() {
            summary.nothing_waiting += 1;
            continue;
        }
        let mut body = format!("Good morning, {}.\n\n", coach.first_name());
        if waiting.crisis > 0 {
            body.push_str(&format!(
                "{} crisis reply(ies) need you now: {link}/replies\n",
                waiting.crisis
            ));
        }
        body.push_str(&format!(
            "{} draft(s) wait for you: {link}/\n{} reply(ies) wait: {link}/replies\n",
            waiting.drafts, waiting.replies
        ));
        if !first_names.is_empty() {
            body.push_str(&format!(
                "Reach out personally to: {}\n",
                first_names.join(", ")
            ));
        }
        let message = Outgoing::note(
            Channel::Email,
            format!("digest-{}-{day}", coach.id),
            coach.email.clone(),
            Some(format!(
                "Your reengage day: {} waiting",
                waiting.drafts + waiting.replies
            )),
            body,
            &ctx.settings.email.from,
            now,
        );
        let delivery = ctx
            .channels
            .deliver_gated(&ctx.clock, Channel::Email, &message)
            .await;
        let mut conn = ctx.store.conn().await?;
        match delivery {
            Delivery::Sent { .. } => {
                counts::mark_sent(&mut conn, coach.id, day).await?;
                summary.sent += 1;
            }
            other => {
                tracing::error!(coach = coach.id, "digest not sent: {other:?}");
                summary.failed += 1;
            }
        }
    }
    Ok(summary)
}
