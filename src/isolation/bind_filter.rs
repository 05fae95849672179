//! Moving the app's listening socket into the keeper's private network, with no change to the app.
//!
//! Streamlit cannot listen on a Unix socket or on a socket it is handed, and the app must keep the machine's
//! network for everything else it does (databases, APIs, a PostgreSQL on localhost), so the app itself stays
//! where it is. Instead, before the app's command starts, its process gets a seccomp filter that sends every
//! `bind(2)` of it and its descendants to Gatehouse for a decision (`SECCOMP_RET_USER_NOTIF`). A bind to
//! the app's port is answered by Gatehouse: it takes a fresh socket from the keeper's private network, gives
//! it the options and flags of the app's socket, binds it to the address the app asked for, and puts it in
//! place of the app's socket under the same descriptor number (`SECCOMP_IOCTL_NOTIF_ADDFD` with
//! `SECCOMP_ADDFD_FLAG_SETFD`); the app's `bind` returns 0 and its `listen` and `accept` work as ever, in a
//! network only Gatehouse can reach. Every other bind goes ahead unchanged (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`).
//!
//! The filter answers `bind` for the native architecture (and x32 on x86-64); a 32-bit program's bind
//! (i386 `bind` and `socketcall(SYS_BIND)`, or 32-bit ARM's) is refused with EACCES, since it cannot be moved.
//! A bind whose address cannot be read, or an `AF_UNSPEC` one on the app's port, is refused too: nothing
//! of the app's may listen on its port in the machine's network.
//! Needs Linux 5.9 or newer (user notification with descriptor injection, `pidfd_getfd`).

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use super::fd_passing::send_with_fds;
use super::keeper::Keeper;

#[cfg(target_arch = "x86_64")]
const NATIVE_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const NATIVE_ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The 32-bit architecture the kernel also runs programs of, with its `bind` and, where binds can also be
/// made through it, `socketcall` (whose first argument is then `SYS_BIND`, 2).
#[cfg(target_arch = "x86_64")]
const COMPAT: (u32, u32, Option<u32>) = (0x4000_0003, 361, Some(102)); // AUDIT_ARCH_I386
#[cfg(target_arch = "aarch64")]
const COMPAT: (u32, u32, Option<u32>) = (0x4000_0028, 282, None); // AUDIT_ARCH_ARM
const SOCKETCALL_BIND: u32 = 2;

/// `bind` in the native table, and in the x32 one where there is such a thing.
fn bind_numbers() -> Vec<u32> {
    let native = libc::SYS_bind as u32;
    #[cfg(target_arch = "x86_64")]
    return vec![native, native | X32_SYSCALL_BIT];
    #[cfg(not(target_arch = "x86_64"))]
    return vec![native];
}

/// The classic BPF program: notify on the app port's candidates (every `bind`), allow everything else.
pub struct BindFilter {
    program: Vec<libc::sock_filter>,
}

const fn statement(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt: 0, jf: 0, k }
}

const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

impl Default for BindFilter {
    fn default() -> Self {
        Self::new()
    }
}

