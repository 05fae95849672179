//! Without a private network (isolation off or unavailable), the app's port is in the machine's shared
//! network, where another local user could bind it first, or right after the app dies. Gatehouse then only
//! calls the app ready when every listening socket on its port that Gatehouse's connections reach belongs to
//! the app: opened by our own user, and held by a process in the app's process group (found through
//! `/proc/net/tcp*` and `/proc/PID/fd`). And an app listening on its port where other machines reach it
//! (`0.0.0.0`, `::`, a network address) would be reachable past the sign-in wall: that is refused too.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Who listens on a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerOwner {
    Nobody,
    /// Every listener Gatehouse's connections to `127.0.0.1` reach is held by the app's process group and
    /// was opened by our user, and none of the app's is reachable from other machines.
    App,
    /// The app's own listener on an address other machines reach (a wildcard or a network address).
    AppExposed(IpAddr),
    /// Something else listens where Gatehouse connects (too).
    Stranger,
}

/// A socket in LISTEN state, from a `/proc/net/tcp*` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listening {
    /// IPv4-mapped IPv6 addresses are given as IPv4.
    pub address: IpAddr,
    pub uid: u32,
    pub inode: u64,
}

impl Listening {
    /// Whether Gatehouse's connections to `127.0.0.1` reach it: bound there or to a wildcard. A stranger on
    /// another address (a second loopback address such as `127.0.0.2`, `::1`) is none of Gatehouse's
    /// business and cannot keep the app from being ready.
    fn reached_by_gatehouse(&self) -> bool {
        self.address == Ipv4Addr::LOCALHOST || self.address.is_unspecified()
    }

    /// Whether other machines can connect to it.
    fn reached_from_the_network(&self) -> bool {
        !self.address.is_loopback()
    }
}

/// Who listens on `port`: nobody, only process group `group` (privately, or exposed), or something else.
pub fn listener_owner(port: u16, group: i32) -> ListenerOwner {
    // SAFETY: geteuid(2) cannot fail.
    let own_uid = unsafe { libc::geteuid() };
    let listeners: Vec<Listening> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .flat_map(|table| listening_sockets(&table, port))
        .collect();
    if listeners.is_empty() {
        return ListenerOwner::Nobody;
    }
    let held = sockets_held_by_group(group);
    let apps = |listening: &&Listening| listening.uid == own_uid && held.contains(&listening.inode);
    if let Some(exposed) = listeners.iter().filter(apps).find(|listening| listening.reached_from_the_network()) {
        return ListenerOwner::AppExposed(exposed.address);
    }
    let reached: Vec<&Listening> = listeners.iter().filter(|listening| listening.reached_by_gatehouse()).collect();
    if reached.is_empty() {
        ListenerOwner::Nobody
    } else if reached.iter().all(apps) {
        ListenerOwner::App
    } else {
        ListenerOwner::Stranger
    }
}

/// Each socket in LISTEN state on `port`, whatever its address, in a `/proc/net/tcp` or `tcp6` table.
pub fn listening_sockets(table: &str, port: u16) -> Vec<Listening> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (address, local_port) = fields.get(1)?.split_once(':')?;
            let local_port = u16::from_str_radix(local_port, 16).ok()?;
            // State 0A is LISTEN.
            if local_port != port || *fields.get(3)? != "0A" {
                return None;
            }
            Some(Listening {
                address: parse_address(address)?,
                uid: fields.get(7)?.parse().ok()?,
                inode: fields.get(9)?.parse().ok()?,
            })
        })
        .collect()
}

/// An address as the kernel prints it: each 32-bit word of the network-order address as a number in the
/// machine's byte order (so `127.0.0.1` is `0100007F` on little-endian machines).
fn parse_address(hex: &str) -> Option<IpAddr> {
    let word = |index: usize| -> Option<[u8; 4]> {
        let digits = hex.get(index * 8..index * 8 + 8)?;
        if !digits.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return None;
        }
        Some(u32::from_str_radix(digits, 16).ok()?.to_ne_bytes())
    };
    match hex.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::from(word(0)?))),
        32 => {
            let mut bytes = [0u8; 16];
            for index in 0..4 {
                bytes[index * 4..index * 4 + 4].copy_from_slice(&word(index)?);
            }
            Some(IpAddr::V6(Ipv6Addr::from(bytes)).to_canonical())
        }
        _ => None,
    }
}

