use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    reengage::install_crypto_provider();
    let cli = reengage::cli::Cli::parse();
    // The daemon serves requests and jobs at once; a one-shot command is mostly
    // waiting on the database and the network, and one thread spares it the
    // hand-offs between workers.
    let runtime = match cli.command {
        reengage::cli::Command::Serve | reengage::cli::Command::Demo(_) => {
            tokio::runtime::Builder::new_multi_thread()
        }
        _ => tokio::runtime::Builder::new_current_thread(),
    }
    .enable_all()
    .build();
    match runtime {
        Ok(runtime) => runtime.block_on(reengage::cli::run(cli)),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}
