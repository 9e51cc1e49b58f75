//! The cron jobs of `serve`. Each tick only calls the job function with the
//! clock's `now`; all state is in the database. A tick that arrives while the
//! previous run of the same job is still going is skipped, not queued.

use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::Mutex;
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::app::context::AppContext;
use crate::pipeline::follow_up::{digest, housekeeping};
use crate::pipeline::replies::alerts;
use crate::pipeline::{detect, dispatch, inbox};

/// The running jobs. [`Scheduler::stop`] waits for a run in flight to finish.
pub struct Scheduler {
    inner: JobScheduler,
    gates: Vec<Arc<Mutex<()>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Detect,
    Dispatch,
    /// Crisis alerts retried and escalated, and the "replies waiting"
    /// notices: on the dispatch schedule, beside it and not inside it.
    Alerts,
    Digest,
    Housekeeping,
    Inbox,
}

impl JobKind {
    fn name(self) -> &'static str {
        match self {
            JobKind::Detect => "detect",
            JobKind::Dispatch => "dispatch",
            JobKind::Alerts => "alerts",
            JobKind::Digest => "digest",
            JobKind::Housekeeping => "housekeeping",
            JobKind::Inbox => "inbox",
        }
    }

    async fn run(self, ctx: &AppContext) {
        let now = ctx.clock.now();
        let started = std::time::Instant::now();
        let result = match self {
            JobKind::Detect => detect::run(ctx, now).await.map(|s| s.to_string()),
            JobKind::Dispatch => dispatch::run_once(ctx, now).await.map(|s| s.to_string()),
            JobKind::Alerts => alerts::run(ctx, now).await.map(|s| s.to_string()),
            JobKind::Digest => digest::run(ctx, now).await.map(|s| s.to_string()),
            JobKind::Housekeeping => housekeeping::run(ctx, now).await.map(|s| s.to_string()),
            JobKind::Inbox => inbox::run(ctx, now).await.map(|s| s.to_string()),
        };
        let seconds = started.elapsed().as_secs_f64();
        ctx.metrics
            .job_finished(self.name(), result.is_ok(), seconds);
        match result {
            Ok(summary) => tracing::info!(job = self.name(), seconds, "{summary}"),
            Err(e) => tracing::error!(
                job = self.name(),
                seconds,
                error = format!("{e:#}"),
                "job failed"
            ),
        }
    }
}

/// What one tick of a job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    Ran,
    /// The previous run of the same job was still going.
    Skipped,
    /// Shutdown has begun: nothing new starts.
    ShuttingDown,
}

/// One tick: runs the job unless its previous run still holds `gate`, or
/// shutdown has begun.
pub async fn tick(kind: JobKind, gate: &Mutex<()>, ctx: &AppContext) -> Tick {
    let Ok(_running) = gate.try_lock() else {
        tracing::warn!(job = kind.name(), "previous run still going; tick skipped");
        return Tick::Skipped;
    };
    if ctx.shutdown.is_cancelled() {
        return Tick::ShuttingDown;
    }
    kind.run(ctx).await;
    Tick::Ran
}

/// Runs dispatch as soon as [`AppContext::dispatch_now`] is notified (after a
/// run in flight, which the notice outlasts), until shutdown.
async fn dispatch_on_demand(ctx: AppContext, gate: Arc<Mutex<()>>) {
    loop {
        tokio::select! {
            () = ctx.dispatch_now.notified() => {}
            () = ctx.shutdown.cancelled() => return,
        }
        let _running = gate.lock().await;
        if ctx.shutdown.is_cancelled() {
            return;
        }
        JobKind::Dispatch.run(&ctx).await;
    }
}

impl Scheduler {
    /// Starts the jobs of `[schedule]`; an empty cron string leaves a job out.
    pub async fn start(ctx: AppContext) -> anyhow::Result<Self> {
        let inner = JobScheduler::new()
            .await
            .context("Failed to create the scheduler")?;
        // Dispatch runs on its schedule and whenever a coach's message asks
        // for it, one run at a time either way.
        let dispatch_gate = Arc::new(Mutex::new(()));
        let mut gates = vec![dispatch_gate.clone()];
        tokio::spawn(dispatch_on_demand(ctx.clone(), dispatch_gate.clone()));
        let schedule = &ctx.settings.schedule;
        for (kind, cron) in [
            (JobKind::Detect, schedule.detect.clone()),
            (JobKind::Dispatch, schedule.dispatch.clone()),
            (JobKind::Alerts, schedule.dispatch.clone()),
            (JobKind::Digest, schedule.digest.clone()),
            (JobKind::Housekeeping, schedule.housekeeping.clone()),
            (JobKind::Inbox, schedule.inbox.clone()),
        ] {
            if kind == JobKind::Inbox && !ctx.settings.email.inbound.is_on() {
                continue;
            }
            if cron.is_empty() {
                tracing::info!(job = kind.name(), "disabled by an empty schedule");
                continue;
            }
            let gate = if kind == JobKind::Dispatch {
                dispatch_gate.clone()
            } else {
                let gate = Arc::new(Mutex::new(()));
                gates.push(gate.clone());
                gate
            };
            let ctx = ctx.clone();
            let job = Job::new_async(cron.as_str(), move |_id, _scheduler| {
                let ctx = ctx.clone();
                let gate = gate.clone();
                Box::pin(async move {
                    tick(kind, &gate, &ctx).await;
                })
            })
            .with_context(|| {
                format!(
                    "config key `schedule.{}`: not a valid cron string",
                    kind.name()
                )
            })?;
            inner.add(job).await.context("Failed to add a job")?;
        }
        inner
            .start()
            .await
            .context("Failed to start the scheduler")?;
        Ok(Self { inner, gates })
    }

    /// Stops ticking, then waits for runs in flight to finish.
    pub async fn stop(mut self) {
        if let Err(e) = self.inner.shutdown().await {
            tracing::warn!(error = %e, "scheduler did not shut down cleanly");
        }
        for gate in &self.gates {
            let _finished = gate.lock().await;
        }
    }
}
