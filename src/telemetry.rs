//! Logging and metrics setup. Logs go to stderr as text or JSON; fields never include passwords, tokens,
//! cookie values or query strings. Metrics use the `metrics` facade with a Prometheus recorder, installed
//! once per process (the facade is process-global by design).

use std::sync::OnceLock;

use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// A log filter of comma-separated `level` or `target=level` directives (`info`, `gatehouse=debug,warn`), or
/// `None` if it is not one. Only that plain form is handed to tracing-subscriber, whose full syntax the
/// `config` fuzz target found unsafe to parse: some non-ASCII input panics its parser, and span field
/// filters (`[span{field=...}]`) are compiled as regular expressions, where a 200-byte value took over 30 s
/// and 4 GiB.
pub fn log_filter(filter: &str) -> Option<EnvFilter> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let is_target = |target: &str| {
        !target.is_empty() && target.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"_:-.".contains(&byte))
    };
    let directives: Vec<&str> = filter.split(',').map(str::trim).filter(|directive| !directive.is_empty()).collect();
    let plain = filter.len() <= 1024
        && !directives.is_empty()
        && directives.iter().all(|directive| {
            let (target, level) =
                directive.split_once('=').map_or((None, *directive), |(t, l)| (Some(t.trim()), l.trim()));
            LEVELS.contains(&level.to_ascii_lowercase().as_str()) && target.is_none_or(is_target)
        });
    if !plain {
        return None;
    }
    EnvFilter::try_new(filter).ok()
}

/// Installs the global log subscriber. `RUST_LOG`, when set, overrides `[log] level`.
pub fn init_logging(config: &LogConfig) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| log_filter(&v))
        .or_else(|| log_filter(&config.level))
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match config.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        // Colours only for a person at a terminal, never in files or journald.
        LogFormat::Text => {
            builder.with_target(false).with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).try_init()
        }
    };
}

/// The process's Prometheus recorder, installed on first use.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full("gatehouse_proxy_duration_seconds".into()), &buckets)
                .expect("bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (e.g. by an embedding program); then ours only renders
            // what it records, which is nothing, and that is acceptable.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

fn describe() {
    metrics::describe_counter!("gatehouse_http_requests_total", "HTTP responses sent, by status code");
    metrics::describe_histogram!("gatehouse_proxy_duration_seconds", "Time until the app's response head arrived");
    metrics::describe_counter!("gatehouse_sign_ins_total", "Sign-in attempts, by outcome");
    metrics::describe_gauge!("gatehouse_active_sessions", "Unexpired sessions in the database");
    metrics::describe_gauge!("gatehouse_websockets_open", "WebSocket tunnels open through the proxy");
    metrics::describe_gauge!("gatehouse_websockets_tracked", "WebSocket tunnels registered for live revocation");
}

/// Drains the recorder's histogram samples into their buckets. Without it samples pile up between
/// scrapes (about 19 bytes per proxied request), so memory would grow on servers nobody scrapes.
/// Handles of the metrics recorded on every request, registered once: looking a metric up by name and
/// labels each time would hash, allocate and take the registry's lock on the hot path.
pub struct HotMetrics {
    /// `gatehouse_http_requests_total` for statuses 100-999, registered when first seen.
    responses_by_status: Box<[OnceLock<Counter>]>,
    proxy_duration: Histogram,
}

impl HotMetrics {
    pub fn count_response(&self, status: http::StatusCode) {
        let code = status.as_u16();
        let slot = &self.responses_by_status[usize::from(code.clamp(100, 999) - 100)];
        slot.get_or_init(|| metrics::counter!("gatehouse_http_requests_total", "status" => status.as_str().to_owned()))
            .increment(1);
    }

    pub fn record_proxy_duration(&self, elapsed: std::time::Duration) {
        self.proxy_duration.record(elapsed.as_secs_f64());
    }
}

/// The [`HotMetrics`] handles (installing the recorder first, so that they are never no-op handles).
pub fn hot_metrics() -> &'static HotMetrics {
    static HOT: OnceLock<HotMetrics> = OnceLock::new();
    HOT.get_or_init(|| {
        let _ = metrics_handle();
        HotMetrics {
            responses_by_status: (100..=999).map(|_| OnceLock::new()).collect(),
            proxy_duration: metrics::histogram!("gatehouse_proxy_duration_seconds"),
        }
    })
}

pub async fn metrics_upkeep(shutdown: tokio_util::sync::CancellationToken) {
    let handle = metrics_handle();
    let mut interval = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = interval.tick() => handle.run_upkeep(),
            _ = shutdown.cancelled() => return,
        }
    }
}
