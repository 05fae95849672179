//! The app keeper: a small process of Gatehouse's own (the same binary, started with [`KEEPER_ARG`]) that
//! lives as long as one instance of the app, with two jobs.
//!
//! - **A private network.** With isolation on, the keeper enters a user and network namespace of its own
//!   (no privilege needed: an unprivileged user namespace owns the network namespace), brings its loopback
//!   up, and from then on makes TCP sockets *in that network* on request, passing them to Gatehouse over a
//!   Unix socket pair (`SCM_RIGHTS`). The app's listening socket is moved there (see [`super::bind_filter`])
//!   and Gatehouse connects to it with those sockets, so the app's port exists in no network any other local
//!   user can reach, and proxying stays a plain TCP connection (zero-copy, nothing relayed).
//! - **A dead man's switch.** When Gatehouse dies, however it dies (`kill -9` included), the keeper sees its
//!   end of the socket pair close and kills the app's whole process group.
//!
//! The protocol is one message per request on a `SOCK_SEQPACKET` pair: `S family count` asks for sockets,
//! answered by one message carrying them; `G pgid` names the app's process group; `F` forgets it (the app
//! was stopped and reaped by Gatehouse, so its group id may be reused). The keeper's first message is `R`
//! (ready) or `E` followed by what went wrong.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::fd_passing::{MAX_FDS, recv_with_fds, send_with_fds, seqpacket_pair, set_receive_timeout};

/// The hidden first argument that makes `gatehouse` run as a keeper (see `main.rs`).
pub const KEEPER_ARG: &str = "__app-keeper";
/// The mode that tries the bind filter (see [`super::probe`]): `gatehouse __app-keeper probe PORT` binds
/// `127.0.0.1:PORT` and exits.
pub const PROBE_MODE: &str = "probe";
/// The keeper's end of the socket pair, in the keeper.
const KEEPER_FD: RawFd = 3;
/// How long Gatehouse waits for any answer from the keeper before giving up on it.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Gatehouse's handle on a running keeper.
pub struct Keeper {
    /// The socket pair's end; one request and its answer at a time.
    control: Mutex<OwnedFd>,
    /// The app's process group while it runs, and whether Gatehouse is done with this keeper; shared with
    /// the thread that reaps the keeper (see [`watch_keeper`]).
    watched: Arc<Watched>,
    private: bool,
    /// Sockets fetched ahead, per family (IPv4, IPv6): a connection to the app costs no round trip. Never
    /// held while talking to the keeper.
    stock: Mutex<[Vec<OwnedFd>; 2]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn of(addr: &SocketAddr) -> Self {
        if addr.is_ipv4() { Family::V4 } else { Family::V6 }
    }

    fn index(self) -> usize {
        usize::from(self == Family::V6)
    }

    fn byte(self) -> u8 {
        if self == Family::V6 { 6 } else { 4 }
    }

    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            4 => Some(Family::V4),
            6 => Some(Family::V6),
            _ => None,
        }
    }
}

#[derive(Default)]
struct Watched {
    group: Mutex<Option<i32>>,
    closing: std::sync::atomic::AtomicBool,
}

/// Reaps the keeper. Should it end while Gatehouse still relies on it (killed by someone), the app it
/// watched is killed: unreachable without its keeper, and without its dead man's switch, it is better
/// restarted (the supervisor does that, with a new keeper) than left serving nobody.
fn watch_keeper(mut process: Child, watched: Arc<Watched>) {
    let _ = std::thread::Builder::new().name("gatehouse-keeper-reaper".into()).spawn(move || {
        let status = process.wait();
        if watched.closing.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let group = *watched.group.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(group) = group {
            let how = match status {
                Ok(status) => status.to_string(),
                Err(err) => err.to_string(),
            };
            tracing::error!(
                keeper = %how,
                "the app keeper ended unexpectedly; stopping the app so it restarts with a new one"
            );
            // SAFETY: kill(2) of the app's process group, which the supervisor has not reaped yet.
            unsafe { libc::kill(-group, libc::SIGKILL) };
        }
    });
}

