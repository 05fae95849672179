//! `gatehouse run`: the app as a child process, out of other local users' reach ([`crate::isolation`]). The
//! supervisor starts it ([`launch`]: a fresh port each time), marks the upstream ready once the listener
//! Gatehouse would reach is the app's own and it answers HTTP, restarts it with exponential backoff (1 s
//! doubling to 30 s; reset after a minute of uptime) when it dies, and on shutdown passes the signal on and
//! waits for it to exit. The child's stdout and stderr are the terminal's: its output goes straight through.

pub mod app_brand;
mod command;
pub mod launch;

use std::process::ExitStatus;
use std::time::Duration;

use tokio::process::Child;
use tokio_util::sync::CancellationToken;

pub use command::{ChildCommand, child_command};
pub use launch::{Instance, LaunchError, Launcher, decide_isolation};

use crate::isolation::listener::ListenerOwner;
use crate::proxy::upstream::{Upstream, UpstreamState};

const MAX_BACKOFF: Duration = Duration::from_secs(30);
const STABLE_AFTER: Duration = Duration::from_secs(60);
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How often a ready app without a private network is checked for a listener other machines reach.
const EXPOSURE_CHECK_EVERY: Duration = Duration::from_secs(2);

/// Next delay before a restart: doubles, capped at 30 s.
pub fn next_backoff(previous: Option<Duration>) -> Duration {
    match previous {
        None => Duration::from_secs(1),
        Some(delay) => (delay * 2).min(MAX_BACKOFF),
    }
}

/// Runs the app until `shutdown` is cancelled, restarting it whenever it exits. `first` was launched by
/// the caller, so that a command that cannot start at all is reported right away.
pub async fn supervise(
    launcher: Launcher,
    first: (Child, Instance),
    upstream: Upstream,
    shutdown: CancellationToken,
    stop_signal: SignalSlot,
    first_ready: tokio::sync::oneshot::Sender<()>,
) -> Result<(), String> {
    let mut first_ready = Some(first_ready);
    let mut next = Some(first);
    let mut backoff: Option<Duration> = None;
    let mut ever_ready = false;
    while let Some((mut child, mut instance)) = next.take() {
        let started = tokio::time::Instant::now();
        upstream.status.set(UpstreamState::Starting);
        let exit = {
            // Marks the app ready once, then watches its listeners: only the child's exit, a refusal of its
            // listener or shutdown end the select.
            let ready = async {
                match wait_until_ready(&upstream, &mut instance).await {
                    Ok(()) => {
                        if let Some(first_ready) = first_ready.take() {
                            let _ = first_ready.send(());
                        }
                        stays_private(&instance).await
                    }
                    Err(refusal) => refusal,
                }
            };
            tokio::select! {
                status = child.wait() => Exit::Exited(status),
                refusal = ready => Exit::Refused(refusal),
                _ = shutdown.cancelled() => Exit::Shutdown,
            }
        };
        ever_ready |= upstream.status.get() == UpstreamState::Ready;
        upstream.status.set(UpstreamState::Starting);
        let status = match exit {
            Exit::Exited(status) => status,
            Exit::Shutdown => {
                stop_child(&mut child, stop_signal.get()).await;
                instance.stopped();
                break;
            }
            Exit::Refused(refusal) => {
                // Exposed to the network, it must not keep running a moment longer (no grace period), and
                // restarting would only expose it again.
                stop_child(&mut child, nix::sys::signal::Signal::SIGKILL).await;
                instance.stopped();
                tracing::error!("{refusal}");
                shutdown.cancel();
                return Err(refusal);
            }
        };
        instance.kill_leftovers();
        instance.stopped();
        if shutdown.is_cancelled() {
            break;
        }
        report_exit(&instance.command, status);
        if !ever_ready {
            // It never answered even once: a typo in the command or the script name, a missing module...
            // Restarting would only repeat the same error forever, so stop and say so.
            shutdown.cancel();
            return Err(format!(
                "the app ('{}') exited before it ever answered; not restarting. Check the command and its output above",
                instance.command.program
            ));
        }
        if started.elapsed() >= STABLE_AFTER {
            backoff = None;
        }
        loop {
            let delay = next_backoff(backoff);
            backoff = Some(delay);
            tracing::warn!(delay_secs = delay.as_secs(), "restarting the app after a pause");
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.cancelled() => return Ok(()),
            }
            match launcher.launch().await {
                Ok(launched) => {
                    tracing::info!(port = launched.1.port(), "restarted the app on a fresh port");
                    next = Some(launched);
                    break;
                }
                // Keep trying with growing pauses: a missing file may come back (e.g. during a deploy).
                Err(err) => tracing::error!(error = %err, "could not restart the app"),
            }
        }
    }
    Ok(())
}

