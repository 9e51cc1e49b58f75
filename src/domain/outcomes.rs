//! Does outreach work? An episode's outcomes, each credited to the message
//! sent last before it, summed by a dimension, with 95% Wilson intervals, as
//! `docs/domain.md` ("Outcomes") defines them:
//!
//! - an episode is **reached** once a message of it is sent; its first send
//!   is `t0`, and it counts in the period of its `t0`;
//! - an outcome counts within `window` after `t0`: `replied` (a reply that is
//!   not a bare keyword nor automatic), `returned` (a check-in or an attended
//!   session), `reached_personally` (a coach's contact), `opted_out`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Channel, MessageStatus};

/// What came of a reached episode, the best first. The names are the
/// metrics' labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[derive(strum::AsRefStr, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum Outcome {
    Returned,
    Replied,
    ReachedPersonally,
    OptedOut,
    None,
}

/// What became of a sent message, as its provider reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// An SMS its provider says arrived; an email once sent (no bounce came back).
    Delivered,
    /// The provider reported it undelivered or failed.
    Undelivered,
    /// An SMS the provider has not reported on yet.
    Unknown,
}

impl Fate {
    /// The fate of a message in `status` on `channel` with the provider's
    /// `delivery_status`; `None` if it was never sent. The one "delivered" rule.
    pub fn of(
        status: MessageStatus,
        channel: Channel,
        delivery_status: Option<&str>,
    ) -> Option<Self> {
        if status != MessageStatus::Sent {
            return None;
        }
        Some(match delivery_status {
            Some("undelivered" | "failed") => Fate::Undelivered,
            Some("delivered") => Fate::Delivered,
            _ if channel == Channel::Email => Fate::Delivered,
            _ => Fate::Unknown,
        })
    }
}

/// z for a 95% interval.
const Z: f64 = 1.96;

/// The 95% Wilson score interval for `k` successes in `n` trials; `(0, 1)`
/// when there are none, since nothing is known then.
pub fn wilson(k: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let z2 = Z * Z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// What a report is summed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[derive(Serialize, strum::EnumString, strum::Display, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum By {
    Step,
    Channel,
    Template,
    Variant,
    Edited,
    Language,
    Coach,
    Month,
}

/// A message of an episode that was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub at: i64,
    /// `None` for a coach's own message.
    pub step: Option<i64>,
    pub channel: Channel,
    pub template: String,
    pub variant: Option<String>,
    pub edited: bool,
    pub delivered: bool,
}

/// What is known of one reached episode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Episode {
    pub language: String,
    /// The client's coach.
    pub coach: String,
    /// Its sent messages, oldest first (never empty for a reached episode).
    pub sent: Vec<Sent>,
    /// When the client replied, came back, was reached personally, opted out.
    pub replies: Vec<i64>,
    pub returns: Vec<i64>,
    pub contacts: Vec<i64>,
    pub opt_outs: Vec<i64>,
}

impl Episode {
    /// The first send, if any.
    pub fn t0(&self) -> Option<i64> {
        self.sent.first().map(|s| s.at)
    }

    /// The first of `times` within `window` seconds of `t0`.
    pub fn first_within(&self, times: &[i64], window: i64) -> Option<i64> {
        let t0 = self.t0()?;
        times
            .iter()
            .copied()
            .filter(|t| *t >= t0 && *t <= t0 + window)
            .min()
    }

    /// What came of a reached episode, the best first; `None` if not reached.
    pub fn outcome(&self, window: i64) -> Option<Outcome> {
        self.t0()?;
        let within = |times: &[i64]| self.first_within(times, window).is_some();
        Some(if within(&self.returns) {
            Outcome::Returned
        } else if within(&self.replies) {
            Outcome::Replied
        } else if within(&self.contacts) {
            Outcome::ReachedPersonally
        } else if within(&self.opt_outs) {
            Outcome::OptedOut
        } else {
            Outcome::None
        })
    }

    /// The message credited for an outcome at `at`: the last sent before it.
    fn credited(&self, at: i64) -> Option<&Sent> {
        self.sent.iter().rev().find(|s| s.at <= at)
    }