impl Keeper {
    /// Starts a keeper; with `private`, it makes a network of its own first and fails if it cannot.
    pub fn start(private: bool) -> io::Result<Keeper> {
        let (ours, theirs) = seqpacket_pair()?;
        let theirs_raw = theirs.as_raw_fd();
        let mut command = Command::new("/proc/self/exe");
        command
            .arg0("gatehouse")
            .arg(KEEPER_ARG)
            .arg(if private { "private" } else { "shared" })
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            // Its own process group: a terminal's Ctrl-C must not end it while Gatehouse is still draining
            // connections (it ignores the stop signals too, and ends when Gatehouse's end closes).
            .process_group(0);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(move || {
                // The keeper's end as fd 3, without close-on-exec (dup2 clears it; fcntl when already 3).
                let result = if theirs_raw == KEEPER_FD {
                    libc::fcntl(KEEPER_FD, libc::F_SETFD, 0)
                } else {
                    libc::dup2(theirs_raw, KEEPER_FD)
                };
                if result < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
            });
        }
        let process = command.spawn()?;
        drop(theirs);
        let watched = Arc::new(Watched::default());
        watch_keeper(process, watched.clone());
        // From here on, a failure drops the keeper, which closes our end (and the process then exits).
        let keeper = Keeper { control: Mutex::new(ours), watched, private, stock: Mutex::new([vec![], vec![]]) };
        set_receive_timeout(&keeper.control_fd(), ANSWER_TIMEOUT)?;
        let mut answer = [0u8; 512];
        let (n, _) = recv_with_fds(keeper.control_fd().as_fd(), &mut answer)?;
        match answer.get(..n) {
            Some([b'R']) => Ok(keeper),
            Some([b'E', message @ ..]) => Err(io::Error::other(String::from_utf8_lossy(message).into_owned())),
            _ => Err(io::Error::other("the app keeper did not start")),
        }
    }

    fn control_fd(&self) -> std::sync::MutexGuard<'_, OwnedFd> {
        self.control.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn stock(&self) -> std::sync::MutexGuard<'_, [Vec<OwnedFd>; 2]> {
        self.stock.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn is_private(&self) -> bool {
        self.private
    }

    fn take_from_stock(&self, family: Family) -> Option<OwnedFd> {
        self.stock()[family.index()].pop()
    }

    /// A fresh TCP socket for `addr`'s family, made in the keeper's network, close-on-exec. Blocks for a
    /// round trip to the keeper when the stock is empty (one in [`MAX_FDS`]): not for async tasks, which
    /// use [`Keeper::connect`].
    pub fn socket(&self, addr: &SocketAddr) -> io::Result<OwnedFd> {
        let family = Family::of(addr);
        if let Some(fd) = self.take_from_stock(family) {
            return Ok(fd);
        }
        let mut fetched = self.fetch(family)?;
        let fd = fetched.pop().ok_or_else(|| io::Error::other("the app keeper sent no socket"))?;
        self.stock()[family.index()].extend(fetched);
        Ok(fd)
    }

    /// One batch of sockets of `family` from the keeper. Each answer names its family: an answer that
    /// arrives late (after a timeout) is put in stock rather than mistaken for the one asked for.
    fn fetch(&self, family: Family) -> io::Result<Vec<OwnedFd>> {
        let control = self.control_fd();
        send_with_fds(control.as_fd(), &[b'S', family.byte(), MAX_FDS as u8], &[])?;
        loop {
            let mut answer = [0u8; 256];
            let (n, fds) = recv_with_fds(control.as_fd(), &mut answer)?;
            match answer.get(..n) {
                Some([b'K', byte]) if Family::from_byte(*byte) == Some(family) && !fds.is_empty() => return Ok(fds),
                Some([b'K', byte]) => match Family::from_byte(*byte) {
                    Some(other) => self.stock()[other.index()].extend(fds),
                    None => return Err(io::Error::other("the app keeper answered nonsense")),
                },
                Some([b'E', message @ ..]) => {
                    return Err(io::Error::other(String::from_utf8_lossy(message).into_owned()));
                }
                _ => return Err(io::Error::other("the app keeper is gone")),
            }
        }
    }

    /// Connects to `addr` in the keeper's network. When the stock is empty, the keeper is asked on a
    /// blocking thread, so no worker waits for it.
    pub async fn connect(self: &Arc<Self>, addr: SocketAddr) -> io::Result<tokio::net::TcpStream> {
        let fd = match self.take_from_stock(Family::of(&addr)) {
            Some(fd) => fd,
            None => {
                let keeper = self.clone();
                tokio::task::spawn_blocking(move || keeper.socket(&addr)).await.map_err(io::Error::other)??
            }
        };
        set_nonblocking(&fd)?;
        // SAFETY: `fd` is an open, non-blocking TCP socket of `addr`'s family that nothing else owns.
        let socket = unsafe { tokio::net::TcpSocket::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(fd)) };
        socket.connect(addr).await
    }

    /// From now on, the keeper kills this process group if Gatehouse dies (and Gatehouse kills it if the
    /// keeper dies).
    pub fn watch_group(&self, group: i32) -> io::Result<()> {
        *self.watched.group.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(group);
        let mut message = [b'G', 0, 0, 0, 0];
        message[1..].copy_from_slice(&group.to_le_bytes());
        send_with_fds(self.control_fd().as_fd(), &message, &[])
    }

    /// The group was stopped and reaped: its id may be reused, so nobody may kill it any more.
    pub fn forget_group(&self) {
        *self.watched.group.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
        let _ = send_with_fds(self.control_fd().as_fd(), b"F", &[]);
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        // Closing our end tells the keeper to exit (its reaper thread collects it).
        self.watched.closing.store(true, std::sync::atomic::Ordering::Release);
        let _ = nix::sys::socket::shutdown(self.control_fd().as_raw_fd(), nix::sys::socket::Shutdown::Both);
    }
}