impl BindFilter {
    pub fn new() -> Self {
        const LOAD: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
        const EQUALS: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
        const SKIP: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
        const RETURN: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
        // seccomp_data: nr at offset 0, arch at 4, the low half of the first argument at 16.
        let numbers = bind_numbers();
        let count = numbers.len() as u8;
        let mut program = vec![statement(LOAD, 4)];
        // Not native: to the 32-bit section after the native one (LOAD, comparisons, SKIP, two returns).
        program.push(jump(EQUALS, NATIVE_ARCH, 0, count + 4));
        program.push(statement(LOAD, 0));
        for (index, number) in numbers.iter().enumerate() {
            // A match jumps over the remaining comparisons and the skip, to the notify return.
            program.push(jump(EQUALS, *number, count - index as u8, 0));
        }
        program.push(statement(SKIP, 1));
        program.push(statement(RETURN, libc::SECCOMP_RET_USER_NOTIF));
        program.push(statement(RETURN, libc::SECCOMP_RET_ALLOW));
        // A 32-bit program's bind cannot be read and moved here: it is refused (EACCES), so the app's port
        // never ends up in the machine's network. Every other architecture and call is allowed.
        let (compat_arch, compat_bind, socketcall) = COMPAT;
        let deny = libc::SECCOMP_RET_ERRNO | libc::EACCES as u32;
        match socketcall {
            Some(socketcall) => program.extend([
                jump(EQUALS, compat_arch, 0, 6),
                statement(LOAD, 0),
                jump(EQUALS, compat_bind, 3, 0),
                jump(EQUALS, socketcall, 0, 3),
                statement(LOAD, 16),
                jump(EQUALS, SOCKETCALL_BIND, 0, 1),
                statement(RETURN, deny),
                statement(RETURN, libc::SECCOMP_RET_ALLOW),
            ]),
            None => program.extend([
                jump(EQUALS, compat_arch, 0, 3),
                statement(LOAD, 0),
                jump(EQUALS, compat_bind, 0, 1),
                statement(RETURN, deny),
                statement(RETURN, libc::SECCOMP_RET_ALLOW),
            ]),
        }
        Self { program }
    }

    /// Installs the filter in the calling process and sends its listener to Gatehouse over `channel`. Runs
    /// between `fork` and `exec`: only syscalls, no allocation.
    ///
    /// # Safety
    /// Must only be called in a freshly forked child, on a socket `channel` it owns.
    pub unsafe fn install(&self, channel: RawFd) -> io::Result<()> {
        // SAFETY: prctl and seccomp(2) with a program that outlives the call; the listener is closed here.
        unsafe {
            // Unprivileged seccomp filters need no_new_privs (setuid programs in the app lose their setuid).
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            let program = libc::sock_fprog {
                len: self.program.len() as u16,
                filter: self.program.as_ptr() as *mut libc::sock_filter,
            };
            let listener = libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
                &raw const program,
            );
            if listener < 0 {
                return Err(io::Error::last_os_error());
            }
            let listener = listener as RawFd;
            let sent = send_with_fds(BorrowedFd::borrow_raw(channel), b"L", &[listener]);
            libc::close(listener);
            libc::close(channel);
            sent
        }
    }
}

/// How a freshly forked child hands its filter's listener to Gatehouse: make one before spawning, install
/// the filter with [`FilterChannel::child_end`] in the child's `pre_exec`, then [`FilterChannel::receive`].
pub struct FilterChannel {
    ours: OwnedFd,
    theirs: OwnedFd,
}

impl FilterChannel {
    pub fn new() -> io::Result<Self> {
        let (ours, theirs) = super::fd_passing::seqpacket_pair()?;
        Ok(Self { ours, theirs })
    }

    /// The descriptor the child sends its listener on (see [`BindFilter::install`]).
    pub fn child_end(&self) -> RawFd {
        self.theirs.as_raw_fd()
    }

    /// The listener the child sent before its `exec` (after a successful spawn).
    pub fn receive(self) -> io::Result<OwnedFd> {
        drop(self.theirs);
        super::fd_passing::set_receive_timeout(&self.ours, std::time::Duration::from_secs(5))?;
        let mut message = [0u8; 4];
        let (n, mut fds) = super::fd_passing::recv_with_fds(self.ours.as_fd(), &mut message)?;
        match (message.get(..n), fds.pop()) {
            (Some(b"L"), Some(listener)) if fds.is_empty() => Ok(listener),
            _ => Err(io::Error::other("the new process did not send its bind filter")),
        }
    }
}

