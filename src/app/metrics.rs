//! Prometheus metrics. Counted in the process since it started: send
//! attempts, inbound messages, HTTP requests and job runs, with durations.
//! Read from the database at each scrape (gauges): messages by status, send-log
//! rows, paused channels, crisis alerts, and episodes by outcome (refreshed at
//! most once a minute: it reads every episode).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use strum::IntoEnumIterator;

use crate::app::channels::Channels;
use crate::domain::outcomes::Outcome;
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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabels {
    classification: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: String,
}

/// How long a computed count of episodes' outcomes is shown before it is
/// read again.
const EPISODES_FRESH: std::time::Duration = std::time::Duration::from_secs(60);

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
    episodes_read_at: std::sync::Mutex<Option<std::time::Instant>>,
    sends: Family<SendLabels, Counter>,
    inbound: Family<ClassLabels, Counter>,
    http_requests: Family<HttpLabels, Counter>,
    http_seconds: Family<RouteLabels, Histogram>,
}

/// Registers `metric` under `name` and gives it back, to keep.
fn registered<M>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M
where
    M: prometheus_client::registry::Metric + Clone,
{
    registry.register(name, help, metric.clone());
    metric
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("reengage");
        let r = &mut registry;
        let build_info = Family::<VersionLabels, Gauge>::default();
        build_info
            .get_or_create(&VersionLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
            })
            .set(1);
        r.register("build_info", "1, labelled with the version", build_info);
        Self {
            messages: registered(
                r,
                "messages",
                "Messages (drafts and sends) by status",
                Family::default(),
            ),
            send_attempts: registered(
                r,
                "send_log_rows",
                "Rows in the send log (one per attempt, kept for send_log_years) by channel and outcome",
                Family::default(),
            ),
            sends: registered(
                r,
                "send_attempts",
                "Send attempts made by this process by channel and outcome",
                Family::default(),
            ),
            inbound: registered(
                r,
                "inbound",
                "Messages received by this process (SMS and email) by first classification \
                 (or auto_reply, bounce, unreadable)",
                Family::default(),
            ),
            http_requests: registered(
                r,
                "http_requests",
                "HTTP requests answered by this process by matched route and status",
                Family::default(),
            ),
            http_seconds: registered(
                r,
                "http_request_duration_seconds",
                "HTTP request durations by matched route",
                Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 4.0, 8))),
            ),
            channel_paused: registered(
                r,
                "channel_paused",
                "1 while a channel is stopped for an operator to fix (for example refused credentials)",
                Family::default(),
            ),
            job_runs: registered(
                r,
                "job_runs",
                "Scheduled job runs by result",
                Family::default(),
            ),
            job_seconds: registered(
                r,
                "job_duration_seconds",
                "Scheduled job run durations",
                Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.01, 4.0, 8))),
            ),
            oldest_pending: registered(
                r,
                "oldest_pending_draft_age_seconds",
                "Age of the oldest draft waiting for a coach (0 when none)",
                Gauge::default(),
            ),
            crisis_open: registered(
                r,
                "crisis_alerts_open",
                "Crisis replies nobody has acknowledged yet (\"I'm on it\")",
                Gauge::default(),
            ),
            crisis_oldest: registered(
                r,
                "crisis_alert_oldest_age_seconds",
                "Age of the oldest crisis reply nobody has acknowledged (0 when none)",
                Gauge::default(),
            ),
            episodes: registered(
                r,
                "episodes_total",
                "Reached episodes by outcome within reports.window_days of the first send \
                 (returned, replied, reached_personally, opted_out, none: the first that applies)",
                Family::default(),
            ),
            episodes_read_at: std::sync::Mutex::new(None),
            registry,
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

    /// One send attempt finished: `outcome` is the send log's.
    pub fn send_attempt(&self, channel: &str, outcome: &str) {
        self.sends
            .get_or_create(&SendLabels {
                channel: channel.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// One message came in and was stored.
    pub fn inbound(&self, classification: &str) {
        self.inbound
            .get_or_create(&ClassLabels {
                classification: classification.to_owned(),
            })
            .inc();
    }

    /// One HTTP request was answered; `route` is the matched route, never
    /// the raw path.
    pub fn http_request(&self, route: &str, status: u16, seconds: f64) {
        self.http_requests
            .get_or_create(&HttpLabels {
                route: route.to_owned(),
                status: status.to_string(),
            })
            .inc();
        self.http_seconds
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
            })
            .observe(seconds);
    }

    /// Whether the episodes' outcomes are due to be read again.
    fn episodes_stale(&self) -> bool {
        let mut read_at = self
            .episodes_read_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let stale = read_at.is_none_or(|at| at.elapsed() >= EPISODES_FRESH);
        if stale {
            *read_at = Some(std::time::Instant::now());
        }
        stale
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
        if self.episodes_stale() {
            let outcomes =
                match crate::store::reports::outcome_counts(&mut conn, window_seconds, now).await {
                    Ok(outcomes) => outcomes,
                    Err(e) => {
                        *self
                            .episodes_read_at
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
                        return Err(e);
                    }
                };
            for outcome in Outcome::iter() {
                self.episodes
                    .get_or_create(&OutcomeLabels {
                        outcome: outcome.as_ref().to_owned(),
                    })
                    .set(outcomes.get(&outcome).copied().unwrap_or(0) as i64);
            }
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
