//! `reengage drafts` (list, approve, reject, and decide messages in doubt) and
//! `reengage sends list`, as a coach named by `--coach`.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Subcommand;

use crate::app::context::AppContext;
use crate::domain::MessageStatus;
use crate::pipeline::review;
use crate::store::{Scope, messages, send_log};

#[derive(Debug, Subcommand)]
pub enum DraftsCommand {
    /// List messages (all statuses unless --status).
    List {
        #[arg(long, value_parser = parse_status)]
        status: Option<MessageStatus>,
        /// Only this coach's clients.
        #[arg(long, value_name = "EMAIL")]
        coach: Option<String>,
        /// Print the message JSON of docs/architecture.md.
        #[arg(long)]
        json: bool,
    },
    /// Approve drafts as this coach.
    Approve {
        #[arg(required = true)]
        ids: Vec<i64>,
        #[arg(long, value_name = "EMAIL")]
        coach: String,
        /// Approve even drafts with error findings from the lint (audited).
        #[arg(long)]
        confirm: bool,
    },
    /// Reject a draft as this coach.
    Reject {
        id: i64,
        #[arg(long, value_name = "EMAIL")]
        coach: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Send an in-doubt message again (it may then arrive twice).
    Resend {
        id: i64,
        #[arg(long, value_name = "EMAIL")]
        coach: String,
    },
    /// Mark an in-doubt message as sent.
    Resolve {
        id: i64,
        #[arg(long, value_name = "EMAIL")]
        coach: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SendsCommand {
    /// Print the send log, one row per attempt.
    List {
        #[arg(long)]
        json: bool,
    },
}

fn parse_status(s: &str) -> Result<MessageStatus, String> {
    s.parse().map_err(|_| {
        format!("`{s}` is not a status: pending, approved, sending, sent, delivered, undelivered, failed, in_doubt, rejected, expired, cancelled")
    })
}

/// `sends list`: the send log, one row per attempt.
pub async fn sends(ctx: &AppContext, command: SendsCommand) -> anyhow::Result<ExitCode> {
    let SendsCommand::List { json } = command;
    let mut conn = ctx.store.conn().await?;
    let entries =
        send_log::list(&mut conn, &send_log::Filter::scope(Scope::All), 0, i64::MAX).await?;
    if json {
        say!("{}", serde_json::to_string_pretty(&entries)?);
    } else {
        say!(
            "{:>6} {:>7} {:>7} {:<5} {:<8} {:<20} {:<28} ERROR",
            "ID",
            "MESSAGE",
            "ATTEMPT",
            "CHAN",
            "OUTCOME",
            "STARTED",
            "TO"
        );
        for e in entries {
            say!(
                "{:>6} {:>7} {:>7} {:<5} {:<8} {:<20} {:<28} {}",
                e.id,
                e.message_id,
                e.attempt,
                e.channel.as_ref(),
                e.outcome.as_ref().map_or("started", AsRef::as_ref),
                e.started_at.format("%Y-%m-%d %H:%M:%S"),
                e.recipient,
                [e.code.as_deref(), e.error.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run(ctx: &AppContext, command: DraftsCommand) -> anyhow::Result<ExitCode> {
    let now = ctx.clock.now();
    match command {
        DraftsCommand::List {
            status,
            coach,
            json,
        } => list(ctx, status, coach.as_deref(), json).await,
        DraftsCommand::Approve {
            ids,
            coach,
            confirm,
        } => {
            let coach = match review::acting_coach(ctx, &coach).await {
                Ok(c) => c,
                Err(e) => return refused(e, "error: "),
            };
            let mut failed = false;
            for id in ids {
                match review::approve(ctx, &coach, id, confirm, now).await {
                    Ok(()) => say!("draft {id}: approved"),
                    Err(review::ActionError::Unexpected(e)) => return Err(e),
                    Err(e) => {
                        failed = true;
                        eprintln!("draft {id}: not approved: {e}");
                    }
                }
            }
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        DraftsCommand::Resend { id, coach } => {
            in_doubt_command(ctx, id, &coach, review::InDoubtDecision::Resend, now).await
        }
        DraftsCommand::Resolve { id, coach } => {
            in_doubt_command(ctx, id, &coach, review::InDoubtDecision::Resolve, now).await
        }
        DraftsCommand::Reject { id, coach, reason } => {
            let coach = match review::acting_coach(ctx, &coach).await {
                Ok(c) => c,
                Err(e) => return refused(e, "error: "),
            };
            match review::reject(ctx, &coach, id, reason.as_deref(), now).await {
                Ok(()) => {
                    say!("draft {id}: rejected");
                    Ok(ExitCode::SUCCESS)
                }
                Err(review::EditError::Action(e)) => {
                    refused(e, &format!("draft {id}: not rejected: "))
                }
                Err(review::EditError::Invalid { field, problem }) => {
                    eprintln!("draft {id}: not rejected: {field}: {problem}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

async fn in_doubt_command(
    ctx: &AppContext,
    id: i64,
    coach: &str,
    decision: review::InDoubtDecision,
    now: DateTime<Utc>,
) -> anyhow::Result<ExitCode> {
    let coach = match review::acting_coach(ctx, coach).await {
        Ok(c) => c,
        Err(e) => return refused(e, "error: "),
    };
    match review::decide_in_doubt(ctx, &coach, id, decision, now).await {
        Ok(()) => {
            match decision {
                review::InDoubtDecision::Resend => say!("message {id}: due to be sent again"),
                review::InDoubtDecision::Resolve => say!("message {id}: marked sent"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => refused(e, &format!("message {id}: unchanged: ")),
    }
}

/// A coach's action that was refused: the reason on stderr after `what`,
/// and exit 1. An unexpected failure is the command's own error.
fn refused(e: review::ActionError, what: &str) -> anyhow::Result<ExitCode> {
    match e {
        review::ActionError::Unexpected(e) => Err(e),
        e => {
            eprintln!("{what}{e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `drafts list`: every message, or those of a status or a coach's clients.
async fn list(
    ctx: &AppContext,
    status: Option<MessageStatus>,
    coach: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let scope = match coach {
        Some(email) => match review::acting_coach(ctx, email).await {
            Ok(c) => Scope::Coaches(vec![c.id]),
            Err(e) => return refused(e, "error: "),
        },
        None => Scope::All,
    };
    let mut conn = ctx.store.conn().await?;
    let list = messages::list(&mut conn, status, &scope).await?;
    if json {
        say!("{}", serde_json::to_string_pretty(&list)?);
    } else if list.is_empty() {
        say!("no messages");
    } else {
        say!(
            "{:>6} {:<9} {:<5} {:>4} {:<14} {:<24} {:<16} BODY",
            "ID",
            "STATUS",
            "CHAN",
            "STEP",
            "CLIENT",
            "COACH",
            "CREATED"
        );
        for m in list {
            let preview: String = m.body.replace('\n', " ").chars().take(60).collect();
            say!(
                "{:>6} {:<9} {:<5} {:>4} {:<14} {:<24} {:<16} {preview}",
                m.id,
                m.status.as_ref(),
                m.channel.as_ref(),
                m.step.map_or_else(|| "coach".to_owned(), |s| s.to_string()),
                m.client_external_id,
                m.coach_email,
                m.created_at.format("%Y-%m-%d %H:%M"),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
