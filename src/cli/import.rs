//! `reengage import clients|events FILE`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;

use crate::app::context::AppContext;
use crate::pipeline::intake::{self, ImportOptions, ImportReport, Table};

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

pub async fn run(ctx: &AppContext, command: ImportCommand) -> anyhow::Result<ExitCode> {
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
