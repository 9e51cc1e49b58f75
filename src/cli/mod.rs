//! The command line. Each command loads the settings, builds the context and
//! calls the same library function that the scheduler and the web use.
//! Exit codes: 0 success, 1 a problem to fix (the message says what), 2 usage.

use std::io::Read;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use secrecy::{ExposeSecret as _, SecretString};

use crate::app::auth;
use crate::app::config::Settings;
use crate::app::context::{AppContext, Migrations};
use crate::domain::{EmailAddress, MessageStatus, PhoneNumber, Role, limits};
use crate::pipeline::intake::{ImportOptions, ImportReport, Table};
use crate::pipeline::{detect, dispatch, intake, review};
use crate::store::{Scope, coaches, messages, send_log, tokens};

pub mod demo;
pub mod scheduler;
pub mod serve;

use demo::DemoArgs;

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

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// clients.csv: external_id,first_name,preferred_name,email,phone,preferred_channel,
    /// language,timezone,coach_email,consent_email,consent_sms,discreet,status
    Clients {
        file: PathBuf,
        /// Import the good rows and report the bad ones.
        #[arg(long)]
        skip_invalid: bool,
    },
    /// events.csv: external_id,kind,occurred_at,note
    Events {
        file: PathBuf,
        /// Import the good rows and report the bad ones.
        #[arg(long)]
        skip_invalid: bool,
    },
}

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
pub enum CoachesCommand {
    /// Add a coach.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "coach", value_parser = parse_role)]
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

#[derive(Debug, Subcommand)]
pub enum RepliesCommand {
    /// Print what a text is and which rule said so.
    Test { text: String },
    /// Classify a labelled corpus (CSV: text,classes,lang,lookalike) and print
    /// recall and precision for each class.
    Eval {
        file: PathBuf,
        /// Also print every text classified differently from its label.
        #[arg(long)]
        misses: bool,
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

#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    /// Render every template for a sample client and a sample discreet client.
    Check,
}

fn parse_now(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| format!("`{s}` is not an RFC 3339 time like 2026-03-01T14:00:00Z: {e}"))
}

fn parse_status(s: &str) -> Result<MessageStatus, String> {
    s.parse().map_err(|_| {
        format!("`{s}` is not a status: pending, approved, sending, sent, delivered, undelivered, failed, in_doubt, rejected, expired, cancelled")
    })
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
        .map_err(|_| format!("`{s}` is not a role: coach or admin"))
}

/// Prints to stdout. A reader that went away (`reengage drafts list | head`) is
/// not an error worth a panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
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

async fn execute(cli: Cli) -> anyhow::Result<ExitCode> {
    let (file, database_url) = (cli.config.as_deref(), cli.database_url.as_deref());
    match &cli.command {
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "reengage",
                &mut std::io::stdout(),
            );
            return Ok(ExitCode::SUCCESS);
        }
        Command::Man => {
            use clap::CommandFactory as _;
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Config(ConfigCommand::Show) => {
            print!("{}", crate::app::config::show(file, database_url)?);
            return Ok(ExitCode::SUCCESS);
        }
        Command::Config(ConfigCommand::Check) => {
            let settings = Settings::load(file, database_url)?;
            settings.validate_sending()?;
            crate::app::context::Named::load(&settings)?;
            say!("the configuration is valid");
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    if let Command::Demo(args) = &cli.command {
        return demo::run(cli.config.as_deref(), args)
            .await
            .map(|()| ExitCode::SUCCESS);
    }
    let settings = Settings::load(cli.config.as_deref(), cli.database_url.as_deref())?;
    if let Command::Replies(command) = &cli.command {
        // Needs the word lists only, not a database.
        let words = crate::pipeline::replies::Words::load(&settings.replies.words_file)?;
        return replies_command(&words, command);
    }
    crate::app::config::init_tracing(&settings.log);
    if let Command::Migrate = &cli.command {
        // Migrations and nothing else: no templates, word lists or channels
        // that could fail on unrelated settings.
        let store = crate::store::Store::connect(settings.database.url.expose_secret()).await?;
        let pending = store.pending_migrations().await?;
        store.migrate().await?;
        if pending.is_empty() {
            say!("the database is up to date");
        } else {
            say!("migrations applied: {}", pending.join(", "));
        }
        return Ok(ExitCode::SUCCESS);
    }
    // `serve` applies missing migrations; every other command refuses to run
    // without them.
    let migrations = match cli.command {
        Command::Serve => Migrations::Apply,
        _ => Migrations::Require,
    };
    let ctx = AppContext::build_with(settings, migrations).await?;
    if matches!(cli.command, Command::Serve | Command::Dispatch { .. }) {
        ctx.settings.validate_sending()?;
    }
    let code = match cli.command {
        Command::Serve => {
            serve::serve(ctx.clone()).await?;
            ExitCode::SUCCESS
        }
        Command::Migrate => unreachable!("handled above"),
        Command::Demo(_) => unreachable!("handled above"),
        Command::Import(command) => import_command(&ctx, command).await?,
        Command::Detect { now, dry_run } => {
            let now = now.unwrap_or_else(|| ctx.clock.now());
            let summary = if dry_run {
                detect::preview(&ctx, now).await?
            } else {
                detect::run(&ctx, now).await?
            };
            say!("{summary}");
            ExitCode::SUCCESS
        }
        Command::Dispatch { now } => {
            let now = now.unwrap_or_else(|| ctx.clock.now());
            let summary = dispatch::run_once(&ctx, now).await?;
            say!("{summary}");
            ExitCode::SUCCESS
        }
        Command::Drafts(command) => drafts_command(&ctx, command).await?,
        Command::Coaches(CoachesCommand::Add {
            email,
            name,
            role,
            phone,
            timezone,
            password_stdin,
        }) => {
            let coach = CoachInput {
                email: &email,
                name: &name,
                role,
                phone: phone.as_deref(),
                timezone: timezone.as_deref(),
            };
            add_coach(&ctx, &coach, password_stdin).await?
        }
        Command::Sends(SendsCommand::List { json }) => {
            let mut conn = ctx.store.conn().await?;
            let entries =
                send_log::list(&mut conn, &send_log::Filter::scope(Scope::All), 0, i64::MAX)
                    .await?;
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
            ExitCode::SUCCESS
        }
        Command::Templates(TemplatesCommand::Check) => check_templates(&ctx),
        Command::Replies(_) | Command::Config(_) | Command::Completions { .. } | Command::Man => {
            unreachable!("handled above")
        }
        Command::Coaches(CoachesCommand::Away {
            email,
            until,
            backup,
        }) => coach_away(&ctx, &email, Some(&until), backup.as_deref()).await?,
        Command::Coaches(CoachesCommand::Back { email }) => {
            coach_away(&ctx, &email, None, None).await?
        }
        Command::Backup { file } => {
            ctx.store.backup_to(&file).await?;
            say!("backup written to {}", file.display());
            ExitCode::SUCCESS
        }
        Command::Report {
            since,
            until,
            by,
            format,
        } => {
            use crate::pipeline::reports;
            let reports::Period { since, until } =
                reports::period(since.as_deref(), until.as_deref(), ctx.clock.now())
                    .map_err(|(field, problem)| anyhow::anyhow!("--{field}: {problem}"))?;
            let report =
                reports::outcomes(&ctx, &crate::store::Scope::All, by, since, until).await?;
            match format.as_str() {
                "json" => say!("{}", serde_json::to_string_pretty(&report)?),
                "csv" => print!("{}", report.to_csv()?),
                _ => print!("{}", report.to_table()),
            }
            ExitCode::SUCCESS
        }
        Command::Inbox { now } => {
            if !ctx.settings.email.inbound.is_on() {
                anyhow::bail!(
                    "email.inbound.transport is not set: replies go to the coaches' own addresses"
                );
            }
            let now = now.flatten().unwrap_or_else(|| ctx.clock.now());
            say!("{}", crate::pipeline::inbox::run(&ctx, now).await?);
            ExitCode::SUCCESS
        }
        Command::Housekeeping { now } => {
            let now = now.unwrap_or_else(|| ctx.clock.now());
            say!(
                "{}",
                crate::pipeline::follow_up::housekeeping::run(&ctx, now).await?
            );
            ExitCode::SUCCESS
        }
        Command::Tokens(TokensCommand::Create {
            coach,
            expires_in_days,
        }) => {
            let coach = match review::acting_coach(&ctx, &coach).await {
                Ok(c) => c,
                Err(e) => return refused(e, "error: "),
            };
            let now = ctx.clock.now();
            let expires = expires_in_days.map(|d| now + chrono::Duration::days(i64::from(d)));
            let mut conn = ctx.store.conn().await?;
            let token = tokens::create(&mut conn, coach.id, expires, now).await?;
            say!("{token}");
            ExitCode::SUCCESS
        }
        Command::Tokens(TokensCommand::List { coach }) => {
            let coach_id = match coach {
                Some(email) => match review::acting_coach(&ctx, &email).await {
                    Ok(c) => Some(c.id),
                    Err(e) => return refused(e, "error: "),
                },
                None => None,
            };
            let mut conn = ctx.store.conn().await?;
            let when = |at: Option<i64>| {
                at.and_then(|t| DateTime::<Utc>::from_timestamp(t, 0))
                    .map_or_else(|| "-".to_owned(), |t| t.to_rfc3339())
            };
            say!("id\tcoach\tcreated\tlast used\texpires\trevoked");
            for t in tokens::list(&mut conn, coach_id).await? {
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
            ExitCode::SUCCESS
        }
        Command::Tokens(TokensCommand::Revoke { id }) => {
            let mut conn = ctx.store.conn().await?;
            if tokens::revoke(&mut conn, id, ctx.clock.now()).await? {
                say!("token {id} revoked");
                ExitCode::SUCCESS
            } else {
                eprintln!("error: no live token has id {id}");
                ExitCode::FAILURE
            }
        }
    };
    Ok(code)
}

async fn import_command(ctx: &AppContext, command: ImportCommand) -> anyhow::Result<ExitCode> {
    let (file, skip_invalid, table) = match command {
        ImportCommand::Clients { file, skip_invalid } => (file, skip_invalid, Table::Clients),
        ImportCommand::Events { file, skip_invalid } => (file, skip_invalid, Table::Events),
    };
    let input =
        std::fs::File::open(&file).with_context(|| format!("Failed to open {}", file.display()))?;
    let input = std::io::BufReader::with_capacity(1 << 16, input);
    let options = ImportOptions { skip_invalid };
    let now = ctx.clock.now();
    let report = intake::import(ctx, table, input, options, now).await?;
    Ok(print_import(&file, &report))
}

fn print_import(file: &std::path::Path, report: &ImportReport) -> ExitCode {
    for error in &report.errors {
        eprintln!("{}: {error}", file.display());
    }
    if report.committed {
        say!("{}: {report}", file.display());
        ExitCode::SUCCESS
    } else {
        eprintln!("{}: {report}", file.display());
        ExitCode::FAILURE
    }
}

async fn drafts_command(ctx: &AppContext, command: DraftsCommand) -> anyhow::Result<ExitCode> {
    let now = ctx.clock.now();
    match command {
        DraftsCommand::List {
            status,
            coach,
            json,
        } => {
            let scope = match coach {
                Some(email) => match review::acting_coach(ctx, &email).await {
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

/// `coaches add` as typed.
struct CoachInput<'a> {
    email: &'a str,
    name: &'a str,
    role: Role,
    phone: Option<&'a str>,
    timezone: Option<&'a str>,
}

async fn add_coach(
    ctx: &AppContext,
    input: &CoachInput<'_>,
    password_stdin: bool,
) -> anyhow::Result<ExitCode> {
    let CoachInput {
        email,
        name,
        role,
        phone,
        timezone,
    } = *input;
    let email = EmailAddress::parse(email)?;
    if let Some(tz) = timezone {
        tz.parse::<chrono_tz::Tz>().map_err(|_| {
            anyhow::anyhow!("--timezone: `{tz}` is not an IANA timezone like America/Chicago")
        })?;
    }
    if name.trim().is_empty() {
        anyhow::bail!("--name must not be empty");
    }
    if let Some(problem) = limits::too_long("--name", name.trim(), limits::NAME) {
        anyhow::bail!(problem);
    }
    let phone = phone
        .map(|p| PhoneNumber::parse(p, Some(ctx.settings.phone_region())))
        .transpose()?;
    let password_hash = if password_stdin {
        let mut password = String::new();
        std::io::stdin()
            .read_to_string(&mut password)
            .context("Failed to read the password from standard input")?;
        let password = SecretString::from(password.trim_end_matches(['\r', '\n']).to_owned());
        Some(auth::hash_password(&password)?)
    } else {
        None
    };
    let mut conn = ctx.store.conn().await?;
    let added = coaches::insert(
        &mut conn,
        &coaches::NewCoach {
            email: email.as_str(),
            name: name.trim(),
            phone: phone.as_ref().map(|p| p.as_str()),
            role,
            password_hash: password_hash.as_deref(),
            timezone,
        },
        ctx.clock.now(),
    )
    .await?;
    match added {
        Some(id) => {
            say!("coach {id} added: {email} ({role})");
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("error: a coach with the email {email} already exists");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Renders every template in every language for a regular and a discreet sample
/// client, runs the lint, and prints each finding at its template's file and
/// line. Exit 1 on a template that fails to render or an error finding.
fn check_templates(ctx: &AppContext) -> ExitCode {
    use crate::domain::Channel;
    use crate::domain::compose::lint::{self, Severity};
    let mut failed = false;
    let first_step = &ctx.settings.detection.cadence[0].template;
    let dir = ctx.settings.templates.dir.display().to_string();
    let samples = ctx.composer.render_samples(
        &ctx.settings.agency.name,
        ctx.settings.http.public_url.as_str(),
    );
    for sample in samples {
        let (language, template, channel, discreet) = (
            &sample.language,
            &sample.template,
            sample.channel,
            sample.discreet,
        );
        let who = if discreet { "discreet" } else { "regular" };
        let file = match channel {
            Channel::Sms => format!("{language}/{template}.sms"),
            Channel::Email => format!("{language}/{template}.email"),
        };
        let rendered = match sample.rendered {
            Ok(rendered) => rendered,
            Err(e) => {
                failed = true;
                say!("FAIL {e} ({who})");
                continue;
            }
        };
        let findings = ctx.lint.check(&lint::Draft {
            channel,
            subject: rendered.subject.as_deref(),
            body: &rendered.body,
            discreet,
            first_of_episode: template == first_step,
        });
        if findings.is_empty() {
            let extra = match channel {
                Channel::Sms => {
                    let count = crate::domain::compose::segments::count(&rendered.body);
                    format!(
                        ": {} characters, {} segment(s), {:?}",
                        count.units, count.segments, count.encoding
                    )
                }
                Channel::Email => String::new(),
            };
            say!("ok   {file} ({who}){extra}");
        }
        for f in findings {
            let part = if f.part == "subject" {
                rendered.subject.as_deref()
            } else {
                Some(rendered.body.as_str())
            };
            let matched = part.and_then(|p| p.get(f.start..f.end)).unwrap_or_default();
            let line = if f.end - f.start < 40 {
                ctx.composer.line_of(&file, matched)
            } else {
                1
            };
            let level = match f.severity {
                Severity::Error => {
                    failed = true;
                    "error"
                }
                Severity::Warning => "warning",
            };
            say!(
                "{level}: {dir}/{file}.hbs:{line} ({who}): {} {}",
                f.rule,
                f.message
            );
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `replies test` and `replies eval`.
fn replies_command(
    words: &crate::pipeline::replies::Words,
    command: &RepliesCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        RepliesCommand::Test { text } => {
            let class = words.classify(text);
            let classes: Vec<&str> = class.classes.iter().map(|c| c.as_ref()).collect();
            say!("{}", classes.join(", "));
            if class.keyword {
                say!("  the whole text is a keyword");
            }
            for m in &class.matched {
                say!("  {}: \"{}\" matched `{}`", m.class, m.text, m.rule);
            }
        }
        RepliesCommand::Eval { file, misses } => {
            let corpus = std::fs::File::open(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let report = crate::domain::words::evaluate::evaluate(words, corpus)?;
            if *misses {
                for miss in &report.misses {
                    let names = |c: &[crate::pipeline::replies::Class]| {
                        c.iter().map(|c| c.as_ref()).collect::<Vec<_>>().join(";")
                    };
                    say!(
                        "line {}: expected {}, got {}: {}",
                        miss.line,
                        names(&miss.expected),
                        names(&miss.got),
                        miss.text
                    );
                }
            }
            say!("{report}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `coaches away` (with `until`) and `coaches back` (without).
async fn coach_away(
    ctx: &AppContext,
    email: &str,
    until: Option<&str>,
    backup: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let now = ctx.clock.now();
    let outcome = match until {
        Some(until) => {
            crate::pipeline::casework::set_away(ctx, None, email, until, backup, now).await
        }
        None => crate::pipeline::casework::set_back(ctx, None, email, now).await,
    };
    match outcome {
        Ok(text) => {
            say!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Err(crate::pipeline::casework::AwayError::Unexpected(e)) => Err(e),
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