/// Spawns `command` under the bind filter, returning the child and the filter's listener.
pub fn spawn_filtered(
    mut command: std::process::Command,
    filter: &BindFilter,
) -> io::Result<(std::process::Child, OwnedFd)> {
    use std::os::unix::process::CommandExt;
    let channel = FilterChannel::new()?;
    let child_end = channel.child_end();
    // Copied here, before the fork: nothing may allocate in the child.
    let filter = BindFilter { program: filter.program.clone() };
    // SAFETY: only async-signal-safe calls between fork and exec (see `BindFilter::install`).
    unsafe {
        command.pre_exec(move || filter.install(child_end));
    }
    let mut child = command.spawn()?;
    match channel.receive() {
        Ok(listener) => Ok((child, listener)),
        Err(err) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(err)
        }
    }
}

/// Where the app's listener ended up, once it did.
pub type BoundAddress = tokio::sync::watch::Sender<Option<SocketAddr>>;

/// Answers the app's `bind` calls until every process under the filter has exited. Runs on a thread of its
/// own: `SECCOMP_IOCTL_NOTIF_RECV` blocks.
pub fn answer_binds(listener: OwnedFd, port: u16, keeper: Arc<Keeper>, bound: BoundAddress) {
    loop {
        let mut poll = libc::pollfd { fd: listener.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: poll(2) on one descriptor we own.
        let ready = unsafe { libc::poll(&mut poll, 1, -1) };
        if ready < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if poll.revents & libc::POLLIN == 0 {
            // POLLHUP: no process is left under the filter.
            return;
        }
        // SAFETY: a zeroed notification buffer of the size the ioctl expects.
        let mut notification: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        if unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut notification) } < 0 {
            match io::Error::last_os_error().raw_os_error() {
                // The caller died before we read its notification.
                Some(libc::ENOENT) | Some(libc::EINTR) => continue,
                _ => return,
            }
        }
        let verdict = decide(listener.as_fd(), &notification, port, &keeper, &bound);
        let mut response = libc::seccomp_notif_resp { id: notification.id, val: 0, error: 0, flags: 0 };
        match verdict {
            Verdict::Continue => response.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
            Verdict::Done => {}
            Verdict::Fail(errno) => response.error = -errno,
        }
        // SAFETY: as above; a target that died meanwhile makes this fail with ENOENT, which is fine.
        unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &response) };
    }
}

enum Verdict {
    /// Let the call go ahead as the app made it.
    Continue,
    /// The listener was moved; the call returns 0.
    Done,
    /// The call fails with this errno.
    Fail(i32),
}

fn decide(
    listener: BorrowedFd<'_>,
    notification: &libc::seccomp_notif,
    port: u16,
    keeper: &Keeper,
    bound: &BoundAddress,
) -> Verdict {
    // The id of the calling *thread*; descriptors and memory belong to its process (its thread group), and
    // before Linux 6.9 pidfd_open(2) refuses the id of any thread but the first.
    let Some(pid) = thread_group_of(notification.pid as libc::pid_t) else { return Verdict::Fail(libc::EACCES) };
    let fd = notification.data.args[0] as RawFd;
    // The kernel reads the length as a 32-bit int; the register's upper half may hold anything.
    let Some(address) = read_sockaddr(pid, notification.data.args[1], notification.data.args[2] as u32) else {
        // What the app asked for cannot be read, so it cannot be told apart from the app's own port.
        return Verdict::Fail(libc::EACCES);
    };
    // The memory read must have been the caller's, not a recycled pid's.
    if !notification_is_current(listener, notification.id) {
        return Verdict::Continue;
    }
    let requested = match parse_sockaddr(&address) {
        Some(requested) if requested.port() == port => requested,
        Some(_) => return Verdict::Continue,
        // The kernel binds an IPv4 socket given AF_UNSPEC with INADDR_ANY to 0.0.0.0: on the app's port,
        // that must not go ahead in the machine's network. Other families (Unix sockets...) are not the app's.
        None if is_unspecified_family_on(&address, port) => return Verdict::Fail(libc::EAFNOSUPPORT),
        None => return Verdict::Continue,
    };
    match move_listener(listener, notification.id, pid, fd, &address, keeper) {
        Ok(Moved::Yes) => {
            bound.send_replace(Some(connect_address(requested)));
            tracing::debug!(%requested, "the app's listening socket is in its private network");
            Verdict::Done
        }
        Ok(Moved::NotAStreamSocket) => Verdict::Continue,
        Err(err) => {
            tracing::error!(error = %err, "could not move the app's listening socket into its private network");
            Verdict::Fail(err.raw_os_error().unwrap_or(libc::EACCES))
        }
    }
}