pub(super) fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The keeper process itself (`gatehouse __app-keeper private|shared`), run by `main` before anything else:
/// single-threaded, as `unshare(CLONE_NEWUSER)` requires. `probe PORT` is the isolation probe's child.
pub fn keeper_main(mode: &str, argument: Option<&str>) -> ! {
    if mode == PROBE_MODE {
        // From a second thread, as Go, Java and tokio apps bind: the filter sees a thread id then.
        let port = argument.and_then(|port| port.parse::<u16>().ok());
        let bound = std::thread::spawn(move || {
            port.is_some_and(|port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
        })
        .join()
        .unwrap_or(false);
        std::process::exit(if bound { 0 } else { 1 });
    }
    // SAFETY: fd 3 was set up by `Keeper::start` for this process and nothing else uses it.
    let control = unsafe { OwnedFd::from_raw_fd(KEEPER_FD) };
    let started = if mode == "private" { enter_private_network() } else { Ok(()) };
    if let Err(err) = started {
        let _ = send_with_fds(control.as_fd(), format!("E{err}").as_bytes(), &[]);
        std::process::exit(1);
    }
    // Only the end of Gatehouse's side ends the keeper (then it kills the app's group); the stop signals a
    // service manager or terminal sends are Gatehouse's to handle.
    for signal in [libc::SIGINT, libc::SIGHUP, libc::SIGQUIT, libc::SIGTERM, libc::SIGPIPE] {
        // SAFETY: setting a signal's disposition to "ignore".
        unsafe { libc::signal(signal, libc::SIG_IGN) };
    }
    if send_with_fds(control.as_fd(), b"R", &[]).is_err() {
        std::process::exit(1);
    }
    let mut group: Option<i32> = None;
    let mut request = [0u8; 16];
    loop {
        let n = match recv_with_fds(control.as_fd(), &mut request) {
            Ok((n, _)) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            // Short of memory for a moment: Gatehouse is still there, so try again.
            Err(err) if matches!(err.raw_os_error(), Some(libc::ENOMEM) | Some(libc::ENOBUFS)) => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            // ECONNRESET and the like: Gatehouse's end is gone.
            Err(_) => 0,
        };
        match request.get(..n) {
            // Gatehouse is gone, or closed us.
            None | Some([]) => break,
            Some([b'S', family, count]) => {
                let answer = make_sockets(*family, usize::from(*count).min(MAX_FDS));
                let sent = match &answer {
                    Ok(sockets) => {
                        let raw: Vec<RawFd> = sockets.iter().map(AsRawFd::as_raw_fd).collect();
                        send_with_fds(control.as_fd(), &[b'K', *family], &raw)
                    }
                    Err(err) => send_with_fds(control.as_fd(), format!("E{err}").as_bytes(), &[]),
                };
                if sent.is_err() {
                    break;
                }
            }
            Some([b'G', a, b, c, d]) => group = Some(i32::from_le_bytes([*a, *b, *c, *d])),
            Some([b'F']) => group = None,
            Some(_) => {}
        }
    }
    if let Some(group) = group.filter(|group| *group > 1) {
        // SAFETY: kill(2) of a process group, by the id Gatehouse named.
        unsafe { libc::kill(-group, libc::SIGKILL) };
    }
    std::process::exit(0);
}

fn make_sockets(family: u8, count: usize) -> io::Result<Vec<OwnedFd>> {
    let domain = if family == 6 { libc::AF_INET6 } else { libc::AF_INET };
    (0..count.max(1))
        .map(|_| {
            // SAFETY: socket(2); the descriptor is owned at once.
            let fd = unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
            if fd < 0 { Err(io::Error::last_os_error()) } else { Ok(unsafe { OwnedFd::from_raw_fd(fd) }) }
        })
        .collect()
}

/// Enters a new user namespace (mapping our own uid and gid, so files look the same) and a new network
/// namespace owned by it, and brings its loopback interface up.
fn enter_private_network() -> io::Result<()> {
    // SAFETY: getuid(2) and getgid(2) cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER | nix::sched::CloneFlags::CLONE_NEWNET).map_err(
        |err| io::Error::other(format!("could not create a user and network namespace ({})", namespace_hint(err))),
    )?;
    let write = |path: &str, text: String| {
        std::fs::write(path, text).map_err(|err| io::Error::other(format!("could not write {path} ({err})")))
    };
    // An unprivileged process may map its group only after giving up setgroups(2).
    match std::fs::write("/proc/self/setgroups", "deny") {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(io::Error::other(format!("could not write /proc/self/setgroups ({err})"))),
    }
    write("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
    write("/proc/self/gid_map", format!("{gid} {gid} 1"))?;
    bring_loopback_up()
}

/// What an unshare(2) failure usually means on a real machine: the raw errno text ("No space left on
/// device") sends people looking for a full disk.
fn namespace_hint(err: nix::errno::Errno) -> String {
    match err {
        nix::errno::Errno::ENOSPC => {
            format!("{err}: user namespaces are turned off or used up; see sysctl user.max_user_namespaces")
        }
        nix::errno::Errno::EPERM | nix::errno::Errno::EACCES => format!(
            "{err}: unprivileged user namespaces are not allowed here (sysctl kernel.unprivileged_userns_clone, \
             AppArmor's apparmor_restrict_unprivileged_userns, or a container's seccomp profile)"
        ),
        nix::errno::Errno::EINVAL => format!("{err}: this kernel has no user or network namespaces"),
        other => other.to_string(),
    }
}

fn bring_loopback_up() -> io::Result<()> {
    // SAFETY: an ioctl pair on a throw-away socket with a zeroed, correctly named `ifreq`.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let socket = OwnedFd::from_raw_fd(fd);
        let mut request: libc::ifreq = std::mem::zeroed();
        for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo\0") {
            *slot = *byte as libc::c_char;
        }
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) < 0 {
            return Err(io::Error::other(format!(
                "could not read the loopback interface ({})",
                io::Error::last_os_error()
            )));
        }
        request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &request) < 0 {
            return Err(io::Error::other(format!(
                "could not bring the loopback interface up ({})",
                io::Error::last_os_error()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_failures_say_what_to_look_at() {
        assert!(namespace_hint(nix::errno::Errno::ENOSPC).contains("user.max_user_namespaces"));
        assert!(namespace_hint(nix::errno::Errno::EPERM).contains("not allowed"));
        assert!(namespace_hint(nix::errno::Errno::EACCES).contains("AppArmor"));
        assert!(namespace_hint(nix::errno::Errno::EINVAL).contains("no user or network namespaces"));
        assert_eq!(namespace_hint(nix::errno::Errno::ENOMEM), nix::errno::Errno::ENOMEM.to_string());
    }
}
