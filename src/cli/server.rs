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
use crate::domain::Role;
use crate::proxy::upstream::{UpstreamState, UpstreamStatus};
use crate::supervisor::{self, LaunchError, Launcher, SignalSlot};
use crate::web::setup::{SetupLink, has_administrator, issue_setup_link};

pub async fn serve(config_file: Option<PathBuf>, args: ServeArgs) -> Result<(), CliError> {
    let mut config = load_or_exit(config_file);
    apply_overrides(&mut config, args.listen, args.public_url.as_deref(), args.shared_password_file.as_deref())?;
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
    let (state, listener, _) =
        start(config, UpstreamStatus::new(UpstreamState::Ready), shutdown.clone(), false).await?;
    tokio::spawn(wait_for_stop_signal(shutdown.clone(), signals));
    crate::serve(listener, state).await.context("while serving")?;
    Ok(())
}

pub async fn run(config_file: Option<PathBuf>, args: RunArgs) -> Result<(), CliError> {
    let mut config = load_or_exit(config_file);
    apply_overrides(&mut config, args.listen, args.public_url.as_deref(), args.shared_password_file.as_deref())?;
    crate::telemetry::init_logging(&config.log);
    // The pages take the app's own name and colour unless the configuration gives them.
    if let Ok(cwd) = std::env::current_dir() {
        supervisor::app_brand::fill_in(&mut config.brand, &args.command, &cwd);
    }
    if config.upstream.url.is_some() {
        tracing::warn!("[upstream] url is ignored by `run`: the app started by Gatehouse is the upstream");
    }
    if args.command.is_empty() {
        return Err(CliError::usage("no command given after --"));
    }
    // The pooled client's name for the app; where it really is (a fresh port, maybe a private network)
    // is the launcher's business.
    config.upstream.url = Some(url::Url::parse("http://127.0.0.1:80").expect("a loopback URL parses"));
    // Before listening: "required" on a machine that cannot isolate must not look started.
    let private = supervisor::decide_isolation(config.upstream.isolation).map_err(CliError::usage)?;

    let shutdown = CancellationToken::new();
    let signals = SignalSlot::default();
    let (state, listener, setup_link) =
        start(config, UpstreamStatus::new(UpstreamState::Starting), shutdown.clone(), true).await?;
    let upstream = state.upstream.clone().expect("run always has an upstream");

    // What the `streamlit-gatehouse` helper needs to check `X-Gatehouse-Assertion` and show the admin link.
    let extra_env = vec![
        ("GATEHOUSE_ASSERTION_PUBLIC_KEY".to_owned(), state.assertions.public_key_b64()),
        ("GATEHOUSE_PUBLIC_URL".to_owned(), state.config.server.public_url.origin().ascii_serialization()),
        ("GATEHOUSE_ADMIN_ROLE".to_owned(), state.config.admin.role.as_str().to_owned()),
    ];
    let launcher =
        Launcher::new(args.command.clone(), extra_env, upstream.clone(), private).map_err(CliError::usage)?;
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
    let (first_ready, ready) = tokio::sync::oneshot::channel();
    tokio::spawn(announce_when_ready(ready, state.clone(), setup_link));
    let supervision =
        tokio::spawn(supervisor::supervise(launcher, first, upstream, shutdown.clone(), signals, first_ready));
    let served = crate::serve(listener, state).await;
    shutdown.cancel();
    if let Ok(Err(gave_up)) = supervision.await {
        return Err(CliError::Runtime(anyhow::anyhow!(gave_up)));
    }
    served.context("while serving")?;
    Ok(())
}

fn apply_overrides(
    config: &mut Config,
    listen: Option<SocketAddr>,
    public_url: Option<&str>,
    shared_password_file: Option<&std::path::Path>,
) -> Result<(), CliError> {
    if let Some(path) = shared_password_file {
        use std::os::unix::fs::PermissionsExt;
        if std::fs::metadata(path).is_ok_and(|meta| meta.permissions().mode() & 0o077 != 0) {
            eprintln!("warning: {} can be read by other users of this machine; chmod 600 it", path.display());
        }
        let raw = std::fs::read_to_string(path).map_err(|err| {
            CliError::usage(format!("--shared-password-file: cannot read '{}': {err}", path.display()))
        })?;
        let password =
            crate::accounts::shared_password::parse(raw.trim_end_matches(['\n', '\r']), config.password.min_length)
                .map_err(|err| CliError::usage(format!("--shared-password-file: {err}")))?;
        config.password.shared = Some(crate::config::Secret::new(password));
    }
    if let Some(listen) = listen {
        config.set_listen(listen);
    }
    if let Some(raw) = public_url {
        config.server.public_url = parse_public_url(raw).map_err(|e| CliError::usage(format!("--public-url: {e}")))?;
    }
    Ok(())
}

/// The app's own start-up output (Streamlit prints its private URL) scrolls Gatehouse's setup link away:
/// once the app is first ready, say where to go, and repeat the link while there is still no user.
async fn announce_when_ready(
    ready: tokio::sync::oneshot::Receiver<()>,
    state: Arc<AppState>,
    setup_link: Option<SetupLink>,
) {
    if ready.await.is_err() {
        return;
    }
    let url = state.config.server.public_url.as_str();
    println!();
    println!("  Gatehouse is ready: open {url} (the address the app printed is private to Gatehouse)");
    let role = state.admin.admin_role();
    match setup_link {
        Some(link) if has_administrator(&state.store, role).await.is_ok_and(|has| !has) => {
            print_setup_link(&link, role)
        }
        _ => println!(),
    }
}

