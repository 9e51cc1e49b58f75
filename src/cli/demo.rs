//! `demo`: a fresh database with synthetic clients and histories, detection run
//! once, then the server. Everything stays on the machine: messages go to the
//! file outbox.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::{DateTime, Duration, Utc};
use clap::Args;
use secrecy::SecretString;

use crate::app::config::Settings;
use crate::app::context::AppContext;
use crate::cli::serve;
use crate::domain::{Channel, MessageStatus, Role};
use crate::pipeline::detect;
use crate::pipeline::intake::{self, ImportOptions, Table};
use crate::store::{clients, coaches, messages};

pub const DEMO_PASSWORD: &str = "reengage-demo";

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How many synthetic clients to create.
    #[arg(long, default_value_t = 200)]
    pub clients: u32,
    /// Where the demo's web server listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Set everything up and print the summary, but do not serve.
    #[arg(long, hide = true)]
    pub no_serve: bool,
    /// The demo's folder (deleted and recreated).
    #[arg(long, default_value = "data/demo", hide = true)]
    pub dir: PathBuf,
}

struct DemoCoach {
    email: &'static str,
    name: &'static str,
    role: Role,
}

const COACHES: [DemoCoach; 3] = [
    DemoCoach {
        email: "rosa@example.org",
        name: "Rosa Diaz",
        role: Role::Coach,
    },
    DemoCoach {
        email: "marcus@example.org",
        name: "Marcus Lee",
        role: Role::Coach,
    },
    DemoCoach {
        email: "admin@example.org",
        name: "Avery Admin",
        role: Role::Admin,
    },
];

const FIRST_NAMES: [&str; 12] = [
    "Jordan", "Maria", "Devon", "Aisha", "Luis", "Hannah", "Tomas", "Keisha", "Ethan", "Sofia",
    "Malik", "Grace",
];
const TIMEZONES: [&str; 4] = [
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
];

/// One synthetic history, chosen by the client's number so the demo is the same
/// every time.
struct History {
    quiet_days: Option<i64>,
    opted_out: &'static [Channel],
    status: &'static str,
    discreet: bool,
}

fn history(i: u32) -> History {
    let plain = |days| History {
        quiet_days: Some(days),
        opted_out: &[],
        status: "active",
        discreet: false,
    };
    match i % 10 {
        0 => plain(8),
        1 => plain(15),
        2 => plain(31),
        3 => plain(1),
        4 => plain(4),
        5 => History {
            opted_out: &[Channel::Sms],
            ..plain(9)
        },
        6 => History {
            discreet: true,
            ..plain(10)
        },
        7 => History {
            status: "paused",
            ..plain(20)
        },
        8 => History {
            opted_out: &[Channel::Sms, Channel::Email],
            ..plain(12)
        },
        _ => plain(2),
    }
}

/// Writes the demo's clients.csv and events.csv and returns their paths.
fn write_csv(
    dir: &Path,
    count: u32,
    now: DateTime<Utc>,
) -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf)> {
    let mut clients_csv = intake::CLIENT_COLUMNS.join(",");
    clients_csv.push('\n');
    let mut events_csv = intake::EVENT_COLUMNS.join(",");
    events_csv.push('\n');
    for i in 0..count {
        let h = history(i);
        let first = FIRST_NAMES[i as usize % FIRST_NAMES.len()];
        let preferred = if i % 7 == 0 {
            first.chars().take(3).collect()
        } else {
            String::new()
        };
        let coach = COACHES[i as usize % 2].email;
        let language = if i % 4 == 3 { "es" } else { "en" };
        let tz = TIMEZONES[i as usize % TIMEZONES.len()];
        // Every third phone is in national format, read with defaults.phone_region.
        let line = 100 + i % 100;
        let phone = if i % 3 == 0 {
            format!("(201) 555-0{line:03}")
        } else {
            format!("+1201555{:04}", line)
        };
        let preferred_channel = if i % 2 == 0 { "sms" } else { "email" };
        writeln!(
            clients_csv,
            "demo-{i:05},{first},{preferred},{}.{i}@example.org,\"{phone}\",{preferred_channel},{language},{tz},{coach},yes,yes,{},{}",
            first.to_lowercase(),
            if h.discreet { "yes" } else { "no" },
            h.status,
        )?;
        if let Some(days) = h.quiet_days {
            let at = now - Duration::days(days) - Duration::hours(i64::from(i % 5));
            writeln!(events_csv, "demo-{i:05},check_in,{},", at.to_rfc3339())?;
            let missed = at + Duration::days(1);
            if i % 4 == 1 && missed < now {
                writeln!(
                    events_csv,
                    "demo-{i:05},session_missed,{},",
                    missed.to_rfc3339()
                )?;
            }
        }
    }
    let clients_path = dir.join("clients.csv");
    let events_path = dir.join("events.csv");
    std::fs::write(&clients_path, clients_csv)?;
    std::fs::write(&events_path, events_csv)?;
    Ok((clients_path, events_path))
}

