//! Without a private network (isolation off or unavailable), the app's port is in the machine's shared
//! network, where another local user could bind it first, or right after the app dies. Gatehouse then only
//! calls the app ready when every listening socket on its port belongs to the app: opened by our own user,
//! and held by a process in the app's process group (found through `/proc/net/tcp*` and `/proc/PID/fd`).
//! And an app listening on every address (`0.0.0.0`, `::`) would be reachable from the network past the
//! sign-in wall: that is refused too.

use std::collections::HashSet;

/// Who listens on a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerOwner {
    Nobody,
    /// Every listener on the port is held by the app's process group, was opened by our user, and is on a
    /// loopback address.
    App,
    /// The app's own listeners, but on every address: other machines reach the app directly.
    AppOnEveryAddress,
    /// Something else listens there (too).
    Stranger,
}

/// Local addresses (as `/proc/net/tcp*` prints them) on which a listener receives Gatehouse's connections to
/// `127.0.0.1`: itself (also IPv4-mapped) and the wildcards. A stranger listening on another address (a
/// second loopback address such as `127.0.0.2`) is none of Gatehouse's business and cannot keep the app from
/// being ready.
const REACHED_BY_LOOPBACK: [&str; 5] = [
    "0100007F",
    "0000000000000000FFFF00000100007F",
    "00000000",
    "00000000000000000000000000000000",
    "0000000000000000FFFF000000000000",
];

/// The wildcards among them (`0.0.0.0`, `::`, `::ffff:0.0.0.0`): a listener there takes connections from
/// every network the machine is on.
const EVERY_ADDRESS: [&str; 3] = ["00000000", "00000000000000000000000000000000", "0000000000000000FFFF000000000000"];

/// A socket in LISTEN state, from a `/proc/net/tcp*` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listening {
    pub uid: u32,
    pub inode: u64,
    /// On a wildcard address rather than loopback.
    pub on_every_address: bool,
}

/// Who listens on `port`: nobody, only process group `group` (on loopback, or on every address), or something
/// else.
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
    if !listeners.iter().all(|listening| listening.uid == own_uid && held.contains(&listening.inode)) {
        ListenerOwner::Stranger
    } else if listeners.iter().any(|listening| listening.on_every_address) {
        ListenerOwner::AppOnEveryAddress
    } else {
        ListenerOwner::App
    }
}

/// Each socket in LISTEN state on `port`, on an address that Gatehouse's connections to `127.0.0.1` reach, in
/// a `/proc/net/tcp` table.
pub fn listening_sockets(table: &str, port: u16) -> Vec<Listening> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (address, local_port) = fields.get(1)?.split_once(':')?;
            let local_port = u16::from_str_radix(local_port, 16).ok()?;
            // State 0A is LISTEN.
            if local_port != port || *fields.get(3)? != "0A" || !REACHED_BY_LOOPBACK.contains(&address) {
                return None;
            }
            Some(Listening {
                uid: fields.get(7)?.parse().ok()?,
                inode: fields.get(9)?.parse().ok()?,
                on_every_address: EVERY_ADDRESS.contains(&address),
            })
        })
        .collect()
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

    fn listening(uid: u32, inode: u64, on_every_address: bool) -> Listening {
        Listening { uid, inode, on_every_address }
    }

    #[test]
    fn listening_sockets_on_a_port_are_found_with_their_owner() {
        // 0x2135 = 8501: two listeners (one of them another user's, on every address), the established
        // connection ignored, and the stranger on 127.0.0.2, which connections to 127.0.0.1 never reach, too.
        assert_eq!(listening_sockets(TABLE, 8501), vec![listening(0, 4242, false), listening(65534, 9999, true)]);
        assert_eq!(listening_sockets(TABLE, 8080), vec![listening(0, 5555, false)]);
        assert!(listening_sockets(TABLE, 1).is_empty());
    }

    #[test]
    fn ipv6_wildcards_and_mapped_addresses_are_read() {
        // `::` and `::ffff:0.0.0.0` take IPv4 loopback connections and the network's; `::ffff:127.0.0.1` only
        // loopback; `::1` no IPv4 connection at all.
        assert_eq!(listening_sockets(TABLE6, 8501), vec![listening(0, 6001, true)]);
        assert_eq!(listening_sockets(TABLE6, 8080), vec![listening(0, 6002, true)]);
        assert_eq!(listening_sockets(TABLE6, 80), vec![listening(0, 6003, false)]);
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
    fn the_apps_listener_on_every_address_is_told_apart() {
        let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let group = nix::unistd::getpgrp().as_raw();
        assert_eq!(listener_owner(port, group), ListenerOwner::AppOnEveryAddress);
        assert_eq!(listener_owner(port, group + 100_000), ListenerOwner::Stranger, "a stranger's stays a stranger's");
    }
}
