//! Which network a client address stands for, for per-client limits: an IPv4 address is one client, but one
//! subscriber or machine usually holds a whole IPv6 /64 and can rotate through its addresses at will, so
//! per-address limits would give it billions of allowances. IPv4-mapped IPv6 addresses count as IPv4.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// An IPv4 address, or the /64 an IPv6 address is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientNetwork {
    V4(std::net::Ipv4Addr),
    /// The first 64 bits of the address.
    V6Prefix(u64),
}

impl ClientNetwork {
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => ClientNetwork::V4(v4),
            IpAddr::V6(v6) => ClientNetwork::V6Prefix((u128::from(v6) >> 64) as u64),
        }
    }
}

/// `203.0.113.9`, or `2001:db8:1:2::/64`.
impl fmt::Display for ClientNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientNetwork::V4(v4) => write!(f, "{v4}"),
            ClientNetwork::V6Prefix(prefix) => {
                let s = Ipv6Addr::from(u128::from(*prefix) << 64).segments();
                write!(f, "{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network(ip: &str) -> String {
        ClientNetwork::of(ip.parse().unwrap()).to_string()
    }

    #[test]
    fn ipv6_clients_are_their_64_and_mapped_ipv4_is_ipv4() {
        assert_eq!(network("203.0.113.9"), "203.0.113.9");
        assert_eq!(network("::ffff:203.0.113.9"), "203.0.113.9");
        assert_eq!(network("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(
            ClientNetwork::of("2001:db8:1:2::1".parse().unwrap()),
            ClientNetwork::of("2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap())
        );
        assert_ne!(network("2001:db8:1:3::1"), network("2001:db8:1:2::1"));
    }
}
