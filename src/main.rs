//! The `gatehouse` command: parse arguments, run the command, map failures to exit codes
//! (0 ok, 1 runtime failure, 2 bad usage or invalid configuration).

use clap::Parser;
use gatehouse::cli::{Cli, CliError, dispatch};

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Err(err) = dispatch(cli).await {
        match &err {
            CliError::Usage(message) => eprintln!("gatehouse: {message}"),
            CliError::Runtime(err) => eprintln!("gatehouse: error: {err:#}"),
        }
        std::process::exit(err.exit_code());
    }
}
