//! Passing open file descriptors between processes over a Unix socket (`SCM_RIGHTS`): how the app keeper
//! hands Gatehouse sockets from its private network, and how a freshly forked app hands Gatehouse its
//! seccomp listener. Raw `libc` calls on stack buffers: [`send_with_fds`] also runs between `fork` and `exec`,
//! where nothing may allocate.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// A connected pair of `SOCK_SEQPACKET` Unix sockets (message boundaries kept), close-on-exec.
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(nix::sys::socket::socketpair(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::SeqPacket,
        None,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )?)
}

/// How long a receive on `socket` may wait before it fails with `WouldBlock`.
pub fn set_receive_timeout(socket: &OwnedFd, timeout: std::time::Duration) -> io::Result<()> {
    let value = libc::timeval { tv_sec: timeout.as_secs() as libc::time_t, tv_usec: timeout.subsec_micros() as _ };
    // SAFETY: setsockopt with a correctly sized timeval.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const value).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if result < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Most descriptors in one message.
pub const MAX_FDS: usize = 16;

/// Room for one `SCM_RIGHTS` header with [`MAX_FDS`] descriptors, aligned for `cmsghdr`.
#[repr(C, align(8))]
struct ControlBuffer([u8; 128]);

/// Sends `data` (at least one byte) with `fds` attached. Async-signal-safe: no allocation, only syscalls.
pub fn send_with_fds(socket: BorrowedFd<'_>, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
    debug_assert!(!data.is_empty() && fds.len() <= MAX_FDS);
    let mut control = ControlBuffer([0; 128]);
    let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
    // SAFETY: plain C structs filled as sendmsg(2) and cmsg(3) describe; the buffers outlive the call.
    unsafe {
        let mut message: libc::msghdr = std::mem::zeroed();
        message.msg_iov = &mut iov;
        message.msg_iovlen = 1;
        if !fds.is_empty() {
            let payload = std::mem::size_of_val(fds) as u32;
            message.msg_control = control.0.as_mut_ptr().cast();
            message.msg_controllen = libc::CMSG_SPACE(payload) as _;
            let header = libc::CMSG_FIRSTHDR(&message);
            (*header).cmsg_level = libc::SOL_SOCKET;
            (*header).cmsg_type = libc::SCM_RIGHTS;
            (*header).cmsg_len = libc::CMSG_LEN(payload) as _;
            std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(header).cast::<RawFd>(), fds.len());
        }
        if libc::sendmsg(socket.as_raw_fd(), &message, libc::MSG_NOSIGNAL) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Receives one message into `data`, returning its length (0: the other side closed) and the descriptors
/// that came with it, each close-on-exec.
pub fn recv_with_fds(socket: BorrowedFd<'_>, data: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut control = ControlBuffer([0; 128]);
    let mut iov = libc::iovec { iov_base: data.as_mut_ptr().cast(), iov_len: data.len() };
    let mut fds = Vec::new();
    // SAFETY: as above; every descriptor the kernel installed is taken into an `OwnedFd` exactly once.
    let received = unsafe {
        let mut message: libc::msghdr = std::mem::zeroed();
        message.msg_iov = &mut iov;
        message.msg_iovlen = 1;
        message.msg_control = control.0.as_mut_ptr().cast();
        message.msg_controllen = control.0.len() as _;
        let received = libc::recvmsg(socket.as_raw_fd(), &mut message, libc::MSG_CMSG_CLOEXEC);
        if received < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut header = libc::CMSG_FIRSTHDR(&message);
        while !header.is_null() {
            if (*header).cmsg_level == libc::SOL_SOCKET && (*header).cmsg_type == libc::SCM_RIGHTS {
                let bytes = ((*header).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
                let data = libc::CMSG_DATA(header).cast::<RawFd>();
                for index in 0..bytes / std::mem::size_of::<RawFd>() {
                    fds.push(OwnedFd::from_raw_fd(data.add(index).read_unaligned()));
                }
            }
            header = libc::CMSG_NXTHDR(&message, header);
        }
        if message.msg_flags & libc::MSG_CTRUNC != 0 {
            return Err(io::Error::other("descriptors were cut off in transit"));
        }
        received as usize
    };
    Ok((received, fds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn descriptors_travel_with_their_message() {
        let (a, b) = std::os::unix::net::UnixDatagram::pair().unwrap();
        let file = tempfile::tempfile().unwrap();
        send_with_fds(a.as_fd(), b"hello", &[file.as_raw_fd(), file.as_raw_fd()]).unwrap();
        let mut data = [0u8; 16];
        let (n, fds) = recv_with_fds(b.as_fd(), &mut data).unwrap();
        assert_eq!(&data[..n], b"hello");
        assert_eq!(fds.len(), 2);
        let flags = unsafe { libc::fcntl(fds[0].as_raw_fd(), libc::F_GETFD) };
        assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
    }
}
