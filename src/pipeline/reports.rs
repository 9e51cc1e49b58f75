//! The outcome report (`reengage report`, `GET /api/v1/reports/outcomes`):
//! reached episodes in a period, their outcomes by a dimension
//! ([`crate::domain::outcomes`]), the funnel from opened to returned with
//! what fell out at each stage and why, and the time to reply and to return.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::app::context::AppContext;
use crate::domain::MessageStatus;
use crate::domain::outcomes::{self, By, Episode, Fate, Row, Spread};
use crate::store::Scope;
use crate::store::reports::{self, EpisodeMessage};

/// The report's JSON.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Report {
    pub window_days: u32,
    pub by: By,
    pub since: Option<DateTime<Utc>>,
    pub until: DateTime<Utc>,
    pub rows: Vec<Row>,
    /// The rows' return-rate intervals all overlap: the numbers cannot yet
    /// tell the rows apart (say so, rather than name a winner).
    pub undecided: bool,
    pub funnel: Funnel,
    pub time_to_reply: Option<Spread>,
    pub time_to_return: Option<Spread>,
    /// Each coach's drafts of episodes opened in the period: how long a
    /// decision took, and how many expired unseen.
    pub workload: Vec<Workload>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Workload {
    pub coach: String,
    pub drafts: u64,
    /// Approved or rejected, and how long from draft to that decision.
    pub decided: u64,
    pub time_to_decision: Option<Spread>,
    pub expired: u64,
}

/// Episodes opened in the period, and how far they got.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Funnel {
    pub opened: u64,
    pub drafted: u64,
    pub approved: u64,
    pub sent: u64,
    pub delivered: u64,
    pub replied: u64,
    pub returned: u64,
    /// The messages that fell out, and why.
    pub dropped: Dropped,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Dropped {
    pub rejected: u64,
    /// Pending until they expired: no coach decided.
    pub expired: u64,
    /// By the reason (re-engaged, opted out, hold, …).
    pub cancelled: BTreeMap<String, u64>,
    pub failed: u64,
    /// Sent, then reported undelivered by the provider.
    pub undelivered: u64,
}

/// The report over the clients in `scope` (a coach's caseload, or all), of
/// episodes reached from `since` (the start, if `None`) until `until`.
pub async fn outcomes(
    ctx: &AppContext,
    scope: &Scope,
    by: By,
    since: Option<DateTime<Utc>>,
    until: DateTime<Utc>,
) -> anyhow::Result<Report> {
    Ok(read(ctx, scope, since, until).await?.report(by))
}

/// One read of a period's episodes: the report by any dimension comes from
/// it without reading again (the outcomes page shows two).
pub struct Reading {
    window_days: u32,
    since: Option<DateTime<Utc>>,
    until: DateTime<Utc>,
    reached: Vec<Episode>,
    funnel: Funnel,
    workload: Vec<Workload>,
}

/// Reads the episodes of the clients in `scope` reached from `since` (the
/// start, if `None`) until `until`.
pub async fn read(
    ctx: &AppContext,
    scope: &Scope,
    since: Option<DateTime<Utc>>,
    until: DateTime<Utc>,
) -> anyhow::Result<Reading> {
    let window_days = ctx.settings.reports.window_days;
    let window = i64::from(window_days) * 86_400;
    let from = since.unwrap_or(DateTime::UNIX_EPOCH);
    // Two independent reads, side by side on two connections.
    let (mut episodes, mut doings) = (ctx.store.conn().await?, ctx.store.conn().await?);
    let (rows, happenings) = futures::join!(
        reports::episode_messages(&mut episodes, scope, from, until),
        reports::happenings(&mut doings, scope, from)
    );
    let (rows, happenings) = (rows?, happenings?);
    drop((episodes, doings));
    let (from, until) = (from.timestamp(), until.timestamp());
    let mut funnel = Funnel::default();
    let mut reached = Vec::new();
    let mut decisions: BTreeMap<String, (u64, Vec<i64>, u64)> = BTreeMap::new();
    for (group, episode) in reports::episodes(&rows, happenings) {
        let first = &group[0];
        let opened = (from..until).contains(&first.started_at);
        if opened {
            count(&mut funnel, group, &episode, window);
            let (drafts, waits, expired) = decisions.entry(first.coach.clone()).or_default();
            for m in group.iter().filter(|m| m.status.is_some()) {
                *drafts += 1;
                *expired += u64::from(m.status == Some(MessageStatus::Expired));
                if let (Some(made), Some(decided)) = (m.created_at, m.approved_at.or(m.rejected_at))
                {
                    waits.push(decided - made);
                }
            }
        }
        if episode.t0().is_some_and(|t0| (from..until).contains(&t0)) {
            reached.push(episode);
        }
    }
    Ok(Reading {
        window_days,
        since,
        until: DateTime::from_timestamp(until, 0).unwrap_or_default(),
        reached,
        funnel,
        workload: decisions
            .into_iter()
            .map(|(coach, (drafts, waits, expired))| Workload {
                coach,
                drafts,
                decided: waits.len() as u64,
                time_to_decision: outcomes::spread(waits),
                expired,
            })
            .collect(),
    })
}

