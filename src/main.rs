//! The `gatehouse` command: parse arguments, run the command, map failures to exit codes
//! (0 ok, 1 runtime failure, 2 bad usage or invalid configuration).

use clap::Parser;
use gatehouse::cli::{Cli, CliError, dispatch};

// Every proxied request allocates a little (header maps, buffers, futures) and frees it on another code
// path; mimalloc's per-thread free lists make that about twice as cheap as glibc's malloc on the proxy
// path, and it returns memory to the system more readily when idle.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    raise_open_file_limit();
    let cli = Cli::parse();
    if let Err(err) = dispatch(cli).await {
        match &err {
            CliError::Usage(message) => eprintln!("gatehouse: {message}"),
            CliError::Runtime(err) => eprintln!("gatehouse: error: {err:#}"),
        }
        std::process::exit(err.exit_code());
    }
}

/// Every client connection and every WebSocket (two sockets) needs a file descriptor; the usual soft limit
/// of 1024 would cap Gatehouse far below what the machine can serve, so raise it to the hard limit.
fn raise_open_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}
