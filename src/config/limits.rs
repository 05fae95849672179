//! `[server]` limits that keep slow or greedy clients from tying Gatehouse up: how long a request head and
//! one of Gatehouse's own forms may take to arrive, how slowly a body for the app may trickle in, and how
//! many connections may be open at once, in all and from one client address.

use std::time::Duration;

use super::ConfigReader;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time a client has to send a complete request head; also how long an idle keep-alive connection stays.
    pub header_timeout: Duration,
    /// Time a body for one of Gatehouse's own forms (at most 64 KiB) has to arrive whole.
    pub form_timeout: Duration,
    /// A write to a client that makes no progress for this long ends the connection (a client that does not
    /// read its responses, or its side of a WebSocket).
    pub send_timeout: Duration,
    /// A body for the app may take this long before [`Self::body_min_rate`] applies; every
    /// `body_min_rate` bytes received extend it by a second (like Apache's `mod_reqtimeout`).
    pub body_timeout: Duration,
    /// Bytes per second a body for the app must keep up, on average, after the first `body_timeout`.
    pub body_min_rate: u64,
    /// Connections served at once; further clients wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Connections open at once from one client address (IPv6: one /64). Trusted proxies are exempt: the
    /// clients behind them share their address.
    pub max_connections_per_client: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(20),
            form_timeout: Duration::from_secs(10),
            send_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(20),
            body_min_rate: 1024,
            max_connections: 16_384,
            max_connections_per_client: 512,
        }
    }
}

/// Most connections one process can sensibly hold (each needs a file descriptor, and two for a WebSocket).
const MAX_CONNECTIONS_CEILING: i64 = 1 << 20;

pub(super) fn read_limits(r: &mut ConfigReader) -> ConnectionLimits {
    let defaults = ConnectionLimits::default();
    let ceiling = 1..=MAX_CONNECTIONS_CEILING;
    let max_connections = count(r, "server.max_connections", defaults.max_connections, ceiling.clone());
    let max_connections_per_client =
        count(r, "server.max_connections_per_client", defaults.max_connections_per_client, ceiling);
    if max_connections_per_client > max_connections {
        r.problem(
            "server.max_connections_per_client",
            format!("is more than server.max_connections ({max_connections}), so it would never apply"),
        );
    }
    ConnectionLimits {
        header_timeout: timeout(r, "server.header_timeout", defaults.header_timeout),
        form_timeout: timeout(r, "server.form_timeout", defaults.form_timeout),
        send_timeout: timeout(r, "server.send_timeout", defaults.send_timeout),
        body_timeout: timeout(r, "server.body_timeout", defaults.body_timeout),
        body_min_rate: count(r, "server.body_min_rate", defaults.body_min_rate as usize, 1..=1 << 30) as u64,
        max_connections,
        max_connections_per_client,
    }
}

fn timeout(r: &mut ConfigReader, key: &str, default: Duration) -> Duration {
    let value = r.duration(key).unwrap_or(default);
    if !(Duration::from_millis(100)..=Duration::from_secs(3600)).contains(&value) {
        r.problem(key, "must be between 100ms and one hour");
    }
    value
}

fn count(r: &mut ConfigReader, key: &str, default: usize, range: std::ops::RangeInclusive<i64>) -> usize {
    let value = r.value::<i64>(key).unwrap_or(default as i64);
    if !range.contains(&value) {
        r.problem(key, format!("must be between {} and {}", range.start(), range.end()));
        return default;
    }
    usize::try_from(value).unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn limits_have_safe_defaults_and_can_be_set() {
        let limits = Config::from_toml_str("").unwrap().server.limits;
        assert_eq!(limits, super::ConnectionLimits::default());
        let config = Config::from_toml_str(
            "[server]\nheader_timeout = \"5s\"\nform_timeout = \"500ms\"\nbody_timeout = 30\nbody_min_rate = 100\nmax_connections = 100\nmax_connections_per_client = 10\n",
        )
        .unwrap();
        let limits = config.server.limits;
        assert_eq!(limits.form_timeout, std::time::Duration::from_millis(500));
        assert_eq!(limits.body_timeout, std::time::Duration::from_secs(30));
        assert_eq!((limits.body_min_rate, limits.max_connections, limits.max_connections_per_client), (100, 100, 10));
    }

    #[test]
    fn nonsense_limits_are_reported() {
        let problems = Config::from_toml_str(
            "[server]\nheader_timeout = \"1ms\"\nbody_min_rate = 0\nmax_connections = 10\nmax_connections_per_client = 20\nform_timeout = \"2h\"\n",
        )
        .unwrap_err();
        let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
        for key in [
            "server.header_timeout",
            "server.body_min_rate",
            "server.max_connections_per_client",
            "server.form_timeout",
        ] {
            assert!(keys.contains(&key), "{key}: {problems:?}");
        }
    }
}