impl Reading {
    /// The report, its rows by `by`.
    pub fn report(&self, by: By) -> Report {
        let window = i64::from(self.window_days) * 86_400;
        let (time_to_reply, time_to_return) = outcomes::times(&self.reached, window);
        let rows = outcomes::rows(&self.reached, by, window);
        Report {
            window_days: self.window_days,
            by,
            since: self.since,
            until: self.until,
            undecided: outcomes::undecided(&rows),
            rows,
            funnel: self.funnel.clone(),
            time_to_reply,
            time_to_return,
            workload: self.workload.clone(),
        }
    }
}

/// What a report covers, as a person or a script asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub by: By,
    pub since: Option<DateTime<Utc>>,
    pub until: DateTime<Utc>,
}

impl Span {
    /// Reads `by`, `since` and `until` as given (each may be missing or
    /// empty: `step`, from the start, until `now`). The error names the
    /// field, and says what it should be.
    pub fn read(
        by: Option<&str>,
        since: Option<&str>,
        until: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Span, (&'static str, String)> {
        let by = match by.map(str::trim).filter(|b| !b.is_empty()) {
            None => By::Step,
            Some(text) => parse_by(text).map_err(|e| ("by", e))?,
        };
        let Period { since, until } = period(since, until, now)?;
        Ok(Span { by, since, until })
    }
}

/// A report's dimension by its name.
pub fn parse_by(text: &str) -> Result<By, String> {
    text.parse().map_err(|_| {
        format!(
            "`{text}` is not one of step, channel, template, variant, edited, language, coach, month"
        )
    })
}

/// A report's period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub since: Option<DateTime<Utc>>,
    pub until: DateTime<Utc>,
}

/// A report's period: `since` (missing or empty: from the start) and
/// `until` (missing or empty: `now`), each read by [`parse_bound`]. The
/// error names the field.
pub fn period(
    since: Option<&str>,
    until: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Period, (&'static str, String)> {
    let bound = |field: &'static str, text: Option<&str>, end| {
        text.map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| parse_bound(t, end).map_err(|e| (field, e)))
            .transpose()
    };
    let since = bound("since", since, false)?;
    let until = bound("until", until, true)?.unwrap_or(now);
    Ok(Period { since, until })
}

/// Adds an episode opened in the period to the funnel.
fn count(funnel: &mut Funnel, messages: &[EpisodeMessage], episode: &Episode, window: i64) {
    funnel.opened += 1;
    let drafted: Vec<&EpisodeMessage> = messages.iter().filter(|m| m.status.is_some()).collect();
    funnel.drafted += u64::from(!drafted.is_empty());
    funnel.approved += u64::from(drafted.iter().any(|m| m.approved_at.is_some()));
    funnel.sent += u64::from(!episode.sent.is_empty());
    funnel.delivered += u64::from(episode.sent.iter().any(|s| s.delivered));
    let within = |times: &[i64]| episode.first_within(times, window).is_some();
    funnel.replied += u64::from(within(&episode.replies));
    funnel.returned += u64::from(within(&episode.returns));
    for m in drafted {
        let dropped = &mut funnel.dropped;
        match m.status {
            Some(MessageStatus::Rejected) => dropped.rejected += 1,
            Some(MessageStatus::Expired) => dropped.expired += 1,
            Some(MessageStatus::Failed) => dropped.failed += 1,
            Some(MessageStatus::Cancelled) => {
                let reason = m.cancel_reason.map_or("unknown", <&str>::from);
                *dropped.cancelled.entry(reason.to_owned()).or_default() += 1;
            }
            _ if m.fate() == Some(Fate::Undelivered) => dropped.undelivered += 1,
            _ => {}
        }
    }
}