/// Opens the store, builds the state, prints the setup link (returned too) and binds the public listener.
async fn start(
    config: Config,
    status: UpstreamStatus,
    shutdown: CancellationToken,
    private_names: bool,
) -> Result<(Arc<AppState>, TcpListener, Option<SetupLink>), CliError> {
    let store = crate::store::open(config.database.url.expose()).await?;
    let clock: SharedClock = Arc::new(SystemClock);
    let listen = config.server.listen;
    let public_url = config.server.public_url.clone();
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
    // One password for everybody needs no administrator, so no setup link either.
    let setup_link = if install_shared_password(&state).await? {
        None
    } else {
        issue_setup_link(&state.store, state.clock.now(), &public_url, &state.config.admin.role).await?
    };
    if let Some(link) = &setup_link {
        print_setup_link(link, &state.config.admin.role);
    }
    if state.config.mail.smtp.is_none() {
        // "Forgot password?" and registration say a message was sent: say here where it really went.
        println!(
            "  Mail is not sent: messages (reset links, codes) are written to {} and their links logged.",
            state.config.mail.outbox.display()
        );
        println!("  Set [mail] smtp_url to send them.");
        println!();
    }
    let listener = TcpListener::bind(listen).await.with_context(|| format!("could not listen on {listen}"))?;
    tracing::info!(%listen, public_url = %public_url, database = state.store.backend(), "Gatehouse is listening");
    Ok((state, listener, setup_link))
}

/// Installs `[password] shared` when it is set; whether sign-in is by the shared password.
async fn install_shared_password(state: &AppState) -> Result<bool, CliError> {
    use crate::accounts::shared_password::{self, Installed};
    if let Some(password) = &state.config.password.shared {
        let installed =
            shared_password::install(&state.store, &state.passwords, password.expose(), "config", state.clock.now());
        match installed.await? {
            Installed::Created => tracing::info!("created the account 'shared' for the shared password"),
            Installed::Changed => {
                tracing::info!("the shared password changed; the sessions signed in with the old one were ended")
            }
            Installed::Unchanged => {}
            Installed::Disabled => tracing::warn!(
                "the shared password is configured, but the account 'shared' is disabled, so it stays off; \
                 enable it (gatehouse users enable shared) or drop the setting"
            ),
        }
    }
    let on = shared_password::is_on(&state.store).await.map_err(|err| CliError::Runtime(err.into()))?;
    if on {
        println!();
        println!("  Sign-in is by the shared password: the sign-in page asks only for it, and the app sees the");
        println!("  user 'shared'. To use accounts instead, add them and run: gatehouse users disable shared");
        println!();
    }
    Ok(on)
}

fn print_setup_link(link: &SetupLink, role: &Role) {
    println!();
    if link.accounts_exist {
        println!("  Gatehouse has no administrator. Make an existing account the administrator, or create one,");
        println!("  here (valid for one hour, single use):");
        println!();
        println!("    {}", link.url);
        println!();
        println!("  Or from the command line: gatehouse users roles NAME --add {role}");
    } else {
        println!("  Gatehouse has no users yet. Create the first administrator here (valid for one hour, single use):");
        println!();
        println!("    {}", link.url);
    }
    println!();
}

async fn wait_for_stop_signal(shutdown: CancellationToken, slot: SignalSlot) {
    use tokio::signal::unix::{SignalKind, signal};
    // Under `nohup`, SIGHUP arrives ignored and must stay so: Gatehouse keeps running when the terminal goes.
    let hangup_ignored = ignored_since_start(libc::SIGHUP);
    let hangup = if hangup_ignored { None } else { signal(SignalKind::hangup()).ok() };
    let (Ok(mut interrupt), Ok(mut terminate), Ok(mut quit)) =
        (signal(SignalKind::interrupt()), signal(SignalKind::terminate()), signal(SignalKind::quit()))
    else {
        tracing::error!("could not install signal handlers; stop Gatehouse with SIGKILL");
        return;
    };
    let hung_up = async {
        match hangup {
            Some(mut hangup) => hangup.recv().await,
            None => std::future::pending().await,
        }
    };
    // Each of these would otherwise end Gatehouse without stopping the app; pass the same one on.
    tokio::select! {
        _ = interrupt.recv() => slot.set(nix::sys::signal::Signal::SIGINT),
        _ = terminate.recv() => slot.set(nix::sys::signal::Signal::SIGTERM),
        _ = hung_up => slot.set(nix::sys::signal::Signal::SIGHUP),
        _ = quit.recv() => slot.set(nix::sys::signal::Signal::SIGQUIT),
    }
    tracing::info!("stopping");
    shutdown.cancel();
}

/// Whether `signal` is ignored, as inherited from whoever started Gatehouse (nothing in Gatehouse ignores it).
fn ignored_since_start(signal: libc::c_int) -> bool {
    // SAFETY: sigaction(2) with no new action only reads the current one into a zeroed struct.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut current) == 0 && current.sa_sigaction == libc::SIG_IGN
    }
}
