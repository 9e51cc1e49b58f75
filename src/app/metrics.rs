//! Prometheus metrics: drafts by status, sends by outcome and channel, paused
//! channels, and job runs with their durations.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::pipeline::channels::Channels;
use crate::store::Store;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SendLabels {
    channel: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabels {
    channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    job: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobNameLabels {
    job: String,
}

pub struct Metrics {
    registry: Registry,
    messages: Family<StatusLabels, Gauge>,
    send_attempts: Family<SendLabels, Gauge>,
    channel_paused: Family<ChannelLabels, Gauge>,
    job_runs: Family<JobLabels, Counter>,
    job_seconds: Family<JobNameLabels, Histogram>,
    oldest_pending: Gauge,
    crisis_open: Gauge,
    crisis_oldest: Gauge,
    episodes: Family<OutcomeLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("reengage");
        let messages = Family::<StatusLabels, Gauge>::default();
        let send_attempts = Family::<SendLabels, Gauge>::default();
        let channel_paused = Family::<ChannelLabels, Gauge>::default();
        let job_runs = Family::<JobLabels, Counter>::default();
        let job_seconds = Family::<JobNameLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.01, 4.0, 8))
        });
        registry.register(
            "messages",
            "Messages (drafts and sends) by status",
            messages.clone(),
        );
        registry.register(
            "send_attempts",
            "Send attempts in the send log by channel and outcome",
            send_attempts.clone(),
        );
        registry.register(
            "channel_paused",
            "1 while a channel is stopped for an operator to fix (for example refused credentials)",
            channel_paused.clone(),
        );
        registry.register("job_runs", "Scheduled job runs by result", job_runs.clone());
        registry.register(
            "job_duration_seconds",
            "Scheduled job run durations",
            job_seconds.clone(),
        );
        let oldest_pending = Gauge::default();
        registry.register(
            "oldest_pending_draft_age_seconds",
            "Age of the oldest draft waiting for a coach (0 when none)",
            oldest_pending.clone(),
        );
        let crisis_open = Gauge::default();
        registry.register(
            "crisis_alerts_open",
            "Crisis replies nobody has acknowledged yet (\"I'm on it\")",
            crisis_open.clone(),
        );
        let crisis_oldest = Gauge::default();
        registry.register(
            "crisis_alert_oldest_age_seconds",
            "Age of the oldest crisis reply nobody has acknowledged (0 when none)",
            crisis_oldest.clone(),
        );
        let episodes = Family::<OutcomeLabels, Gauge>::default();
        registry.register(
            "episodes_total",
            "Reached episodes by outcome within reports.window_days of the first send \
             (returned, replied, reached_personally, opted_out, none: the first that applies)",
            episodes.clone(),
        );
        Self {
            episodes,
            crisis_open,
            crisis_oldest,
            registry,
            messages,
            send_attempts,
            channel_paused,
            job_runs,
            job_seconds,
            oldest_pending,
        }
    }
}

impl Metrics {
    pub fn job_finished(&self, job: &str, ok: bool, seconds: f64) {
        self.job_runs
            .get_or_create(&JobLabels {
                job: job.to_owned(),
                result: if ok { "ok" } else { "error" }.to_owned(),
            })
            .inc();
        self.job_seconds
            .get_or_create(&JobNameLabels {
                job: job.to_owned(),
            })
            .observe(seconds);
    }

    /// Reads the counts from the database and renders the text exposition
    /// format; episodes' outcomes count within `window_seconds` of their first send.
    pub async fn render(
        &self,
        store: &Store,
        channels: &Channels,
        window_seconds: i64,
        now: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<String> {
        let mut conn = store.conn().await?;
        let outcomes =
            crate::store::reports::outcome_counts(&mut conn, window_seconds, now).await?;
        self.episodes.clear();
        for outcome in [
            "returned",
            "replied",
            "reached_personally",
            "opted_out",
            "none",
        ] {
            self.episodes
                .get_or_create(&OutcomeLabels {
                    outcome: outcome.to_owned(),
                })
                .set(outcomes.get(outcome).copied().unwrap_or(0) as i64);
        }
        let (by_status, by_outcome) = crate::store::counts(&mut conn).await?;
        let oldest = crate::store::oldest_pending_draft(&mut conn).await?;
        let age = |at: Option<chrono::DateTime<chrono::Utc>>| {
            at.map_or(0, |at| (now - at).num_seconds().max(0))
        };
        self.oldest_pending.set(age(oldest));
        let (open, oldest_crisis) = crate::store::inbound::open_crisis(&mut conn).await?;
        self.crisis_open.set(open);
        self.crisis_oldest.set(age(oldest_crisis));
        self.messages.clear();
        for (status, n) in by_status {
            self.messages.get_or_create(&StatusLabels { status }).set(n);
        }
        self.send_attempts.clear();
        for (channel, outcome, n) in by_outcome {
            self.send_attempts
                .get_or_create(&SendLabels { channel, outcome })
                .set(n);
        }
        let paused = channels.paused();
        for channel in ["email", "sms"] {
            self.channel_paused
                .get_or_create(&ChannelLabels {
                    channel: channel.to_owned(),
                })
                .set(i64::from(paused.contains_key(channel)));
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}
