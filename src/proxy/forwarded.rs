//! Who the client is and how it reached us: `X-Forwarded-For`, `-Proto` and `-Host` are believed only from
//! configured trusted proxies, and always rewritten before the request goes to the app.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use http::header::{HOST, HeaderValue};
use ipnet::IpNet;

const XFF: &str = "x-forwarded-for";
const XFP: &str = "x-forwarded-proto";
const XFH: &str = "x-forwarded-host";

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    let ip = canonical(ip);
    trusted.iter().any(|net| net.contains(&ip))
}

/// IPv4-mapped IPv6 addresses (::ffff:1.2.3.4) are treated as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The client's address: the peer, or, behind trusted proxies, the right-most `X-Forwarded-For` entry that
/// is not itself a trusted proxy.
pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer_ip = canonical(peer.ip());
    if !is_trusted(peer_ip, trusted) {
        return peer_ip;
    }
    let chain: Vec<IpAddr> = headers
        .get_all(XFF)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|entry| entry.trim().parse::<IpAddr>().ok())
        .collect();
    chain.into_iter().rev().map(canonical).find(|ip| !is_trusted(*ip, trusted)).unwrap_or(peer_ip)
}

/// Sets `X-Forwarded-For`, `-Proto` and `-Host` for the app. `public_scheme` is the scheme of `public_url`,
/// used when no trusted proxy told us otherwise.
pub fn set_forwarded_headers(headers: &mut HeaderMap, peer: SocketAddr, trusted: &[IpNet], public_scheme: &str) {
    let peer_ip = canonical(peer.ip());
    let from_trusted = is_trusted(peer_ip, trusted);
    let prior_for = headers
        .get_all(XFF)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    let forwarded_for =
        if from_trusted && !prior_for.is_empty() { format!("{prior_for}, {peer_ip}") } else { peer_ip.to_string() };
    let proto = headers
        .get(XFP)
        .filter(|_| from_trusted)
        .and_then(|v| v.to_str().ok())
        .filter(|v| matches!(*v, "http" | "https"))
        .unwrap_or(public_scheme)
        .to_owned();
    let host = headers.get(XFH).filter(|_| from_trusted).or_else(|| headers.get(HOST)).cloned();

    headers.remove(XFF);
    headers.remove(XFP);
    headers.remove(XFH);
    if let Ok(value) = HeaderValue::from_str(&forwarded_for) {
        headers.insert(XFF, value);
    }
    if let Ok(value) = HeaderValue::from_str(&proto) {
        headers.insert(XFP, value);
    }
    if let Some(host) = host {
        headers.insert(XFH, host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn untrusted_peers_cannot_claim_another_address() {
        let peer: SocketAddr = "203.0.113.9:5000".parse().unwrap();
        let mut map =
            headers(&[("x-forwarded-for", "10.1.1.1"), ("x-forwarded-proto", "https"), ("host", "app.example")]);
        assert_eq!(client_ip(peer, &map, &[]), peer.ip());
        set_forwarded_headers(&mut map, peer, &[], "http");
        assert_eq!(map.get(XFF).unwrap(), "203.0.113.9");
        assert_eq!(map.get(XFP).unwrap(), "http");
        assert_eq!(map.get(XFH).unwrap(), "app.example");
    }

    #[test]
    fn trusted_proxies_pass_the_client_on() {
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let trusted = vec!["127.0.0.0/8".parse().unwrap()];
        let mut map = headers(&[
            ("x-forwarded-for", "198.51.100.7, 127.0.0.2"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "apps.example"),
        ]);
        assert_eq!(client_ip(peer, &map, &trusted), "198.51.100.7".parse::<IpAddr>().unwrap());
        set_forwarded_headers(&mut map, peer, &trusted, "http");
        assert_eq!(map.get(XFF).unwrap(), "198.51.100.7, 127.0.0.2, 127.0.0.1");
        assert_eq!(map.get(XFP).unwrap(), "https");
        assert_eq!(map.get(XFH).unwrap(), "apps.example");
    }
}
