use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    idm::cli::run(idm::cli::Cli::parse()).await
}
