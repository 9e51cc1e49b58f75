//! The command line. Each command loads the settings, builds the context and
//! calls the same library function that the scheduler and the web use; one
//! file per command group, each with its subcommands and how they print.
//! Exit codes: 0 success, 1 a problem to fix (the message says what), 2 usage.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret as _;

use crate::app::config::Settings;
use crate::app::context::{AppContext, Migrations};
use crate::pipeline::replies::alerts;
use crate::pipeline::{detect, dispatch};

/// Prints to stdout. A reader that went away (`reengage drafts list | head`) is
/// not an error worth a panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod coaches;
pub mod demo;
mod drafts;
mod import;
mod replies;
pub mod scheduler;
pub mod serve;
mod templates;
mod tokens;

use coaches::CoachesCommand;
use demo::DemoArgs;
use drafts::{DraftsCommand, SendsCommand};
use import::ImportCommand;
use replies::RepliesCommand;
use templates::TemplatesCommand;
use tokens::TokensCommand;

#[derive(Debug, Parser)]
#[command(
    name = "reengage",
    version,
    about = "Warm check-ins for clients who have gone quiet, approved by their coach."
)]
pub struct Cli {
    /// A TOML file layered over the built-in config/default.toml.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Overrides database.url.
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: migrations, scheduled jobs and the web server.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Create a fresh demo under data/demo, draft check-ins, then serve.
    Demo(DemoArgs),
    /// Import clients or engagement events from CSV.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Run detection once and print what it did.
    Detect {
        /// The time to detect at (RFC 3339); default now.
        #[arg(long, value_parser = parse_now)]
        now: Option<DateTime<Utc>>,
        /// Print what would happen and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Send everything due once and print the outcomes.
    Dispatch {
        /// The time to dispatch at (RFC 3339); default now.
        #[arg(long, value_parser = parse_now)]
        now: Option<DateTime<Utc>>,
    },
    /// List, approve or reject drafts.
    #[command(subcommand)]
    Drafts(DraftsCommand),
    /// Manage coaches.
    #[command(subcommand)]
    Coaches(CoachesCommand),
    /// Read the send log.
    #[command(subcommand)]
    Sends(SendsCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Check the templates.
    #[command(subcommand)]
    Templates(TemplatesCommand),
    /// Try the reply classifier on a text or a labelled corpus.
    #[command(subcommand)]
    Replies(RepliesCommand),
    /// Write a consistent copy of the SQLite database to FILE, even while `serve` runs.
    Backup { file: PathBuf },
    /// Outcomes of outreach: episodes reached, and their replies and returns.
    Report {
        /// Episodes first sent from this day (YYYY-MM-DD) or time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// … until the end of this day, or this time; default now.
        #[arg(long)]
        until: Option<String>,
        /// step, channel, template, variant, edited, language, coach or month.
        #[arg(long, default_value = "step", value_parser = crate::pipeline::reports::parse_by)]
        by: crate::domain::outcomes::By,
        /// table, csv or json.
        #[arg(long, default_value = "table", value_parser = ["table", "csv", "json"])]
        format: String,
    },
    /// Read email replies from [email.inbound] once and print the counts.
    Inbox {
        /// The time to take them in at (RFC 3339); alone, or left out: now.
        #[arg(long, value_parser = parse_now, num_args = 0..=1)]
        now: Option<Option<DateTime<Utc>>>,
    },
    /// Apply the retention policy once.
    Housekeeping {
        #[arg(long, value_parser = parse_now)]
        now: Option<DateTime<Utc>>,
    },
    /// Check the configuration, or print it as it takes effect.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a completion script for SHELL (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Print the manual page, as roff (`reengage man | man -l -`).
    Man,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load and check every layer, the templates, the word lists and the
    /// channels' settings (no database); exit 0 when all are good, else 1.
    Check,
    /// Print every effective setting and the layer that set it, secrets redacted.
    Show,
}

fn parse_now(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| format!("`{s}` is not an RFC 3339 time like 2026-03-01T14:00:00Z: {e}"))
}

pub async fn run(cli: Cli) -> ExitCode {
    match execute(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The command's settings file and database, as given.
struct Sources<'a> {
    file: Option<&'a std::path::Path>,
    database_url: Option<&'a str>,
}

impl Sources<'_> {
    fn settings(&self) -> anyhow::Result<Settings> {
        Settings::load(self.file, self.database_url)
    }

    /// The context for a command on the database: logging on, and the
    /// migrations applied (`serve`) or required (every other command).
    async fn context(&self, migrations: Migrations) -> anyhow::Result<AppContext> {
        let settings = self.settings()?;
        crate::app::config::init_tracing(&settings.log);
        AppContext::build_with(settings, migrations).await
    }

    async fn ready(&self) -> anyhow::Result<AppContext> {
        self.context(Migrations::Require).await
    }
}

async fn execute(cli: Cli) -> anyhow::Result<ExitCode> {
    let from = Sources {
        file: cli.config.as_deref(),
        database_url: cli.database_url.as_deref(),
    };
    match cli.command {
        Command::Completions { shell } => completions(shell),
        Command::Man => man(),
        Command::Config(command) => config(&from, &command),
        Command::Demo(args) => demo::run(from.file, &args)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Replies(command) => {
            let settings = from.settings()?;
            let words = crate::pipeline::replies::Words::load(&settings.replies.words_file)?;
            replies::run(words, &command)
        }
        Command::Migrate => migrate(&from).await,
        Command::Serve => {
            let ctx = from.context(Migrations::Apply).await?;
            ctx.settings.validate_sending()?;
            serve::serve(ctx).await.map(|()| ExitCode::SUCCESS)
        }
        Command::Import(command) => import::run(&from.ready().await?, command).await,
        Command::Detect { now, dry_run } => run_detect(&from.ready().await?, now, dry_run).await,
        Command::Dispatch { now } => run_dispatch(&from.ready().await?, now).await,
        Command::Drafts(command) => drafts::run(&from.ready().await?, command).await,
        Command::Sends(command) => drafts::sends(&from.ready().await?, command).await,
        Command::Coaches(command) => coaches::run(&from.ready().await?, command).await,
        Command::Tokens(command) => tokens::run(&from.ready().await?, command).await,
        Command::Templates(command) => templates::run(&from.settings()?, &command),
        Command::Backup { file } => backup(&from.ready().await?, &file).await,
        Command::Report {
            since,
            until,
            by,
            format,
        } => {
            let period = (since.as_deref(), until.as_deref());
            report(&from.ready().await?, period, by, &format).await
        }
        Command::Inbox { now } => inbox(&from.ready().await?, now.flatten()).await,
        Command::Housekeeping { now } => housekeeping(&from.ready().await?, now).await,
    }
}

fn completions(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    use clap::CommandFactory as _;
    clap_complete::generate(
        shell,
        &mut Cli::command(),
        "reengage",
        &mut std::io::stdout(),
    );
    Ok(ExitCode::SUCCESS)
}

fn man() -> anyhow::Result<ExitCode> {
    use clap::CommandFactory as _;
    clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
    Ok(ExitCode::SUCCESS)
}

/// `config show` and `config check`: no database.
fn config(from: &Sources<'_>, command: &ConfigCommand) -> anyhow::Result<ExitCode> {
    match command {
        ConfigCommand::Show => {
            print!(
                "{}",
                crate::app::config::show(from.file, from.database_url)?
            );
        }
        ConfigCommand::Check => {
            let settings = from.settings()?;
            settings.validate_sending()?;
            crate::app::context::Named::load(&settings)?;
            say!("the configuration is valid");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Migrations and nothing else: no templates, word lists or channels that
/// could fail on unrelated settings.
async fn migrate(from: &Sources<'_>) -> anyhow::Result<ExitCode> {
    let settings = from.settings()?;
    crate::app::config::init_tracing(&settings.log);
    let store = crate::store::Store::connect(settings.database.url.expose_secret()).await?;
    let pending = store.pending_migrations().await?;
    store.migrate().await?;
    if pending.is_empty() {
        say!("the database is up to date");
    } else {
        say!("migrations applied: {}", pending.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_detect(
    ctx: &AppContext,
    now: Option<DateTime<Utc>>,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    let now = now.unwrap_or_else(|| ctx.clock.now());
    let summary = if dry_run {
        detect::preview(ctx, now).await?
    } else {
        detect::run(ctx, now).await?
    };
    say!("{summary}");
    Ok(ExitCode::SUCCESS)
}

async fn run_dispatch(ctx: &AppContext, now: Option<DateTime<Utc>>) -> anyhow::Result<ExitCode> {
    ctx.settings.validate_sending()?;
    let now = now.unwrap_or_else(|| ctx.clock.now());
    // Without `serve`, this command is the crisis follow-up's tick too.
    say!("{}", alerts::run(ctx, now).await?);
    say!("{}", dispatch::run_once(ctx, now).await?);
    Ok(ExitCode::SUCCESS)
}

async fn backup(ctx: &AppContext, file: &std::path::Path) -> anyhow::Result<ExitCode> {
    ctx.store.backup_to(file).await?;
    say!("backup written to {}", file.display());
    Ok(ExitCode::SUCCESS)
}

async fn report(
    ctx: &AppContext,
    (since, until): (Option<&str>, Option<&str>),
    by: crate::domain::outcomes::By,
    format: &str,
) -> anyhow::Result<ExitCode> {
    use crate::pipeline::reports;
    let reports::Period { since, until } = reports::period(since, until, ctx.clock.now())
        .map_err(|(field, problem)| anyhow::anyhow!("--{field}: {problem}"))?;
    let report = reports::outcomes(ctx, &crate::store::Scope::All, by, since, until).await?;
    match format {
        "json" => say!("{}", serde_json::to_string_pretty(&report)?),
        "csv" => print!("{}", report.to_csv()?),
        _ => print!("{}", report.to_table()),
    }
    Ok(ExitCode::SUCCESS)
}

async fn inbox(ctx: &AppContext, now: Option<DateTime<Utc>>) -> anyhow::Result<ExitCode> {
    if !ctx.settings.email.inbound.is_on() {
        anyhow::bail!(
            "email.inbound.transport is not set: replies go to the coaches' own addresses"
        );
    }
    let now = now.unwrap_or_else(|| ctx.clock.now());
    say!("{}", crate::pipeline::inbox::run(ctx, now).await?);
    Ok(ExitCode::SUCCESS)
}

async fn housekeeping(ctx: &AppContext, now: Option<DateTime<Utc>>) -> anyhow::Result<ExitCode> {
    let now = now.unwrap_or_else(|| ctx.clock.now());
    say!(
        "{}",
        crate::pipeline::follow_up::housekeeping::run(ctx, now).await?
    );
    Ok(ExitCode::SUCCESS)
}
