//! Keeping the app that `gatehouse run` starts out of every other local user's reach.
//!
//! A loopback port is open to every user of the machine: another user could connect to the app directly
//! (past the sign-in wall, with forged identity headers), or bind the app's port the moment it dies and
//! receive Gatehouse's traffic. With isolation on (`[upstream] isolation`, "auto" by default), the app's
//! listening socket lives in a network of its own that only Gatehouse can reach:
//!
//! - the [`keeper`] process, started per app instance, enters an unprivileged user and network namespace
//!   and makes TCP sockets there for Gatehouse;
//! - the [`bind_filter`] puts the app's listening socket there when the app binds its port, while the app
//!   itself keeps the machine's network for everything else;
//! - Gatehouse connects to the app only through sockets from that network, and calls the app ready only
//!   once its listener was moved there.
//!
//! Where the kernel offers no unprivileged user namespaces or seccomp user notification (some containers),
//! "auto" falls back to the shared network with a loud warning; "required" refuses to start. In the shared
//! network Gatehouse still calls the app ready only when the listener on its port belongs to the app
//! ([`listener`]), picks a fresh port at every start, and fills `st.user` from header names that change with
//! every run and never appear on a command line. In both modes the keeper kills the app's process group if
//! Gatehouse dies, and the app's first process dies with Gatehouse (`PR_SET_PDEATHSIG`).

pub mod bind_filter;
pub(crate) mod fd_passing;
pub mod keeper;
pub mod listener;

use std::process::Stdio;
use std::sync::Arc;

/// `[upstream] isolation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsolationMode {
    /// A private network when the machine allows it, the shared one (with a warning) otherwise.
    Auto,
    /// A private network, or Gatehouse does not start.
    Required,
    /// The shared network (with the listener check and fresh ports).
    Off,
}

impl IsolationMode {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "auto" => Ok(Self::Auto),
            "required" => Ok(Self::Required),
            "off" => Ok(Self::Off),
            other => Err(format!("'{other}' is not an isolation mode; use \"auto\", \"required\" or \"off\"")),
        }
    }
}

/// Whether this machine can give the app a private network, tried end to end: a keeper makes one, a child
/// process under the bind filter binds a port, and Gatehouse moves that socket into the keeper's network
/// (which also needs `pidfd_getfd` and reading the child's memory, both of which some kernels forbid). Says
/// why not. Takes a few milliseconds.
pub fn probe() -> Result<(), String> {
    // SAFETY: seccomp(2) reading one u32 action.
    let available = unsafe {
        let action = libc::SECCOMP_RET_USER_NOTIF;
        const SECCOMP_GET_ACTION_AVAIL: libc::c_ulong = 2;
        libc::syscall(libc::SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &raw const action) == 0
    };
    if !available {
        return Err(format!("seccomp user notification is not available ({})", std::io::Error::last_os_error()));
    }
    let keeper = Arc::new(keeper::Keeper::start(true).map_err(|err| err.to_string())?);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(|err| err.to_string())?
        .port();
    let mut command = std::process::Command::new("/proc/self/exe");
    command.args([keeper::KEEPER_ARG, keeper::PROBE_MODE, &port.to_string()]);
    command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    let (mut child, listener) =
        bind_filter::spawn_filtered(command, &bind_filter::BindFilter::new()).map_err(|err| err.to_string())?;
    let (sender, receiver) = tokio::sync::watch::channel(None);
    let binds = std::thread::spawn(move || bind_filter::answer_binds(listener, port, keeper, sender));
    let status = child.wait().map_err(|err| err.to_string())?;
    let _ = binds.join();
    match (status.success(), *receiver.borrow()) {
        (true, Some(_)) => Ok(()),
        (true, None) => Err("a process under the bind filter bound its port outside the private network".into()),
        (false, _) => {
            Err("a process under the bind filter could not bind its port (see the error logged above)".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse() {
        assert_eq!(IsolationMode::parse("auto"), Ok(IsolationMode::Auto));
        assert_eq!(IsolationMode::parse("required"), Ok(IsolationMode::Required));
        assert_eq!(IsolationMode::parse("off"), Ok(IsolationMode::Off));
        assert!(IsolationMode::parse("yes").is_err());
    }
}