enum Moved {
    Yes,
    /// A UDP socket on the app's port number: not the app's listener, left alone.
    NotAStreamSocket,
}

/// Copies the app's socket `fd` into our table, makes a twin in the private network, binds it to `address`,
/// and installs it in the app under the same number.
fn move_listener(
    listener: BorrowedFd<'_>,
    id: u64,
    pid: libc::pid_t,
    fd: RawFd,
    address: &[u8],
    keeper: &Keeper,
) -> io::Result<Moved> {
    let original = take_descriptor(pid, fd)?;
    if socket_option(&original, libc::SOL_SOCKET, libc::SO_TYPE)? != libc::SOCK_STREAM {
        return Ok(Moved::NotAStreamSocket);
    }
    let family = socket_option(&original, libc::SOL_SOCKET, libc::SO_DOMAIN)?;
    let requested = parse_sockaddr(address).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    if (family == libc::AF_INET) != requested.is_ipv4() {
        return Err(io::Error::from_raw_os_error(libc::EAFNOSUPPORT));
    }
    let twin = keeper.socket(&requested)?;
    for (level, name) in [(libc::SOL_SOCKET, libc::SO_REUSEADDR), (libc::SOL_SOCKET, libc::SO_REUSEPORT)] {
        let value = socket_option(&original, level, name)?;
        set_socket_option(&twin, level, name, value)?;
    }
    if family == libc::AF_INET6 {
        let value = socket_option(&original, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY)?;
        set_socket_option(&twin, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, value)?;
    }
    // SAFETY: fcntl and bind(2) on our own descriptors, with the address bytes the app passed.
    unsafe {
        let status = libc::fcntl(original.as_raw_fd(), libc::F_GETFL);
        if status >= 0 && status & libc::O_NONBLOCK != 0 {
            super::keeper::set_nonblocking(&twin)?;
        }
        if libc::bind(twin.as_raw_fd(), address.as_ptr().cast(), address.len() as libc::socklen_t) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    if !notification_is_current(listener, id) {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    let close_on_exec = descriptor_is_close_on_exec(pid, fd);
    let mut injection = libc::seccomp_notif_addfd {
        id,
        flags: libc::SECCOMP_ADDFD_FLAG_SETFD as u32,
        srcfd: twin.as_raw_fd() as u32,
        newfd: fd as u32,
        newfd_flags: if close_on_exec { libc::O_CLOEXEC as u32 } else { 0 },
    };
    // SAFETY: the ioctl reads the struct above; the app's descriptor `fd` now names the twin.
    if unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_ADDFD, &mut injection) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Moved::Yes)
}

fn notification_is_current(listener: BorrowedFd<'_>, id: u64) -> bool {
    // SAFETY: the ioctl reads one u64.
    unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0 }
}

/// A copy of descriptor `fd` of process `pid` (pidfd_getfd(2)).
fn take_descriptor(pid: libc::pid_t, fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: raw syscalls; each returned descriptor is owned at once.
    unsafe {
        let pidfd = libc::syscall(libc::SYS_pidfd_open, pid, 0);
        if pidfd < 0 {
            return Err(io::Error::last_os_error());
        }
        let pidfd = OwnedFd::from_raw_fd(pidfd as RawFd);
        let copy = libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0);
        if copy < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(copy as RawFd))
    }
}