/// A report's date bound: `YYYY-MM-DD` (UTC; for `until`, through the end of
/// that day) or an RFC 3339 time.
pub fn parse_bound(text: &str, end_of_day: bool) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(day) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let day = if end_of_day {
            day.succ_opt().unwrap_or(day)
        } else {
            day
        };
        return Ok(day.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("`{text}` is not a date (YYYY-MM-DD) or an RFC 3339 time"))
}

impl Report {
    /// The rows as CSV, with a header.
    pub fn to_csv(&self) -> anyhow::Result<String> {
        let mut out = csv::Writer::from_writer(Vec::new());
        for row in &self.rows {
            out.serialize(row)?;
        }
        if self.rows.is_empty() {
            // The header alone: the names a row's fields are written under.
            out.serialize(Row::default())?;
            let text = String::from_utf8(out.into_inner()?)?;
            return Ok(text
                .lines()
                .next()
                .map(|h| format!("{h}\n"))
                .unwrap_or_default());
        }
        Ok(String::from_utf8(out.into_inner()?)?)
    }

    /// A plain-text table, the funnel, and what the numbers can and cannot say.
    pub fn to_table(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "outcomes within {} days of the first send, by {}",
            self.window_days, self.by
        );
        let _ = writeln!(
            out,
            "{:<28} {:>8} {:>6} {:>9} {:>7} {:>8} {:>8} {:>9}  return rate (95% interval)",
            "key", "episodes", "sent", "delivered", "replied", "returned", "personal", "opted out"
        );
        for r in &self.rows {
            let _ = writeln!(
                out,
                "{:<28} {:>8} {:>6} {:>9} {:>7} {:>8} {:>8} {:>9}  {:.0}% ({:.0}–{:.0}%)",
                r.key,
                r.episodes,
                r.sent,
                r.delivered,
                r.replied,
                r.returned,
                r.reached_personally,
                r.opted_out,
                r.return_rate * 100.0,
                r.return_rate_low * 100.0,
                r.return_rate_high * 100.0
            );
        }
        if self.undecided {
            let _ = writeln!(
                out,
                "The intervals overlap: these numbers cannot yet tell the rows apart."
            );
        }
        let f = &self.funnel;
        let _ = writeln!(
            out,
            "funnel: opened {} → drafted {} → approved {} → sent {} → delivered {} → replied {} → returned {}",
            f.opened, f.drafted, f.approved, f.sent, f.delivered, f.replied, f.returned
        );
        let d = &f.dropped;
        let cancelled: Vec<String> = d
            .cancelled
            .iter()
            .map(|(why, n)| format!("{why} {n}"))
            .collect();
        let _ = writeln!(
            out,
            "fell out: rejected {}, expired unseen {}, cancelled {} ({}), failed {}, undelivered {}",
            d.rejected,
            d.expired,
            d.cancelled.values().sum::<u64>(),
            if cancelled.is_empty() {
                "none".to_owned()
            } else {
                cancelled.join(", ")
            },
            d.failed,
            d.undelivered
        );
        for w in &self.workload {
            let _ = writeln!(
                out,
                "coach {}: {} drafts, {} decided{}, {} expired unseen",
                w.coach,
                w.drafts,
                w.decided,
                w.time_to_decision
                    .map(|s| format!(" (median {:.1} h after drafting)", s.median_hours))
                    .unwrap_or_default(),
                w.expired
            );
        }
        for (what, spread) in [
            ("reply", &self.time_to_reply),
            ("return", &self.time_to_return),
        ] {
            if let Some(s) = spread {
                let _ = writeln!(
                    out,
                    "time to {what}: median {:.1} h (quartiles {:.1}–{:.1} h, {} episodes)",
                    s.median_hours, s.q1_hours, s.q3_hours, s.count
                );
            }
        }
        out
    }
}