    fn key(&self, by: By, sent: &Sent) -> String {
        match by {
            By::Step => sent
                .step
                .map_or_else(|| "coach".to_owned(), |s| s.to_string()),
            By::Channel => sent.channel.to_string(),
            By::Template => sent.template.clone(),
            By::Variant => format!(
                "{} {}",
                sent.template,
                sent.variant.as_deref().unwrap_or("(base)")
            ),
            By::Edited => (if sent.edited { "edited" } else { "unedited" }).to_owned(),
            By::Language => self.language.clone(),
            By::Coach => self.coach.clone(),
            By::Month => self
                .t0()
                .and_then(|t| DateTime::<Utc>::from_timestamp(t, 0))
                .map_or_else(String::new, |t| t.format("%Y-%m").to_string()),
        }
    }
}

/// One row of a report: the episodes a value of the dimension reached, and
/// the outcomes credited to it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Row {
    pub key: String,
    pub episodes: u64,
    pub sent: u64,
    pub delivered: u64,
    pub replied: u64,
    pub returned: u64,
    pub reached_personally: u64,
    pub opted_out: u64,
    pub reply_rate: f64,
    pub return_rate: f64,
    pub return_rate_low: f64,
    pub return_rate_high: f64,
}

/// The rows of `episodes` by `by`, outcomes counted within `window_seconds`
/// of each `t0`, in key order.
pub fn rows(episodes: &[Episode], by: By, window_seconds: i64) -> Vec<Row> {
    #[derive(Default)]
    struct Tally {
        episodes: u64,
        sent: u64,
        delivered: u64,
        replied: u64,
        returned: u64,
        reached_personally: u64,
        opted_out: u64,
    }
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    for episode in episodes {
        let mut keys: Vec<String> = Vec::new();
        for sent in &episode.sent {
            let key = episode.key(by, sent);
            let tally = tallies.entry(key.clone()).or_default();
            tally.sent += 1;
            tally.delivered += u64::from(sent.delivered);
            if !keys.contains(&key) {
                tally.episodes += 1;
                keys.push(key);
            }
        }
        for (times, pick) in [
            (&episode.replies, 0),
            (&episode.returns, 1),
            (&episode.contacts, 2),
            (&episode.opt_outs, 3),
        ] {
            let Some(at) = episode.first_within(times, window_seconds) else {
                continue;
            };
            let Some(sent) = episode.credited(at) else {
                continue;
            };
            let tally = tallies.entry(episode.key(by, sent)).or_default();
            match pick {
                0 => tally.replied += 1,
                1 => tally.returned += 1,
                2 => tally.reached_personally += 1,
                _ => tally.opted_out += 1,
            }
        }
    }
    tallies
        .into_iter()
        .map(|(key, t)| {
            // Every key comes from a sent message: `episodes` is at least 1.
            let rate = |k: u64| k as f64 / t.episodes.max(1) as f64;
            let (low, high) = wilson(t.returned, t.episodes);
            Row {
                key,
                episodes: t.episodes,
                sent: t.sent,
                delivered: t.delivered,
                replied: t.replied,
                returned: t.returned,
                reached_personally: t.reached_personally,
                opted_out: t.opted_out,
                reply_rate: rate(t.replied),
                return_rate: rate(t.returned),
                return_rate_low: low,
                return_rate_high: high,
            }
        })
        .collect()
}

/// The median and quartiles of some durations, in hours.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Spread {
    pub count: usize,
    pub q1_hours: f64,
    pub median_hours: f64,
    pub q3_hours: f64,
}

/// The quartiles of `seconds` (linear between the nearest ranks); `None`
/// for none.
pub fn spread(mut seconds: Vec<i64>) -> Option<Spread> {
    if seconds.is_empty() {
        return None;
    }
    seconds.sort_unstable();
    let at = |q: f64| {
        let rank = q * (seconds.len() - 1) as f64;
        let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
        let value =
            seconds[low] as f64 + (seconds[high] - seconds[low]) as f64 * (rank - low as f64);
        value / 3600.0
    };
    Some(Spread {
        count: seconds.len(),
        q1_hours: at(0.25),
        median_hours: at(0.5),
        q3_hours: at(0.75),
    })
}