/// Builds a fresh demo and serves it. The demo writes its own configuration,
/// so a global `--config` is not used, and it says so.
pub async fn run(config: Option<&Path>, args: &DemoArgs) -> anyhow::Result<()> {
    if let Some(config) = config {
        eprintln!(
            "note: demo ignores --config {}: it writes its own settings to {}",
            config.display(),
            args.dir.join("reengage.toml").display()
        );
    }
    let dir = &args.dir;
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("Failed to clear the demo folder {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir)?;
    let config_path = dir.join("reengage.toml");
    let dir_text = dir.display().to_string();
    std::fs::write(
        &config_path,
        format!(
            "# Written by `reengage demo`: the demo's own database, outbox and address.\n\
             [database]\nurl = \"sqlite://{dir_text}/reengage.db\"\n\n\
             [http]\nbind = \"{bind}\"\npublic_url = \"http://{bind}\"\n\n\
             [outbox]\ndir = \"{dir_text}/outbox\"\n\n\
             # Email replies: drop .eml files in the inbox folder.\n\
             [email.inbound]\ntransport = \"folder\"\naddress = \"replies@example.org\"\n\n\
             [email.inbound.folder]\ndir = \"{dir_text}/inbox\"\n",
            bind = args.bind
        ),
    )?;
    let settings = Settings::load(Some(&config_path), None)?;
    settings.validate_sending()?;
    crate::app::config::init_tracing(&settings.log);
    let ctx = AppContext::build(settings).await?;
    let now = ctx.clock.now();

    for coach in &COACHES {
        let new = crate::pipeline::coaches::NewCoach {
            email: coach.email,
            name: coach.name,
            role: Some(coach.role.as_ref()),
            phone: None,
            timezone: None,
            password: Some(SecretString::from(DEMO_PASSWORD)),
        };
        crate::pipeline::coaches::add(&ctx, None, new, now).await?;
    }

    let (clients_path, events_path) = write_csv(dir, args.clients, now)?;
    for (path, table) in [
        (&clients_path, Table::Clients),
        (&events_path, Table::Events),
    ] {
        let file = std::io::BufReader::new(std::fs::File::open(path)?);
        let report = intake::import(&ctx, table, file, ImportOptions::default(), now).await?;
        if !report.committed {
            let errors: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
            anyhow::bail!("the demo's own CSV did not import: {}", errors.join("; "));
        }
    }
    {
        let mut conn = ctx.store.conn().await?;
        for i in 0..args.clients {
            for channel in history(i).opted_out {
                if let Some(client) =
                    clients::by_external_id(&mut conn, &format!("demo-{i:05}")).await?
                {
                    clients::opt_out(&mut conn, client.id, *channel, now).await?;
                }
            }
        }
    }

    let summary = detect::run(&ctx, now).await?;
    let replies = sample_replies(&ctx, args.clients, now).await?;
    print_welcome(&ctx, args, &config_path, &summary).await?;
    println!();
    println!(
        "{replies} sample replies came in for {}, by SMS and by email (through {}): they open \
         the queue (one reads as a crisis: its alert is in the outbox, and it escalates to the \
         admin until someone presses \"I'm on it\"). Open a client from the queue to read the \
         conversation and write back; the answer appears in the outbox at once.",
        COACHES[0].email,
        ctx.settings.email.inbound.folder.dir.display()
    );
    if args.no_serve {
        return Ok(());
    }
    serve::serve(ctx).await
}

/// Replies from three of the first coach's clients who have a phone, through
/// the same path as the inbound webhook: a plain reply, a wrong number and a
/// crisis. Returns how many came in.
async fn sample_replies(
    ctx: &AppContext,
    clients: u32,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    const TEXTS: [&str; 3] = [
        "its been a strange month honestly. can we talk this week?",
        "wrong number, sorry",
        "i dont want to be here anymore",
    ];
    let mut phones = Vec::new();
    {
        let mut conn = ctx.store.conn().await?;
        let first = coaches::by_email(&mut conn, COACHES[0].email).await?;
        for i in 0..clients {
            if phones.len() == TEXTS.len() {
                break;
            }
            let client = clients::by_external_id(&mut conn, &format!("demo-{i:05}")).await?;
            if let (Some(client), Some(coach)) = (client, &first)
                && client.coach_id == coach.id
                && client.status == crate::domain::ClientStatus::Active
                && let Some(phone) = client.phone.clone()
            {
                phones.push(phone);
            }
        }
    }
    for (i, (phone, text)) in phones.iter().zip(TEXTS).enumerate() {
        let sid = format!("SMdemo{i}");
        let incoming = crate::pipeline::replies::Incoming::sms(phone, None, text, Some(&sid));
        crate::pipeline::replies::receive(ctx, &incoming, now).await?;
    }
    let emailed = sample_email_reply(ctx, clients, &phones, now).await?;
    Ok(phones.len() + usize::from(emailed))
}

/// An email reply from another of the first coach's clients, dropped in the
/// inbox folder as a mail server would and read the way `inbox` reads it.
async fn sample_email_reply(
    ctx: &AppContext,
    clients: u32,
    phones: &[String],
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let mut from = None;
    {
        let mut conn = ctx.store.conn().await?;
        let first = coaches::by_email(&mut conn, COACHES[0].email).await?;
        for i in 0..clients {
            let client = clients::by_external_id(&mut conn, &format!("demo-{i:05}")).await?;
            if let (Some(client), Some(coach)) = (client, &first)
                && client.coach_id == coach.id
                && client.status == crate::domain::ClientStatus::Active
                && client.phone.as_ref().is_none_or(|p| !phones.contains(p))
                && let Some(email) = client.email.clone()
                && clients::by_email(&mut conn, &email).await?.is_some()
            {
                from = Some((client.first_name.clone(), email));
                break;
            }
        }
    }
    let Some((name, email)) = from else {
        return Ok(false);
    };
    let dir = &ctx.settings.email.inbound.folder.dir;
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("demo-reply.eml"),
        format!(
            "From: {name} <{email}>\r\nTo: {to}\r\nSubject: Re: Checking in\r\n\
             Date: {date}\r\nMessage-ID: <demo-reply-1@example.net>\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n\
             Thanks for thinking of me. Work has been a lot, but I'd like to come back on Tuesday.\r\n\r\n\
             Sent from my iPhone\r\n\r\n\
             On {day}, Your coach <coach@example.org> wrote:\r\n\
             > Hi {name}, I've noticed you've been a bit quiet lately. How have you been?\r\n",
            to = ctx.settings.email.inbound.address,
            date = now.to_rfc2822(),
            day = (now - Duration::days(1)).format("%a, %b %-d, %Y"),
        ),
    )?;
    let summary = crate::pipeline::inbox::run(ctx, now).await?;
    Ok(summary.matched > 0)
}

