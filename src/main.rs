//! The `gatehouse` command: parse arguments, run the command, map failures to exit codes
//! (0 ok, 1 runtime failure, 2 bad usage or invalid configuration).

use clap::Parser;
use gatehouse::cli::{Cli, CliError, dispatch};

// Every proxied request allocates a little (header maps, buffers, futures) and frees it on another code
// path; mimalloc's per-thread free lists make that about twice as cheap as glibc's malloc on the proxy
// path, and it returns memory to the system more readily when idle.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (the 16th option in both its v2 and v3 headers; the Rust bindings do not
/// name it). Freed memory is normally handed back to the system 10 ms later, but only when the thread that
/// freed it allocates again; the 19 MiB of an argon2id hash would then stay resident on an idle blocking
/// thread. 0 hands it back at once.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() {
    // The app keeper (see `isolation::keeper`): Gatehouse starting itself as a small helper process. It must
    // stay single-threaded, so it runs before anything else starts.
    let mut args = std::env::args_os();
    if args.nth(1).is_some_and(|first| first == gatehouse::isolation::keeper::KEEPER_ARG) {
        let mode = args.next().and_then(|mode| mode.into_string().ok());
        let argument = args.next().and_then(|argument| argument.into_string().ok());
        gatehouse::isolation::keeper::keeper_main(mode.as_deref().unwrap_or("shared"), argument.as_deref());
    }
    // SAFETY: sets a plain integer option of the allocator, before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    raise_open_file_limit();
    let cli = Cli::parse();
    // One thread for start-up, the accept loop, the app's supervisor and the periodic upkeep: connections
    // are served by the worker threads that `serve` starts (see `server::workers`).
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("gatehouse: error: could not start the async runtime: {err}");
            std::process::exit(1);
        }
    };
    if let Err(err) = runtime.block_on(dispatch(cli)) {
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