fn socket_option(fd: &OwnedFd, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut length = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt with a correctly sized integer.
    if unsafe { libc::getsockopt(fd.as_raw_fd(), level, name, (&raw mut value).cast(), &mut length) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}

fn set_socket_option(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    let length = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: setsockopt with a correctly sized integer.
    if unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, (&raw const value).cast(), length) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether the app opened `fd` close-on-exec (`flags:` in /proc/PID/fdinfo/FD, octal).
fn descriptor_is_close_on_exec(pid: libc::pid_t, fd: RawFd) -> bool {
    let Ok(info) = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")) else { return true };
    info.lines()
        .find_map(|line| line.strip_prefix("flags:"))
        .and_then(|flags| i64::from_str_radix(flags.trim(), 8).ok())
        .is_none_or(|flags| flags & i64::from(libc::O_CLOEXEC) != 0)
}

/// The process (thread group) a thread belongs to, from `/proc/TID/status`.
fn thread_group_of(tid: libc::pid_t) -> Option<libc::pid_t> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    status.lines().find_map(|line| line.strip_prefix("Tgid:")).and_then(|tgid| tgid.trim().parse().ok())
}

/// The `sockaddr` the app passed to `bind`, read from its memory.
fn read_sockaddr(pid: libc::pid_t, pointer: u64, length: u32) -> Option<Vec<u8>> {
    let length = usize::try_from(length).ok().filter(|length| (2..=128).contains(length))?;
    let mut buffer = vec![0u8; length];
    let local = libc::iovec { iov_base: buffer.as_mut_ptr().cast(), iov_len: length };
    let remote = libc::iovec { iov_base: pointer as *mut libc::c_void, iov_len: length };
    // SAFETY: process_vm_readv(2) into our own buffer of `length` bytes.
    let read = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    (read == length as isize).then_some(buffer)
}

/// Where Gatehouse connects to reach a listener bound to `requested`: that address, or the family's loopback
/// address when the app bound them all (`0.0.0.0`, `::`).
pub fn connect_address(requested: SocketAddr) -> SocketAddr {
    match requested.ip() {
        ip if !ip.is_unspecified() => requested,
        std::net::IpAddr::V4(_) => SocketAddr::from(([127, 0, 0, 1], requested.port())),
        std::net::IpAddr::V6(_) => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, requested.port())),
    }
}

/// An `AF_UNSPEC` `sockaddr` naming `port` (as an IPv4 socket would read it).
fn is_unspecified_family_on(bytes: &[u8], port: u16) -> bool {
    bytes.len() >= 4
        && i32::from(u16::from_ne_bytes([bytes[0], bytes[1]])) == libc::AF_UNSPEC
        && u16::from_be_bytes([bytes[2], bytes[3]]) == port
}

