//! Starting one instance of the app: a fresh port, fresh secret header names for `st.user`, its keeper (see
//! [`crate::isolation`]), the process itself (its own process group, dying with Gatehouse, and with isolation
//! the `bind` filter), and the route the proxy takes to it.
//!
//! Instances are started on one thread of their own that lives as long as the [`Launcher`]: starting one
//! blocks (forks, a namespace, waiting for the keeper), which must not stall the accept loop, and
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked the app ends, so a short-lived thread (tokio's
//! blocking pool) would kill the app when it retired.

use std::io;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use tokio::process::{Child, Command};

use super::command::{ChildCommand, child_command};
use crate::isolation::IsolationMode;
use crate::isolation::bind_filter::{BindFilter, FilterChannel, answer_binds};
use crate::isolation::keeper::Keeper;
use crate::isolation::listener::{self, ListenerOwner};
use crate::proxy::headers::PrivateIdentityNames;
use crate::proxy::upstream::{Route, Upstream};

/// Starts instances of the app, on its own thread (see the module comment).
pub struct Launcher {
    requests: std::sync::mpsc::Sender<tokio::sync::oneshot::Sender<Launched>>,
    /// Whether instances get a private network (decided once, at start).
    private: bool,
}

type Launched = Result<(Child, Instance), LaunchError>;

/// Everything needed to start the app again and again; lives on the launcher's thread.
struct Plan {
    command_line: Vec<String>,
    extra_env: Vec<(String, String)>,
    upstream: Upstream,
    private: bool,
    filter: Arc<BindFilter>,
}

/// One running instance of the app.
pub struct Instance {
    pub command: ChildCommand,
    keeper: Arc<Keeper>,
    /// The app's process group (the id of its first process).
    group: Option<i32>,
    port: u16,
    /// Private network: where the app's listener was moved to, once it was.
    bound: Option<tokio::sync::watch::Receiver<Option<SocketAddr>>>,
    upstream: Upstream,
}

/// Whether instances get a private network, as `mode` asks and this machine allows: decided once, before
/// Gatehouse starts listening, so that "required" on a machine that cannot isolate stops it up front.
pub fn decide_isolation(mode: IsolationMode) -> Result<bool, String> {
    match mode {
        IsolationMode::Off => {
            tracing::warn!(
                "[upstream] isolation = \"off\": the app listens on a loopback port that every local user can reach"
            );
            Ok(false)
        }
        IsolationMode::Auto | IsolationMode::Required => match crate::isolation::probe() {
            Ok(()) => Ok(true),
            Err(why) if mode == IsolationMode::Required => Err(format!(
                "[upstream] isolation = \"required\", but the app cannot get a private network here: {why}"
            )),
            Err(why) => {
                tracing::warn!(
                    reason = %why,
                    "THE APP IS NOT ISOLATED: this machine gives it no private network, so its loopback port is reachable by every local user. Run Gatehouse only where no other users or untrusted programs run, or where unprivileged user namespaces and seccomp are allowed (set [upstream] isolation = \"required\" to refuse to start instead)"
                );
                Ok(false)
            }
        },
    }
}

impl Launcher {
    /// Starts the launcher thread; `private` comes from [`decide_isolation`].
    pub fn new(
        command_line: Vec<String>,
        extra_env: Vec<(String, String)>,
        upstream: Upstream,
        private: bool,
    ) -> Result<Self, String> {
        let plan = Plan { command_line, extra_env, upstream, private, filter: Arc::new(BindFilter::new()) };
        let (requests, incoming) = std::sync::mpsc::channel::<tokio::sync::oneshot::Sender<Launched>>();
        // tokio's process driver needs the runtime's context to register the child.
        let runtime = tokio::runtime::Handle::current();
        std::thread::Builder::new()
            .name("gatehouse-launcher".into())
            .spawn(move || {
                let _context = runtime.enter();
                for reply in incoming {
                    let _ = reply.send(plan.launch());
                }
            })
            .map_err(|err| format!("could not start the launcher thread: {err}"))?;
        Ok(Self { requests, private })
    }

    pub fn is_private(&self) -> bool {
        self.private
    }

    /// Starts an instance on a fresh port and sends new connections to it.
    pub async fn launch(&self) -> Launched {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let gone = || LaunchError::Setup(io::Error::other("the launcher thread is gone"));
        self.requests.send(reply).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

impl Plan {
    fn launch(&self) -> Launched {
        let port = free_loopback_port().map_err(LaunchError::Setup)?;
        // New names for every instance: names a stranger might have seen are worthless to the next one.
        let names = Arc::new(PrivateIdentityNames::generate());
        let command = child_command(&self.command_line, port, self.extra_env.clone(), &names.streamlit_mapping())
            .ok_or(LaunchError::NoCommand)?;
        let keeper = Arc::new(Keeper::start(self.private).map_err(LaunchError::Setup)?);
        let channel = if self.private { Some(FilterChannel::new().map_err(LaunchError::Setup)?) } else { None };
        let filter = self.filter.clone();
        let filter_channel = channel.as_ref().map(FilterChannel::child_end);
        let mut process = app_process(&command);
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: only async-signal-safe calls between fork and exec (prctl, getppid, signal, the filter's syscalls).
        unsafe {
            process.pre_exec(move || {
                // Die with Gatehouse. If it died already (before the prctl took effect), do not start at all.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    // No allocation here, so a plain errno.
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
                // Gatehouse passes its stop signal on; one the app inherited as ignored (a background job
                // from a script ignores SIGINT, `nohup` SIGHUP) would leave it running until killed.
                for signal in [libc::SIGHUP, libc::SIGINT, libc::SIGQUIT, libc::SIGTERM] {
                    libc::signal(signal, libc::SIG_DFL);
                }
                match filter_channel {
                    Some(channel) => filter.install(channel),
                    None => Ok(()),
                }
            });
        }
        if let Some(current) = &self.upstream.private_names {
            current.set(names);
        }
        let child = process.spawn().map_err(|err| LaunchError::Spawn { program: command.program.clone(), err })?;
        let group = child.id().and_then(|id| i32::try_from(id).ok());
        if let Some(group) = group
            && let Err(err) = keeper.watch_group(group)
        {
            tracing::warn!(error = %err, "the app keeper did not take the app's process group");
        }
        let bound = match channel {
            Some(channel) => {
                let listener = channel.receive().map_err(LaunchError::Setup)?;
                let (sender, receiver) = tokio::sync::watch::channel(None);
                let keeper_for_binds = keeper.clone();
                std::thread::Builder::new()
                    .name("gatehouse-binds".into())
                    .spawn(move || answer_binds(listener, port, keeper_for_binds, sender))
                    .map_err(LaunchError::Setup)?;
                self.upstream.connector.set_route(Route::Private {
                    keeper: keeper.clone(),
                    addr: SocketAddr::from(([127, 0, 0, 1], port)),
                });
                Some(receiver)
            }
            None => {
                self.upstream.connector.set_route(Route::Network { host: "127.0.0.1".into(), port });
                None
            }
        };
        Ok((child, Instance { command, keeper, group, port, bound, upstream: self.upstream.clone() }))
    }
}

impl Instance {
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Who holds the listener Gatehouse would reach: the app (moved into its private network, or in the
    /// shared network held by its process group and our user), nobody yet, or a stranger. Only the app's
    /// listener makes the app ready.
    pub async fn listener(&mut self) -> ListenerOwner {
        if let Some(bound) = &mut self.bound {
            // A listener is in the private network only if the app's bind put it there. Connect where it
            // ended up (an app that bound `[::1]` is reached over IPv6).
            let Some(addr) = *bound.borrow_and_update() else { return ListenerOwner::Nobody };
            self.upstream.connector.set_route(Route::Private { keeper: self.keeper.clone(), addr });
            return ListenerOwner::App;
        }
        let (Some(group), port) = (self.group, self.port) else { return ListenerOwner::Nobody };
        tokio::task::spawn_blocking(move || listener::listener_owner(port, group))
            .await
            .unwrap_or(ListenerOwner::Nobody)
    }

    /// Where the app listens on its port for other machines too, if it does (never in a private network).
    pub async fn exposed_at(&self) -> Option<std::net::IpAddr> {
        let (None, Some(group), port) = (&self.bound, self.group, self.port) else { return None };
        match tokio::task::spawn_blocking(move || listener::listener_owner(port, group)).await {
            Ok(ListenerOwner::AppExposed(address)) => Some(address),
            _ => None,
        }
    }

    /// The app's first process exited by itself: whatever it left running in its group goes too (it would
    /// keep the old instance's network and keeper alive).
    pub fn kill_leftovers(&self) {
        if let Some(group) = self.group {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(group), nix::sys::signal::Signal::SIGKILL);
        }
    }

    /// The app stopped and was reaped: its process group id may now be reused by anything else.
    pub fn stopped(&self) {
        self.keeper.forget_group();
    }
}

/// Why an instance could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("no command given after --")]
    NoCommand,
    #[error("could not start '{program}': {err} (is it installed and on PATH?)")]
    Spawn { program: String, err: io::Error },
    #[error("could not prepare the app's start: {0}")]
    Setup(io::Error),
}

/// The app's process: its environment without Gatehouse's own settings, its output on the terminal, its
/// own process group.
fn app_process(command: &ChildCommand) -> Command {
    let mut process = Command::new(&command.program);
    // Gatehouse's own settings (database URL, secrets) are none of the app's business.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("GATEHOUSE_") {
            process.env_remove(name);
        }
    }
    process
        .args(&command.args)
        .envs(command.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        // Its own process group, so that stopping it also stops whatever it started (a shell's children,
        // Streamlit's helpers) and a terminal's Ctrl-C reaches it only through Gatehouse, once.
        .process_group(0);
    process
}

/// A port that is free in the machine's network right now (the app binds it a moment later).
fn free_loopback_port() -> io::Result<u16> {
    let socket = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(socket.local_addr()?.port())
}
