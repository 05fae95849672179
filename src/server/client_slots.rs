//! Connections per client network: without a limit, one client opening thousands of connections (stalled
//! bodies, idle keep-alives) fills the global cap and locks everyone else out. Each connection holds a
//! [`ClientSlot`] for its client's network ([`ClientNetwork`]: an IPv4 address or an IPv6 /64) until it
//! closes. Trusted proxies are not limited: every client behind them shares their address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use ipnet::IpNet;

use crate::domain::client_network::ClientNetwork;

pub struct ClientSlots {
    limit: usize,
    exempt: Vec<IpNet>,
    open: Mutex<HashMap<ClientNetwork, usize>>,
}

/// One open connection's place; given back when dropped.
pub struct ClientSlot {
    slots: Arc<ClientSlots>,
    network: Option<ClientNetwork>,
}

impl ClientSlots {
    pub fn new(limit: usize, exempt: Vec<IpNet>) -> Arc<Self> {
        Arc::new(Self { limit, exempt, open: Mutex::new(HashMap::new()) })
    }

    /// A place for a new connection from `ip`, or `None` when its network has `limit` open already.
    pub fn take(self: &Arc<Self>, ip: IpAddr) -> Option<ClientSlot> {
        let ip = ip.to_canonical();
        if self.exempt.iter().any(|net| net.contains(&ip)) {
            return Some(ClientSlot { slots: self.clone(), network: None });
        }
        let network = ClientNetwork::of(ip);
        let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = open.entry(network).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(ClientSlot { slots: self.clone(), network: Some(network) })
    }

    /// Connections open from `ip`'s network (for tests and metrics).
    pub fn open_from(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        open.get(&ClientNetwork::of(ip.to_canonical())).copied().unwrap_or(0)
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let Some(network) = self.network else { return };
        let mut open = self.slots.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = open.get_mut(&network) {
            *count -= 1;
            if *count == 0 {
                // Forget networks with nothing open, so the map stays as small as the set of connected clients.
                open.remove(&network);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_gets_at_most_its_limit_and_slots_come_back() {
        let slots = ClientSlots::new(2, vec!["10.0.0.1/32".parse().unwrap()]);
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        let first = slots.take(ip).unwrap();
        let _second = slots.take(ip).unwrap();
        assert!(slots.take(ip).is_none());
        assert!(slots.take("203.0.113.10".parse().unwrap()).is_some(), "another client is not affected");
        drop(first);
        assert_eq!(slots.open_from(ip), 1);
        assert!(slots.take(ip).is_some());
    }

    #[test]
    fn an_ipv6_client_cannot_rotate_addresses_and_trusted_proxies_are_exempt() {
        let slots = ClientSlots::new(1, vec!["10.0.0.1/32".parse().unwrap()]);
        let _held = slots.take("2001:db8::1".parse().unwrap()).unwrap();
        assert!(slots.take("2001:db8::ffff".parse().unwrap()).is_none());
        assert!(slots.take("::ffff:10.0.0.1".parse().unwrap()).is_some());
        let proxies: Vec<_> = (0..5).map(|_| slots.take("10.0.0.1".parse().unwrap()).unwrap()).collect();
        assert_eq!(proxies.len(), 5);
        drop(proxies);
        assert!(slots.open.lock().unwrap().len() == 1, "exempt connections are not counted");
    }
}