/// How one instance's run ended.
enum Exit {
    Exited(std::io::Result<ExitStatus>),
    /// Its listener must not be used (see [`wait_until_ready`]).
    Refused(String),
    Shutdown,
}

fn report_exit(command: &ChildCommand, status: std::io::Result<ExitStatus>) {
    match status {
        Ok(status) => tracing::error!(program = %command.program, %status, "the app exited"),
        Err(err) => {
            tracing::error!(program = %command.program, error = %err, "lost track of the app")
        }
    }
}

/// Polls until the listener Gatehouse reaches is the app's own and the app answers HTTP, then marks it ready.
/// Says why not when the app's listener is one Gatehouse must not serve: in the machine's network on every
/// address, where other machines reach the app without signing in.
async fn wait_until_ready(upstream: &Upstream, instance: &mut Instance) -> Result<(), String> {
    let mut logged = false;
    let mut warned_stranger = false;
    loop {
        match instance.listener().await {
            ListenerOwner::App => {
                if answers(upstream, &instance.command.health_path).await {
                    upstream.status.set(UpstreamState::Ready);
                    tracing::info!(port = instance.port(), "the app is ready");
                    return Ok(());
                }
            }
            ListenerOwner::AppExposed(address) => return Err(exposed(address, instance.port())),
            ListenerOwner::Stranger if !warned_stranger => {
                warned_stranger = true;
                tracing::error!(
                    port = instance.port(),
                    "something other than the app listens on the app's port; Gatehouse will not connect to it"
                );
            }
            ListenerOwner::Stranger | ListenerOwner::Nobody => {}
        }
        if !logged {
            tracing::info!(port = instance.port(), "waiting for the app to answer");
            logged = true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Once the app is ready, keeps checking that it did not start listening on its port where other machines
/// reach it (a restart of its server inside the process, a second bind). Returns why it must be stopped.
async fn stays_private(instance: &Instance) -> String {
    loop {
        tokio::time::sleep(EXPOSURE_CHECK_EVERY).await;
        if let Some(address) = instance.exposed_at().await {
            return exposed(address, instance.port());
        }
    }
}

fn exposed(address: std::net::IpAddr, port: u16) -> String {
    let shown = std::net::SocketAddr::new(address, port);
    format!(
        "the app listens on {shown}, where other machines reach it without signing in; stopped it. Make it listen on 127.0.0.1:$PORT only, or let Gatehouse give it a private network ([upstream] isolation)"
    )
}

/// Whether the app answers `health_path` with anything but a server error.
async fn answers(upstream: &Upstream, health_path: &str) -> bool {
    let Ok(path) = health_path.parse::<http::Uri>() else { return false };
    let request = http::Request::get(upstream.uri_for(&path))
        .header(http::header::HOST, upstream.authority.as_str())
        .body(axum::body::Body::empty())
        .expect("a GET with a valid URI builds");
    matches!(
        tokio::time::timeout(Duration::from_secs(2), upstream.client().request(request)).await,
        Ok(Ok(response)) if !response.status().is_server_error()
    )
}

/// The signal that asked Gatehouse to stop, to pass on to the child (SIGTERM unless told otherwise).
#[derive(Clone, Default)]
pub struct SignalSlot(std::sync::Arc<std::sync::atomic::AtomicI32>);

impl SignalSlot {
    pub fn set(&self, signal: nix::sys::signal::Signal) {
        self.0.store(signal as i32, std::sync::atomic::Ordering::Relaxed);
    }

    fn get(&self) -> nix::sys::signal::Signal {
        let raw = self.0.load(std::sync::atomic::Ordering::Relaxed);
        nix::sys::signal::Signal::try_from(raw).unwrap_or(nix::sys::signal::Signal::SIGTERM)
    }
}

/// Passes the stop signal on to the app's process group, waits up to 10 s, then kills the group.
async fn stop_child(child: &mut Child, signal: nix::sys::signal::Signal) {
    let group = child.id().and_then(|id| i32::try_from(id).ok()).map(nix::unistd::Pid::from_raw);
    if let Some(group) = group {
        let _ = nix::sys::signal::killpg(group, signal);
    }
    match tokio::time::timeout(STOP_GRACE, child.wait()).await {
        Ok(_) => tracing::info!("the app stopped"),
        Err(_) => {
            tracing::warn!("the app did not stop within 10 s; killing it");
            let _ = child.kill().await;
        }
    }
    // Anything the app left running in its group goes too.
    if let Some(group) = group {
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_thirty_seconds() {
        let mut delay = None;
        let mut seen = Vec::new();
        for _ in 0..8 {
            let next = next_backoff(delay);
            seen.push(next.as_secs());
            delay = Some(next);
        }
        assert_eq!(seen, vec![1, 2, 4, 8, 16, 30, 30, 30]);
    }
}