async fn print_welcome(
    ctx: &AppContext,
    args: &DemoArgs,
    config_path: &Path,
    summary: &detect::DetectSummary,
) -> anyhow::Result<()> {
    let mut conn = ctx.store.conn().await?;
    let pending = messages::list(
        &mut conn,
        Some(MessageStatus::Pending),
        &crate::store::Scope::All,
    )
    .await?;
    let coaches_with_drafts = COACHES
        .iter()
        .filter(|c| pending.iter().any(|m| m.coach_email == c.email))
        .count();
    let run = if std::env::current_exe()
        .map(|p| p.components().any(|c| c.as_os_str() == "target"))
        .unwrap_or(false)
    {
        "cargo run --release --"
    } else {
        "reengage"
    };
    let cfg = config_path.display();
    println!();
    println!(
        "{} drafts are queued for {} demo coaches ({} clients).",
        pending.len(),
        coaches_with_drafts,
        args.clients
    );
    println!("Detection: {summary}");
    println!();
    println!("Demo logins (password `{DEMO_PASSWORD}`):");
    for coach in &COACHES {
        let mine = pending
            .iter()
            .filter(|m| m.coach_email == coach.email)
            .count();
        println!(
            "  {:<20} {:<12} {:<6} {mine} drafts",
            coach.email, coach.name, coach.role
        );
    }
    let first_ids: Vec<String> = pending
        .iter()
        .filter(|m| m.coach_email == COACHES[0].email)
        .take(3)
        .map(|m| m.id.to_string())
        .collect();
    println!();
    println!("Next, in another terminal in this folder:");
    println!("  {run} --config {cfg} drafts list --status pending");
    println!(
        "  {run} --config {cfg} drafts approve {} --coach {}",
        first_ids.join(" "),
        COACHES[0].email
    );
    println!("  {run} --config {cfg} dispatch");
    println!("  {run} --config {cfg} sends list");
    println!(
        "Approved messages land in {}/outbox as .eml and .json files. Nothing is sent \
         during a client's quiet hours (21:00-09:00 their time); dispatch says how many wait.",
        args.dir.display()
    );
    if !args.no_serve {
        println!();
        println!(
            "Open http://{}/ in a browser and log in as {} with the password above to see the \
             queue. The scheduler also dispatches approved messages every 20 seconds. Ctrl-C stops.",
            args.bind, COACHES[0].email
        );
    }
    Ok(())
}