/// Inodes of the sockets that processes in `group` hold open.
fn sockets_held_by_group(group: i32) -> HashSet<u64> {
    let mut inodes = HashSet::new();
    let Ok(processes) = std::fs::read_dir("/proc") else { return inodes };
    for entry in processes.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // Fields after the command name (which may contain spaces, so it is skipped by its closing paren):
        // state, ppid, pgrp.
        let Some(after_name) = stat.rsplit_once(") ").map(|(_, rest)| rest) else { continue };
        if after_name.split_whitespace().nth(2).and_then(|pgrp| pgrp.parse::<i32>().ok()) != Some(group) {
            continue;
        }
        let Ok(descriptors) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { continue };
        for descriptor in descriptors.flatten() {
            if let Ok(target) = std::fs::read_link(descriptor.path())
                && let Some(inode) = target
                    .to_str()
                    .and_then(|text| text.strip_prefix("socket:["))
                    .and_then(|text| text.strip_suffix(']'))
                    .and_then(|text| text.parse().ok())
            {
                inodes.insert(inode);
            }
        }
    }
    inodes
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:2135 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:2135 0100007F:C000 01 00000000:00000000 00:00000000 00000000     0        0 4243 1 0000000000000000 100 0 0 10 0
   2: 00000000:2135 00000000:0000 0A 00000000:00000000 00:00000000 00000000 65534        0 9999 1 0000000000000000 100 0 0 10 0
   3: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5555 1 0000000000000000 100 0 0 10 0
   4: 0200007F:2135 00000000:0000 0A 00000000:00000000 00:00000000 00000000 65534        0 7777 1 0000000000000000 100 0 0 10 0
";

    const TABLE6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:2135 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 6001 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 6002 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 6003 1 0000000000000000 100 0 0 10 0
   3: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 6004 1 0000000000000000 100 0 0 10 0
";

    fn listening(address: &str, uid: u32, inode: u64) -> Listening {
        Listening { address: address.parse().unwrap(), uid, inode }
    }

    // The tables are as a little-endian machine's kernel prints them.
    #[cfg(target_endian = "little")]
    #[test]
    fn listening_sockets_on_a_port_are_found_with_their_address_and_owner() {
        // 0x2135 = 8501: three listeners (two of them another user's), the established connection ignored.
        assert_eq!(
            listening_sockets(TABLE, 8501),
            vec![
                listening("127.0.0.1", 0, 4242),
                listening("0.0.0.0", 65534, 9999),
                listening("127.0.0.2", 65534, 7777)
            ]
        );
        assert_eq!(listening_sockets(TABLE, 8080), vec![listening("127.0.0.1", 0, 5555)]);
        assert!(listening_sockets(TABLE, 1).is_empty());
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn ipv6_wildcards_and_mapped_addresses_are_read() {
        assert_eq!(listening_sockets(TABLE6, 8501), vec![listening("::", 0, 6001)]);
        // `::ffff:0.0.0.0` and `::ffff:127.0.0.1` are the IPv4 addresses they map.
        assert_eq!(listening_sockets(TABLE6, 8080), vec![listening("0.0.0.0", 0, 6002)]);
        assert_eq!(listening_sockets(TABLE6, 80), vec![listening("127.0.0.1", 0, 6003), listening("::1", 0, 6004)]);
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn addresses_are_read_word_by_word_in_the_machines_byte_order() {
        assert_eq!(parse_address("0501A8C0"), Some("192.168.1.5".parse().unwrap()));
        assert_eq!(parse_address("B80D0120000000000000000001000000"), Some("2001:db8::1".parse().unwrap()));
        for malformed in ["", "0100007", "0100007G", "+100007F", "0100007F00", "0000000000000000FFFF00000100007"] {
            assert_eq!(parse_address(malformed), None, "{malformed}");
        }
    }

    #[test]
    fn who_gatehouse_reaches_and_who_other_machines_reach() {
        let seen = |address: &str| listening(address, 0, 1);
        assert!(seen("127.0.0.1").reached_by_gatehouse() && !seen("127.0.0.1").reached_from_the_network());
        assert!(seen("0.0.0.0").reached_by_gatehouse() && seen("0.0.0.0").reached_from_the_network());
        assert!(seen("::").reached_by_gatehouse() && seen("::").reached_from_the_network());
        assert!(!seen("127.0.0.2").reached_by_gatehouse() && !seen("127.0.0.2").reached_from_the_network());
        assert!(!seen("::1").reached_by_gatehouse() && !seen("::1").reached_from_the_network());
        assert!(!seen("192.168.1.5").reached_by_gatehouse() && seen("192.168.1.5").reached_from_the_network());
    }

    #[test]
    fn a_listener_of_this_process_group_belongs_to_it_and_a_free_port_to_nobody() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let group = nix::unistd::getpgrp().as_raw();
        assert_eq!(listener_owner(port, group), ListenerOwner::App);
        assert_eq!(listener_owner(port, group + 100_000), ListenerOwner::Stranger, "another group does not hold it");
        drop(listener);
        assert_eq!(listener_owner(port, group), ListenerOwner::Nobody);
    }

    #[test]
    fn the_apps_listener_reachable_from_the_network_is_told_apart() {
        let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let group = nix::unistd::getpgrp().as_raw();
        assert_eq!(listener_owner(port, group), ListenerOwner::AppExposed(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
        assert_eq!(listener_owner(port, group + 100_000), ListenerOwner::Stranger, "a stranger's stays a stranger's");
    }
}
