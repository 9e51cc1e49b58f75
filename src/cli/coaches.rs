//! `reengage coaches`: add a coach, set one away and back. Each goes through
//! the pipeline the admin page uses, and is audited the same way (as `cli`).

use std::io::Read as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use secrecy::SecretString;

use crate::app::context::AppContext;
use crate::domain::Role;
use crate::pipeline::casework::{self, AwayError};
use crate::pipeline::coaches::{self, CoachError};

#[derive(Debug, Subcommand)]
pub enum CoachesCommand {
    /// Add a coach.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "coach", value_parser = coaches::parse_role)]
        role: Role,
        #[arg(long)]
        phone: Option<String>,
        /// The IANA timezone the web UI shows this coach times in
        /// (default: defaults.timezone).
        #[arg(long)]
        timezone: Option<String>,
        /// Read a login password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a coach away until the end of DATE (their timezone): their drafts,
    /// replies, notices and crisis alerts go to the backup meanwhile (to the
    /// admins if there is none).
    Away {
        #[arg(long)]
        email: String,
        /// The last day away, YYYY-MM-DD, or an RFC 3339 time.
        #[arg(long)]
        until: String,
        /// The coach who covers (and who hears crisis escalations).
        #[arg(long, value_name = "EMAIL")]
        backup: Option<String>,
    },
    /// End a coach's away period now; their backup stays set for escalations.
    Back {
        #[arg(long)]
        email: String,
    },
}

pub async fn run(ctx: &AppContext, command: CoachesCommand) -> anyhow::Result<ExitCode> {
    match command {
        CoachesCommand::Add {
            email,
            name,
            role,
            phone,
            timezone,
            password_stdin,
        } => {
            let password = password_stdin.then(read_password).transpose()?;
            let new = coaches::NewCoach {
                email: &email,
                name: &name,
                role: Some(role.as_ref()),
                phone: phone.as_deref(),
                timezone: timezone.as_deref(),
                password,
            };
            add(ctx, new, role).await
        }
        CoachesCommand::Away {
            email,
            until,
            backup,
        } => away(ctx, &email, Some(&until), backup.as_deref()).await,
        CoachesCommand::Back { email } => away(ctx, &email, None, None).await,
    }
}

/// A login password from standard input, without its line ending.
fn read_password() -> anyhow::Result<SecretString> {
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .context("Failed to read the password from standard input")?;
    Ok(SecretString::from(
        password.trim_end_matches(['\r', '\n']).to_owned(),
    ))
}

async fn add(ctx: &AppContext, new: coaches::NewCoach<'_>, role: Role) -> anyhow::Result<ExitCode> {
    let email = new.email.trim().to_owned();
    match coaches::add(ctx, None, new, ctx.clock.now()).await {
        Ok(id) => {
            say!("coach {id} added: {email} ({role})");
            Ok(ExitCode::SUCCESS)
        }
        Err(CoachError::Exists) => {
            eprintln!("error: a coach with the email {email} already exists");
            Ok(ExitCode::FAILURE)
        }
        Err(CoachError::Unexpected(e)) => Err(e),
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `coaches away` (with `until`) and `coaches back` (without).
async fn away(
    ctx: &AppContext,
    email: &str,
    until: Option<&str>,
    backup: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let now = ctx.clock.now();
    let outcome = match until {
        Some(until) => casework::set_away(ctx, None, email, until, backup, now).await,
        None => casework::set_back(ctx, None, email, now).await,
    };
    match outcome {
        Ok(text) => {
            say!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Err(AwayError::Unexpected(e)) => Err(e),
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