/// How long reached episodes took to their first reply and their return.
pub fn times(episodes: &[Episode], window_seconds: i64) -> (Option<Spread>, Option<Spread>) {
    let after = |pick: fn(&Episode) -> &Vec<i64>| {
        episodes
            .iter()
            .filter_map(|e| Some(e.first_within(pick(e), window_seconds)? - e.t0()?))
            .collect::<Vec<_>>()
    };
    (spread(after(|e| &e.replies)), spread(after(|e| &e.returns)))
}

/// Whether there are rows to compare and every two of them have return-rate
/// intervals that overlap, so that the numbers cannot yet tell them apart.
pub fn undecided(rows: &[Row]) -> bool {
    let overlap = |a: &Row, b: &Row| {
        a.return_rate_low <= b.return_rate_high && b.return_rate_low <= a.return_rate_high
    };
    rows.len() > 1 && rows.iter().all(|a| rows.iter().all(|b| overlap(a, b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(v: (f64, f64)) -> (f64, f64) {
        (
            (v.0 * 1000.0).round() / 1000.0,
            (v.1 * 1000.0).round() / 1000.0,
        )
    }

    #[test]
    fn wilson_intervals_match_the_published_values() {
        assert_eq!(round(wilson(0, 10)), (0.0, 0.278));
        assert_eq!(round(wilson(5, 10)), (0.237, 0.763));
        assert_eq!(round(wilson(50, 100)), (0.404, 0.596));
        assert_eq!(wilson(0, 0), (0.0, 1.0));
        assert_eq!(round(wilson(10, 10)), (0.722, 1.0));
    }

    fn sent(at: i64, step: i64, channel: Channel) -> Sent {
        Sent {
            at,
            step: Some(step),
            channel,
            template: format!("en/checkin-{step}"),
            variant: None,
            edited: false,
            delivered: true,
        }
    }

    const DAY: i64 = 86_400;

    #[test]
    fn an_outcome_is_credited_to_the_message_sent_last_before_it_within_the_window() {
        let back_after_step_one = Episode {
            sent: vec![sent(0, 1, Channel::Sms)],
            returns: vec![3 * DAY],
            ..Default::default()
        };
        let replied_to_step_two = Episode {
            sent: vec![sent(0, 1, Channel::Sms), sent(7 * DAY, 2, Channel::Email)],
            replies: vec![8 * DAY],
            ..Default::default()
        };
        let back_too_late = Episode {
            sent: vec![sent(0, 1, Channel::Email)],
            returns: vec![31 * DAY],
            ..Default::default()
        };
        let all = [back_after_step_one, replied_to_step_two, back_too_late];
        let by_step = rows(&all, By::Step, 30 * DAY);
        assert_eq!(by_step.len(), 2);
        assert_eq!(
            (
                by_step[0].key.as_str(),
                by_step[0].episodes,
                by_step[0].returned,
                by_step[0].replied
            ),
            ("1", 3, 1, 0)
        );
        assert_eq!(
            (
                by_step[1].key.as_str(),
                by_step[1].episodes,
                by_step[1].replied
            ),
            ("2", 1, 1)
        );
        let by_channel = rows(&all, By::Channel, 30 * DAY);
        let email = by_channel.iter().find(|r| r.key == "email").unwrap();
        assert_eq!(
            (email.episodes, email.sent, email.replied, email.returned),
            (2, 2, 1, 0)
        );
        let (reply, back) = times(&all, 30 * DAY);
        assert_eq!(reply.unwrap().median_hours, 8.0 * 24.0);
        assert_eq!(back.unwrap().count, 1);
    }

    #[test]
    fn quartiles_interpolate_between_ranks() {
        let s = spread(vec![3600, 7200, 10_800, 14_400]).unwrap();
        assert_eq!((s.q1_hours, s.median_hours, s.q3_hours), (1.75, 2.5, 3.25));
        assert!(spread(Vec::new()).is_none());
    }
}
