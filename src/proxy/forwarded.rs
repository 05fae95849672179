//! Who the client is and how it reached us: `X-Forwarded-For` and `-Proto` are believed only from
//! configured trusted proxies, and always rewritten before the request goes to the app. `X-Forwarded-Host` is
//! always the canonical `Host` that access rules judged (a trusted proxy must pass the original `Host`), so
//! an app that routes on either header sees the host that was checked.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use http::header::{HOST, HeaderName, HeaderValue};
use ipnet::IpNet;

// Named once: a `&str` name would be parsed and validated again on every lookup.
const XFF: HeaderName = HeaderName::from_static("x-forwarded-for");
const XFP: HeaderName = HeaderName::from_static("x-forwarded-proto");
const XFH: HeaderName = HeaderName::from_static("x-forwarded-host");

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
/// The client end of a connection, with its `X-Forwarded-For` value made once per connection rather than
/// on every request.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    /// The address as Gatehouse reports it (IPv4-mapped IPv6 addresses as IPv4).
    ip: IpAddr,
    ip_header: HeaderValue,
}

impl Peer {
    pub fn new(addr: SocketAddr) -> Self {
        let ip = canonical(addr.ip());
        let ip_header = HeaderValue::from_str(&ip.to_string()).expect("an IP address is a valid header value");
        Self { addr, ip, ip_header }
    }
}

/// Whether a trusted proxy says, in `X-Forwarded-Host`, that the browser asked for another host than the
/// `Host` it passed on (nginx's default `proxy_set_header Host $proxy_host` does that). Host rules judge
/// `Host`, so they would not see the host the browser meant.
pub fn proxy_names_another_host(headers: &HeaderMap, peer: &Peer, trusted: &[IpNet], host: Option<&str>) -> bool {
    if !is_trusted(peer.ip, trusted) {
        return false;
    }
    let Some(claimed) = headers.get(XFH).and_then(|value| value.to_str().ok()) else { return false };
    match crate::domain::request_target::canonical_host(claimed) {
        Ok(form) => Some(form.text.as_ref()) != host,
        Err(_) => true,
    }
}

/// Replaces `X-Forwarded-For` / `-Proto` with what Gatehouse knows (or believes, from a trusted proxy), and
/// `X-Forwarded-Host` with the request's (canonical) `Host`.
pub fn set_forwarded_headers(headers: &mut HeaderMap, peer: &Peer, trusted: &[IpNet], public_scheme: &str) {
    let from_trusted = is_trusted(peer.ip, trusted);
    let forwarded_for = if from_trusted { extend_forwarded_for(headers, peer) } else { None };
    let proto = headers
        .get(XFP)
        .filter(|_| from_trusted)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| match v {
            "http" => Some(HeaderValue::from_static("http")),
            "https" => Some(HeaderValue::from_static("https")),
            _ => None,
        })
        .unwrap_or(if public_scheme == "https" {
            HeaderValue::from_static("https")
        } else {
            HeaderValue::from_static("http")
        });
    let host = headers.get(HOST).cloned();

    headers.insert(XFF, forwarded_for.unwrap_or_else(|| peer.ip_header.clone()));
    headers.insert(XFP, proto);
    match host {
        Some(host) => {
            headers.insert(XFH, host);
        }
        None => {
            headers.remove(XFH);
        }
    }
}

/// A trusted proxy's `X-Forwarded-For` chain with the proxy itself appended, if it sent one.
fn extend_forwarded_for(headers: &HeaderMap, peer: &Peer) -> Option<HeaderValue> {
    let prior = headers
        .get_all(XFF)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    if prior.is_empty() {
        return None;
    }
    HeaderValue::from_str(&format!("{prior}, {}", peer.ip)).ok()
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
        set_forwarded_headers(&mut map, &Peer::new(peer), &[], "http");
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
            ("x-forwarded-host", "other.example"),
            ("host", "apps.example"),
        ]);
        assert_eq!(client_ip(peer, &map, &trusted), "198.51.100.7".parse::<IpAddr>().unwrap());
        set_forwarded_headers(&mut map, &Peer::new(peer), &trusted, "http");
        assert_eq!(map.get(XFF).unwrap(), "198.51.100.7, 127.0.0.2, 127.0.0.1");
        assert_eq!(map.get(XFP).unwrap(), "https");
        assert_eq!(map.get(XFH).unwrap(), "apps.example", "the judged Host, whatever the proxy claims");
    }

    #[test]
    fn a_trusted_proxy_that_rewrote_host_is_noticed() {
        let proxy = Peer::new("127.0.0.1:5000".parse().unwrap());
        let stranger = Peer::new("203.0.113.9:5000".parse().unwrap());
        let trusted = vec!["127.0.0.0/8".parse().unwrap()];
        let map = headers(&[("x-forwarded-host", "Ops.Example.com")]);
        assert!(proxy_names_another_host(&map, &proxy, &trusted, Some("127.0.0.1:8501")));
        assert!(
            !proxy_names_another_host(&map, &proxy, &trusted, Some("ops.example.com")),
            "the same host, canonically"
        );
        assert!(
            !proxy_names_another_host(&map, &stranger, &trusted, Some("127.0.0.1:8501")),
            "only proxies are believed"
        );
        assert!(!proxy_names_another_host(&headers(&[]), &proxy, &trusted, Some("x")));
        assert!(proxy_names_another_host(&headers(&[("x-forwarded-host", "a:b:c")]), &proxy, &trusted, Some("x")));
    }

    #[test]
    fn ipv4_clients_on_a_dual_stack_listener_are_reported_as_ipv4() {
        let peer: SocketAddr = "[::ffff:203.0.113.9]:5000".parse().unwrap();
        let mut map = headers(&[]);
        set_forwarded_headers(&mut map, &Peer::new(peer), &[], "https");
        assert_eq!(map.get(XFF).unwrap(), "203.0.113.9");
        assert_eq!(map.get(XFP).unwrap(), "https");
        assert!(map.get(XFH).is_none(), "no Host, no X-Forwarded-Host");
    }
}
