//! `gatehouse run` and `gatehouse serve`: load the configuration, open the store, print the first-run setup
//! link if needed, start the app (for `run`), and serve until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{CliError, RunArgs, ServeArgs};
use crate::app::{AppState, DEFAULT_SESSION_CACHE_TTL, DEFAULT_SESSION_RECHECK, Runtime};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{Config, load_or_exit, parse_public_url, parse_upstream_url};
use crate::proxy::upstream::{UpstreamState, UpstreamStatus};
use crate::supervisor::{self, LaunchError, Launcher, SignalSlot};

pub async fn serve(config_file: Option<PathBuf>, args: ServeArgs) -> Result<(), CliError> {
    let mut config = load_or_exit(config_file);
    apply_overrides(&mut config, args.listen, args.public_url.as_deref())?;
    if let Some(upstream) = args.upstream.as_deref() {
        config.upstream.url =
            Some(parse_upstream_url(upstream).map_err(|e| CliError::usage(format!("--upstream: {e}")))?);
    }
    crate::telemetry::init_logging(&config.log);
    if config.upstream.url.is_none() {
        tracing::warn!("no [upstream] url or --upstream given: serving Gatehouse's own pages only");
    }
    let shutdown = CancellationToken::new();
    let signals = SignalSlot::default();
    let (state, listener) = start(config, UpstreamStatus::new(UpstreamState::Ready), shutdown.clone(), false).await?;
    tokio::spawn(wait_for_stop_signal(shutdown.clone(), signals));
    crate::serve(listener, state).await.context("while serving")?;
    Ok(())
}

pub async fn run(config_file: Option<PathBuf>, args: RunArgs) -> Result<(), CliError> {
    let mut config = load_or_exit(config_file);
    apply_overrides(&mut config, args.listen, args.public_url.as_deref())?;
    crate::telemetry::init_logging(&config.log);
    if config.upstream.url.is_some() {
        tracing::warn!("[upstream] url is ignored by `run`: the app started by Gatehouse is the upstream");
    }
    if args.command.is_empty() {
        return Err(CliError::usage("no command given after --"));
    }
    // The pooled client's name for the app; where it really is (a fresh port, maybe a private network)
    // is the launcher's business.
    config.upstream.url = Some(url::Url::parse("http://127.0.0.1:80").expect("a loopback URL parses"));
    let isolation = config.upstream.isolation;

    let shutdown = CancellationToken::new();
    let signals = SignalSlot::default();
    let (state, listener) = start(config, UpstreamStatus::new(UpstreamState::Starting), shutdown.clone(), true).await?;
    let upstream = state.upstream.clone().expect("run always has an upstream");

    // What the `streamlit-gatehouse` helper needs to check `X-Gatehouse-Assertion` and show the admin link.
    let extra_env = vec![
        ("GATEHOUSE_ASSERTION_PUBLIC_KEY".to_owned(), state.assertions.public_key_b64()),
        ("GATEHOUSE_PUBLIC_URL".to_owned(), state.config.server.public_url.origin().ascii_serialization()),
        ("GATEHOUSE_ADMIN_ROLE".to_owned(), state.config.admin.role.as_str().to_owned()),
    ];
    let launcher =
        Launcher::new(args.command.clone(), extra_env, upstream.clone(), isolation).map_err(CliError::usage)?;
    let first = launcher.launch().await.map_err(|err| match err {
        LaunchError::Setup(_) => CliError::Runtime(anyhow::anyhow!(err)),
        LaunchError::NoCommand | LaunchError::Spawn { .. } => CliError::usage(err.to_string()),
    })?;
    for flag in &first.1.command.dropped_flags {
        tracing::warn!(flag, "ignoring this flag of the app's command: Gatehouse sets it");
    }
    tracing::info!(
        program = %first.1.command.program,
        port = first.1.port(),
        streamlit = first.1.command.is_streamlit,
        private_network = launcher.is_private(),
        "started the app"
    );

    tokio::spawn(wait_for_stop_signal(shutdown.clone(), signals.clone()));
    let supervision = tokio::spawn(supervisor::supervise(launcher, first, upstream, shutdown.clone(), signals));
    let served = crate::serve(listener, state).await;
    shutdown.cancel();
    if let Ok(Err(gave_up)) = supervision.await {
        return Err(CliError::Runtime(anyhow::anyhow!(gave_up)));
    }
    served.context("while serving")?;
    Ok(())
}

fn apply_overrides(config: &mut Config, listen: Option<SocketAddr>, public_url: Option<&str>) -> Result<(), CliError> {
    if let Some(listen) = listen {
        config.set_listen(listen);
    }
    if let Some(raw) = public_url {
        config.server.public_url = parse_public_url(raw).map_err(|e| CliError::usage(format!("--public-url: {e}")))?;
    }
    Ok(())
}

/// Opens the store, builds the state, prints the setup link and binds the public listener.
async fn start(
    config: Config,
    status: UpstreamStatus,
    shutdown: CancellationToken,
    private_names: bool,
) -> Result<(Arc<AppState>, TcpListener), CliError> {
    let store = crate::store::open(config.database.url.expose()).await?;
    let clock: SharedClock = Arc::new(SystemClock);
    let listen = config.server.listen;
    let public_url = config.server.public_url.clone();
    if let Some(link) = crate::web::setup::issue_setup_link(&store, clock.now(), &public_url).await? {
        print_setup_link(&link);
    }
    let runtime = Runtime {
        store,
        clock,
        upstream_status: status,
        shutdown,
        session_recheck: DEFAULT_SESSION_RECHECK,
        session_cache_ttl: DEFAULT_SESSION_CACHE_TTL,
        private_names,
    };
    let state = AppState::build(config, runtime).await?;
    let listener = TcpListener::bind(listen).await.with_context(|| format!("could not listen on {listen}"))?;
    tracing::info!(%listen, public_url = %public_url, database = state.store.backend(), "Gatehouse is listening");
    Ok((state, listener))
}

fn print_setup_link(link: &str) {
    println!();
    println!("  Gatehouse has no users yet. Create the first administrator here (valid for one hour, single use):");
    println!();
    println!("    {link}");
    println!();
}

async fn wait_for_stop_signal(shutdown: CancellationToken, slot: SignalSlot) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate), Ok(mut hangup), Ok(mut quit)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
        signal(SignalKind::quit()),
    ) else {
        tracing::error!("could not install signal handlers; stop Gatehouse with SIGKILL");
        return;
    };
    // Each of these would otherwise end Gatehouse without stopping the app; pass the same one on.
    tokio::select! {
        _ = interrupt.recv() => slot.set(nix::sys::signal::Signal::SIGINT),
        _ = terminate.recv() => slot.set(nix::sys::signal::Signal::SIGTERM),
        _ = hangup.recv() => slot.set(nix::sys::signal::Signal::SIGHUP),
        _ = quit.recv() => slot.set(nix::sys::signal::Signal::SIGQUIT),
    }
    tracing::info!("stopping");
    shutdown.cancel();
}
