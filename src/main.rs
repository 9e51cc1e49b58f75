use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    reengage::install_crypto_provider();
    let cli = reengage::cli::Cli::parse();
    reengage::cli::init_tracing();
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(reengage::cli::run(cli)),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}