/// An IPv4 or IPv6 `sockaddr` as an address and port; `None` for any other family or a short buffer.
pub fn parse_sockaddr(bytes: &[u8]) -> Option<SocketAddr> {
    let family = i32::from(u16::from_ne_bytes([*bytes.first()?, *bytes.get(1)?]));
    let port = u16::from_be_bytes([*bytes.get(2)?, *bytes.get(3)?]);
    match family {
        libc::AF_INET => {
            let octets: [u8; 4] = bytes.get(4..8)?.try_into().ok()?;
            Some(SocketAddr::from((octets, port)))
        }
        libc::AF_INET6 => {
            let octets: [u8; 16] = bytes.get(8..24)?.try_into().ok()?;
            Some(SocketAddr::from((std::net::Ipv6Addr::from(octets), port)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddrs_are_read_for_both_families_and_nothing_else() {
        let mut v4 = vec![0u8; 16];
        v4[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        v4[2..4].copy_from_slice(&8501u16.to_be_bytes());
        v4[4..8].copy_from_slice(&[127, 0, 0, 1]);
        assert_eq!(parse_sockaddr(&v4), Some("127.0.0.1:8501".parse().unwrap()));
        let mut v6 = vec![0u8; 28];
        v6[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
        v6[2..4].copy_from_slice(&443u16.to_be_bytes());
        v6[23] = 1;
        assert_eq!(parse_sockaddr(&v6), Some("[::1]:443".parse().unwrap()));
        let mut unix = vec![0u8; 16];
        unix[..2].copy_from_slice(&(libc::AF_UNIX as u16).to_ne_bytes());
        assert_eq!(parse_sockaddr(&unix), None);
        assert_eq!(parse_sockaddr(&v4[..6]), None);
        let mut unspecified = v4.clone();
        unspecified[..2].copy_from_slice(&(libc::AF_UNSPEC as u16).to_ne_bytes());
        assert!(is_unspecified_family_on(&unspecified, 8501));
        assert!(!is_unspecified_family_on(&unspecified, 8502));
        assert!(!is_unspecified_family_on(&v4, 8501));
    }

    #[test]
    fn gatehouse_connects_where_the_app_listens() {
        for (requested, connect) in [
            ("0.0.0.0:8501", "127.0.0.1:8501"),
            ("127.0.0.2:8501", "127.0.0.2:8501"),
            ("[::]:8501", "[::1]:8501"),
            ("[::ffff:127.0.0.1]:8501", "[::ffff:127.0.0.1]:8501"),
            ("[::1]:8501", "[::1]:8501"),
        ] {
            assert_eq!(connect_address(requested.parse().unwrap()), connect.parse().unwrap(), "{requested}");
        }
    }

    #[test]
    fn the_filter_notifies_on_bind_only() {
        let filter = BindFilter::new();
        // Interpret the program for a few syscalls, as the kernel would.
        let run = |arch: u32, nr: u32, first_argument: u32| -> u32 {
            let mut accumulator = 0u32;
            let mut pc = 0usize;
            loop {
                let instruction = filter.program[pc];
                match instruction.code as u32 {
                    c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => {
                        accumulator = match instruction.k {
                            0 => nr,
                            4 => arch,
                            16 => first_argument,
                            other => panic!("unexpected offset {other}"),
                        };
                        pc += 1;
                    }
                    c if c == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K => {
                        pc +=
                            1 + usize::from(if accumulator == instruction.k { instruction.jt } else { instruction.jf });
                    }
                    c if c == libc::BPF_JMP | libc::BPF_JA => pc += 1 + instruction.k as usize,
                    c if c == libc::BPF_RET | libc::BPF_K => return instruction.k,
                    other => panic!("unexpected instruction {other:#x}"),
                }
            }
        };
        for number in bind_numbers() {
            assert_eq!(run(NATIVE_ARCH, number, 3), libc::SECCOMP_RET_USER_NOTIF);
        }
        for other in [libc::SYS_connect, libc::SYS_socket, libc::SYS_listen, libc::SYS_read, libc::SYS_execve] {
            assert_eq!(run(NATIVE_ARCH, other as u32, 2), libc::SECCOMP_RET_ALLOW, "{other}");
        }
        // 32-bit programs: bind refused, everything else (socketcall for other calls included) allowed.
        let (compat_arch, compat_bind, socketcall) = COMPAT;
        let deny = libc::SECCOMP_RET_ERRNO | libc::EACCES as u32;
        assert_eq!(run(compat_arch, compat_bind, 3), deny);
        assert_eq!(run(compat_arch, compat_bind + 1, 3), libc::SECCOMP_RET_ALLOW);
        if let Some(socketcall) = socketcall {
            assert_eq!(run(compat_arch, socketcall, SOCKETCALL_BIND), deny);
            assert_eq!(run(compat_arch, socketcall, 3), libc::SECCOMP_RET_ALLOW, "connect through socketcall");
        }
        assert_eq!(run(0x4000_1234, compat_bind, 2), libc::SECCOMP_RET_ALLOW, "another architecture");
    }
}
