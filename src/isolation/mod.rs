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

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

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

/// Whether this machine can give the app a private network: a keeper can make one, seccomp can hand
/// `bind` calls to Gatehouse, and Gatehouse can copy a descriptor out of another process. Says why not.
pub fn probe() -> Result<(), String> {
    // SAFETY: seccomp(2) reading one u32 action; pidfd_open/pidfd_getfd on this process, results owned at once.
    unsafe {
        let action = libc::SECCOMP_RET_USER_NOTIF;
        const SECCOMP_GET_ACTION_AVAIL: libc::c_ulong = 2;
        if libc::syscall(libc::SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &raw const action) != 0 {
            return Err(format!("seccomp user notification is not available ({})", std::io::Error::last_os_error()));
        }
        let pidfd = libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0);
        if pidfd < 0 {
            return Err(format!("pidfd_open is not available ({})", std::io::Error::last_os_error()));
        }
        let pidfd = OwnedFd::from_raw_fd(pidfd as i32);
        let copy = libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), pidfd.as_raw_fd(), 0);
        if copy < 0 {
            return Err(format!("pidfd_getfd is not available ({})", std::io::Error::last_os_error()));
        }
        drop(OwnedFd::from_raw_fd(copy as i32));
    }
    keeper::Keeper::start(true).map(drop).map_err(|err| err.to_string())
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
