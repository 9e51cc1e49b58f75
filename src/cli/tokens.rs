//! `reengage tokens`: API tokens made, listed and revoked through the
//! pipeline the admin page uses, audited the same way (as `cli`).

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Subcommand;

use crate::app::context::AppContext;
use crate::pipeline::tokens::{self, TokenError};

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Print a new API token that acts as this coach (only its hash is kept).
    Create {
        #[arg(long, value_name = "EMAIL")]
        coach: String,
        /// The token stops working this many days from now (default: never).
        #[arg(long, value_name = "N")]
        expires_in_days: Option<u32>,
    },
    /// List the tokens (never the tokens themselves): id, coach, created,
    /// last used, expires, revoked.
    List {
        #[arg(long, value_name = "EMAIL")]
        coach: Option<String>,
    },
    /// Revoke a token by its id: it is refused from now on.
    Revoke { id: i64 },
}

pub async fn run(ctx: &AppContext, command: TokensCommand) -> anyhow::Result<ExitCode> {
    let now = ctx.clock.now();
    let done = match command {
        TokensCommand::Create {
            coach,
            expires_in_days,
        } => tokens::create(ctx, None, &coach, expires_in_days, now)
            .await
            .map(|token| say!("{token}")),
        TokensCommand::List { coach } => list(ctx, coach.as_deref()).await,
        TokensCommand::Revoke { id } => tokens::revoke(ctx, None, id, now)
            .await
            .map(|()| say!("token {id} revoked")),
    };
    match done {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(TokenError::Unexpected(e)) => Err(e),
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// One line a token: id, coach, created, last used, expires, revoked.
async fn list(ctx: &AppContext, coach: Option<&str>) -> Result<(), TokenError> {
    let when = |at: Option<i64>| {
        at.and_then(|t| DateTime::<Utc>::from_timestamp(t, 0))
            .map_or_else(|| "-".to_owned(), |t| t.to_rfc3339())
    };
    let listed = tokens::list(ctx, coach).await?;
    say!("id\tcoach\tcreated\tlast used\texpires\trevoked");
    for t in listed {
        say!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            t.id,
            t.coach,
            when(Some(t.created_at)),
            when(t.last_used_at),
            when(t.expires_at),
            when(t.revoked_at)
        );
    }
    Ok(())
}
